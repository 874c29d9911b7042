/**
 * The payout store on PostgreSQL: the domain's `PayoutStore` port. Its inner business is how: a create is one
 * named statement; concurrent creates, reads and versioned changes share statements (`Batcher`), a batch of
 * changes skipping rows another transaction holds (those changes are written alone, waiting for the row); the
 * last resort of a busy payout reads it `FOR UPDATE` in a transaction. PostgreSQL's errors leave as the
 * domain's: unreachable → `StoreUnavailable`, a value it refuses → `ValueRejected`.
 */
import type { Knex } from 'knex';
import { KEY_NOT_ACTIVE, StoreUnavailable, Unauthenticated, ValueRejected } from '../domain/errors.js';
import type { Payout } from '../domain/payout.js';
import type { KeyProof, Role } from '../domain/principal.js';
import type * as port from '../domain/ports.js';
import { Batcher } from './batcher.js';
import { isDataError, isDatabaseUnavailable } from '../database-errors.js';
import { deleteExpiredIdempotencyKeys, findIdempotentOutcome } from './idempotency-repository.js';
import * as payouts from './payout-repository.js';
import { pruneInBatches } from './pruning.js';

/**
 * Expired idempotency outcomes are deleted this many per statement, for at most this long per sweep. A sweep every
 * 30 s at 500 creates a second has 15,000 to remove (test/integration/consumers/pruning.test.ts removes 12,000 in
 * one sweep).
 */
const OUTCOME_PRUNING = { batchSize: 5_000, budgetMs: 2_000 };

/** Create statements in flight at once (see the constructor). */
const CREATE_STATEMENTS = 2;

export class PgPayoutStore implements port.PayoutStore {
  /** Creates, reads and versioned changes outside a transaction: concurrent calls share a statement. */
  private readonly creates: Batcher<payouts.NewPayoutWrite, port.CreateOutcome>;
  private readonly reads: Batcher<port.PayoutRead, Payout | null | typeof payouts.KEY_REFUSED>;
  private readonly renderedReads: Batcher<
    port.PayoutRead & { role: Role },
    port.RenderedPayout | null | typeof payouts.KEY_REFUSED
  >;
  private readonly changes: Batcher<port.VersionedChange, Payout | null | typeof payouts.ROW_LOCKED>;

  constructor(private readonly db: Knex) {
    // Two creates with one idempotency key never share a statement: the later waits for the earlier to settle,
    // then finds its outcome stored (a replay) instead of its lock taken. At most two create statements run at
    // once (one filling while the other commits): under load the creates gather into fuller statements, and
    // a burst of creates leaves the pool's other connections to the reads.
    this.creates = new Batcher((creates) => payouts.insertPayouts(db, creates), {
      keyOf: payouts.createLockKey,
      maxStatements: CREATE_STATEMENTS,
    });
    this.reads = new Batcher((reads) => payouts.findPayouts(db, reads), {});
    this.renderedReads = new Batcher((reads) => payouts.findPayoutResources(db, reads), {});
    this.changes = new Batcher((changes) => payouts.updateUnlockedPayoutsVersioned(db, changes), {
      keyOf: (change) => change.id,
    });
  }

  create(
    payout: Payout,
    first: Omit<port.NewHistoryEntry, 'payoutId' | 'from' | 'to'>,
    message: port.ScheduledMessage,
    outcome: port.IdempotentOutcome | null,
    webhookEvent?: port.NewWebhookEvent,
    proof?: KeyProof,
  ): Promise<port.CreateOutcome> {
    return translated(() => this.creates.run({ payout, first, message, outcome, webhookEvent, proof }));
  }

  findOutcome(clientId: string, key: string, ttlHours: number): Promise<port.StoredOutcome | null> {
    return translated(() => findIdempotentOutcome(this.db, clientId, key, ttlHours));
  }

  find(read: port.PayoutRead): Promise<Payout | null> {
    return translated(async () => {
      const found = await this.reads.run(read);
      if (found === payouts.KEY_REFUSED) throw new Unauthenticated(KEY_NOT_ACTIVE);
      return found;
    });
  }

  findResource(read: port.PayoutRead, role: Role): Promise<port.RenderedPayout | null> {
    return translated(async () => {
      const found = await this.renderedReads.run({ ...read, role });
      if (found === payouts.KEY_REFUSED) throw new Unauthenticated(KEY_NOT_ACTIVE);
      return found;
    });
  }

  /** Batched with other changes; a change whose row another transaction held is written alone, waiting for it. */
  save(change: port.VersionedChange): Promise<Payout | null> {
    return translated(async () => {
      const batched = await this.changes.run(change);
      if (batched !== payouts.ROW_LOCKED) return batched;
      return (await payouts.updatePayoutsVersioned(this.db, [change]))[0]!;
    });
  }

  saveLocked(
    read: port.PayoutRead,
    prepare: (current: Payout) => port.VersionedChange,
  ): Promise<Payout | null> {
    return translated(() =>
      this.db.transaction(async (tx) => {
        const [current] = await payouts.findPayouts(tx, [read], { forUpdate: true });
        if (current === payouts.KEY_REFUSED) throw new Unauthenticated(KEY_NOT_ACTIVE);
        if (!current) return null;
        const [saved] = await payouts.updatePayoutsVersioned(tx, [prepare(current)]);
        if (!saved) throw new Error(`payout ${read.id} changed while locked`);
        return saved;
      }),
    );
  }

  list(clientId: string, filter: port.PayoutListFilter, proof?: KeyProof): Promise<port.PayoutListPage> {
    return translated(async () => {
      const page = await payouts.listPayoutPage(this.db, clientId, filter, proof);
      if (page === payouts.KEY_REFUSED) throw new Unauthenticated(KEY_NOT_ACTIVE);
      return page;
    });
  }

  listResources(
    clientId: string,
    role: Role,
    filter: port.PayoutListFilter,
    proof?: KeyProof,
  ): Promise<port.PayoutResourcePage> {
    return translated(async () => {
      const page = await payouts.listPayoutResourcePage(this.db, clientId, role, filter, proof);
      if (page === payouts.KEY_REFUSED) throw new Unauthenticated(KEY_NOT_ACTIVE);
      return page;
    });
  }

  history(payoutId: string, query: port.PayoutHistoryQuery): Promise<port.PayoutHistoryPage> {
    return translated(() => payouts.listHistory(this.db, payoutId, query));
  }

  claimStuck(olderThanSeconds: number, limit: number): Promise<port.StuckPayout[]> {
    return translated(() => payouts.claimStuckPayouts(this.db, olderThanSeconds, limit));
  }

  countStuck(olderThanSeconds: number): Promise<{ stuck: Record<string, number>; needsAttention: number }> {
    return translated(() => payouts.countStuckPayouts(this.db, olderThanSeconds));
  }

  listNeedingAttention(clientId: string, stuckAfterSeconds: number, limit: number): Promise<Payout[]> {
    return translated(() => payouts.listNeedingAttention(this.db, clientId, stuckAfterSeconds, limit));
  }

  async deleteExpiredOutcomes(ttlHours: number): Promise<number> {
    const { deleted } = await translated(() =>
      pruneInBatches((limit) => deleteExpiredIdempotencyKeys(this.db, ttlHours, limit), OUTCOME_PRUNING),
    );
    return deleted;
  }
}

/**
 * Runs a store operation, PostgreSQL's failures as the domain's errors (the original as their `cause`, so that the
 * worker's retry policy still reads the SQLSTATE); anything else as it was thrown.
 */
export async function translated<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isDataError(error)) throw new ValueRejected(error);
    if (isDatabaseUnavailable(error)) throw new StoreUnavailable(error);
    throw error;
  }
}
