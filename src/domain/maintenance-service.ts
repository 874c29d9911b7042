/**
 * The service's own housekeeping, run by the sweeper for the whole service (not for one client): re-driving
 * payouts whose message was lost, counting stuck payouts and those that need a person, forgetting expired
 * idempotency keys. A re-drive is a machine event (`REDRIVE`, sent as `system`): the machine sends its outstanding
 * command once more, or, past `MAX_REDRIVES`, moves the payout to `needs_attention` and stops asking.
 */
import { DomainError } from './errors.js';
import type { PayoutService } from './payout-service.js';
import type { PayoutStore, StuckPayout } from './ports.js';
import { systemPrincipal } from './principal.js';

export interface MaintenanceDeps {
  store: PayoutStore;
  service: PayoutService;
  stuckAfterSeconds: number;
  idempotencyTtlHours: number;
}

export type RedrivenPayout = StuckPayout;

export class MaintenanceService {
  constructor(private readonly deps: MaintenanceDeps) {}

  /**
   * Re-drives up to `limit` payouts left unfinished past the threshold with no message waiting. The store claims
   * them (two sweepers never take the same one); each payout is then told `REDRIVE` under its version check. A
   * payout that moved on meanwhile refuses the event, and is skipped.
   */
  async redriveStuckPayouts(limit: number, requestId: string): Promise<RedrivenPayout[]> {
    const claimed = await this.deps.store.claimStuck(this.deps.stuckAfterSeconds, limit);
    const at = new Date().toISOString();
    const redriven = await Promise.all(
      claimed.map(async (payout) => {
        try {
          await this.deps.service.applyEvent(
            systemPrincipal(payout.clientId),
            payout.id,
            { type: 'REDRIVE', at },
            { requestId },
          );
          return payout;
        } catch (error) {
          if (error instanceof DomainError && error.code !== 'service_unavailable') return null;
          throw error;
        }
      }),
    );
    return redriven.filter((payout): payout is RedrivenPayout => payout !== null);
  }

  /** Unfinished payouts older than the threshold, by status, and the payouts that need a person. */
  countStuckPayouts(): Promise<{ stuck: Record<string, number>; needsAttention: number }> {
    return this.deps.store.countStuck(this.deps.stuckAfterSeconds);
  }

  /** Removes idempotency keys past their retention; the key may then be used again. */
  removeExpiredIdempotencyKeys(): Promise<number> {
    return this.deps.store.deleteExpiredOutcomes(this.deps.idempotencyTtlHours);
  }
}
