/**
 * The `PayoutStore` port in memory, for unit tests of the payout service: what src/persistence/payout-store.ts does
 * on PostgreSQL, without the how (SQL, batching, locks). Each method mirrors the semantics of its statement:
 * a versioned change is written only at its expected version and never to a deleted payout, with its history row,
 * its commands as messages and the settled command's waiting messages withdrawn; a create is all or nothing under
 * its idempotency key. Time is the injected `now()`, so that tests can move the clock (TTLs, stuck payouts).
 */
import { ValueRejected } from '../../src/domain/errors.js';
import type { Payout, PayoutHistoryEntry, PayoutSummary } from '../../src/domain/payout.js';
import { lastErrorOf } from '../../src/domain/payout.js';
import type { KeyProof, Role } from '../../src/domain/principal.js';
import { toPayoutResource } from '../../src/domain/payout-resource.js';
import type {
  CreateOutcome,
  IdempotentOutcome,
  NewHistoryEntry,
  NewWebhookEvent,
  PayoutHistoryPage,
  PayoutHistoryQuery,
  PayoutListFilter,
  PayoutListPage,
  PayoutRead,
  PayoutResourcePage,
  PayoutStore,
  RenderedPayout,
  ScheduledMessage,
  StoredOutcome,
  StuckPayout,
  VersionedChange,
} from '../../src/domain/ports.js';
import { ATTENTION_STAGE, UNFINISHED_STATUSES } from '../../src/machines/payout-lifecycle.js';

/** A message as the outbox keeps it. `withdrawn`: the change answering its command settled it unsent. */
export interface StoredMessage {
  id: string;
  payoutId: string;
  commandSeq: number;
  topic: string;
  payload: Record<string, unknown>;
  leaseMs: number;
  /** Relays leave it alone until then (the worker carries the command out itself); null: at once. */
  lockedUntil: Date | null;
  withdrawn: boolean;
  /** Set by `publish` (a relay's work): a published message is no longer waiting. */
  published: boolean;
}

interface Row {
  payout: Payout;
  /** The insertion order: list positions. */
  seq: number;
  deletedAt: Date | null;
  statusChangedAt: Date;
  /** When its last command was issued (or it was claimed as stuck). */
  scheduledAt: Date;
}

interface OutcomeRow extends StoredOutcome {
  createdAt: Date;
}

const HOUR_MS = 3_600_000;

/** A webhook event as a change wrote it, with the payout's version it describes. */
export interface StoredWebhookEvent extends NewWebhookEvent {
  payoutId: string;
  payoutVersion: number;
}

/** API keys live only in PostgreSQL: a remembered caller's proof is checked there, never here. */
function refuseProof(proof: KeyProof | undefined): void {
  if (proof !== undefined) throw new Error('the memory store cannot check a key proof');
}

export class MemoryPayoutStore implements PayoutStore {
  readonly messages: StoredMessage[] = [];
  /** Every webhook event written, in order (the fan-out to endpoints is the database's business). */
  readonly webhookEvents: StoredWebhookEvent[] = [];
  private readonly rows = new Map<string, Row>();
  private readonly events: Array<PayoutHistoryEntry & { payoutId: string }> = [];
  private readonly outcomes = new Map<string, OutcomeRow>();
  private seq = 0;

  constructor(readonly now: () => Date = () => new Date()) {}

  create(
    payout: Payout,
    first: Omit<NewHistoryEntry, 'payoutId' | 'from' | 'to'>,
    message: ScheduledMessage,
    outcome: IdempotentOutcome | null,
    webhookEvent?: NewWebhookEvent,
    proof?: KeyProof,
  ): Promise<CreateOutcome> {
    return settled(() => {
      refuseProof(proof);
      if (this.rows.has(payout.id)) throw new Error(`duplicate payout id ${payout.id}`);
      if (outcome) {
        // A live outcome under the key: nothing is written. An expired one is replaced. (`in_flight` needs two
        // concurrent transactions: not reachable here.)
        if (this.liveOutcome(payout.clientId, outcome.key, outcome.ttlHours)) return 'key_used';
        this.outcomes.set(outcomeKey(payout.clientId, outcome.key), {
          requestHash: outcome.requestHash,
          payoutId: payout.id,
          status: outcome.status,
          body: structuredClone(outcome.body),
          createdAt: this.now(),
        });
      }
      this.seq += 1;
      this.rows.set(payout.id, {
        payout: copy(payout),
        seq: this.seq,
        deletedAt: null,
        statusChangedAt: payout.createdAt,
        scheduledAt: this.now(),
      });
      // The first history row is dated like the payout.
      this.addEvent(payout.id, { ...first, from: null, to: payout.status }, payout.createdAt);
      this.addMessage(message);
      if (webhookEvent) this.webhookEvents.push({ ...webhookEvent, payoutId: payout.id, payoutVersion: 1 });
      return 'created';
    });
  }

  findOutcome(clientId: string, key: string, ttlHours: number): Promise<StoredOutcome | null> {
    return settled(() => {
      const row = this.liveOutcome(clientId, key, ttlHours);
      if (!row) return null;
      const { requestHash, payoutId, status, body } = row;
      return { requestHash, payoutId, status, body: structuredClone(body) };
    });
  }

  find(read: PayoutRead): Promise<Payout | null> {
    return settled(() => {
      refuseProof(read.proof);
      const row = this.visible(read);
      return row ? copy(row.payout) : null;
    });
  }

  /** Rendered as the API renders a payout (`toPayoutResource`): the rendering PostgreSQL's is held equal to. */
  async findResource(read: PayoutRead, role: Role): Promise<RenderedPayout | null> {
    const payout = await this.find(read);
    if (payout === null) return null;
    const principal = { clientId: read.clientId, role, actor: 'memory-store' };
    return { version: payout.version, resource: JSON.stringify(toPayoutResource(payout, principal)) };
  }

  save(change: VersionedChange): Promise<Payout | null> {
    return settled(() => this.apply(change));
  }

  saveLocked(read: PayoutRead, prepare: (current: Payout) => VersionedChange): Promise<Payout | null> {
    // Nobody else runs in between here: read, decide, write. An error thrown by `prepare` writes nothing.
    return settled(() => {
      const row = this.visible(read);
      if (!row) return null;
      const saved = this.apply(prepare(copy(row.payout)));
      if (!saved) throw new Error(`payout ${read.id} changed while locked`);
      return saved;
    });
  }

  list(clientId: string, filter: PayoutListFilter, proof?: KeyProof): Promise<PayoutListPage> {
    return settled(() => {
      refuseProof(proof);
      return this.page(clientId, filter);
    });
  }

  /** Rendered as the API renders a payout (`toPayoutResource`): the rendering PostgreSQL's is held equal to. */
  listResources(
    clientId: string,
    role: Role,
    filter: PayoutListFilter,
    proof?: KeyProof,
  ): Promise<PayoutResourcePage> {
    return settled(() => {
      refuseProof(proof);
      const { payouts, last, hasMore } = this.page(clientId, filter);
      const principal = { clientId, role, actor: 'memory-store' };
      return {
        resources: payouts.map((payout) => JSON.stringify(toPayoutResource(payout, principal))),
        last,
        hasMore,
      };
    });
  }

  private page(clientId: string, filter: PayoutListFilter): PayoutListPage {
    // PostgreSQL refuses a position that is not a bigint (a data error: `ValueRejected`).
    if (filter.after !== undefined && !/^\d{1,19}$/.test(filter.after)) {
      throw new ValueRejected(new Error(`invalid position ${filter.after}`));
    }
    const after = filter.after === undefined ? undefined : Number(filter.after);
    const matching = [...this.rows.values()]
      .filter(({ payout, seq, deletedAt }) => {
        if (payout.clientId !== clientId || deletedAt !== null) return false;
        if (after !== undefined && seq >= after) return false;
        if (filter.status !== undefined && payout.status !== filter.status) return false;
        if (filter.stage !== undefined && payout.stage !== filter.stage) return false;
        if (filter.currency !== undefined && payout.amount.currency !== filter.currency) return false;
        if (filter.createdGte !== undefined && payout.createdAt < filter.createdGte) return false;
        if (filter.createdLt !== undefined && payout.createdAt >= filter.createdLt) return false;
        return true;
      })
      .sort((a, b) => b.seq - a.seq);
    const page = matching.slice(0, filter.limit);
    return {
      payouts: page.map((row) => summaryOf(copy(row.payout))),
      last: page.length > 0 ? String(page[page.length - 1]!.seq) : null,
      hasMore: matching.length > filter.limit,
    };
  }

  history(payoutId: string, query: PayoutHistoryQuery): Promise<PayoutHistoryPage> {
    return settled(() => {
      // PostgreSQL refuses a position that is not a bigint (a data error: `ValueRejected`).
      if (query.after !== undefined && !/^\d{1,19}$/.test(query.after)) {
        throw new ValueRejected(new Error(`invalid position ${query.after}`));
      }
      const after = query.after === undefined ? undefined : Number(query.after);
      // Ids are given in insertion order: `events` is already sorted by them.
      const ofPayout = this.events.filter(
        (event) => event.payoutId === payoutId && (query.event === undefined || event.event === query.event),
      );
      const matching = ofPayout.filter((event) => after === undefined || Number(event.id) > after);
      const page = matching
        .slice(0, query.limit)
        .map(({ payoutId: _payoutId, ...entry }) => ({ ...entry, at: new Date(entry.at) }));
      return {
        entries: page,
        last: page.length > 0 ? page[page.length - 1]!.id : null,
        hasMore: matching.length > query.limit,
        ...(query.withTotal ? { total: ofPayout.length } : {}),
      };
    });
  }

  claimStuck(olderThanSeconds: number, limit: number): Promise<StuckPayout[]> {
    const now = this.now();
    const threshold = now.getTime() - olderThanSeconds * 1000;
    const claimed = [...this.rows.values()]
      .filter(
        (row) =>
          UNFINISHED_STATUSES.includes(row.payout.status) &&
          row.payout.stage !== ATTENTION_STAGE &&
          row.scheduledAt.getTime() < threshold &&
          !this.messages.some((message) => message.payoutId === row.payout.id && isWaiting(message)),
      )
      .sort((a, b) => a.scheduledAt.getTime() - b.scheduledAt.getTime())
      .slice(0, limit);
    for (const row of claimed) row.scheduledAt = now;
    return Promise.resolve(
      claimed.map(({ payout }) => ({ id: payout.id, clientId: payout.clientId, status: payout.status })),
    );
  }

  countStuck(olderThanSeconds: number): Promise<{ stuck: Record<string, number>; needsAttention: number }> {
    const threshold = this.now().getTime() - olderThanSeconds * 1000;
    const stuck: Record<string, number> = Object.fromEntries(
      UNFINISHED_STATUSES.map((status) => [status, 0]),
    );
    let needsAttention = 0;
    for (const { payout, statusChangedAt } of this.rows.values()) {
      if (payout.stage === ATTENTION_STAGE) needsAttention += 1;
      else if (UNFINISHED_STATUSES.includes(payout.status) && statusChangedAt.getTime() < threshold) {
        stuck[payout.status] = (stuck[payout.status] ?? 0) + 1;
      }
    }
    return Promise.resolve({ stuck, needsAttention });
  }

  listNeedingAttention(clientId: string, stuckAfterSeconds: number, limit: number): Promise<Payout[]> {
    const threshold = this.now().getTime() - stuckAfterSeconds * 1000;
    const rows = [...this.rows.values()]
      .filter(
        ({ payout, deletedAt, statusChangedAt }) =>
          payout.clientId === clientId &&
          deletedAt === null &&
          UNFINISHED_STATUSES.includes(payout.status) &&
          (payout.stage === ATTENTION_STAGE || statusChangedAt.getTime() < threshold),
      )
      .sort((a, b) => a.statusChangedAt.getTime() - b.statusChangedAt.getTime() || a.seq - b.seq);
    return Promise.resolve(rows.slice(0, limit).map((row) => copy(row.payout)));
  }

  deleteExpiredOutcomes(ttlHours: number): Promise<number> {
    const threshold = this.now().getTime() - ttlHours * HOUR_MS;
    let deleted = 0;
    for (const [key, outcome] of this.outcomes) {
      if (outcome.createdAt.getTime() < threshold) {
        this.outcomes.delete(key);
        deleted += 1;
      }
    }
    return Promise.resolve(deleted);
  }

  /** A relay's work: the waiting messages of a payout (or of all) published. Returns how many. */
  publish(payoutId?: string): number {
    const waiting = this.messages.filter(
      (message) => isWaiting(message) && (payoutId === undefined || message.payoutId === payoutId),
    );
    for (const message of waiting) message.published = true;
    return waiting.length;
  }

  /** The messages of one payout not yet published nor withdrawn. */
  waiting(payoutId: string): StoredMessage[] {
    return this.messages.filter((message) => message.payoutId === payoutId && isWaiting(message));
  }

  /** `UPDATE … WHERE id AND client AND version = expected AND not deleted`, with its history row and messages. */
  private apply(change: VersionedChange): Payout | null {
    const row = this.rows.get(change.id);
    if (
      !row ||
      row.payout.clientId !== change.clientId ||
      row.payout.version !== change.expectedVersion ||
      row.deletedAt !== null
    ) {
      return null;
    }
    const now = this.now();
    const { status, stage, snapshot, machineVersion, description, failure, deleted } = change.changes;
    const before = row.payout;
    if (status !== undefined && status !== before.status) row.statusChangedAt = now;
    if ((change.commands?.length ?? 0) > 0) row.scheduledAt = now;
    if (deleted === true) row.deletedAt = now;
    row.payout = {
      ...before,
      version: before.version + 1,
      updatedAt: now,
      status: status ?? before.status,
      stage: stage !== undefined ? stage : before.stage,
      snapshot: snapshot !== undefined ? structuredClone(snapshot) : before.snapshot,
      machineVersion: machineVersion ?? before.machineVersion,
      description: description !== undefined ? description : before.description,
      failure: failure !== undefined ? failure && { ...failure } : before.failure,
    };
    this.addEvent(change.id, { ...change.history, to: row.payout.status }, now);
    // The withdrawal sees the outbox as it was before this change (one statement, one snapshot): the change's
    // own messages are never withdrawn by it.
    if (change.settledSeq !== undefined && change.settledSeq !== null) {
      for (const message of this.messages) {
        if (
          message.payoutId === change.id &&
          message.commandSeq === change.settledSeq &&
          isWaiting(message)
        ) {
          message.withdrawn = true;
          message.lockedUntil = null;
        }
      }
    }
    for (const message of change.commands ?? []) this.addMessage({ ...message, payoutId: change.id });
    if (change.webhookEvent) {
      this.webhookEvents.push({
        ...change.webhookEvent,
        payoutId: change.id,
        payoutVersion: row.payout.version,
      });
    }
    return copy(row.payout);
  }

  private visible(read: PayoutRead): Row | undefined {
    const row = this.rows.get(read.id);
    if (!row || row.payout.clientId !== read.clientId) return undefined;
    return row.deletedAt === null || read.includeDeleted ? row : undefined;
  }

  private liveOutcome(clientId: string, key: string, ttlHours: number): OutcomeRow | undefined {
    const row = this.outcomes.get(outcomeKey(clientId, key));
    return row && row.createdAt.getTime() >= this.now().getTime() - ttlHours * HOUR_MS ? row : undefined;
  }

  private addEvent(payoutId: string, entry: Omit<PayoutHistoryEntry, 'id' | 'at'>, at: Date): void {
    this.events.push({ ...entry, payoutId, id: String(this.events.length + 1), at: new Date(at) });
  }

  private addMessage(message: ScheduledMessage): void {
    const leaseMs = message.leaseMs ?? 0;
    this.messages.push({
      id: message.id,
      payoutId: message.payoutId,
      commandSeq: message.commandSeq,
      topic: message.topic,
      payload: structuredClone(message.payload),
      leaseMs,
      lockedUntil: leaseMs > 0 ? new Date(this.now().getTime() + leaseMs) : null,
      withdrawn: false,
      published: false,
    });
  }
}

/** Runs a synchronous step as the port's promise: its result, or its error as a rejection. */
function settled<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

function isWaiting(message: StoredMessage): boolean {
  return !message.withdrawn && !message.published;
}

function outcomeKey(clientId: string, key: string): string {
  return JSON.stringify([clientId, key]);
}

/** A payout as a fresh read returns it: nothing shared with the stored one (`Money` is immutable). */
function copy(payout: Payout): Payout {
  return {
    ...payout,
    recipient: structuredClone(payout.recipient),
    snapshot: structuredClone(payout.snapshot),
    failure: payout.failure && { ...payout.failure },
    createdAt: new Date(payout.createdAt),
    updatedAt: new Date(payout.updatedAt),
  };
}

/** A payout as the list reads it (as the SQL store's page does): no snapshot, its last error. */
function summaryOf(payout: Payout): PayoutSummary {
  const { snapshot: _snapshot, machineVersion: _machineVersion, ...summary } = payout;
  return { ...summary, lastError: lastErrorOf(payout) };
}
