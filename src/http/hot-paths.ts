/**
 * The three requests a payouts API answers most — create a payout, read one, list a page — served straight on
 * node:http, in front of the Express app, when they are plain: a key this process has authenticated before, a
 * JSON body of a few KiB, a path and query of the expected shape. They run the same checks as the app (the
 * contract's own compiled validators, the service's rules, the key checked again inside the statement that serves
 * the request: see `ApiKeys.remembered`) and answer through the same functions (`sendReply`, `answerError`), minus
 * the framework's routing, parsing and the separate key lookup: a create is one round trip to PostgreSQL (shared
 * with the creates received at the same time: see `PgPayoutStore`).
 *
 * Anything else, and any request the contract refuses, goes to the app, which answers it as it always has (the
 * errors of a refused request are the app's, in its order: 401 before 400). A body read here is handed over
 * parsed, as the app's JSON parser would have left it.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv';
import type { ApiKeys } from '../domain/api-keys.js';
import { Unauthenticated } from '../domain/errors.js';
import type { CreatePayoutInput, PayoutService } from '../domain/payout-service.js';
import type { Principal } from '../domain/principal.js';
import type { Reply } from './handlers.js';
import { createPayoutReply, getPayoutReply, listPayoutsReply, sendReply } from './handlers.js';
import { BODY_LIMIT_BYTES, answerError, malformedJson } from './problem.js';
import type { RequestStart } from './request-context.js';

/** The contract's compiled request validators of an operation (openapi-backend's, called directly). */
export type OperationValidators = readonly ValidateFunction[];

export interface HotPathDeps {
  keys: ApiKeys;
  service: PayoutService;
  start: RequestStart;
  validators: {
    createPayout: OperationValidators;
    getPayout: OperationValidators;
    listPayouts: OperationValidators;
  };
}

/** The request as the contract's validators take it (openapi-backend's shape). */
interface ContractInput {
  path: Record<string, string>;
  query: Record<string, unknown>;
  header: IncomingMessage['headers'];
  cookie: Record<string, string>;
  requestBody?: unknown;
}

const PAYOUT_PATH = /^\/api\/payouts\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
/** A query served here: no percent-escapes or `+` (whose decoding is the app's parser's business). */
const PLAIN_QUERY = /^[A-Za-z0-9_.~:=&-]*$/;
const LIST_PARAMETERS = new Set([
  'limit',
  'cursor',
  'status',
  'stage',
  'currency',
  'created_gte',
  'created_lt',
]);
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);

/** The app, with the hot paths served in front of it. */
export function withHotPaths(app: RequestListener, deps: HotPathDeps): RequestListener {
  const { keys, service, start, validators } = deps;

  function remembered(req: IncomingMessage): Principal | undefined {
    return keys.remembered(bearerToken(req.headers.authorization));
  }

  /** Serves a reply, or the error it ended with; a refused remembered key is forgotten. */
  function serve(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    work: Promise<Reply>,
  ): void {
    work.then(
      (reply) => sendReply(res, reply),
      (error: unknown) => {
        if (error instanceof Unauthenticated && principal.proof) keys.forget(principal.proof);
        if (!answerError(error, req, res)) res.destroy();
      },
    );
  }

  function create(req: IncomingMessage, res: ServerResponse, principal: Principal): void {
    const { requestId } = start(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let text = Buffer.concat(chunks).toString('utf8');
      // As the app's JSON parser decodes it: a leading byte-order mark is not part of the document.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (error) {
        if (!answerError(malformedJson(error), req, res)) res.destroy();
        return;
      }
      const input: ContractInput = {
        path: {},
        query: {},
        header: req.headers,
        cookie: {},
        requestBody: body,
      };
      if (!valid(validators.createPayout, input)) {
        handOver(req, res, body);
        return;
      }
      const idempotencyKey = req.headers['idempotency-key'];
      serve(
        req,
        res,
        principal,
        createPayoutReply(service, principal, {
          body: body as CreatePayoutInput,
          idempotencyKey: typeof idempotencyKey === 'string' ? idempotencyKey : undefined,
          requestId,
        }),
      );
    });
  }

  /** The app answers a request whose body was read here: its JSON parser sees a body already parsed. */
  function handOver(req: IncomingMessage, res: ServerResponse, body: unknown): void {
    (req as IncomingMessage & { body?: unknown }).body = body;
    app(req, res);
  }

  return (req, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST') {
      if (url !== '/api/payouts' || !plainJsonBody(req)) return app(req, res);
      const principal = remembered(req);
      if (principal === undefined) return app(req, res);
      create(req, res, principal);
      return;
    }
    if (req.method !== 'GET') return app(req, res);
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (path === '/api/payouts') {
      const parameters = listQuery(query === -1 ? '' : url.slice(query + 1));
      if (parameters === undefined) return app(req, res);
      const principal = remembered(req);
      const input: ContractInput = { path: {}, query: parameters, header: req.headers, cookie: {} };
      if (principal === undefined || !valid(validators.listPayouts, input)) return app(req, res);
      start(req, res);
      serve(req, res, principal, listPayoutsReply(service, principal, input.query));
      return;
    }
    const id = query === -1 ? PAYOUT_PATH.exec(path)?.[1] : undefined;
    if (id === undefined) return app(req, res);
    const principal = remembered(req);
    const input: ContractInput = { path: { id }, query: {}, header: req.headers, cookie: {} };
    if (principal === undefined || !valid(validators.getPayout, input)) return app(req, res);
    start(req, res);
    const ifNoneMatch = req.headers['if-none-match'];
    serve(req, res, principal, getPayoutReply(service, principal, id, ifNoneMatch));
  };
}

function valid(validators: OperationValidators, input: ContractInput): boolean {
  return validators.every((validate) => validate(input));
}

/** A JSON body of a known, small length, in a plain encoding: what the app's parser would accept as is. */
function plainJsonBody(req: IncomingMessage): boolean {
  const { headers } = req;
  const type = headers['content-type'];
  const length = Number(headers['content-length']);
  return (
    type !== undefined &&
    JSON_TYPES.has(type.toLowerCase()) &&
    headers['transfer-encoding'] === undefined &&
    headers['content-encoding'] === undefined &&
    Number.isInteger(length) &&
    length > 0 &&
    length <= BODY_LIMIT_BYTES
  );
}

/** The list's query as the app would parse it, or undefined when it is not plain (the app then answers). */
function listQuery(query: string): Record<string, unknown> | undefined {
  if (!PLAIN_QUERY.test(query)) return undefined;
  const parameters: Record<string, unknown> = {};
  if (query === '') return parameters;
  for (const pair of query.split('&')) {
    const equals = pair.indexOf('=');
    const name = equals === -1 ? pair : pair.slice(0, equals);
    if (!LIST_PARAMETERS.has(name) || name in parameters) return undefined;
    parameters[name] = equals === -1 ? '' : pair.slice(equals + 1);
  }
  return parameters;
}

/** `Authorization: Bearer <key>` → the key; anything else → undefined, which `authenticate` refuses. */
export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match ? match[1] : undefined;
}
