/**
 * The payout lifecycle. Pure: no I/O, no timers, no invoked actors — the service persists the snapshot and
 * performs every effect itself, so a restored snapshot never re-runs anything.
 *
 *   created ──START──▶ processing ──SUCCEED──▶ completed
 *      │                   └─────────FAIL─────▶ failed
 *      └──CANCEL──▶ cancelled
 */
import { assign, createActor, initialTransition, setup, transition } from 'xstate';
import type { SnapshotFrom } from 'xstate';

/**
 * Stored beside every snapshot. Bump it when a change to the definition makes old snapshots mean something
 * else, and teach `restorePayoutSnapshot` to read the older versions.
 */
export const PAYOUT_MACHINE_VERSION = 1;

export const PAYOUT_STATUSES = ['created', 'processing', 'completed', 'failed', 'cancelled'] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];
export const FINAL_STATUSES: readonly PayoutStatus[] = ['completed', 'failed', 'cancelled'];

export interface PayoutFailure {
  code: string;
  message: string;
}

export type PayoutEvent =
  | { type: 'START' }
  | { type: 'SUCCEED' }
  | { type: 'FAIL'; code: string; message: string }
  | { type: 'CANCEL' };
export type PayoutEventType = PayoutEvent['type'];
export const PAYOUT_EVENT_TYPES: readonly PayoutEventType[] = ['START', 'SUCCEED', 'FAIL', 'CANCEL'];

export interface PayoutContext {
  failure: PayoutFailure | null;
}

export const payoutMachine = setup({
  types: {
    context: {} as PayoutContext,
    events: {} as PayoutEvent,
  },
  actions: {
    recordFailure: assign({
      failure: ({ event }) => (event.type === 'FAIL' ? { code: event.code, message: event.message } : null),
    }),
  },
}).createMachine({
  id: 'payout',
  initial: 'created',
  context: { failure: null },
  states: {
    created: {
      description: 'Accepted and stored; waiting for a worker.',
      on: { START: 'processing', CANCEL: 'cancelled' },
    },
    processing: {
      description: 'Submitted to the provider; waiting for its answer.',
      on: {
        SUCCEED: 'completed',
        FAIL: { target: 'failed', actions: 'recordFailure' },
      },
    },
    completed: { type: 'final', description: 'The money has left.' },
    failed: { type: 'final', description: 'The provider refused or every retry failed; see `failure`.' },
    cancelled: { type: 'final', description: 'Cancelled before processing started.' },
  },
});

export type PayoutSnapshot = SnapshotFrom<typeof payoutMachine>;

/** What is stored in `payouts.snapshot`: XState's persisted snapshot, plain JSON. */
export type PersistedPayoutSnapshot = Record<string, unknown>;

export function initialPayoutSnapshot(): PayoutSnapshot {
  return initialTransition(payoutMachine)[0];
}

/**
 * Rehydrates a stored snapshot. `transition()` cannot take the raw JSON, so an actor is created from it (and
 * never started: nothing runs) only to obtain a live snapshot.
 */
export function restorePayoutSnapshot(
  persisted: PersistedPayoutSnapshot,
  machineVersion: number,
): PayoutSnapshot {
  if (machineVersion !== PAYOUT_MACHINE_VERSION) {
    throw new Error(
      `payout snapshot of machine version ${machineVersion} cannot be read by version ${PAYOUT_MACHINE_VERSION}`,
    );
  }
  return createActor(payoutMachine, { snapshot: persisted as never }).getSnapshot();
}

export function persistPayoutSnapshot(snapshot: PayoutSnapshot): PersistedPayoutSnapshot {
  return payoutMachine.getPersistedSnapshot(snapshot);
}

export function statusOf(snapshot: PayoutSnapshot): PayoutStatus {
  return snapshot.value;
}

/** The next snapshot, or null when the current state does not accept the event. */
export function nextPayoutSnapshot(snapshot: PayoutSnapshot, event: PayoutEvent): PayoutSnapshot | null {
  if (!snapshot.can(event)) return null;
  return transition(payoutMachine, snapshot, event)[0];
}

/** The event types the snapshot's state accepts (whoever sends them). */
export function acceptedEvents(snapshot: PayoutSnapshot): PayoutEventType[] {
  return PAYOUT_EVENT_TYPES.filter((type) => snapshot.can(sampleEvent(type)));
}

/** A representative event of each type, for `can()` questions that do not depend on the payload. */
export function sampleEvent(type: PayoutEventType): PayoutEvent {
  return type === 'FAIL' ? { type, code: 'sample', message: 'sample' } : { type };
}

export interface PayoutTransition {
  from: PayoutStatus;
  event: PayoutEventType;
  to: PayoutStatus;
}

/** Every transition of the definition, read from its config: what the service and the tests derive from. */
export const PAYOUT_TRANSITIONS: readonly PayoutTransition[] = Object.entries(
  payoutMachine.config.states as Record<string, { on?: Record<string, string | { target: string }> }>,
).flatMap(([from, state]) =>
  Object.entries(state.on ?? {}).map(([event, target]) => ({
    from: from as PayoutStatus,
    event: event as PayoutEventType,
    to: (typeof target === 'string' ? target : target.target) as PayoutStatus,
  })),
);

// A PATCH names a status and the service turns it into the one event leading there; the worker's events map
// back to statuses the same way. Both need the mapping to be one-to-one: a definition that breaks it fails here.
const EVENT_INTO = new Map<PayoutStatus, PayoutEventType>();
const STATUS_AFTER = new Map<PayoutEventType, PayoutStatus>();
for (const { event, to } of PAYOUT_TRANSITIONS) {
  if ((EVENT_INTO.get(to) ?? event) !== event || (STATUS_AFTER.get(event) ?? to) !== to) {
    throw new Error(`payout machine: ${event} → ${to} makes the status ↔ event mapping ambiguous`);
  }
  EVENT_INTO.set(to, event);
  STATUS_AFTER.set(event, to);
}

/** The event that moves a payout into `status`, or undefined when none does (`created`). */
export function eventInto(status: PayoutStatus): PayoutEventType | undefined {
  return EVENT_INTO.get(status);
}

/** The status an event leads to. */
export function statusAfter(event: PayoutEventType): PayoutStatus {
  const status = STATUS_AFTER.get(event);
  if (status === undefined) throw new Error(`payout machine has no transition on ${event}`);
  return status;
}
