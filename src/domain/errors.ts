/**
 * One base class for every failure the domain reports on purpose. An error says what went wrong in the domain's
 * words — a stable `code`, a `title`, a `detail` sentence, the bad `fields` of the caller's input (by name), and
 * `facts` about the payout (its status, what the caller may do) — never how a transport shows it: src/http maps
 * codes to HTTP statuses and field names to JSON pointers.
 */

export interface FieldError {
  /** The field of the caller's input, as a dotted path: `amount`, `recipient.iban`, `limit`, `reason`. */
  field: string;
  message: string;
}

export interface DomainErrorOptions {
  detail?: string;
  fields?: FieldError[];
  cause?: unknown;
  /** Facts a caller can act on, e.g. `payout_status`, `available_actions`, `current_version`. */
  facts?: Record<string, unknown>;
  /** When trying again later can succeed: how long to wait, in seconds. */
  retryAfterSeconds?: number;
}

export class DomainError extends Error {
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly fields: FieldError[] | undefined;
  readonly facts: Record<string, unknown>;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: string, title: string, options: DomainErrorOptions = {}) {
    super(options.detail ?? title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.title = title;
    this.detail = options.detail ?? title;
    this.fields = options.fields;
    this.facts = options.facts ?? {};
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export class ValidationFailed extends DomainError {
  constructor(fields: FieldError[], detail = 'The request has invalid fields.') {
    super('validation_failed', 'Validation failed', { detail, fields });
  }
}

export class Unauthenticated extends DomainError {
  constructor(detail = 'A valid API key is required: Authorization: Bearer <key>.') {
    super('unauthenticated', 'Unauthenticated', { detail });
  }
}

/** Why a key of the right shape is refused. */
export const KEY_NOT_ACTIVE = 'The API key is unknown, revoked or expired.';

export class Forbidden extends DomainError {
  constructor(detail: string) {
    super('forbidden', 'Forbidden', { detail });
  }
}

export class PayoutNotFound extends DomainError {
  constructor(id: string) {
    super('payout_not_found', 'Payout not found', { detail: `No payout ${id}.` });
  }
}

export class TransitionNotAllowed extends DomainError {
  constructor(event: string, status: string, availableActions: string[]) {
    super('transition_not_allowed', 'Transition not allowed', {
      detail: `A ${status} payout does not accept ${event}.`,
      facts: { payout_status: status, available_actions: availableActions },
    });
  }
}

export class PayoutNotDeletable extends DomainError {
  constructor(status: string) {
    super('payout_not_deletable', 'Payout cannot be deleted', {
      detail: `Only a created payout can be deleted; this one is ${status}.`,
      facts: { payout_status: status },
    });
  }
}

/** The payout's description has changed as often as it may (`MAX_DESCRIPTION_CHANGES`): nothing is written. */
export class DescriptionChangesExhausted extends DomainError {
  constructor(limit: number) {
    super('description_changes_exhausted', 'Description changes exhausted', {
      detail: `The description of this payout has been changed ${limit} times, the most it may be.`,
      facts: { limit },
    });
  }
}

export class IdempotencyKeyInFlight extends DomainError {
  constructor() {
    super('idempotency_key_in_flight', 'Request in progress', {
      detail: 'A request with this Idempotency-Key is still being processed; retry later.',
      retryAfterSeconds: 1,
    });
  }
}

export class IdempotencyKeyReused extends DomainError {
  constructor() {
    super('idempotency_key_reused', 'Idempotency key reused', {
      detail: 'This Idempotency-Key was used with a different request.',
    });
  }
}

export class VersionMismatch extends DomainError {
  constructor(expected: number, actual: number) {
    super('version_mismatch', 'Precondition failed', {
      detail: `If-Match names version ${expected}, the payout is at version ${actual}.`,
      facts: { current_version: actual },
    });
  }
}

/** The store refused a value the checks let through (its own rule, e.g. an encoding): the request is bad. */
export class ValueRejected extends DomainError {
  constructor(cause: unknown) {
    super('bad_request', 'Bad request', { detail: 'A value in the request cannot be stored.', cause });
  }
}

/**
 * The store cannot be reached now, or did not answer in time: nothing was decided, trying again later can succeed
 * (HTTP says when: `Retry-After`).
 */
export class StoreUnavailable extends DomainError {
  /** A failover or a restart of the database takes seconds: a client's retry sooner than this would only be refused. */
  static readonly RETRY_AFTER_SECONDS = 5;

  constructor(cause: unknown) {
    super('service_unavailable', 'Service unavailable', {
      detail: 'The database is not reachable or did not answer in time; retry shortly.',
      cause,
      retryAfterSeconds: StoreUnavailable.RETRY_AFTER_SECONDS,
    });
  }
}

export class WebhookEndpointNotFound extends DomainError {
  constructor(id: string) {
    super('webhook_endpoint_not_found', 'Webhook endpoint not found', {
      detail: `No webhook endpoint ${id}.`,
    });
  }
}

export class WebhookDeliveryNotFound extends DomainError {
  constructor(id: string) {
    super('webhook_delivery_not_found', 'Webhook delivery not found', {
      detail: `No webhook delivery ${id}.`,
    });
  }
}

export class WebhookEndpointDisabled extends DomainError {
  constructor(id: string) {
    super('webhook_endpoint_disabled', 'Webhook endpoint disabled', {
      detail: `Webhook endpoint ${id} is disabled; enable it to send it events.`,
    });
  }
}
