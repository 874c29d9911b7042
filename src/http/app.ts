/**
 * The HTTP API as an Express app, built from `openapi.yaml`: openapi-backend routes each request to the
 * handler named by its operationId, runs the `bearerAuth` security handler and validates the request against
 * the contract before the handler runs. No listen here: one app per test, `startApi` for the process.
 *
 * Order matters: request id first (every response carries it), then 414 for a path over 4 KiB, the operator
 * console on `/console` (its own pages, forms and errors), 415 before any routing or parsing (so a non-JSON body
 * is 415 whatever the API route), the JSON parser (400 malformed, 413 too large), the docs' static assets, the
 * contract, and last the one error middleware.
 *
 * In front of the app, the hot paths (`hot-paths.ts`) answer a plain create, read or list page of a key this
 * process has seen, with the same validators, service and replies; everything else reaches the app.
 */
import express from 'express';
import type { RequestListener } from 'node:http';
import type { Request, RequestHandler } from 'express';
import ajvFormats from 'ajv-formats';
import { OpenAPIBackend } from 'openapi-backend';
import type { Context, Request as ApiRequest } from 'openapi-backend';
import type { ApiKeys } from '../domain/api-keys.js';
import { Unauthenticated } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { docsPages } from './docs.js';
import type { HandlerDeps } from './handlers.js';
import { operationHandlers } from './handlers.js';
import {
  BODY_LIMIT,
  BadRequest,
  ContractViolated,
  MethodNotAllowed,
  RouteNotFound,
  UnsupportedMediaType,
  UriTooLong,
  errorMiddleware,
  fieldProblems,
} from './problem.js';
import { requestContext, requestStart } from './request-context.js';
import { bearerToken, withHotPaths } from './hot-paths.js';
import type { ApiSpec } from './spec.js';
import { loadSpec } from './spec.js';
import {
  MAX_FIELD_ERRORS,
  besideContractErrors,
  bestEffortCreateInput,
  fieldErrors,
} from './validation-errors.js';

/** What the API is made of: the handlers' needs, the API keys, the logger, the registry it records requests in. */
export interface ApiDeps extends HandlerDeps {
  keys: ApiKeys;
  log: Logger;
  metrics: Metrics;
  /**
   * The operator console (src/console), mounted on `/console` only, before the API's body checks and parser: it
   * reads its own form bodies and never sees `/api/*`. None: `/console` is an unknown route.
   */
  console?: RequestHandler;
}

export interface AppOptions {
  /** The contract; read from `openapi.yaml` when not given. */
  spec?: ApiSpec;
  /** False: every request through Express, none on the hot paths (to compare the two). Default true. */
  hotPaths?: boolean;
}

export async function createApp(deps: ApiDeps, options: AppOptions = {}): Promise<RequestListener> {
  const spec = options.spec ?? loadSpec();
  const docs = docsPages();
  const api = new OpenAPIBackend({
    definition: spec.document(),
    // A contract that does not dereference or compile (or a handler for an operation it does not have) stops
    // the start.
    strict: true,
    // `quick` skips two things the process does not need, which took ~10 MB of its resident memory at start
    // (idle 133 → 122 MB) and ~3 MB of live heap: checking the document against the OpenAPI meta-schema (the
    // gate does that: `make spec-lint`'s struct rule), and compiling response validators (never used here; the
    // tests check responses themselves). Request validators are still compiled before the first request, below;
    // the dereferenced definition is the same (deep-equal) as without `quick`.
    quick: true,
    // Query and path parameters arrive as strings; `limit` must reach the handler as the integer it was checked as.
    coerceTypes: true,
    ajvOpts: { allErrors: true, discriminator: true, verbose: true },
    customizeAjv: (ajv) => {
      // ajv-formats is CommonJS: its plugin is both the module and its `default`; only `default` is typed so.
      ajvFormats.default(ajv);
      return ajv;
    },
    securityHandlers: {
      bearerAuth: (c: Context) =>
        deps.keys.authenticate(bearerToken((c.request.headers as Record<string, unknown>).authorization)),
    },
    handlers: {
      ...operationHandlers(deps, spec, docs),
      notFound: (c: Context) => {
        throw new RouteNotFound(c.request.path);
      },
      methodNotAllowed: (c: Context) => {
        throw new MethodNotAllowed(
          c.request.method.toUpperCase(),
          spec.routes.allowedMethods(c.request.path),
        );
      },
      unauthorizedHandler: (c: Context) => {
        // The security handler's own error: Unauthenticated, or a database failure that must not read as a 401.
        const outcome = c.security.bearerAuth as { error?: unknown } | undefined;
        throw outcome?.error instanceof Error ? outcome.error : new Unauthenticated();
      },
      validationFail: (c: Context) => {
        const errors = fieldErrors(c.validation.errors ?? []);
        if (c.operation.operationId === 'createPayout') {
          const domain = deps.service.createPayoutProblems(bestEffortCreateInput(c.request.requestBody));
          errors.push(...besideContractErrors(errors, fieldProblems(domain, 'body')));
        }
        throw new ContractViolated(errors.slice(0, MAX_FIELD_ERRORS));
      },
    },
  });
  await api.init();
  // `quick` would compile each operation's validators on its first request; compile them all now instead, so a
  // schema ajv refuses stops the start and no request pays for a compilation.
  api.validator.preCompileRequestValidators();
  // openapi-backend rebuilds its list of operations from the whole document (lodash chains, one object per
  // operation) twice for every request it routes; the contract does not change after init, so build it once.
  const operations = api.router.getOperations();
  api.router.getOperations = () => operations;

  const start = requestStart({ log: deps.log, metrics: deps.metrics, routes: spec.routes });
  const app = express();
  app.disable('x-powered-by');
  // ETags are the payout's version, set by the handlers; Express's body hashes would answer If-None-Match wrongly.
  app.set('etag', false);
  app.use(requestContext(start));
  app.use(limitPathLength);
  app.use(requireDecodablePath);
  if (deps.console) app.use('/console', deps.console);
  app.use(requireJsonBody);
  // Not `strict`: a body that is valid JSON but not an object (`"text"`, `42`) is then reported by the contract
  // as `/body must be an object` rather than as malformed JSON.
  app.use(express.json({ limit: BODY_LIMIT, strict: false, type: 'application/json' }));
  app.use('/api/docs', docs.assets);
  app.use(async (req, res) => {
    await api.handleRequest(toApiRequest(req), req, res);
  });
  app.use(errorMiddleware());
  if (options.hotPaths === false) return app;
  const validatorsOf = (operationId: string) => api.validator.getRequestValidatorsForOperation(operationId);
  return withHotPaths(app, {
    keys: deps.keys,
    service: deps.service,
    start,
    validators: {
      createPayout: validatorsOf('createPayout'),
      getPayout: validatorsOf('getPayout'),
      listPayouts: validatorsOf('listPayouts'),
    },
  });
}

function toApiRequest(req: Request): ApiRequest {
  return {
    // HEAD is answered as GET (Node leaves the body out), so every GET route answers HEAD too.
    method: req.method === 'HEAD' ? 'GET' : req.method,
    path: req.path,
    headers: req.headers as ApiRequest['headers'],
    query: req.query as ApiRequest['query'],
    // The JSON parser turns an empty body into `{}`; a request without a body must read as missing its body.
    body: req.headers['content-length'] === '0' ? undefined : (req.body as unknown),
  };
}

/** The longest path served, in bytes (the path as sent, percent-encoded; the query is not counted). */
const MAX_PATH_BYTES = 4096;

/**
 * 414 for a path over 4 KiB, before anything reads it: no route is that long, and every later step (routing,
 * decoding, the route label of the metrics) costs at least the path's length.
 */
const limitPathLength: RequestHandler = (req, _res, next) => {
  if (req.path.length > MAX_PATH_BYTES) {
    next(new UriTooLong(MAX_PATH_BYTES));
    return;
  }
  next();
};

/** Path parameters are percent-decoded by the router, which throws on broken escapes (`%ED%A0%80`, `%zz`). */
const requireDecodablePath: RequestHandler = (req, _res, next) => {
  try {
    decodeURIComponent(req.path);
  } catch {
    next(new BadRequest('The path is not valid percent-encoded UTF-8.'));
    return;
  }
  next();
};

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * 415 for a body that is not JSON, before routing: openapi-backend would otherwise see no body and report the
 * missing fields (400), which sends the client looking in the wrong place.
 */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (BODY_METHODS.has(req.method) && hasBody && req.is('application/json') !== 'application/json') {
    next(new UnsupportedMediaType(req.headers['content-type']?.slice(0, 100)));
    return;
  }
  next();
};
