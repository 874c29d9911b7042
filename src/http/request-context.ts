/**
 * Per-request state: the request id (the client's when it is safe, otherwise generated), a logger bound to it,
 * and, when the response is finished, one access log line and one observation of
 * `http_request_duration_seconds` labelled by the route template (never the raw path, which holds ids).
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { zeroed } from '../metrics.js';
import type { RouteTable } from './spec.js';

export interface RequestState {
  requestId: string;
  log: Logger;
  /** The problem code of an error response, for the access log. */
  problem?: string;
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The label of paths outside the contract: unknown routes must not grow the metric's cardinality. */
const UNMATCHED_ROUTE = 'unmatched';
const DOCS_ASSET_ROUTE = '/api/docs/{asset}';

export function acceptRequestId(header: string | string[] | undefined): string {
  return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : randomUUID();
}

export function requestState(res: Response): RequestState {
  return res.locals as RequestState;
}

export function requestContext(options: {
  log: Logger;
  metrics: Metrics;
  routes: RouteTable;
}): RequestHandler {
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
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const requestId = acceptRequestId(req.headers['x-request-id']);
    const state = requestState(res);
    state.requestId = requestId;
    state.log = log.child({ request_id: requestId });
    res.setHeader('X-Request-Id', requestId);
    // `close`, not `finish`: a request the client abandons is measured too, as 499 (nginx's "client closed").
    res.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(routes, req.path);
      const status = res.writableFinished ? String(res.statusCode) : '499';
      metrics.httpRequestDuration.observe({ route, method: req.method, status }, seconds);
      // Never the headers (Authorization) nor the body (account numbers): method, route, path, status, time.
      const line = {
        method: req.method,
        route,
        path: req.path,
        status: Number(status),
        problem: state.problem,
        duration_ms: Math.round(seconds * 1000),
      };
      if (route === '/metrics' || route === '/healthz' || route === '/readyz')
        state.log.debug(line, 'request');
      else state.log.info(line, 'request');
    });
    next();
  };
}

function routeLabel(routes: RouteTable, path: string): string {
  const route = routes.match(path);
  if (route) return route.template;
  return path.startsWith('/api/docs/') ? DOCS_ASSET_ROUTE : UNMATCHED_ROUTE;
}
