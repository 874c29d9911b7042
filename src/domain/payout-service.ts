/**
 * The payout service: the one place where a change to a payout is decided and saved. The HTTP handlers, the
 * worker, the sweeper and the commands all call these functions; none of them touches a repository or the
 * machine directly. Every function takes the principal, and every write is one transaction: a create writes
 * its rows in one, and a change of an existing payout is one versioned statement (its history row included).
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type { PayoutEvent } from '../machines/payout.machine.js';
import type { PayoutStage, PayoutStatus } from '../machines/payout-lifecycle.js';
import {
  FINAL_STATUSES,
  PAYOUT_MACHINE_VERSION,
  PROVIDER_OUTCOMES,
  PayoutLifecycle,
  eventRequesting,
} from '../machines/payout-lifecycle.js';
import type { Metrics } from '../metrics.js';
import * as idempotency from '../persistence/idempotency-repository.js';
import { Batcher } from '../persistence/batcher.js';
import * as payouts from '../persistence/payout-repository.js';
import type { CurrencyTable } from './currency.js';
import type { FieldError } from './errors.js';
import {
  AppError,
  Forbidden,
  IdempotencyKeyInFlight,
  IdempotencyKeyReused,
  PayoutNotDeletable,
  PayoutNotFound,
  TransitionNotAllowed,
  ValidationFailed,
  VersionMismatch,
} from './errors.js';
import { Money, MoneyError } from './money.js';
import type { Payout, PayoutHistoryEntry, PayoutResource } from './payout.js';
import { availableActions, toPayoutResource } from './payout.js';
import type { Principal } from './principal.js';
import { roleSeesDeleted, senderOf } from './principal.js';
import { parseRecipient } from './recipient.js';
import type { OutboxWaker, ProcessingScheduler, ScheduledMessage } from './scheduling.js';
import type { Refusal } from '../machines/payout-lifecycle.js';
import { codePointLength, isCanonicalUuid, isStorable, textProblem } from './text.js';

export interface CreatePayoutInput {
  amount: string;
  currency: string;
  recipient: { type: string; iban?: string; bic?: string | null; holder_name?: string };
  description?: string | null;
}

export interface CallContext {
  /** The request id of the HTTP call or the message that caused this change. */
  requestId: string | null;
}

export interface CreateContext extends CallContext {
  idempotencyKey?: string;
}

export interface CreateResult {
  /** The response body: on a replay, exactly the one stored with the first request. */
  body: PayoutResource;
  replayed: boolean;
}

export interface ChangeOptions extends CallContext {
  /** The version the caller last saw (`If-Match`): a different current version is a 412, never an overwrite. */
  expectedVersion?: number;
  /** Why: required of operators resolving a payout by hand, recorded in the history. */
  reason?: string;
  /** The payout as the caller last saw it: used instead of a first read (a stale one only costs a retry). */
  current?: Payout;
  /**
   * The caller carries out the commands this change issues itself (the worker): their outbox rows are leased
   * to it, and published only should it die before answering them.
   */
  carriesOutCommands?: boolean;
}

/** A machine event as a caller sends it: the service adds who sends it (the principal). */
export type EventInput = PayoutEvent extends infer E
  ? E extends PayoutEvent
    ? Omit<E, 'by'>
    : never
  : never;

export interface PayoutChangeResult {
  payout: Payout;
  /**
   * True when the change is a request the worker still has to carry out against the provider (an operator's
   * request to fail or complete a payout in flight, or to retry one): the answer is 202, not 200.
   */
  accepted: boolean;
}

export interface PayoutChangeRequest {
  /** A requested status is a request for the machine event that leads there (`eventRequesting`). */
  status?: PayoutStatus;
  description?: string | null;
}

export interface ListPayoutsQuery {
  limit: number;
  cursor?: string;
  status?: PayoutStatus;
  stage?: PayoutStage;
  currency?: string;
  createdGte?: Date;
  createdLt?: Date;
}

export interface PayoutPage {
  items: Payout[];
  nextCursor: string | null;
}

interface Decision {
  event?: PayoutEvent;
  description?: string | null;
  deleted?: boolean;
}

interface ChangeOutcome {
  payout: Payout;
  transition: { from: PayoutStatus; to: PayoutStatus; event: string } | undefined;
  createdAt: Date;
  /** The change issued commands: relays are woken after it. */
  scheduled: boolean;
}

/** Up to this many optimistic tries before a change takes the row lock and decides once more. */
const OPTIMISTIC_TRIES = 3;

/** How long the worker's own commands are kept from relays by default (`COMMAND_LEASE_MS`). */
const DEFAULT_COMMAND_LEASE_MS = 60_000;

export interface PayoutServiceDeps {
  db: Knex;
  currencies: CurrencyTable;
  scheduler: ProcessingScheduler;
  waker?: OutboxWaker;
  metrics?: Metrics;
  idempotencyTtlHours?: number;
  /** The machine and its policy (retry schedule, re-drive bound); the default policy when absent. */
  lifecycle?: PayoutLifecycle;
  /** How long relays leave alone a command the worker carries out itself (`COMMAND_LEASE_MS`). */
  commandLeaseMs?: number;
}

export class PayoutService {
  readonly lifecycle: PayoutLifecycle;
  private readonly idempotencyTtlHours: number;
  private readonly commandLeaseMs: number;
  /** Reads and versioned changes outside a transaction: concurrent calls share a statement. */
  private readonly reads: Batcher<payouts.PayoutRead, Payout | null>;
  private readonly changes: Batcher<payouts.VersionedChange, Payout | null | typeof payouts.ROW_LOCKED>;

  constructor(private readonly deps: PayoutServiceDeps) {
    this.idempotencyTtlHours = deps.idempotencyTtlHours ?? 24;
    this.lifecycle = deps.lifecycle ?? new PayoutLifecycle();
    this.commandLeaseMs = deps.commandLeaseMs ?? DEFAULT_COMMAND_LEASE_MS;
    this.reads = new Batcher((reads) => payouts.findPayouts(deps.db, reads), {});
    this.changes = new Batcher((changes) => payouts.updateUnlockedPayoutsVersioned(deps.db, changes), {
      keyOf: (change) => change.id,
    });
  }

  /**
   * Validates and stores a new payout, its first history row and its processing message in one transaction.
   * With an idempotency key, the key and the response are stored in that same transaction; a replay returns
   * the stored response, a different request under the same key is refused.
   */
  async createPayout(
    principal: Principal,
    input: CreatePayoutInput,
    context: CreateContext,
  ): Promise<CreateResult> {
    const fields = this.validateCreate(input);
    const key = context.idempotencyKey;
    const requestHash = key === undefined ? '' : fingerprint(input);

    // The common case, a new key, costs no read: the outcome is stored by the create's own statement, and only
    // when a live outcome is already there is nothing written and the answer read from that outcome (a replay).
    for (let attempt = 1; ; attempt += 1) {
      const created = await this.insertNewPayout(principal, fields, context, requestHash);
      if (created.outcome === 'created') {
        if (key !== undefined) this.deps.metrics?.idempotencyReplays.inc({ outcome: 'new' });
        this.deps.waker?.wake();
        this.deps.metrics?.payoutsCreated.inc({ currency: created.body.currency });
        return { body: created.body, replayed: false };
      }
      if (created.outcome === 'in_flight') {
        this.deps.metrics?.idempotencyReplays.inc({ outcome: 'in_flight' });
        throw new IdempotencyKeyInFlight();
      }
      // Only a key can make the statement write nothing without an error.
      if (key === undefined) throw new Error('a create without an idempotency key was not written');
      const stored = await idempotency.findIdempotentOutcome(
        this.deps.db,
        principal.clientId,
        key,
        this.idempotencyTtlHours,
      );
      // Gone between the two statements: it expired and was swept. The key is free again; try once more.
      if (!stored && attempt === 1) continue;
      if (!stored) throw new IdempotencyKeyInFlight();
      if (stored.requestHash !== requestHash) {
        this.deps.metrics?.idempotencyReplays.inc({ outcome: 'mismatch' });
        throw new IdempotencyKeyReused();
      }
      this.deps.metrics?.idempotencyReplays.inc({ outcome: 'replayed' });
      return { body: stored.body as unknown as PayoutResource, replayed: true };
    }
  }

  /**
   * The create statement: the key's advisory lock (a duplicate in flight is refused at once, not queued), the
   * stored outcome, the payout with its first history row and its processing message. The response is decided
   * before the write, so the stored outcome is exactly the body answered: the payout is dated by this clock.
   */
  private async insertNewPayout(
    principal: Principal,
    fields: ReturnType<PayoutService['validateCreate']>,
    context: CreateContext,
    requestHash: string,
  ): Promise<{ outcome: payouts.InsertOutcome; body: PayoutResource }> {
    const key = context.idempotencyKey;
    const now = new Date();
    const initial = this.lifecycle.initial();
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
      createdAt: now,
      updatedAt: now,
    };
    const body = toPayoutResource(payout, principal);
    const outcome = await payouts.insertPayout(
      this.deps.db,
      payout,
      {
        event: 'CREATE',
        actor: principal.actor,
        actorRole: principal.role,
        reason: null,
        requestId: context.requestId,
      },
      this.deps.scheduler.messageFor({
        payoutId: payout.id,
        clientId: payout.clientId,
        requestId: context.requestId,
        // A new payout's first command is its processing message (the machine's initial context holds it).
        command: initial.context.command!,
      }),
      key === undefined
        ? null
        : {
            key,
            requestHash,
            body: body as unknown as Record<string, unknown>,
            ttlHours: this.idempotencyTtlHours,
          },
    );
    return { outcome, body };
  }

  /** One payout of the principal's client, as the principal may see it (see `roleSeesDeleted`). */
  async getPayout(principal: Principal, id: string): Promise<Payout> {
    assertPayoutId(id);
    return this.find(this.deps.db, principal, id);
  }

  /** The one read of a payout: scoped by client, deleted ones only for roles that see them. */
  private async find(runner: Knex, principal: Principal, id: string, forUpdate = false): Promise<Payout> {
    const read = { clientId: principal.clientId, id, includeDeleted: roleSeesDeleted(principal.role) };
    const payout =
      runner === this.deps.db && !forUpdate
        ? await this.reads.run(read)
        : (await payouts.findPayouts(runner, [read], { forUpdate }))[0];
    if (!payout) throw new PayoutNotFound(id);
    return payout;
  }

  /** A page of the principal's payouts, newest first. The cursor is opaque to clients: the last row's `seq`. */
  async listPayouts(principal: Principal, query: ListPayoutsQuery): Promise<PayoutPage> {
    const errors: FieldError[] = [];
    if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) {
      errors.push({ pointer: '/query/limit', message: 'must be an integer from 1 to 100' });
    }
    let beforeSeq: string | undefined;
    if (query.cursor !== undefined) {
      beforeSeq = decodeCursor(query.cursor) ?? undefined;
      if (beforeSeq === undefined)
        errors.push({ pointer: '/query/cursor', message: 'is not a cursor this API issued' });
    }
    if (query.currency !== undefined && !this.deps.currencies.has(query.currency)) {
      errors.push({
        pointer: '/query/currency',
        message: `must be one of ${[...this.deps.currencies.keys()].join(', ')}`,
      });
    }
    if (errors.length > 0) throw new ValidationFailed(errors);

    const page = await payouts.listPayoutPage(this.deps.db, principal.clientId, {
      limit: query.limit,
      beforeSeq,
      status: query.status,
      stage: query.stage,
      currency: query.currency,
      createdGte: query.createdGte,
      createdLt: query.createdLt,
    });
    return {
      items: page.payouts,
      nextCursor: page.hasMore && page.lastSeq ? encodeCursor(page.lastSeq) : null,
    };
  }

  async listEvents(principal: Principal, id: string): Promise<PayoutHistoryEntry[]> {
    const payout = await this.getPayout(principal, id);
    return payouts.listHistory(this.deps.db, payout.id);
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
   * The PATCH of a payout: a status asked for (as the machine event that leads there) and/or a new description,
   * saved as one version. Asking an operator's `completed` or `failed` of a payout in flight is recorded and
   * carried out by the worker against the provider (`accepted`).
   */
  async updatePayout(
    principal: Principal,
    id: string,
    request: PayoutChangeRequest,
    options: ChangeOptions,
  ): Promise<PayoutChangeResult> {
    const errors: FieldError[] = [];
    let description: string | null | undefined;
    if (request.description !== undefined) {
      description = normaliseDescription(request.description, DESCRIPTION_FIELD, errors);
    }
    checkReason(options.reason, errors);
    if (errors.length > 0) throw new ValidationFailed(errors);
    let event: PayoutEvent | undefined;
    if (request.status !== undefined) {
      const type = eventRequesting(request.status);
      if (type === undefined) throw new Forbidden(`Nobody may move a payout to ${request.status}.`);
      event = { type, by: senderOf(principal), reason: options.reason };
    }
    if (event === undefined && description === undefined) {
      throw new ValidationFailed([{ pointer: '/body', message: 'must change status or description' }]);
    }
    const payout = await this.change(principal, id, options, () => ({ event, description }));
    return {
      payout,
      // A request the machine recorded for the worker leaves the payout unfinished; a cancel finishes it.
      accepted: event !== undefined && !FINAL_STATUSES.includes(payout.status),
    };
  }

  /** An operator's retry of a payout that needs attention: the worker takes it up again. */
  async retryPayout(principal: Principal, id: string, options: ChangeOptions): Promise<PayoutChangeResult> {
    const errors: FieldError[] = [];
    checkReason(options.reason, errors);
    if (errors.length > 0) throw new ValidationFailed(errors);
    const payout = await this.change(principal, id, options, () => ({
      event: { type: 'RETRY', by: senderOf(principal), reason: options.reason },
    }));
    return { payout, accepted: true };
  }

  /**
   * Cancels a payout and hides it from reads and lists, while the machine still accepts a cancel (nothing has
   * been handed to the provider). The row and its history stay.
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
   * Read, decide, write under the version check. The write is one statement — `UPDATE … WHERE id AND client AND
   * version` with its history row and the commands the machine issued — so it is atomic on its own, and the read
   * needs no transaction around it: when the UPDATE matches no row, somebody changed the payout after we read it,
   * and we read again and decide again (the decision may now be a conflict). After the optimistic tries the row is
   * read `FOR UPDATE` inside a transaction, so the last decision cannot be overtaken and a busy payout still makes
   * progress. Reads and writes outside that transaction go through the batchers: concurrent changes of different
   * payouts (the worker's handlers, mostly) share one statement, each still under its own version check.
   *
   * `options.current` (the payout as the caller last saw it, e.g. the worker's result of its previous step)
   * stands in for the first read. A stale one costs a failed UPDATE and a read, never a wrong write; a decision
   * refused on it is taken again on a fresh read before it is reported.
   */
  private async change(
    principal: Principal,
    id: string,
    options: ChangeOptions,
    decide: (payout: Payout) => Decision,
  ): Promise<Payout> {
    assertPayoutId(id);
    let hint = options.expectedVersion === undefined ? options.current : undefined;
    for (let attempt = 1; attempt <= OPTIMISTIC_TRIES; attempt += 1) {
      const current = hint ?? (await this.find(this.deps.db, principal, id));
      const fromHint = hint !== undefined;
      hint = undefined;
      let outcome: ChangeOutcome | null;
      try {
        outcome = await this.write(this.deps.db, principal, current, options, decide);
      } catch (error) {
        if (fromHint && error instanceof AppError) {
          attempt -= 1;
          continue;
        }
        throw error;
      }
      if (outcome) return this.changed(outcome);
    }
    const outcome = await this.deps.db.transaction(async (tx) => {
      const current = await this.find(tx, principal, id, true);
      const locked = await this.write(tx, principal, current, options, decide);
      if (!locked) throw new Error(`payout ${id} changed while locked`);
      return locked;
    });
    return this.changed(outcome);
  }

  /**
   * Asks the machine about `current` and writes its decision under `current`'s version: the next snapshot, its
   * status and stage, the history row and the commands it issued, in one statement. Null when the version moved
   * on. A refusal becomes the domain error that says why.
   */
  private async write(
    runner: Knex,
    principal: Principal,
    current: Payout,
    options: ChangeOptions,
    decide: (payout: Payout) => Decision,
  ): Promise<ChangeOutcome | null> {
    if (options.expectedVersion !== undefined && options.expectedVersion !== current.version) {
      throw new VersionMismatch(options.expectedVersion, current.version);
    }
    const wanted = decide(current);
    const changes: payouts.PayoutChanges = { deleted: wanted.deleted };
    let transition: ChangeOutcome['transition'];
    let commands: ScheduledMessage[] = [];
    let settledSeq: number | null = null;
    let reason = options.reason ?? null;
    if (wanted.event) {
      const snapshot = this.lifecycle.restore(current.snapshot, current.machineVersion);
      const decision = this.lifecycle.decide(snapshot, wanted.event);
      if (!decision.accepted) throw this.refusal(decision.refusal, wanted.event, current, principal);
      const next = decision.next;
      changes.status = next.status;
      changes.stage = next.stage;
      changes.snapshot = next.snapshot;
      changes.failure = next.context.failure;
      if (current.machineVersion !== PAYOUT_MACHINE_VERSION) changes.machineVersion = PAYOUT_MACHINE_VERSION;
      transition = { from: current.status, to: next.status, event: wanted.event.type };
      settledSeq = decision.settled;
      commands = decision.commands.map((command) =>
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
        reason = `The provider overruled the operator's request to ${requested}: the payout is ${outcome}.`;
      }
    }
    if (wanted.description !== undefined) changes.description = wanted.description;
    const change: payouts.VersionedChange = {
      clientId: principal.clientId,
      id: current.id,
      expectedVersion: current.version,
      changes,
      history: {
        from: current.status,
        event: transition?.event ?? 'DESCRIBE',
        actor: principal.actor,
        actorRole: principal.role,
        reason,
        requestId: options.requestId,
      },
      commands,
      settledSeq,
    };
    const updated = await this.save(runner, change);
    return updated
      ? { payout: updated, transition, createdAt: current.createdAt, scheduled: commands.length > 0 }
      : null;
  }

  private refusal(refusal: Refusal, event: PayoutEvent, current: Payout, principal: Principal): AppError {
    switch (refusal) {
      case 'forbidden':
        return new Forbidden(`A ${principal.role} may not send ${event.type}.`);
      case 'reason_required':
        return new ValidationFailed([
          { pointer: REASON_FIELD, message: `is required to send ${event.type}` },
        ]);
      case 'not_now':
        return new TransitionNotAllowed(event.type, current.status, availableActions(current, principal));
    }
  }

  /**
   * Writes one change: batched with other changes outside a transaction, alone inside one. A batch skips a row
   * that another transaction holds; that change then waits for the row on its own.
   */
  private async save(runner: Knex, change: payouts.VersionedChange): Promise<Payout | null> {
    if (runner === this.deps.db) {
      const batched = await this.changes.run(change);
      if (batched !== payouts.ROW_LOCKED) return batched;
    }
    return (await payouts.updatePayoutsVersioned(runner, [change]))[0]!;
  }

  private changed(outcome: ChangeOutcome): Payout {
    if (outcome.scheduled) this.deps.waker?.wake();
    if (outcome.transition && outcome.transition.from !== outcome.transition.to) {
      this.recordTransition(outcome.transition, outcome.createdAt);
    }
    return outcome.payout;
  }

  private recordTransition(transition: NonNullable<ChangeOutcome['transition']>, createdAt: Date): void {
    const metrics = this.deps.metrics;
    if (!metrics) return;
    metrics.transitions.inc(transition);
    if (PROVIDER_OUTCOMES.includes(transition.to)) {
      metrics.processingDuration.observe(
        { outcome: transition.to },
        (Date.now() - createdAt.getTime()) / 1000,
      );
    }
  }

  /**
   * The domain's field errors for a create request (amount against the currency table, IBAN checksum, text
   * rules), storing nothing. The HTTP layer asks for them when the contract has already refused other fields,
   * so that one answer names every bad field.
   */
  createPayoutProblems(input: CreatePayoutInput): FieldError[] {
    try {
      this.validateCreate(input);
      return [];
    } catch (error) {
      if (error instanceof ValidationFailed) return error.errors ?? [];
      throw error;
    }
  }

  private validateCreate(input: CreatePayoutInput) {
    const errors: FieldError[] = [];
    let amount: Money | undefined;
    try {
      amount = Money.parse(input.amount, input.currency, this.deps.currencies);
    } catch (error) {
      if (!(error instanceof MoneyError)) throw error;
      errors.push({ pointer: `/body/${error.field}`, message: error.message });
    }
    const recipient = parseRecipient(input.recipient);
    if ('errors' in recipient) errors.push(...recipient.errors);
    const description =
      input.description === undefined
        ? null
        : normaliseDescription(input.description, DESCRIPTION_FIELD, errors);
    if (errors.length > 0 || !amount || !('recipient' in recipient)) throw new ValidationFailed(errors);
    return { amount, recipient: recipient.recipient, description: description ?? null };
  }
}

/** The fields of a change request that the domain checks (the contract names them the same way). */
const DESCRIPTION_FIELD = '/body/description';
const REASON_FIELD = '/body/reason';

function checkReason(reason: string | undefined, errors: FieldError[]): void {
  if (reason === undefined) return;
  const problem = textProblem(reason, { allowNewlines: true });
  if (problem) errors.push({ pointer: REASON_FIELD, message: problem });
  else if (codePointLength(reason) > 500)
    errors.push({ pointer: REASON_FIELD, message: 'must be at most 500 characters' });
}

function normaliseDescription(raw: string | null, pointer: string, errors: FieldError[]): string | null {
  if (raw === null) return null;
  const value = raw.trim();
  const problem = textProblem(value, { allowNewlines: true });
  if (problem) {
    errors.push({ pointer, message: problem });
    return null;
  }
  if (codePointLength(value) > 500) {
    errors.push({ pointer, message: 'must be at most 500 characters' });
    return null;
  }
  return value === '' ? null : value;
}

function assertPayoutId(id: string): void {
  // A malformed id cannot name any payout; answering 404 keeps ids opaque and never reaches the database.
  if (!isCanonicalUuid(id)) throw new PayoutNotFound(isStorable(id) ? id : '(invalid id)');
}

/** SHA-256 of the request's canonical JSON (keys sorted), so key order and whitespace do not matter. */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function encodeCursor(seq: string): string {
  return Buffer.from(`v1:${seq}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) return null;
  const match = /^v1:([1-9]\d{0,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match || BigInt(match[1]!) > 9223372036854775807n) return null;
  return match[1]!;
}
