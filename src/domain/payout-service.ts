/**
 * The payout service: the one place where a change to a payout is decided and saved. The HTTP handlers, the
 * worker, the sweeper and the commands all call these functions; none of them touches a repository or the
 * machine directly. Every function takes the principal, and every write is one transaction: a create writes
 * its rows in one, and a change of an existing payout is one versioned statement (its history row included).
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type { PayoutEvent, PayoutEventType, PayoutStatus } from '../machines/payout.machine.js';
import {
  PAYOUT_MACHINE_VERSION,
  eventInto,
  initialPayoutSnapshot,
  nextPayoutSnapshot,
  persistPayoutSnapshot,
  restorePayoutSnapshot,
  statusAfter,
  statusOf,
} from '../machines/payout.machine.js';
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
  ProviderDisagrees,
  ServiceUnavailable,
  TransitionNotAllowed,
  ValidationFailed,
  VersionMismatch,
} from './errors.js';
import { Money, MoneyError } from './money.js';
import type { Payout, PayoutHistoryEntry, PayoutResource } from './payout.js';
import { availableActions, toPayoutResource } from './payout.js';
import type { Principal } from './principal.js';
import type { PaymentProvider } from './provider.js';
import { roleMaySend, roleNeedsReason, roleSeesDeleted } from './principal.js';
import { parseRecipient } from './recipient.js';
import type { OutboxWaker, ProcessingScheduler } from './scheduling.js';
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
}

export interface PayoutChangeRequest {
  /** A requested status is a machine event: `cancelled` → CANCEL, `completed` → SUCCEED, and so on. */
  status?: PayoutStatus;
  description?: string | null;
  /** For FAIL: the failure recorded on the payout. */
  failure?: { code: string; message: string };
}

export interface ListPayoutsQuery {
  limit: number;
  cursor?: string;
  status?: PayoutStatus;
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
  transition: { from: PayoutStatus; to: PayoutStatus; event: PayoutEventType } | undefined;
  createdAt: Date;
}

/** Every payout starts from the machine's initial state: computed once, stored as it is by every create. */
const INITIAL = (() => {
  const snapshot = initialPayoutSnapshot();
  return { status: statusOf(snapshot), snapshot: persistPayoutSnapshot(snapshot) };
})();

/** Up to this many optimistic tries before a change takes the row lock and decides once more. */
const OPTIMISTIC_TRIES = 3;

export interface PayoutServiceDeps {
  db: Knex;
  currencies: CurrencyTable;
  scheduler: ProcessingScheduler;
  waker?: OutboxWaker;
  metrics?: Metrics;
  idempotencyTtlHours?: number;
  /** Asked before an operator resolves a payout by hand. */
  provider?: PaymentProvider;
}

export class PayoutService {
  private readonly idempotencyTtlHours: number;
  /** Reads and versioned changes outside a transaction: concurrent calls share a statement. */
  private readonly reads: Batcher<payouts.PayoutRead, Payout | null>;
  private readonly changes: Batcher<payouts.VersionedChange, Payout | null | typeof payouts.ROW_LOCKED>;

  constructor(private readonly deps: PayoutServiceDeps) {
    this.idempotencyTtlHours = deps.idempotencyTtlHours ?? 24;
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
    const payout: Payout = {
      id: uuidv7(),
      clientId: principal.clientId,
      amount: fields.amount,
      recipient: fields.recipient,
      status: INITIAL.status,
      snapshot: INITIAL.snapshot,
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

  /** Sends one machine event to a payout, under the role rules and the version check. */
  async applyEvent(
    principal: Principal,
    id: string,
    event: PayoutEvent,
    options: ChangeOptions,
  ): Promise<Payout> {
    // The same door as a PATCH: the role rules and the operator's provider check apply to every caller.
    return this.updatePayout(
      principal,
      id,
      {
        status: statusAfter(event.type),
        failure: event.type === 'FAIL' ? { code: event.code, message: event.message } : undefined,
      },
      options,
    );
  }

  async updateDescription(
    principal: Principal,
    id: string,
    description: string | null,
    options: ChangeOptions,
  ): Promise<Payout> {
    return this.updatePayout(principal, id, { description }, options);
  }

  /**
   * The PATCH of a payout: a status change (as a machine event) and/or a new description, saved as one
   * version.
   */
  async updatePayout(
    principal: Principal,
    id: string,
    request: PayoutChangeRequest,
    options: ChangeOptions,
  ): Promise<Payout> {
    const errors: FieldError[] = [];
    let description: string | null | undefined;
    if (request.description !== undefined) {
      description = normaliseDescription(request.description, '/body/description', errors);
    }
    let event: PayoutEvent | undefined;
    if (request.status !== undefined) {
      const type = eventInto(request.status);
      if (type === undefined) throw new Forbidden(`Nobody may move a payout to ${request.status}.`);
      if (!roleMaySend(principal.role, type)) {
        throw new Forbidden(`A ${principal.role} may not move a payout to ${request.status}.`);
      }
      if (type === 'FAIL') {
        const failure = request.failure ?? {
          code: principal.role === 'operator' ? 'operator_failed' : 'failed',
          message: options.reason ?? 'Failed',
        };
        event = { type, code: failure.code, message: failure.message };
      } else {
        event = { type };
      }
      if (
        roleNeedsReason(principal.role, type) &&
        (options.reason === undefined || options.reason.trim() === '')
      ) {
        errors.push({
          pointer: '/body/reason',
          message: `is required to move a payout to ${request.status}`,
        });
      }
    }
    if (options.reason !== undefined) {
      const problem = textProblem(options.reason, { allowNewlines: true });
      if (problem) errors.push({ pointer: '/body/reason', message: problem });
      else if (codePointLength(options.reason) > 500)
        errors.push({ pointer: '/body/reason', message: 'must be at most 500 characters' });
    }
    if (errors.length > 0) throw new ValidationFailed(errors);
    if (event === undefined && description === undefined) {
      throw new ValidationFailed([{ pointer: '/body', message: 'must change status or description' }]);
    }
    if (event !== undefined && principal.role === 'operator' && event.type !== 'CANCEL') {
      event = await this.confirmWithProvider(principal, id, event, options.reason ?? '');
    }
    return this.change(principal, id, options, () => ({ event, description }));
  }

  /**
   * An operator resolving a payout stuck in `processing` states what happened to money, so the provider is asked
   * first and has the last word: SUCCEED only when the provider holds a payment under the payout's key; FAIL
   * voids the key (nothing can be paid under it afterwards) unless a payment is already there. Without this, an
   * operator's FAIL racing the worker's submit could mark failed a payout that was paid — and the client would
   * pay it again. Outside `processing` nothing is asked: the machine refuses the event with the usual 409.
   */
  private async confirmWithProvider(
    principal: Principal,
    id: string,
    event: PayoutEvent,
    reason: string,
  ): Promise<PayoutEvent> {
    const current = await this.getPayout(principal, id);
    if (current.status !== 'processing') return event;
    const provider = this.deps.provider;
    if (!provider) throw new ServiceUnavailable('The payment provider is not configured here.');
    if (event.type === 'SUCCEED') {
      const result = await provider.status(id);
      if (result?.status !== 'succeeded') {
        throw new ProviderDisagrees(
          result === null
            ? 'The provider holds no payment for this payout.'
            : 'The provider refused this payout.',
          current.status,
          availableActions(current, principal),
        );
      }
      return event;
    }
    const result = await provider.voidTransfer(id, id, {
      code: event.type === 'FAIL' ? event.code : 'operator_failed',
      message: reason,
    });
    if (result.status === 'succeeded') {
      throw new ProviderDisagrees('The provider has paid this payout; it cannot be failed.', current.status, [
        'succeed',
      ]);
    }
    return { type: 'FAIL', code: result.failure.code, message: result.failure.message };
  }

  /**
   * Cancels a payout that has not started and hides it from reads and lists. The row and its history stay.
   */
  async deletePayout(principal: Principal, id: string, options: ChangeOptions): Promise<void> {
    if (!roleMaySend(principal.role, 'CANCEL'))
      throw new Forbidden(`A ${principal.role} may not delete payouts.`);
    await this.change(principal, id, { ...options, reason: options.reason ?? 'deleted' }, (payout) => {
      if (payout.status !== 'created') throw new PayoutNotDeletable(payout.status);
      return { event: { type: 'CANCEL' }, deleted: true };
    });
  }

  /**
   * Read, decide, write under the version check. The write is one statement — `UPDATE … WHERE id AND client AND
   * version` with its history row — so it is atomic on its own, and the read needs no transaction around it:
   * when the UPDATE matches no row, somebody changed the payout after we read it, and we read again and decide
   * again (the decision may now be a conflict). After the optimistic tries the row is read `FOR UPDATE` inside a
   * transaction, so the last decision cannot be overtaken and a busy payout still makes progress. Reads and
   * writes outside that transaction go through the batchers: concurrent changes of different payouts (the
   * worker's handlers, mostly) share one statement, each still under its own version check.
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

  /** Decides on `current` and writes the result under its version; null when the version moved on. */
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
    const decision = decide(current);
    const changes: payouts.PayoutChanges = { deleted: decision.deleted };
    let transition: ChangeOutcome['transition'];
    if (decision.event) {
      const snapshot = restorePayoutSnapshot(current.snapshot, current.machineVersion);
      const next = nextPayoutSnapshot(snapshot, decision.event);
      if (!next) {
        throw new TransitionNotAllowed(
          decision.event.type,
          current.status,
          availableActions(current, principal),
        );
      }
      changes.status = statusOf(next);
      changes.snapshot = persistPayoutSnapshot(next);
      changes.failure = next.context.failure;
      transition = { from: current.status, to: changes.status, event: decision.event.type };
    }
    if (decision.description !== undefined) changes.description = decision.description;
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
        reason: options.reason ?? null,
        requestId: options.requestId,
      },
    };
    const updated = await this.save(runner, change);
    return updated ? { payout: updated, transition, createdAt: current.createdAt } : null;
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
    if (outcome.transition) this.recordTransition(outcome.transition, outcome.createdAt);
    return outcome.payout;
  }

  private recordTransition(transition: { from: string; to: string; event: string }, createdAt: Date): void {
    const metrics = this.deps.metrics;
    if (!metrics) return;
    metrics.transitions.inc(transition);
    if (transition.to === 'completed' || transition.to === 'failed') {
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
        : normaliseDescription(input.description, '/body/description', errors);
    if (errors.length > 0 || !amount || !('recipient' in recipient)) throw new ValidationFailed(errors);
    return { amount, recipient: recipient.recipient, description: description ?? null };
  }
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
