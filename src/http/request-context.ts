/**
 * Per-request state: the request id (the client's when it is safe, otherwise generated), a logger bound to it,
 * and, when the response is finished, one access log line and one observation of
 * `http_request_duration_seconds` labelled by the route template (never the raw path, which holds ids).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from '../logger.js';
import { accessLogger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { zeroed } from '../metrics.js';
import type { RouteTable } from './spec.js';

/**
 * One request's state. A class, so that its `log` getter lives on the prototype: V8 turns an object literal with a
 * getter into a dictionary-mode object, and with one of those per request a fifth of what the API allocated
 * outlived the young-generation collections meant for it, so that full collections came every ~300 ms under load
 * (bench/README.md, "The request state's getter, and pretenuring").
 */
export class RequestState {
  /** The problem code of an error response, for the access log. */
  problem?: string;
  private requestLog?: Logger;

  constructor(
    readonly requestId: string,
    private readonly parentLog: Logger,
  ) {}

  /** A logger bound to the request id, made when a line needs it: most requests log only their access line. */
  get log(): Logger {
    return (this.requestLog ??= this.parentLog.child({ request_id: this.requestId }));
  }
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The label of paths outside the contract: unknown routes must not grow the metric's cardinality. */
const UNMATCHED_ROUTE = 'unmatched';
const DOCS_ASSET_ROUTE = '/api/docs/{asset}';
/** Every page of the operator console: one label, whatever the page (paths hold payout ids). */
const CONSOLE_ROUTE = '/console';

export function acceptRequestId(header: string | string[] | undefined): string {
  return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : randomUUID();
}

const states = new WeakMap<ServerResponse, RequestState>();

/** The state `requestContext` gave this response. */
export function requestState(res: ServerResponse): RequestState {
  const state = states.get(res);
  if (state === undefined) throw new Error('a response outside requestContext');
  return state;
}

/** Records the problem code of an error answer for the access line, on a response `requestStart` began. */
export function noteProblem(res: ServerResponse, code: string): void {
  const state = states.get(res);
  if (state !== undefined) state.problem = code;
}

/** The path of a request, without its query: what routes and logs name. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  if (!url.startsWith('/')) {
    // The absolute form (`GET http://host/path`), as Express reads it.
    try {
      return new URL(url).pathname;
    } catch {
      return url;
    }
  }
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * What every request gets first, on every path that serves it: its state, its request id (echoed as
 * `X-Request-Id`), the headers no answer goes without, and, once the response is finished, its metric and
 * access log line.
 */
export type RequestStart = (req: IncomingMessage, res: ServerResponse) => RequestState;

export function requestStart(options: { log: Logger; metrics: Metrics; routes: RouteTable }): RequestStart {
  const { log, metrics, routes } = options;
  // A 500 series per route and method, at 0: the 5xx panels and the error-rate alert show 0 for a healthy API
  // rather than "No data", which looks the same as an API that is not scraped.
  zeroed(
    metrics.httpRequestDuration,
    routes
      .all()
      .flatMap(({ template, methods }) =>
        methods.map((method) => ({ route: template, method, status: '500' })),
      ),
  );
  // The access line holds only what is written below (the path masked by the logger's formatter): it skips the
  // redaction pass every other line takes, which cost more than the rest of the line (bench/README.md).
  const access = accessLogger(log);
  return (req, res) => {
    const started = process.hrtime.bigint();
    const requestId = acceptRequestId(req.headers['x-request-id']);
    const path = pathOf(req);
    const state = new RequestState(requestId, log);
    states.set(res, state);
    res.setHeader('X-Request-Id', requestId);
    securityHeaders(path, res);
    // `close`, not `finish`: a request the client abandons is measured too, as 499 (nginx's "client closed").
    res.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(routes, path);
      const status = res.writableFinished ? String(res.statusCode) : '499';
      const method = req.method ?? 'GET';
      metrics.httpRequestDuration.observe({ route, method, status }, seconds);
      // Never the headers (Authorization) nor the body (account numbers): method, route, path, status, time.
      const line = {
        request_id: requestId,
        method,
        route,
        path,
        status: Number(status),
        problem: state.problem,
        duration_ms: Math.round(seconds * 1000),
      };
      if (route === '/metrics' || route === '/healthz' || route === '/readyz') access.debug(line, 'request');
      else access.info(line, 'request');
    });
    return state;
  };
}

/** `requestStart` as the first Express middleware; a request already started (by the hot paths) keeps its state. */
export function requestContext(start: RequestStart): RequestHandler {
  return (req, res, next) => {
    if (!states.has(res)) start(req, res);
    next();
  };
}

function securityHeaders(path: string, res: ServerResponse): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // Payout data is per client and changes, and webhook answers may carry a secret: no shared or browser cache may
  // keep them.
  if (path.startsWith('/api/payouts') || path.startsWith('/api/webhook-'))
    res.setHeader('Cache-Control', 'no-store');
}

function routeLabel(routes: RouteTable, path: string): string {
  const route = routes.match(path);
  if (route) return route.template;
  if (path === '/console' || path.startsWith('/console/')) return CONSOLE_ROUTE;
  return path.startsWith('/api/docs/') ? DOCS_ASSET_ROUTE : UNMATCHED_ROUTE;
}
