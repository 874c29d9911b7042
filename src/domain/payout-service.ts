/**
 * The payout service: load → decide → store. The HTTP handlers, the worker, the sweeper and the commands call these
 * functions; none of them touches the store or the machine directly. Every function takes the principal; the
 * machine (src/machines) decides every change and every effect; the store (a port) writes each change as one
 * unit: the new snapshot under its version check, its history row and the commands it issued.
 */
import { v7 as uuidv7 } from 'uuid';
import type { PayoutEvent } from '../machines/payout.machine.js';
import type { PayoutNotification, PayoutStatus, Refusal } from '../machines/payout-lifecycle.js';
import {
  FINAL_STATUSES,
  PAYOUT_MACHINE_VERSION,
  PROVIDER_OUTCOMES,
  PayoutLifecycle,
  eventRequesting,
} from '../machines/payout-lifecycle.js';
import type { Metrics } from '../metrics.js';
import { zeroed } from '../metrics.js';
import type { CurrencyTable } from './currency.js';
import type { FieldError } from './errors.js';
import {
  DescriptionChangesExhausted,
  DomainError,
  Forbidden,
  IdempotencyKeyInFlight,
  IdempotencyKeyReused,
  KEY_NOT_ACTIVE,
  PayoutNotDeletable,
  PayoutNotFound,
  TransitionNotAllowed,
  Unauthenticated,
  ValidationFailed,
  VersionMismatch,
} from './errors.js';
import type { Payout, PayoutHistoryEntry, PayoutSummary } from './payout.js';
import { availableActions } from './payout.js';
import type { CreatePayoutInput } from './payout-request.js';
import { checkCreate, checkReason, createProblems, fingerprint, normaliseNote } from './payout-request.js';
import type {
  OutboxWaker,
  PayoutListFilter,
  PayoutListPage,
  PayoutRead,
  PayoutStore,
  ProcessingScheduler,
  RenderedPayout,
  ScheduledMessage,
  VersionedChange,
} from './ports.js';
import { MAX_PAGE_SIZE } from './ports.js';
import type { Principal } from './principal.js';
import { roleSeesDeleted, senderOf } from './principal.js';
import { isCanonicalUuid, isStorable } from './text.js';

export type { CreatePayoutInput } from './payout-request.js';

export interface CallContext {
  /** The request id of the HTTP call or the message that caused this change. */
  requestId: string | null;
}

/** How the caller's transport answers a create: stored with it, so that a replay answers exactly the same. */
export interface CreateAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface CreateContext extends CallContext {
  idempotencyKey?: string;
  /** The answer to store under the idempotency key, made from the payout as created. */
  answer: (payout: Payout) => CreateAnswer;
}

export type CreateResult =
  { replayed: false; payout: Payout; answer: CreateAnswer } | { replayed: true; answer: CreateAnswer };

export interface ChangeOptions extends CallContext {
  /** The version the caller last saw (`If-Match`): a different current version is refused, never overwritten. */
  expectedVersion?: number;
  /** Why: required of operators resolving or retrying a payout by hand, recorded in the history. */
  reason?: string;
  /** The payout as the caller last saw it: used instead of a first read (a stale one only costs a retry). */
  current?: Payout;
  /**
   * The caller carries out the commands this change issues itself (the worker): their messages are held back for
   * it, and published only should it die before answering them.
   */
  carriesOutCommands?: boolean;
}

/** A machine event as a caller sends it: the service adds who sends it (the principal). */
export type EventInput = PayoutEvent extends infer E
  ? E extends PayoutEvent
    ? Omit<E, 'by'>
    : never
  : never;

export interface PayoutChangeRequest {
  /** A requested status is a request for the machine event that leads there (`eventRequesting`). */
  status?: PayoutStatus;
  description?: string | null;
}

export interface PayoutChangeResult {
  payout: Payout;
  /**
   * True when the change is a request the worker still has to carry out against the provider (an operator's
   * request to fail or complete a payout in flight, or to retry one).
   */
  accepted: boolean;
}

/** A list request: the store's filter, checked by the service first. */
export type ListPayoutsQuery = PayoutListFilter;

export interface PayoutPage {
  items: PayoutSummary[];
  /** The position to ask the next page after, or null on the last page. */
  next: string | null;
}

/** A page of payouts as the API shows them: each one's `PayoutResource` as JSON text. */
export interface PayoutResourceList {
  resources: string[];
  /** The position to ask the next page after, or null on the last page. */
  next: string | null;
}

/** A request for a page of a payout's history: its size, and the position to start after. */
export interface ListEventsQuery {
  limit: number;
  /** The `next` of the previous page. */
  after?: string;
}

/** A page of a payout's history, oldest first. */
export interface PayoutEventPage {
  items: PayoutHistoryEntry[];
  /** The position to ask the next page after, or null on the last page. */
  next: string | null;
}

interface Wanted {
  event?: PayoutEvent;
  description?: string | null;
  deleted?: boolean;
}

interface Prepared {
  change: VersionedChange;
  transition: { from: PayoutStatus; to: PayoutStatus; event: string } | undefined;
}

/** Up to this many optimistic tries before a change asks the store to hold the payout and decides once more. */
const OPTIMISTIC_TRIES = 3;

/** How long the worker's own commands are held back from relays by default (`COMMAND_LEASE_MS`). */
const DEFAULT_COMMAND_LEASE_MS = 60_000;

/** The history event of a description change (one that is not part of a machine event). */
const DESCRIBE = 'DESCRIBE';

/** The `outcome` label of `payouts_idempotency_total`: a create with a key is one of these. */
const IDEMPOTENCY_OUTCOMES = ['new', 'replayed', 'mismatch', 'in_flight'] as const;

/** Description changes one payout may have by default (`MAX_DESCRIPTION_CHANGES`). */
const DEFAULT_MAX_DESCRIPTION_CHANGES = 100;

export interface PayoutServiceDeps {
  store: PayoutStore;
  currencies: CurrencyTable;
  scheduler: ProcessingScheduler;
  waker?: OutboxWaker;
  metrics?: Metrics;
  idempotencyTtlHours?: number;
  /** The machine and its policy (retry schedule, re-drive bound); the default policy when absent. */
  lifecycle?: PayoutLifecycle;
  /** How long relays leave alone a command the worker carries out itself (`COMMAND_LEASE_MS`). */
  commandLeaseMs?: number;
  /** Description changes one payout may have (`MAX_DESCRIPTION_CHANGES`); the next one is refused. */
  maxDescriptionChanges?: number;
}

export class PayoutService {
  readonly lifecycle: PayoutLifecycle;
  private readonly store: PayoutStore;
  private readonly idempotencyTtlHours: number;
  private readonly commandLeaseMs: number;
  private readonly maxDescriptionChanges: number;

  constructor(private readonly deps: PayoutServiceDeps) {
    this.store = deps.store;
    this.idempotencyTtlHours = deps.idempotencyTtlHours ?? 24;
    this.lifecycle = deps.lifecycle ?? new PayoutLifecycle();
    this.commandLeaseMs = deps.commandLeaseMs ?? DEFAULT_COMMAND_LEASE_MS;
    this.maxDescriptionChanges = deps.maxDescriptionChanges ?? DEFAULT_MAX_DESCRIPTION_CHANGES;
    if (deps.metrics) {
      // Every accepted currency and idempotency outcome is scraped from the start, at 0 until it happens.
      zeroed(
        deps.metrics.payoutsCreated,
        [...deps.currencies.keys()].map((currency) => ({ currency })),
      );
      zeroed(
        deps.metrics.idempotencyReplays,
        IDEMPOTENCY_OUTCOMES.map((outcome) => ({ outcome })),
      );
    }
  }

  /**
   * Validates and stores a new payout, its first history row and its processing message as one unit. With an
   * idempotency key, the key and the answer are stored with them; a replay returns the stored answer, a different
   * request under the same key is refused.
   */
  async createPayout(
    principal: Principal,
    input: CreatePayoutInput,
    context: CreateContext,
  ): Promise<CreateResult> {
    const fields = checkCreate(input, this.deps.currencies);
    const key = context.idempotencyKey;
    const requestHash = key === undefined ? '' : fingerprint(input);
    // The common case, a new key, costs no read: the outcome is stored with the payout, and only when a live
    // outcome is already there is nothing written and the answer read from that outcome (a replay).
    for (let attempt = 1; ; attempt += 1) {
      const initial = this.lifecycle.initial();
      const now = new Date();
      const payout: Payout = {
        id: uuidv7(),
        clientId: principal.clientId,
        amount: fields.amount,
        recipient: fields.recipient,
        status: initial.status,
        stage: initial.stage,
        snapshot: initial.snapshot,
        machineVersion: PAYOUT_MACHINE_VERSION,
        version: 1,
        description: fields.description,
        failure: null,
        // The answer is made before the write, so the stored outcome is exactly what is answered: the payout is
        // dated by this clock.
        createdAt: now,
        updatedAt: now,
      };
      const answer = context.answer(payout);
      const outcome = await this.store.create(
        payout,
        {
          event: 'CREATE',
          actor: principal.actor,
          actorRole: principal.role,
          reason: null,
          requestId: context.requestId,
        },
        // A new payout's first command is its processing message (the machine's initial context holds it).
        this.deps.scheduler.messageFor({
          payoutId: payout.id,
          clientId: payout.clientId,
          requestId: context.requestId,
          command: initial.context.command!,
        }),
        key === undefined
          ? null
          : {
              key,
              requestHash,
              status: answer.status,
              body: answer.body,
              ttlHours: this.idempotencyTtlHours,
            },
        { eventId: newEventId(), type: webhookEventType(initial.status) },
        principal.proof,
      );
      if (outcome === 'unauthenticated') throw new Unauthenticated(KEY_NOT_ACTIVE);
      if (outcome === 'created') {
        if (key !== undefined) this.deps.metrics?.idempotencyReplays.inc({ outcome: 'new' });
        this.deps.waker?.wake();
        this.deps.metrics?.payoutsCreated.inc({ currency: payout.amount.currency });
        return { replayed: false, payout, answer };
      }
      if (outcome === 'in_flight') {
        this.deps.metrics?.idempotencyReplays.inc({ outcome: 'in_flight' });
        throw new IdempotencyKeyInFlight();
      }
      // Only a key can make the store write nothing without an error.
      if (key === undefined) throw new Error('a create without an idempotency key was not written');
      const stored = await this.store.findOutcome(principal.clientId, key, this.idempotencyTtlHours);
      // Gone between the two steps: it expired and was swept. The key is free again; try once more.
      if (!stored && attempt === 1) continue;
      if (!stored) throw new IdempotencyKeyInFlight();
      if (stored.requestHash !== requestHash) {
        this.deps.metrics?.idempotencyReplays.inc({ outcome: 'mismatch' });
        throw new IdempotencyKeyReused();
      }
      this.deps.metrics?.idempotencyReplays.inc({ outcome: 'replayed' });
      return { replayed: true, answer: { status: stored.status, body: stored.body } };
    }
  }

  /** The field errors of a create request, storing nothing: so that one answer names every bad field. */
  createPayoutProblems(input: CreatePayoutInput): FieldError[] {
    return createProblems(input, this.deps.currencies);
  }

  /** One payout of the principal's client, as the principal may see it (see `roleSeesDeleted`). */
  async getPayout(principal: Principal, id: string): Promise<Payout> {
    assertPayoutId(id);
    const payout = await this.store.find(readOf(principal, id));
    if (!payout) throw new PayoutNotFound(id);
    return payout;
  }

  /** `getPayout`, as the API shows it to the principal: its `PayoutResource` as JSON text, and its version. */
  async getPayoutResource(principal: Principal, id: string): Promise<RenderedPayout> {
    assertPayoutId(id);
    const rendered = await this.store.findResource(readOf(principal, id), principal.role);
    if (!rendered) throw new PayoutNotFound(id);
    return rendered;
  }

  /** A page of the principal's payouts, newest first. */
  async listPayouts(principal: Principal, query: ListPayoutsQuery): Promise<PayoutPage> {
    this.checkListQuery(query);
    const page: PayoutListPage = await this.store.list(principal.clientId, query, principal.proof);
    return { items: page.payouts, next: page.hasMore ? page.last : null };
  }

  /** The same page, each payout as the API shows it to the principal: its `PayoutResource` as JSON text. */
  async listPayoutResources(principal: Principal, query: ListPayoutsQuery): Promise<PayoutResourceList> {
    this.checkListQuery(query);
    const page = await this.store.listResources(principal.clientId, principal.role, query, principal.proof);
    return { resources: page.resources, next: page.hasMore ? page.last : null };
  }

  private checkListQuery(query: ListPayoutsQuery): void {
    const fields: FieldError[] = [];
    if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > MAX_PAGE_SIZE) {
      fields.push({ field: 'limit', message: `must be an integer from 1 to ${MAX_PAGE_SIZE}` });
    }
    if (query.currency !== undefined && !this.deps.currencies.has(query.currency)) {
      fields.push({
        field: 'currency',
        message: `must be one of ${[...this.deps.currencies.keys()].join(', ')}`,
      });
    }
    if (fields.length > 0) throw new ValidationFailed(fields);
  }

  /**
   * The principal's payouts that need a person (stage `needs_attention`) or look stuck (in their status longer
   * than `stuckAfterSeconds`), the longest waiting first: the operator console's work list.
   */
  async listNeedingAttention(
    principal: Principal,
    query: { limit: number; stuckAfterSeconds: number },
  ): Promise<Payout[]> {
    if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) {
      throw new ValidationFailed([{ field: 'limit', message: 'must be an integer from 1 to 100' }]);
    }
    return this.store.listNeedingAttention(principal.clientId, query.stuckAfterSeconds, query.limit);
  }

  /** A page of one payout's history, oldest first. */
  async listEvents(principal: Principal, id: string, query: ListEventsQuery): Promise<PayoutEventPage> {
    if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) {
      throw new ValidationFailed([{ field: 'limit', message: 'must be an integer from 1 to 100' }]);
    }
    const payout = await this.getPayout(principal, id);
    const page = await this.store.history(payout.id, { limit: query.limit, after: query.after });
    return { items: page.entries, next: page.hasMore ? page.last : null };
  }

  /**
   * Sends one machine event to a payout, under the version check; the machine's guards decide whether this
   * principal may send it now. How the worker, the sweeper and the dead-letter path report to the machine.
   */
  async applyEvent(
    principal: Principal,
    id: string,
    event: EventInput,
    options: ChangeOptions,
  ): Promise<Payout> {
    return this.change(principal, id, options, () => ({
      event: { ...event, by: senderOf(principal) },
    }));
  }

  async updateDescription(
    principal: Principal,
    id: string,
    description: string | null,
    options: ChangeOptions,
  ): Promise<Payout> {
    return (await this.updatePayout(principal, id, { description }, options)).payout;
  }

  /**
   * A change asked of a payout: a status (as the machine event that leads there) and/or a new description, saved
   * as one version. An operator's `completed` or `failed` of a payout in flight is a request the worker carries
   * out against the provider (`accepted`).
   */
  async updatePayout(
    principal: Principal,
    id: string,
    request: PayoutChangeRequest,
    options: ChangeOptions,
  ): Promise<PayoutChangeResult> {
    const fields: FieldError[] = [];
    const description =
      request.description === undefined
        ? undefined
        : normaliseNote(request.description, 'description', fields);
    checkReason(options.reason, fields);
    if (fields.length > 0) throw new ValidationFailed(fields);
    let event: PayoutEvent | undefined;
    if (request.status !== undefined) {
      const type = eventRequesting(request.status);
      if (type === undefined) throw new Forbidden(`Nobody may move a payout to ${request.status}.`);
      event = { type, by: senderOf(principal), reason: options.reason };
    }
    if (event === undefined && description === undefined) {
      throw new ValidationFailed([{ field: '', message: 'must change status or description' }]);
    }
    let changeOptions = options;
    let described = 0;
    if (description !== undefined) {
      // The payout is read first (scoped by client: another client's payout is 404 before anything is counted),
      // and that read stands in for the change's own first one.
      const current = await this.getPayout(principal, id);
      described = await this.descriptionChanges(current.id);
      changeOptions = { ...options, current: options.current ?? current };
    }
    const payout = await this.change(principal, id, changeOptions, () => {
      // Checked after `If-Match` (a stale version is 412 first) and before the machine decides anything. The count
      // is read before the write, not under its lock: PATCHes racing on one payout may each see room for one more,
      // so a payout can exceed the limit by at most the number of description changes in flight at once.
      if (description !== undefined && described >= this.maxDescriptionChanges) {
        throw new DescriptionChangesExhausted(this.maxDescriptionChanges);
      }
      return { event, description };
    });
    // A request the machine recorded for the worker leaves the payout unfinished; a cancel finishes it.
    return { payout, accepted: event !== undefined && !FINAL_STATUSES.includes(payout.status) };
  }

  /** An operator's retry of a payout that needs attention: the worker takes it up again. */
  async retryPayout(principal: Principal, id: string, options: ChangeOptions): Promise<PayoutChangeResult> {
    const fields: FieldError[] = [];
    checkReason(options.reason, fields);
    if (fields.length > 0) throw new ValidationFailed(fields);
    const payout = await this.change(principal, id, options, () => ({
      event: { type: 'RETRY', by: senderOf(principal), reason: options.reason },
    }));
    return { payout, accepted: true };
  }

  /**
   * Cancels a payout and hides it from reads and lists, while the machine still accepts a cancel (nothing has
   * been handed to the provider). The payout and its history stay.
   */
  async deletePayout(principal: Principal, id: string, options: ChangeOptions): Promise<void> {
    const reason = options.reason ?? 'deleted';
    await this.change(principal, id, { ...options, reason }, (payout) => {
      const snapshot = this.lifecycle.restore(payout.snapshot, payout.machineVersion);
      const event: PayoutEvent = { type: 'CANCEL', by: senderOf(principal), reason };
      const decision = this.lifecycle.decide(snapshot, event);
      if (!decision.accepted && decision.refusal === 'forbidden') {
        throw new Forbidden(`A ${principal.role} may not delete payouts.`);
      }
      if (!decision.accepted) throw new PayoutNotDeletable(payout.status);
      return { event, deleted: true };
    });
  }

  /**
   * Read, decide, write under the version check. When the write finds another version, somebody changed the
   * payout after we read it: read again and decide again (the decision may now be a conflict), never overwrite.
   * After the optimistic tries the store holds the payout while the last decision is made and written, so a busy
   * payout still makes progress.
   *
   * `options.current` (the payout as the caller last saw it, e.g. the worker's result of its previous step)
   * stands in for the first read. A stale one costs a refused write and a read, never a wrong write; a decision
   * refused on it is taken again on a fresh read before it is reported.
   */
  private async change(
    principal: Principal,
    id: string,
    options: ChangeOptions,
    want: (payout: Payout) => Wanted,
  ): Promise<Payout> {
    assertPayoutId(id);
    let hint = options.expectedVersion === undefined ? options.current : undefined;
    for (let attempt = 1; attempt <= OPTIMISTIC_TRIES; attempt += 1) {
      const fromHint = hint !== undefined;
      const current = hint ?? (await this.getPayout(principal, id));
      hint = undefined;
      let prepared: Prepared;
      try {
        prepared = this.prepare(principal, current, options, want);
      } catch (error) {
        if (fromHint && error instanceof DomainError) {
          attempt -= 1;
          continue;
        }
        throw error;
      }
      const saved = await this.store.save(prepared.change);
      if (saved) return this.changed(saved, prepared, current.createdAt);
    }
    let prepared: Prepared | undefined;
    let createdAt: Date | undefined;
    const saved = await this.store.saveLocked(readOf(principal, id), (current) => {
      prepared = this.prepare(principal, current, options, want);
      createdAt = current.createdAt;
      return prepared.change;
    });
    if (!saved || !prepared || !createdAt) throw new PayoutNotFound(id);
    return this.changed(saved, prepared, createdAt);
  }

  /**
   * Asks the machine about `current` and prepares its decision as a change under `current`'s version: the next
   * snapshot, its status and stage, the history row and the commands it issued. A refusal becomes the domain error
   * that says why.
   */
  private prepare(
    principal: Principal,
    current: Payout,
    options: ChangeOptions,
    want: (payout: Payout) => Wanted,
  ): Prepared {
    if (options.expectedVersion !== undefined && options.expectedVersion !== current.version) {
      throw new VersionMismatch(options.expectedVersion, current.version);
    }
    const wanted = want(current);
    const change: VersionedChange = {
      clientId: principal.clientId,
      id: current.id,
      expectedVersion: current.version,
      changes: { deleted: wanted.deleted },
      history: {
        from: current.status,
        event: wanted.event?.type ?? DESCRIBE,
        actor: principal.actor,
        actorRole: principal.role,
        reason: options.reason ?? null,
        requestId: options.requestId,
      },
    };
    let transition: Prepared['transition'];
    if (wanted.event) {
      const snapshot = this.lifecycle.restore(current.snapshot, current.machineVersion);
      const decision = this.lifecycle.decide(snapshot, wanted.event);
      if (!decision.accepted) throw this.refusal(decision.refusal, wanted.event, current, principal);
      const { next } = decision;
      Object.assign(change.changes, {
        status: next.status,
        stage: next.stage,
        snapshot: next.snapshot,
        failure: next.context.failure,
        ...(current.machineVersion === PAYOUT_MACHINE_VERSION
          ? {}
          : { machineVersion: PAYOUT_MACHINE_VERSION }),
      });
      transition = { from: current.status, to: next.status, event: wanted.event.type };
      change.settledSeq = decision.settled;
      if (decision.notification !== null) {
        change.webhookEvent = { eventId: newEventId(), type: webhookEventType(decision.notification) };
      }
      change.commands = decision.commands.map((command): ScheduledMessage =>
        this.deps.scheduler.messageFor({
          payoutId: current.id,
          clientId: current.clientId,
          requestId: options.requestId,
          command,
          leaseMs: options.carriesOutCommands && command.delay_ms === 0 ? this.commandLeaseMs : 0,
        }),
      );
      if (decision.overruled) {
        const { requested, outcome } = decision.overruled;
        change.history.reason = `The provider overruled the operator's request to ${requested}: the payout is ${outcome}.`;
      }
    }
    if (wanted.description !== undefined) change.changes.description = wanted.description;
    return { change, transition };
  }

  /**
   * How many description changes the payout has had: its `DESCRIBE` history rows. A description changed along
   * with a status is recorded under the machine's event and not counted (a payout has few status changes); it is
   * refused all the same once the limit is reached.
   */
  private async descriptionChanges(payoutId: string): Promise<number> {
    const counted = await this.store.history(payoutId, { limit: 0, event: DESCRIBE, withTotal: true });
    return counted.total ?? 0;
  }

  private refusal(refusal: Refusal, event: PayoutEvent, current: Payout, principal: Principal): DomainError {
    switch (refusal) {
      case 'forbidden':
        return new Forbidden(`A ${principal.role} may not send ${event.type}.`);
      case 'reason_required':
        return new ValidationFailed([{ field: 'reason', message: `is required to send ${event.type}` }]);
      case 'not_now':
        return new TransitionNotAllowed(event.type, current.status, availableActions(current, principal));
    }
  }

  private changed(payout: Payout, prepared: Prepared, createdAt: Date): Payout {
    // Relays are woken for a command they may publish now; one the worker carries out itself is leased to it, and
    // a relay woken for it would find nothing to claim.
    if (prepared.change.commands?.some((command) => !command.leaseMs)) this.deps.waker?.wake();
    const { transition } = prepared;
    const metrics = this.deps.metrics;
    if (metrics && transition && transition.from !== transition.to) {
      metrics.transitions.inc(transition);
      if (PROVIDER_OUTCOMES.includes(transition.to)) {
        metrics.processingDuration.observe(
          { outcome: transition.to },
          (Date.now() - createdAt.getTime()) / 1000,
        );
      }
    }
    return payout;
  }
}

/** A webhook event's id: `evt_` and a time-ordered UUID's hex digits. */
function newEventId(): string {
  return `evt_${uuidv7().replace(/-/g, '')}`;
}

/** The event type of a notification the machine decided on. */
function webhookEventType(notification: PayoutNotification): string {
  return `payout.${notification}`;
}

/** The one read of a payout: scoped by client, deleted ones only for roles that see them. */
function readOf(principal: Principal, id: string): PayoutRead {
  return {
    clientId: principal.clientId,
    id,
    includeDeleted: roleSeesDeleted(principal.role),
    proof: principal.proof,
  };
}

function assertPayoutId(id: string): void {
  // A malformed id cannot name any payout; answering "not found" keeps ids opaque and never reaches the store.
  if (!isCanonicalUuid(id)) throw new PayoutNotFound(isStorable(id) ? id : '(invalid id)');
}
