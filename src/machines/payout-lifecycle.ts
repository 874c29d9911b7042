/**
 * The pure decision around the payout machine: restore a stored snapshot (upgrading older machine versions),
 * `decide(snapshot, event)` → the next snapshot and its effects, or why the event is refused; and what a role may
 * do next. Everything here is read off the machine's definition: statuses, stages, who may ever send what.
 * No I/O: the payout service stores what `decide` returns.
 */
import { createActor, initialTransition } from 'xstate';
import type { ActorScope, AnyEventObject, StateValue } from 'xstate';
import type {
  PayoutCommand,
  PayoutContext,
  PayoutEffect,
  PayoutEvent,
  PayoutEventType,
  PayoutFailure,
  PayoutMachine,
  PayoutPolicy,
  PayoutSnapshot,
  ResolutionRequest,
  Role,
} from './payout.machine.js';
import { DEFAULT_PAYOUT_POLICY, ROLES, createPayoutMachine } from './payout.machine.js';

/**
 * Stored beside every snapshot. Bump it when a change to the definition makes old snapshots mean something
 * else, and teach `upgradeSnapshot` to read the older versions.
 *
 * - 1: five flat states, no guards, context `{ failure }`.
 * - 2: stages as child states, commands, role guards, retry and re-drive counters.
 */
export const PAYOUT_MACHINE_VERSION = 2;

/** What is stored in `payouts.snapshot`: XState's persisted snapshot, plain JSON. */
export type PersistedPayoutSnapshot = Record<string, unknown>;

const DEFINITION = createPayoutMachine(DEFAULT_PAYOUT_POLICY);
type StatesConfig = Record<string, { type?: string; states?: StatesConfig; on?: Record<string, unknown> }>;
const TOP_STATES = DEFINITION.config.states as StatesConfig;

/** The public statuses: the machine's top-level states. */
export type PayoutStatus = 'created' | 'processing' | 'completed' | 'failed' | 'cancelled';
export const PAYOUT_STATUSES = Object.keys(TOP_STATES) as PayoutStatus[];
export const FINAL_STATUSES = PAYOUT_STATUSES.filter((status) => TOP_STATES[status]!.type === 'final');
export const UNFINISHED_STATUSES = PAYOUT_STATUSES.filter((status) => !FINAL_STATUSES.includes(status));

/** The stages: the child states of the unfinished statuses (a final payout has no stage). */
export type PayoutStage = 'queued' | 'needs_attention' | 'submitting' | 'voiding' | 'confirming';
export const PAYOUT_STAGES = [
  ...new Set(UNFINISHED_STATUSES.flatMap((status) => Object.keys(TOP_STATES[status]!.states ?? {}))),
] as PayoutStage[];
/** Every position a payout can be in: each final status alone, each unfinished status with each of its stages. */
export const PAYOUT_POSITIONS: ReadonlyArray<{ status: PayoutStatus; stage: PayoutStage | null }> =
  PAYOUT_STATUSES.flatMap((status) =>
    FINAL_STATUSES.includes(status)
      ? [{ status, stage: null }]
      : Object.keys(TOP_STATES[status]!.states ?? {}).map((stage) => ({
          status,
          stage: stage as PayoutStage | null,
        })),
  );
/** The stage in which a payout waits for a person: the sweeper leaves it alone, a gauge and an alert show it. */
export const ATTENTION_STAGE: PayoutStage = 'needs_attention';

/**
 * The final statuses the provider's answers lead to (where a processing payout ends): what a payout's processing
 * time is measured to. Read off the transitions of the provider's events.
 */
export const PROVIDER_OUTCOMES: readonly PayoutStatus[] = [
  ...new Set(
    allTransitions(TOP_STATES)
      .filter(({ event }) => event.startsWith('PROVIDER_'))
      .map(({ target }) => target?.replace(/^#payout\./, '') as PayoutStatus)
      .filter((target) => FINAL_STATUSES.includes(target)),
  ),
];

/**
 * The event a request for a status sends (a PATCH's `status`): the one event that leads into that final status
 * from a state an API caller acts on. `completed` and `failed` are requests: the provider has the last word, and
 * the machine decides when they are carried out. No event asks for an unfinished status.
 */
const REQUESTED_STATUS_EVENTS: Partial<Record<PayoutStatus, PayoutEventType>> = {
  cancelled: 'CANCEL',
  completed: 'SUCCEED',
  failed: 'FAIL',
};

export function eventRequesting(status: PayoutStatus): 'CANCEL' | 'SUCCEED' | 'FAIL' | undefined {
  return REQUESTED_STATUS_EVENTS[status] as 'CANCEL' | 'SUCCEED' | 'FAIL' | undefined;
}

/** An action as it appears in `available_actions`: the event's name in lower case. */
export type PayoutAction = 'cancel' | 'succeed' | 'fail' | 'retry';
/** The events that API callers send, by the action they appear as. */
const ACTION_EVENTS: Readonly<Record<PayoutAction, PayoutEventType>> = {
  cancel: 'CANCEL',
  succeed: 'SUCCEED',
  fail: 'FAIL',
  retry: 'RETRY',
};
export const PAYOUT_ACTIONS = Object.keys(ACTION_EVENTS) as PayoutAction[];

/** Every event type of the definition, read off its transitions. */
export const PAYOUT_EVENT_TYPES: readonly PayoutEventType[] = [
  ...new Set(allTransitions(TOP_STATES).map(({ event }) => event)),
];

/**
 * The role rules as the definition states them: for each event, the roles some state lets send it (from the
 * `sentBy` guards). A role outside that set may never send the event (403); inside it, a refusal is about the
 * payout's state (409).
 */
const MAY_EVER_SEND: ReadonlyMap<PayoutEventType, ReadonlySet<Role>> = (() => {
  const senders = new Map<PayoutEventType, Set<Role>>();
  for (const { event, guard } of allTransitions(TOP_STATES)) {
    const roles = senders.get(event) ?? new Set<Role>();
    for (const role of sentByRoles(guard)) roles.add(role);
    senders.set(event, roles);
  }
  return senders;
})();

export function mayEverSend(role: Role, type: PayoutEventType): boolean {
  return MAY_EVER_SEND.get(type)?.has(role) ?? false;
}

/** Events that every state accepting them guards with `hasReason`: without a reason they are a bad request. */
const NEEDS_REASON: ReadonlySet<PayoutEventType> = (() => {
  const guarded = new Map<PayoutEventType, boolean>();
  for (const { event, guard } of allTransitions(TOP_STATES)) {
    guarded.set(event, (guarded.get(event) ?? true) && guardNames(guard).includes('hasReason'));
  }
  return new Set([...guarded].filter(([, always]) => always).map(([event]) => event));
})();

/** A payout's lifecycle position, as stored beside the snapshot. */
export interface PayoutState {
  status: PayoutStatus;
  stage: PayoutStage | null;
  snapshot: PersistedPayoutSnapshot;
  context: PayoutContext;
}

/** Why an event is refused: never this role's (403), a missing reason (400), or not in this state (409). */
export type Refusal = 'forbidden' | 'reason_required' | 'not_now';

export type Decision =
  | {
      accepted: true;
      next: PayoutState;
      /** Commands to store with the next snapshot (the outbox rows), in order. */
      commands: PayoutCommand[];
      /** The command this change answered or abandoned: its waiting messages are obsolete. */
      settled: number | null;
      /** The provider's answer contradicted an operator's request. */
      overruled: { requested: ResolutionRequest['action']; outcome: PayoutStatus } | null;
      /** What the payout's client is told of this change (a webhook event), or null for a change within a stage. */
      notification: PayoutNotification | null;
    }
  | { accepted: false; refusal: Refusal };

/**
 * A change the payout's client is told of: the payout entered a status, or entered the stage `needs_attention`. No
 * transition of the machine does both (every way into `needs_attention` starts inside the same status).
 */
export type PayoutNotification = PayoutStatus | 'needs_attention';

/** The notification of a move from `before` to `after`: a status entered first, else `needs_attention` entered. */
export function notificationOf(
  before: Pick<PayoutState, 'status' | 'stage'> | null,
  after: Pick<PayoutState, 'status' | 'stage'>,
): PayoutNotification | null {
  if (before === null || before.status !== after.status) return after.status;
  if (after.stage === ATTENTION_STAGE && before.stage !== ATTENTION_STAGE) return 'needs_attention';
  return null;
}

/** The machine of one policy, and the pure functions around it. */
export class PayoutLifecycle {
  readonly machine: PayoutMachine;
  private readonly initialState: PayoutState;
  private readonly scope: InertScope;
  private readonly actionsByState = new Map<string, PayoutAction[]>();

  constructor(readonly policy: PayoutPolicy = DEFAULT_PAYOUT_POLICY) {
    this.machine = createPayoutMachine(policy);
    this.scope = inertScope(this.machine);
    this.initialState = this.stateOf(initialTransition(this.machine)[0]);
  }

  /** Where every payout starts; its context's command is the create's processing message. */
  initial(): PayoutState {
    return this.initialState;
  }

  /**
   * The outstanding command of a stored snapshot, read without rehydrating it (the worker asks before every
   * step); older versions are upgraded first.
   */
  commandOf(persisted: PersistedPayoutSnapshot, machineVersion: number): PayoutCommand | null {
    if (machineVersion === PAYOUT_MACHINE_VERSION) {
      return (persisted.context as PayoutContext | undefined)?.command ?? null;
    }
    return this.restore(persisted, machineVersion).context.command;
  }

  /** Rehydrates a stored snapshot (never started: nothing runs), upgrading older versions. */
  restore(persisted: PersistedPayoutSnapshot, machineVersion: number): PayoutSnapshot {
    if (machineVersion === PAYOUT_MACHINE_VERSION) return this.scope.restore(persisted);
    if (machineVersion === 1) {
      const { value, context } = upgradeV1(persisted);
      return this.machine.resolveState({ value, context });
    }
    throw new Error(
      `payout snapshot of machine version ${machineVersion} cannot be read by version ${PAYOUT_MACHINE_VERSION}`,
    );
  }

  /** The lifecycle position of a snapshot, as stored. */
  stateOf(snapshot: PayoutSnapshot): PayoutState {
    const [status, stage] = pathOf(snapshot);
    return {
      status,
      stage,
      snapshot: this.machine.getPersistedSnapshot(snapshot),
      context: snapshot.context,
    };
  }

  /**
   * The machine's decision on one event: the next state with the commands it needs, or the refusal. Pure: the
   * snapshot given is not changed.
   */
  decide(snapshot: PayoutSnapshot, event: PayoutEvent): Decision {
    if (!snapshot.can(event)) return { accepted: false, refusal: diagnose(event) };
    const [next, actions] = this.scope.transition(snapshot, event);
    const commands = actions.flatMap((action) => {
      const effect = (action.params as { event?: PayoutEffect } | undefined)?.event;
      return action.type === 'xstate.emit' && effect?.type === 'command' ? [effect.command] : [];
    });
    const before = snapshot.context;
    const after = next.context;
    const settled =
      before.command !== null && after.command?.seq !== before.command.seq ? before.command.seq : null;
    const state = this.stateOf(next);
    const requested = before.request?.action;
    const outcome = FINAL_STATUSES.includes(state.status) ? state.status : null;
    const overruled =
      requested !== undefined && outcome !== null && (requested === 'succeed') !== (outcome === 'completed')
        ? { requested, outcome }
        : null;
    const [status, stage] = pathOf(snapshot);
    const notification = notificationOf({ status, stage }, state);
    return { accepted: true, next: state, commands, settled, overruled, notification };
  }

  /**
   * What `role` may do next with a payout in this status and stage: the API-facing events the machine would
   * accept from it. The guards of those events read the state and the event only (never the counters), so the
   * answer is asked once per (state, role), of the state resolved with the initial context, and remembered.
   */
  actionsFor(status: PayoutStatus, stage: PayoutStage | null, role: Role): PayoutAction[] {
    const key = `${status}.${stage ?? ''}:${role}`;
    let actions = this.actionsByState.get(key);
    if (!actions) {
      const snapshot = this.machine.resolveState({
        value: stage === null ? status : { [status]: stage },
        context: this.initialState.context,
      });
      actions = PAYOUT_ACTIONS.filter((action) => snapshot.can(sampleEvent(ACTION_EVENTS[action], role)));
      this.actionsByState.set(key, actions);
    }
    return actions;
  }

  /** Whether the machine would accept `type` from `role` now (a sample event: a reason, no payload). */
  accepts(snapshot: PayoutSnapshot, type: PayoutEventType, role: Role): boolean {
    return snapshot.can(sampleEvent(type, role));
  }
}

/**
 * Why the machine refuses an event: the role may never send it (whatever the state); it always needs a reason
 * and has none; or this state does not accept it now.
 */
function diagnose(event: PayoutEvent): Refusal {
  if (!mayEverSend(event.by.role, event.type)) return 'forbidden';
  const reason = 'reason' in event ? event.reason : undefined;
  if ((reason === undefined || reason.trim() === '') && NEEDS_REASON.has(event.type))
    return 'reason_required';
  return 'not_now';
}

interface InertScope {
  restore(persisted: PersistedPayoutSnapshot): PayoutSnapshot;
  transition(
    snapshot: PayoutSnapshot,
    event: PayoutEvent,
  ): [PayoutSnapshot, Array<{ type: string; params?: unknown }>];
}

/**
 * xstate's pure `transition(machine, snapshot, event)` and its rehydration (`createActor(machine, { snapshot })`
 * then `getSnapshot()`), with one inert actor scope for every call. Both build a throwaway actor (and its system)
 * per call — `transition()` to collect the actions, `createActor` to restore through it — most of a decision's
 * cost. The payout machine spawns nothing and runs no action itself, so the scope holds no state between calls:
 * the collected actions are taken out after each one, and a restore (which uses the scope only for children) has
 * none to make. Pinned by test/unit/payout-transition.test.ts, which holds both equal to xstate's own for every
 * state and event: a new xstate that changes the scope's contract fails there.
 */
function inertScope(machine: PayoutMachine): InertScope {
  let collected: Array<{ type: string; params?: unknown }> = [];
  const self = createActor(machine);
  const scope = {
    self,
    defer: () => undefined,
    id: '',
    logger: () => undefined,
    sessionId: '',
    stopChild: () => undefined,
    system: self.system,
    emit: () => undefined,
    actionExecutor: (action: { type: string; params?: unknown }) => {
      collected.push(action);
    },
  } as unknown as ActorScope<PayoutSnapshot, AnyEventObject>;
  return {
    restore(persisted) {
      return machine.restoreSnapshot(persisted as never, scope as never);
    },
    transition(snapshot, event) {
      collected = [];
      const next = machine.transition(snapshot, event, scope as never);
      return [next, collected];
    },
  };
}

/** The status (top-level state) and stage (child state) of a snapshot. */
function pathOf(snapshot: PayoutSnapshot): [PayoutStatus, PayoutStage | null] {
  const value = snapshot.value as string | Record<string, string>;
  if (typeof value === 'string') return [value as PayoutStatus, null];
  const [status, stage] = Object.entries(value)[0]!;
  return [status as PayoutStatus, stage as PayoutStage];
}

function sampleEvent(type: PayoutEventType, role: Role): PayoutEvent {
  return { type, by: { role, id: 'sample' }, reason: 'sample' } as PayoutEvent;
}

/**
 * A version-1 snapshot in version 2's terms. Version 1 had no commands: a payout in `processing` had its submit
 * in flight under the payout's own provider key, so it becomes `processing.submitting` with that submit as its
 * outstanding command (number 1, the number a v1 message stands for); a `created` one waits for its message.
 */
export function upgradeV1(persisted: PersistedPayoutSnapshot): { value: StateValue; context: PayoutContext } {
  const status = persisted.value as PayoutStatus;
  const failure = (persisted.context as { failure?: PayoutFailure | null } | undefined)?.failure ?? null;
  const base: PayoutContext = {
    failure,
    attempts: 0,
    redrives: 0,
    commands: 1,
    command: null,
    request: null,
    last_error: null,
  };
  switch (status) {
    case 'created':
      return {
        value: { created: 'queued' },
        context: { ...base, command: { seq: 1, type: 'process', try: 1, delay_ms: 0 } },
      };
    case 'processing':
      return {
        value: { processing: 'submitting' },
        context: { ...base, attempts: 1, command: { seq: 1, type: 'submit', try: 1, delay_ms: 0 } },
      };
    case 'completed':
    case 'failed':
    case 'cancelled':
      return { value: status, context: base };
    default:
      throw new Error(`payout snapshot of machine version 1 has unknown state ${String(status)}`);
  }
}

interface TransitionConfig {
  event: PayoutEventType;
  guard: unknown;
  target: string | undefined;
}

function allTransitions(states: StatesConfig): TransitionConfig[] {
  return Object.values(states).flatMap((state) => [
    ...Object.entries(state.on ?? {}).flatMap(([event, config]) =>
      (Array.isArray(config) ? config : [config]).map((transitionConfig: unknown) => ({
        event: event as PayoutEventType,
        guard: (transitionConfig as { guard?: unknown }).guard,
        target: (transitionConfig as { target?: string }).target,
      })),
    ),
    ...allTransitions(state.states ?? {}),
  ]);
}

/** The names of the guards a transition's guard combines (a named guard, or those inside `and`). */
function guardNames(guard: unknown): string[] {
  if (!guard) return [];
  if (typeof guard === 'string') return [guard];
  if (typeof guard === 'function' && Array.isArray((guard as { guards?: unknown }).guards)) {
    return (guard as unknown as { guards: unknown[] }).guards.flatMap(guardNames);
  }
  const type = (guard as { type?: unknown }).type;
  return typeof type === 'string' ? [type] : [];
}

/** The roles of the `sentBy` guard in a transition's guard (alone or inside `and`). */
function sentByRoles(guard: unknown): Role[] {
  if (!guard) return [];
  if (typeof guard === 'function' && Array.isArray((guard as { guards?: unknown }).guards)) {
    return (guard as unknown as { guards: unknown[] }).guards.flatMap(sentByRoles);
  }
  const named = guard as { type?: string; params?: { roles?: Role[] } };
  return named.type === 'sentBy' ? [...(named.params?.roles ?? [])] : [];
}

export { ROLES };
