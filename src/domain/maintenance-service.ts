/**
 * The service's own housekeeping, run by the sweeper for the whole service (not for one client): re-driving
 * payouts whose message was lost, counting stuck payouts, forgetting expired idempotency keys. Re-driving
 * schedules a message; it never changes a payout (no machine event, no version bump).
 */
import type { Knex } from 'knex';
import type { PayoutStatus } from '../machines/payout.machine.js';
import { deleteExpiredIdempotencyKeys } from '../persistence/idempotency-repository.js';
import { claimStuckPayouts, countStuckPayouts, markScheduled } from '../persistence/payout-repository.js';
import type { OutboxWaker, ProcessingScheduler } from './scheduling.js';

export interface MaintenanceDeps {
  db: Knex;
  scheduler: ProcessingScheduler;
  waker: OutboxWaker;
  stuckAfterSeconds: number;
  idempotencyTtlHours: number;
}

export interface RedrivenPayout {
  id: string;
  clientId: string;
  status: PayoutStatus;
}

export class MaintenanceService {
  constructor(private readonly deps: MaintenanceDeps) {}

  /**
   * Puts a fresh processing message in the outbox for up to `limit` payouts left in `created` or `processing`
   * past the threshold. One transaction: the claim's row locks (SKIP LOCKED, so two sweepers split the work),
   * the outbox rows and the new `scheduled_at` commit together; relays are woken after the commit.
   */
  async redriveStuckPayouts(limit: number, requestId: string): Promise<RedrivenPayout[]> {
    const claimed = await this.deps.db.transaction(async (tx) => {
      const stuck = await claimStuckPayouts(tx, this.deps.stuckAfterSeconds, limit);
      await this.deps.scheduler.schedule(
        tx,
        stuck.map((payout) => ({ payoutId: payout.id, clientId: payout.clientId, requestId })),
      );
      await markScheduled(
        tx,
        stuck.map((payout) => payout.id),
      );
      return stuck;
    });
    if (claimed.length > 0) this.deps.waker.wake();
    return claimed;
  }

  /** Unfinished payouts older than the threshold, by status. */
  async countStuckPayouts(): Promise<Record<string, number>> {
    return countStuckPayouts(this.deps.db, this.deps.stuckAfterSeconds);
  }

  /** Removes idempotency keys past their retention; the key may then be used again. */
  async removeExpiredIdempotencyKeys(): Promise<number> {
    return deleteExpiredIdempotencyKeys(this.deps.db, this.deps.idempotencyTtlHours);
  }
}
