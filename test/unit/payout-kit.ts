/**
 * Shared builders for the payout machine's unit tests: complete events of every type, a realistic snapshot in
 * every state of the definition, and a step helper that goes through the persisted form the way the runtime does
 * (decide → store `next.snapshot` → restore → decide again).
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type {
  PayoutCommand,
  PayoutContext,
  PayoutEvent,
  PayoutEventType,
  PayoutFailure,
  PayoutSnapshot,
  Role,
} from '../../src/machines/payout.machine.js';
import { RETRIES_EXHAUSTED } from '../../src/machines/payout.machine.js';
import type { Decision, PayoutLifecycle, PayoutState } from '../../src/machines/payout-lifecycle.js';
import { PAYOUT_MACHINE_VERSION } from '../../src/machines/payout-lifecycle.js';

export const ALL_ROLES: readonly Role[] = ['client', 'operator', 'worker', 'system'];

export const AT = '2026-12-01T10:00:00.000Z';
export const PROVIDER_REFUSAL: PayoutFailure = {
  code: 'provider_refused',
  message: 'Refused by the provider',
};

export function sender(role: Role) {
  return { role, id: `${role}-1` };
}

export interface EventOptions {
  /** For SUCCEED / FAIL / RETRY / CANCEL; `null` leaves the field out. */
  reason?: string | null;
  /** For the provider's results. */
  seq?: number;
  failure?: PayoutFailure;
  message?: string;
  code?: string;
}

/** A complete event of `type` from `role`, every field its type has filled in. */
export function eventOf(type: PayoutEventType, role: Role, options: EventOptions = {}): PayoutEvent {
  const by = sender(role);
  const reason = options.reason === undefined ? 'checked with the bank' : options.reason;
  const withReason = reason === null ? {} : { reason };
  const seq = options.seq ?? 0;
  switch (type) {
    case 'START':
      return { type, by };
    case 'CANCEL':
    case 'SUCCEED':
    case 'FAIL':
    case 'RETRY':
      return { type, by, ...withReason };
    case 'REDRIVE':
      return { type, by, at: AT };
    case 'DEAD_LETTERED':
      return {
        type,
        by,
        code: options.code ?? 'dead_lettered',
        message: options.message ?? 'Dead-lettered after 5 deliveries',
        at: AT,
      };
    case 'PROVIDER_SUCCEEDED':
    case 'PROVIDER_NOT_FOUND':
      return { type, by, seq };
    case 'PROVIDER_FAILED':
      return { type, by, seq, failure: options.failure ?? PROVIDER_REFUSAL };
    case 'PROVIDER_UNAVAILABLE':
      return { type, by, seq, message: options.message ?? 'provider timed out', at: AT };
    default: {
      const unknown: never = type;
      throw new Error(`no builder for event type ${String(unknown)}`);
    }
  }
}

/** Every leaf state of the definition, as `status` or `status.stage`, written out by hand. */
export const STATE_KEYS = [
  'created.queued',
  'created.needs_attention',
  'processing.submitting',
  'processing.needs_attention',
  'processing.voiding',
  'processing.confirming',
  'completed',
  'failed',
  'cancelled',
] as const;
export type StateKey = (typeof STATE_KEYS)[number];

const OPERATOR_REQUEST_SUCCEED = {
  action: 'succeed' as const,
  reason: 'confirmed paid by phone',
  by: sender('operator'),
};

function submit(seq: number): PayoutCommand {
  return { seq, type: 'submit', try: 1, delay_ms: 0 };
}

/**
 * A context a payout really has in each state: the one outstanding command of the type that state waits for
 * (numbered as a payout reaching it the shortest way would have it), none in the finals.
 */
export function contextFor(lifecycle: PayoutLifecycle, state: StateKey): PayoutContext {
  const base = lifecycle.initial().context;
  const lastError = { code: 'dead_lettered', message: 'Dead-lettered', at: AT };
  switch (state) {
    case 'created.queued':
      return base;
    case 'created.needs_attention':
      return { ...base, command: null, last_error: lastError };
    case 'processing.submitting':
      return { ...base, attempts: 1, commands: 2, command: submit(2) };
    case 'processing.needs_attention':
      return { ...base, attempts: 1, commands: 2, command: submit(2), last_error: lastError };
    case 'processing.voiding':
      return {
        ...base,
        attempts: 1,
        commands: 3,
        command: { seq: 3, type: 'void', try: 1, delay_ms: 0, failure: RETRIES_EXHAUSTED },
      };
    case 'processing.confirming':
      return {
        ...base,
        attempts: 1,
        commands: 3,
        command: { seq: 3, type: 'status', try: 1, delay_ms: 0 },
        request: OPERATOR_REQUEST_SUCCEED,
      };
    case 'completed':
    case 'cancelled':
      return { ...base, attempts: state === 'completed' ? 1 : 0, command: null };
    case 'failed':
      return { ...base, attempts: 1, command: null, failure: PROVIDER_REFUSAL };
  }
}

export function valueOf(state: StateKey) {
  const [status, stage] = state.split('.') as [string, string | undefined];
  return stage === undefined ? status : { [status]: stage };
}

/** A snapshot of the machine in `state`, with the context `contextFor` gives it. */
export function snapshotIn(lifecycle: PayoutLifecycle, state: StateKey): PayoutSnapshot {
  return lifecycle.machine.resolveState({ value: valueOf(state), context: contextFor(lifecycle, state) });
}

export function keyOf(state: Pick<PayoutState, 'status' | 'stage'>): string {
  return state.stage === null ? state.status : `${state.status}.${state.stage}`;
}

/** The outstanding command's number in a snapshot (0 when there is none: no result can match it). */
export function outstandingSeq(snapshot: PayoutSnapshot): number {
  return snapshot.context.command?.seq ?? 0;
}

export type Accepted = Extract<Decision, { accepted: true }>;

/** Decides and insists the event was accepted. */
export function accept(lifecycle: PayoutLifecycle, snapshot: PayoutSnapshot, event: PayoutEvent): Accepted {
  const decision = lifecycle.decide(snapshot, event);
  if (!decision.accepted) {
    expect.fail(`${event.type} from ${event.by.role} was refused (${decision.refusal})`);
  }
  return decision;
}

/** The next snapshot as the runtime gets it: stored, then restored. */
export function restoreNext(lifecycle: PayoutLifecycle, decision: Accepted): PayoutSnapshot {
  return lifecycle.restore(
    JSON.parse(JSON.stringify(decision.next.snapshot)) as Record<string, unknown>,
    PAYOUT_MACHINE_VERSION,
  );
}

/** A payout's story: each step decides one event on the stored result of the step before. */
export class Story {
  snapshot: PayoutSnapshot;
  last: Accepted | null = null;

  constructor(
    readonly lifecycle: PayoutLifecycle,
    from?: PayoutSnapshot,
  ) {
    this.snapshot = from ?? lifecycle.restore(lifecycle.initial().snapshot, PAYOUT_MACHINE_VERSION);
  }

  /** Applies an event that must be accepted; returns its decision. */
  step(type: PayoutEventType, role: Role, options: EventOptions = {}): Accepted {
    const decision = accept(this.lifecycle, this.snapshot, eventOf(type, role, options));
    this.snapshot = restoreNext(this.lifecycle, decision);
    this.last = decision;
    return decision;
  }

  /** A provider result for the outstanding command. */
  answer(
    type: 'PROVIDER_SUCCEEDED' | 'PROVIDER_FAILED' | 'PROVIDER_NOT_FOUND' | 'PROVIDER_UNAVAILABLE',
    options: EventOptions = {},
  ): Accepted {
    return this.step(type, 'worker', { seq: this.seq, ...options });
  }

  /** The refusal of an event, which must be refused; the story does not move. */
  refusal(type: PayoutEventType, role: Role, options: EventOptions = {}): string {
    const decision = this.lifecycle.decide(this.snapshot, eventOf(type, role, options));
    if (decision.accepted) expect.fail(`${type} from ${role} was accepted into ${keyOf(decision.next)}`);
    return decision.refusal;
  }

  get seq(): number {
    return outstandingSeq(this.snapshot);
  }

  get state(): string {
    return keyOf(this.lifecycle.stateOf(this.snapshot));
  }
}

export interface SnapshotFixture {
  machine_version: number;
  snapshot: Record<string, unknown>;
}

export function readFixture(name: string): SnapshotFixture {
  return JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as SnapshotFixture;
}
