/**
 * The retry policy, as data. An error matching a rule is transient: the message goes to a delay queue and comes
 * back. Anything else is permanent: the message is dead-lettered with its reason and an operator looks at it.
 *
 * The provider's own unavailability is not here: the worker reports it to the payout's machine, which spends one
 * of the payout's retries and schedules the next try as a command (or gives up with `retries_exhausted`). What is
 * left for the message is the trouble of carrying out a step at all:
 * - a conflict (a serialization failure, a payout that kept changing): each spends one of the message's tries;
 *   after the last one the message is dead-lettered and the payout marked as needing attention.
 * - our own infrastructure being away (the database unreachable, the pool exhausted, a provider call that stalled
 *   past every bound): these wait without spending tries, because failing a payout for our own outage would be
 *   wrong and nothing could be written anyway while the database is down. `MAX_INFRASTRUCTURE_WAITS` bounds even
 *   that.
 */
import { VersionMismatch } from '../domain/errors.js';
import {
  CONNECTION_ERROR_CODES,
  CONNECTION_LOST_MESSAGES,
  CONNECTION_LOST_NAMES,
  DATABASE_UNAVAILABLE_SQLSTATES,
} from '../database-errors.js';
import { PayoutKeptChanging, ProviderCallStalled } from './process-payout.js';

export interface TransientRule {
  /** The `reason` label of the retry metric and log line. */
  reason: string;
  /** Whether an occurrence spends one of the payout's retries (see above). */
  spendsAttempt: boolean;
  /** PostgreSQL SQLSTATEs. */
  sqlStates?: readonly string[];
  /** Node.js system error codes (`error.code`). */
  systemCodes?: readonly string[];
  /** Error class names (`error.name`), for errors of libraries we do not import. */
  names?: readonly string[];
  /** Error classes of our own. */
  classes?: ReadonlyArray<abstract new (...args: never[]) => Error>;
  /** Messages of errors that carry no code (node-postgres reports a dropped connection only in words). */
  messages?: readonly RegExp[];
}

export const TRANSIENT_ERRORS: readonly TransientRule[] = [
  // 57014 a statement cancelled by `statement_timeout`: before the outage rule below, which also lists it for the
  // API's 503. A statement that is always too slow (a missing index, a bug) must not wait forever for free: it
  // spends tries, and ends with a person.
  { reason: 'statement_timeout', spendsAttempt: true, sqlStates: ['57014'] },
  // 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available.
  { reason: 'database_conflict', spendsAttempt: true, sqlStates: ['40001', '40P01', '55P03'] },
  // Another writer kept winning the versioned UPDATE, even under the row lock.
  {
    reason: 'version_conflict',
    spendsAttempt: true,
    classes: [VersionMismatch, PayoutKeptChanging],
    messages: [/changed while locked/],
  },
  // Our own database or network away (src/persistence/db.ts keeps the one list, shared with the HTTP layer's 503).
  { reason: 'database_unavailable', spendsAttempt: false, sqlStates: DATABASE_UNAVAILABLE_SQLSTATES },
  { reason: 'connection_error', spendsAttempt: false, systemCodes: CONNECTION_ERROR_CODES },
  { reason: 'provider_call_stalled', spendsAttempt: false, classes: [ProviderCallStalled] },
  {
    reason: 'database_connection_lost',
    spendsAttempt: false,
    names: CONNECTION_LOST_NAMES,
    messages: CONNECTION_LOST_MESSAGES,
  },
];

/** After this many waits for our own infrastructure, further waits spend retries too: nothing retries forever. */
export const MAX_INFRASTRUCTURE_WAITS = 100;

export type ErrorVerdict = { transient: true; rule: TransientRule } | { transient: false; reason: string };

/** Classifies an error (and its `cause` chain) by the table above. */
export function classifyError(error: unknown): ErrorVerdict {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; depth += 1) {
    const rule = TRANSIENT_ERRORS.find((candidate) => matches(candidate, current as Error));
    if (rule) return { transient: true, rule };
    current = (current as Error & { cause?: unknown }).cause;
  }
  return { transient: false, reason: 'processing_error' };
}

function matches(rule: TransientRule, error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (rule.sqlStates?.includes(code) || rule.systemCodes?.includes(code)) return true;
  }
  if (rule.names?.includes(error.name)) return true;
  if (rule.classes?.some((type) => error instanceof type)) return true;
  return rule.messages?.some((pattern) => pattern.test(error.message)) ?? false;
}

export interface RetryDecision {
  /** `retry`: back to a delay queue; `exhaust`: the message's tries are spent, dead-letter it. */
  action: 'retry' | 'exhaust';
  attempt: number;
  waits: number;
  /** The delay tier to wait in, when retrying. */
  delayMs: number;
}

/**
 * What to do with a transient failure of a message that already spent `attempt` retries and waited `waits`
 * times. `retryDelaysMs[n]` is the wait before retry n+1; their count is the number of retries.
 */
export function decideRetry(
  rule: TransientRule,
  counters: { attempt: number; waits: number },
  retryDelaysMs: readonly number[],
): RetryDecision {
  const last = retryDelaysMs.length - 1;
  const spends = rule.spendsAttempt || counters.waits >= MAX_INFRASTRUCTURE_WAITS;
  if (spends) {
    if (counters.attempt > last)
      return { action: 'exhaust', attempt: counters.attempt, waits: counters.waits, delayMs: 0 };
    return {
      action: 'retry',
      attempt: counters.attempt + 1,
      waits: counters.waits,
      delayMs: retryDelaysMs[counters.attempt]!,
    };
  }
  // Waits climb the tiers too, so a long outage is polled ever more slowly, up to the longest tier.
  return {
    action: 'retry',
    attempt: counters.attempt,
    waits: counters.waits + 1,
    delayMs: retryDelaysMs[Math.min(counters.waits, last)]!,
  };
}
