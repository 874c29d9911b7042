/**
 * One base class for every failure the service reports on purpose. The HTTP layer renders any `AppError` as
 * RFC 9457 problem+json; anything else is an unexpected 500 that leaks nothing.
 */

export interface FieldError {
  /** JSON pointer into the request, e.g. `/body/amount`, `/query/limit`, `/header/if-match`. */
  pointer: string;
  message: string;
}

export interface AppErrorOptions {
  detail?: string;
  errors?: FieldError[];
  cause?: unknown;
  /** Extra members of the problem document, e.g. `available_actions`. */
  extensions?: Record<string, unknown>;
  /** Extra response headers, e.g. `Retry-After`. */
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[] | undefined;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(code: string, status: number, title: string, options: AppErrorOptions = {}) {
    super(options.detail ?? title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.title = title;
    this.detail = options.detail ?? title;
    this.errors = options.errors;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

export class ValidationFailed extends AppError {
  constructor(errors: FieldError[], detail = 'The request has invalid fields.') {
    super('validation_failed', 400, 'Validation failed', { detail, errors });
  }
}

export class BadRequest extends AppError {
  constructor(detail: string, cause?: unknown) {
    super('bad_request', 400, 'Bad request', { detail, cause });
  }
}

export class Unauthenticated extends AppError {
  constructor(detail = 'A valid API key is required: Authorization: Bearer <key>.') {
    super('unauthenticated', 401, 'Unauthenticated', {
      detail,
      headers: { 'WWW-Authenticate': 'Bearer realm="payouts"' },
    });
  }
}

export class Forbidden extends AppError {
  constructor(detail: string) {
    super('forbidden', 403, 'Forbidden', { detail });
  }
}

export class PayoutNotFound extends AppError {
  constructor(id: string) {
    super('payout_not_found', 404, 'Payout not found', { detail: `No payout ${id}.` });
  }
}

export class RouteNotFound extends AppError {
  constructor(path: string) {
    super('route_not_found', 404, 'Not found', { detail: `No route ${path}.` });
  }
}

export class MethodNotAllowed extends AppError {
  constructor(method: string, allowed: string[]) {
    super('method_not_allowed', 405, 'Method not allowed', {
      detail: `${method} is not allowed here; allowed: ${allowed.join(', ')}.`,
      headers: { Allow: allowed.join(', ') },
    });
  }
}

export class TransitionNotAllowed extends AppError {
  constructor(event: string, status: string, availableActions: string[]) {
    super('transition_not_allowed', 409, 'Transition not allowed', {
      detail: `A ${status} payout does not accept ${event}.`,
      // `payout_status`, not `status`: a problem document's `status` is its HTTP status code.
      extensions: { payout_status: status, available_actions: availableActions },
    });
  }
}

/** The provider's record of the money contradicts the requested change (an operator's hand resolution). */
export class ProviderDisagrees extends AppError {
  constructor(detail: string, status: string, availableActions: string[]) {
    super('provider_disagrees', 409, 'The provider disagrees', {
      detail,
      extensions: { payout_status: status, available_actions: availableActions },
    });
  }
}

export class PayoutNotDeletable extends AppError {
  constructor(status: string) {
    super('payout_not_deletable', 409, 'Payout cannot be deleted', {
      detail: `Only a created payout can be deleted; this one is ${status}.`,
      extensions: { payout_status: status },
    });
  }
}

export class IdempotencyKeyInFlight extends AppError {
  constructor() {
    super('idempotency_key_in_flight', 409, 'Request in progress', {
      detail: 'A request with this Idempotency-Key is still being processed; retry later.',
      headers: { 'Retry-After': '1' },
    });
  }
}

export class VersionMismatch extends AppError {
  constructor(expected: number, actual: number) {
    super('version_mismatch', 412, 'Precondition failed', {
      detail: `If-Match names version ${expected}, the payout is at version ${actual}.`,
      extensions: { current_version: actual },
    });
  }
}

export class PayloadTooLarge extends AppError {
  constructor(limit: string) {
    super('payload_too_large', 413, 'Payload too large', { detail: `The body exceeds ${limit}.` });
  }
}

export class UnsupportedMediaType extends AppError {
  constructor(contentType: string | undefined) {
    super('unsupported_media_type', 415, 'Unsupported media type', {
      detail: `Send application/json, not ${contentType ?? 'no content type'}.`,
    });
  }
}

export class IdempotencyKeyReused extends AppError {
  constructor() {
    super('idempotency_key_reused', 422, 'Idempotency key reused', {
      detail: 'This Idempotency-Key was used with a different request.',
    });
  }
}

export class ServiceUnavailable extends AppError {
  constructor(detail: string) {
    super('service_unavailable', 503, 'Service unavailable', { detail });
  }
}
