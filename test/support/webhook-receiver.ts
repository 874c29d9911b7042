/**
 * A real HTTP receiver of webhooks for the tests: it records every request as it came (raw body, headers, time)
 * and answers what the test says (`respond`); it can go down and come back on the same port.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/* eslint-disable @typescript-eslint/no-explicit-any -- received events are JSON the tests read */

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  rawBody: string;
  at: number;
}

export type Responder = (
  request: ReceivedRequest,
  count: number,
) => { status: number; body?: string; headers?: Record<string, string> } | 'hang';

export class WebhookReceiver {
  readonly received: ReceivedRequest[] = [];
  respond: Responder = () => ({ status: 200, body: 'ok' });
  private server: Server | undefined;
  port = 0;

  async start(port = 0): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  url(path = '/hooks'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Stops answering: connections are refused until `start(this.port)` again. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The requests whose body is the event of this payout, parsed. */
  eventsOf(payoutId: string): Array<{ request: ReceivedRequest; event: Record<string, any> }> {
    return this.received
      .map((request) => ({ request, event: JSON.parse(request.rawBody) as Record<string, any> }))
      .filter(({ event }) => event.data?.object?.id === payoutId);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        rawBody: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      this.received.push(request);
      const answer = this.respond(request, this.received.length);
      if (answer === 'hang') return;
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      res.end(answer.body ?? '');
    });
  }
}
