/**
 * The webhook sender: one HTTP POST per attempt, with the egress rules on the connection itself.
 *
 * - Scheme: `https`, or `http` only with `WEBHOOK_ALLOW_HTTP`.
 * - Addresses: a name is resolved by our own `lookup`, which refuses the connection when any address it returns is
 *   loopback, private, link-local or metadata (`isForbiddenAddress`); the socket then connects to the address that
 *   lookup answered, so a name cannot be re-resolved to another address between the check and the connect (DNS
 *   rebinding). An address literal skips lookup: it is judged before connecting, and the connected socket's
 *   `remoteAddress` is checked as well. `WEBHOOK_ALLOW_PRIVATE` lifts both checks (development and tests).
 * - No redirect is followed: a 3xx is an answer like any other non-2xx, retried.
 * - At most 1 KiB of the response is kept; the rest is not read. The whole attempt is bounded by
 *   `WEBHOOK_TIMEOUT_MS`, and no connection is reused (no agent): each attempt resolves and checks afresh.
 */
import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import type { EgressPolicy } from '../domain/webhook-egress.js';
import { isForbiddenAddress } from '../domain/webhook-egress.js';
import type { WebhookRequest, WebhookResponse, WebhookSender } from '../domain/webhook-delivery.js';

/** How much of a receiver's answer is kept. */
export const RESPONSE_BYTES_KEPT = 1024;

/** Why a connection was refused by the egress rules (not the receiver's doing). */
class EgressRefused extends Error {}

export interface HttpWebhookSenderOptions extends EgressPolicy {
  timeoutMs: number;
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

export class HttpWebhookSender implements WebhookSender {
  constructor(private readonly options: HttpWebhookSenderOptions) {}

  send(request: WebhookRequest): Promise<WebhookResponse> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return Promise.resolve({ kind: 'refused', error: 'not a URL' });
    }
    const secure = url.protocol === 'https:';
    if (!secure && !(this.options.allowHttp && url.protocol === 'http:')) {
      return Promise.resolve({ kind: 'refused', error: `scheme ${url.protocol} refused` });
    }
    const { allowPrivate, timeoutMs } = this.options;
    // An address literal is connected to without a lookup: judged here, before any connection.
    const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!allowPrivate && isIP(literal) !== 0 && isForbiddenAddress(literal)) {
      return Promise.resolve({ kind: 'refused', error: `${literal} is a private address` });
    }
    const body = Buffer.from(request.body, 'utf8');
    return new Promise<WebhookResponse>((resolve) => {
      let settled = false;
      const finish = (response: WebhookResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(response);
      };
      const fail = (error: unknown) => {
        const message = (error as Error)?.message ?? String(error);
        finish(
          error instanceof EgressRefused
            ? { kind: 'refused', error: message }
            : { kind: 'unreachable', error: message },
        );
      };
      const lookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => {
        dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
          if (error) return callback(error, []);
          const forbidden = addresses.find((entry) => isForbiddenAddress(entry.address));
          if (!allowPrivate && forbidden) {
            return callback(
              new EgressRefused(`${hostname} resolves to ${forbidden.address}, a private address`),
              [],
            );
          }
          if (options.all) return callback(null, addresses);
          const first = addresses[0];
          if (!first) return callback(new Error(`${hostname} has no address`), []);
          callback(null, first.address, first.family);
        });
      };
      const req = (secure ? https : http).request(url, {
        method: 'POST',
        agent: false,
        lookup,
        headers: { ...request.headers, 'Content-Length': String(body.length) },
      });
      const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('socket', (socket: Socket) => {
        socket.once('connect', () => {
          const address = socket.remoteAddress ?? '';
          if (!allowPrivate && isForbiddenAddress(address)) {
            fail(new EgressRefused(`connected to ${address}, a private address`));
          }
        });
      });
      req.on('error', fail);
      req.on('response', (response) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        const done = () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const location = response.headers.location;
          const statusCode = response.statusCode ?? 0;
          const shown =
            statusCode >= 300 && statusCode < 400 && location
              ? `redirect to ${location.slice(0, 200)} not followed`
              : text;
          finish({ kind: 'answered', statusCode, body: shown });
        };
        response.on('data', (chunk: Buffer) => {
          if (kept < RESPONSE_BYTES_KEPT) chunks.push(chunk.subarray(0, RESPONSE_BYTES_KEPT - kept));
          kept += chunk.length;
          // Enough is known: the rest is not read.
          if (kept >= RESPONSE_BYTES_KEPT) done();
        });
        response.on('end', done);
        response.on('error', done);
      });
      req.end(body);
    });
  }
}
