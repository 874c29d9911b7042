/**
 * Every failure leaves the API as RFC 9457 `application/problem+json`. A domain error is mapped here: its code to an
 * HTTP status, its field names to JSON pointers into the request, its facts to members of the document. The HTTP
 * layer's own failures (routing, content type, body size, the body parser's errors) are problems of their own;
 * anything else is a 500 that says nothing about its cause and is logged with the request id.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { FieldError } from '../domain/errors.js';
import { DomainError, StoreUnavailable, ValueRejected } from '../domain/errors.js';
import { isDataError, isDatabaseUnavailable, unavailabilityCause } from '../database-errors.js';
import { PROBLEM_CONTENT_TYPE, problemDocument } from '../problem-document.js';
import { requestState } from './request-context.js';

export { PROBLEM_CONTENT_TYPE };
export const BODY_LIMIT = '16kb';
/** `BODY_LIMIT` in bytes (the JSON parser's `kb` is 1,024 bytes). */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** A JSON pointer into the request and what is wrong there: `/body/amount`, `/query/limit`, `/header/if-match`. */
export interface FieldProblem {
  pointer: string;
  message: string;
}

export interface ProblemOptions {
  detail?: string;
  errors?: FieldProblem[];
  cause?: unknown;
  extensions?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An answer of the API that is not a success: what the client is told. */
export class HttpProblem extends Error {
  readonly detail: string;
  readonly errors: FieldProblem[] | undefined;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: string,
    readonly status: number,
    readonly title: string,
    options: ProblemOptions = {},
  ) {
    super(options.detail ?? title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.detail = options.detail ?? title;
    this.errors = options.errors;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

/** The request's fields broke the contract (named by pointer). */
export class ContractViolated extends HttpProblem {
  constructor(errors: FieldProblem[]) {
    super('validation_failed', 400, 'Validation failed', {
      detail: 'The request has invalid fields.',
      errors,
    });
  }
}

export class BadRequest extends HttpProblem {
  constructor(detail: string, cause?: unknown) {
    super('bad_request', 400, 'Bad request', { detail, cause });
  }
}

export class RouteNotFound extends HttpProblem {
  constructor(path: string) {
    super('route_not_found', 404, 'Not found', { detail: `No route ${path}.` });
  }
}

export class MethodNotAllowed extends HttpProblem {
  constructor(method: string, allowed: string[]) {
    super('method_not_allowed', 405, 'Method not allowed', {
      detail: `${method} is not allowed here; allowed: ${allowed.join(', ')}.`,
      headers: { Allow: allowed.join(', ') },
    });
  }
}

export class PayloadTooLarge extends HttpProblem {
  constructor(limit: string) {
    super('payload_too_large', 413, 'Payload too large', { detail: `The body exceeds ${limit}.` });
  }
}

export class UnsupportedMediaType extends HttpProblem {
  constructor(contentType: string | undefined) {
    super('unsupported_media_type', 415, 'Unsupported media type', {
      detail: `Send application/json, not ${contentType ?? 'no content type'}.`,
    });
  }
}

export class ServiceUnavailable extends HttpProblem {
  constructor(detail: string, retryAfterSeconds = StoreUnavailable.RETRY_AFTER_SECONDS) {
    super('service_unavailable', 503, 'Service unavailable', {
      detail,
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

export class InternalError extends HttpProblem {
  constructor(cause: unknown) {
    super('internal_error', 500, 'Internal server error', {
      detail: 'An unexpected error occurred; it has been logged with the request id.',
      cause,
    });
  }
}

/** The HTTP status of each domain error code. */
const STATUS_OF: Readonly<Record<string, number>> = {
  validation_failed: 400,
  bad_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  payout_not_found: 404,
  webhook_endpoint_not_found: 404,
  webhook_delivery_not_found: 404,
  transition_not_allowed: 409,
  webhook_endpoint_disabled: 409,
  payout_not_deletable: 409,
  description_changes_exhausted: 409,
  idempotency_key_in_flight: 409,
  version_mismatch: 412,
  idempotency_key_reused: 422,
  service_unavailable: 503,
};

/** Where a request's own fields are: the body of a write, the query of a read. */
export type FieldLocation = 'body' | 'query';

/** A domain field (`recipient.iban`) as a JSON pointer into the request (`/body/recipient/iban`). */
export function pointerOf(field: string, location: FieldLocation): string {
  return field === '' ? `/${location}` : `/${location}/${field.split('.').join('/')}`;
}

export function fieldProblems(fields: readonly FieldError[], location: FieldLocation): FieldProblem[] {
  return fields.map(({ field, message }) => ({ pointer: pointerOf(field, location), message }));
}

/** A domain error as the problem the client is told. */
export function problemOfDomain(error: DomainError, location: FieldLocation): HttpProblem {
  const status = STATUS_OF[error.code];
  if (status === undefined) return new InternalError(error);
  return new HttpProblem(error.code, status, error.title, {
    detail: error.detail,
    errors: error.fields && fieldProblems(error.fields, location),
    extensions: error.facts,
    headers: {
      ...(error.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(error.retryAfterSeconds) }),
      // RFC 9110: a 401 names the scheme the client must use.
      ...(status === 401 ? { 'WWW-Authenticate': 'Bearer realm="payouts"' } : {}),
    },
    cause: error,
  });
}

/** A body that does not parse as JSON; the parser's own message quotes the body, so it is never passed on. */
export function malformedJson(cause: unknown): HttpProblem {
  return new BadRequest('The body is not valid JSON.', cause);
}

/** Whatever was thrown, as the problem the client will see. */
export function toProblem(error: unknown, location: FieldLocation): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof DomainError) return problemOfDomain(error, location);
  const fields = (error ?? {}) as { type?: unknown; status?: unknown; expose?: unknown };
  switch (fields.type) {
    // The parser's own message quotes the body (it may hold an account number): never pass it on.
    case 'entity.parse.failed':
      return malformedJson(error);
    case 'entity.too.large':
      return new PayloadTooLarge('16 KiB');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new UnsupportedMediaType('a body in an unsupported encoding or charset');
    case 'request.aborted':
    case 'request.size.invalid':
      return new BadRequest('The body was not received completely.', error);
    default:
      break;
  }
  // A database error that did not pass through the store: the same meaning as the store gives it.
  if (isDataError(error)) return problemOfDomain(new ValueRejected(error), location);
  if (isDatabaseUnavailable(error)) return problemOfDomain(new StoreUnavailable(error), location);
  if (
    fields.expose === true &&
    typeof fields.status === 'number' &&
    fields.status >= 400 &&
    fields.status < 500
  ) {
    return new BadRequest('The request cannot be read.', error);
  }
  return new InternalError(error);
}

export function sendProblem(res: ServerResponse, problem: HttpProblem): void {
  const state = requestState(res);
  state.problem = problem.code;
  const body = JSON.stringify(
    problemDocument({
      code: problem.code,
      title: problem.title,
      status: problem.status,
      detail: problem.detail,
      requestId: state.requestId,
      errors: problem.errors,
      extensions: problem.extensions,
    }),
  );
  res
    .writeHead(problem.status, {
      ...problem.headers,
      'Content-Type': `${PROBLEM_CONTENT_TYPE}; charset=utf-8`,
      'Content-Length': Buffer.byteLength(body),
    })
    .end(body);
}

/**
 * Whatever a request's handling threw, answered as a problem and logged when it is the service's fault; false
 * when the answer had already begun (nothing more can be said: the caller ends the connection).
 */
export function answerError(error: unknown, req: IncomingMessage, res: ServerResponse): boolean {
  // A read's fields are its query parameters; a write's are its body.
  const problem = toProblem(error, req.method === 'GET' || req.method === 'HEAD' ? 'query' : 'body');
  const state = requestState(res);
  // A 503 is the database away (the readiness check says so once, with its cause), not a fault of this code: a
  // warning naming the cause, without a stack for every request of an outage.
  if (problem.status === 503)
    state.log.warn({ problem: problem.code, cause: unavailabilityCause(error) }, 'request failed');
  else if (problem.status >= 500) state.log.error({ err: error, problem: problem.code }, 'request failed');
  if (res.headersSent) return false;
  sendProblem(res, problem);
  return true;
}

export function errorMiddleware(): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    // Too late for a problem document: let Express end the connection.
    if (!answerError(error, req, res)) next(error);
  };
}

/** A request path longer than the API serves, refused before routing (RFC 9110 §15.5.15). */
export class UriTooLong extends HttpProblem {
  constructor(limitBytes: number) {
    super('uri_too_long', 414, 'URI too long', {
      detail: `The path exceeds ${limitBytes} bytes.`,
    });
  }
}
