/**
 * The one error middleware: every failure leaves as RFC 9457 `application/problem+json`. An `AppError` is
 * rendered as it is; the body parser's errors, PostgreSQL data errors and lost database connections are
 * translated; anything else is a 500 that says nothing about its cause and is logged with the request id.
 */
import type { ErrorRequestHandler, Response } from 'express';
import {
  AppError,
  BadRequest,
  PayloadTooLarge,
  ServiceUnavailable,
  UnsupportedMediaType,
} from '../domain/errors.js';
import { isDataError, isDatabaseUnavailable } from '../persistence/db.js';
import { requestState } from './request-context.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const BODY_LIMIT = '16kb';

export class InternalError extends AppError {
  constructor(cause: unknown) {
    super('internal_error', 500, 'Internal server error', {
      detail: 'An unexpected error occurred; it has been logged with the request id.',
      cause,
    });
  }
}

/** Members of the problem document the standard defines; an extension never overwrites them. */
const RESERVED = new Set(['type', 'title', 'status', 'detail', 'instance', 'code', 'request_id', 'errors']);

export function problemBody(error: AppError, requestId: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    type: `urn:payouts:problem:${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.detail,
    code: error.code,
    request_id: requestId,
  };
  if (error.errors !== undefined) body.errors = error.errors;
  for (const [key, value] of Object.entries(error.extensions)) {
    if (!RESERVED.has(key)) body[key] = value;
  }
  return body;
}

export function sendProblem(res: Response, error: AppError): void {
  const state = requestState(res);
  state.problem = error.code;
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res
    .status(error.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(problemBody(error, state.requestId)));
}

/** Whatever was thrown, as the AppError the client will see. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const fields = (error ?? {}) as {
    type?: unknown;
    status?: unknown;
    expose?: unknown;
    code?: unknown;
    name?: unknown;
  };
  switch (fields.type) {
    // The parser's own message quotes the body (it may hold an account number): never pass it on.
    case 'entity.parse.failed':
      return new BadRequest('The body is not valid JSON.', error);
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
  if (isDataError(error)) {
    // The database refused a value the contract let through; its message may quote the value, so say less.
    return new BadRequest('A value in the request cannot be stored.', error);
  }
  if (isDatabaseUnavailable(error)) {
    return new ServiceUnavailable('The database is not reachable; retry shortly.');
  }
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

export function errorMiddleware(): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
    const problem = toAppError(error);
    const state = requestState(res);
    if (problem.status >= 500) {
      state.log.error({ err: error, problem: problem.code }, 'request failed');
    }
    if (res.headersSent) {
      // Too late for a problem document: let Express end the connection.
      next(error);
      return;
    }
    sendProblem(res, problem);
  };
}
