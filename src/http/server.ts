/**
 * The `api` role: the app on `HOST:PORT`, stopped gracefully — stop accepting, let requests in flight finish,
 * close idle keep-alive connections, and after a grace period cut whatever is left.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, createServer } from 'node:http';
import type { RequestListener, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { StoreUnavailable } from '../domain/errors.js';
import { PROBLEM_CONTENT_TYPE, problemDocument } from '../problem-document.js';
import type { ApiDeps } from './app.js';
import { createApp } from './app.js';
import { noteProblem } from './request-context.js';

/** The API role's needs: the app's, and where to listen. */
export interface ApiServerDeps extends ApiDeps {
  config: { port: number; host: string; requestTimeoutMs?: number };
}

export interface RunningApi {
  port: number;
  /** Resolves once every connection is closed. Does not close the context (database pool, logger). */
  stop(): Promise<void>;
}

/** The default of `REQUEST_TIMEOUT_MS` (src/config.ts), and how long `stop` waits for requests in flight. */
const REQUEST_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

export interface ApiServerOptions {
  /**
   * Longest a request may take, from its first byte to its answer: Node's `requestTimeout` bounds receiving it
   * (408), this bound the whole (503 with `Retry-After`), so that no handler — a database that stopped answering,
   * a lock — leaves the client with a socket that never answers.
   */
  requestTimeoutMs?: number;
}

/**
 * The HTTP server around the app. Requests Node's parser refuses (a control character in a header, headers
 * too large) never reach Express; they still get a problem document instead of Node's bare `400`.
 */
export function createApiServer(app: RequestListener, options: ApiServerOptions = {}): Server {
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const server = createServer((request, response) => {
    const timer = setTimeout(() => answerTimedOut(response, requestTimeoutMs), requestTimeoutMs);
    response.once('close', () => clearTimeout(timer));
    app(request, response);
  });
  server.requestTimeout = requestTimeoutMs;
  // Above a typical load balancer's idle timeout, so it is the balancer that closes idle connections.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status =
      error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const code =
      status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'malformed_request';
    const requestId = randomUUID();
    const body = JSON.stringify(
      problemDocument({
        code,
        title: STATUS_CODES[status] ?? 'Bad request',
        status,
        detail: 'The request is not valid HTTP.',
        requestId,
      }),
    );
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}

/**
 * The answer to a request still unanswered after `timeoutMs`: 503 problem+json with `Retry-After`, and the
 * connection closed after it. Whatever the handler writes later is dropped. A response already begun cannot
 * become a problem any more: its connection is cut, so the client sees it incomplete rather than waiting.
 */
function answerTimedOut(response: ServerResponse, timeoutMs: number): void {
  if (response.writableEnded) return;
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const existing = response.getHeader('X-Request-Id');
  const requestId = typeof existing === 'string' ? existing : randomUUID();
  const body = JSON.stringify(
    problemDocument({
      code: 'service_unavailable',
      title: 'Service unavailable',
      status: 503,
      // Unlike a database that could not be reached, the handler may still finish: the outcome is unknown.
      detail:
        `The request was not answered within ${timeoutMs} ms and may still take effect; retry with the same ` +
        'Idempotency-Key, or read the payout before changing it again.',
      requestId,
    }),
  );
  // For the access log line, written when the response closes.
  noteProblem(response, 'service_unavailable');
  response.writeHead(503, {
    'Content-Type': PROBLEM_CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(body),
    'Retry-After': String(StoreUnavailable.RETRY_AFTER_SECONDS),
    'X-Request-Id': requestId,
    'Cache-Control': 'no-store',
    Connection: 'close',
  });
  response.end(body);
  // The handler is not cancelled: whatever it answers later goes nowhere.
  response.setHeader = () => response;
  response.removeHeader = () => undefined;
  response.writeHead = () => response;
  response.write = () => true;
  response.end = () => response;
}

export async function startApi(ctx: ApiServerDeps): Promise<RunningApi> {
  const server = createApiServer(await createApp(ctx), { requestTimeoutMs: ctx.config.requestTimeoutMs });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ctx.config.port, ctx.config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  ctx.log.info({ host: ctx.config.host, port }, 'api listening');
  return { port, stop: () => stopServer(server, ctx) };
}

function stopServer(server: Server, ctx: Pick<ApiServerDeps, 'log'>): Promise<void> {
  return new Promise<void>((resolve) => {
    const cut = setTimeout(() => {
      ctx.log.warn('api stop: grace period over, closing the remaining connections');
      server.closeAllConnections();
    }, STOP_GRACE_MS);
    cut.unref();
    // A keep-alive connection becomes idle when its last response is sent; close() waits for every connection,
    // so idle ones are closed now and, as requests in flight finish, again until none is left.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearTimeout(cut);
      clearInterval(sweep);
      ctx.log.info('api stopped');
      resolve();
    });
    server.closeIdleConnections();
  });
}
