/**
 * Removing expired rows (published outbox messages, idempotency outcomes, settled webhook deliveries) in batches. One `DELETE … LIMIT n` per
 * call is not enough: at 500 creates a second a table gains 30,000 rows a minute, so a pruner that removes one
 * batch per round falls behind for good. A pruner here deletes batch after batch until a batch comes back short
 * (caught up) or its time budget is spent, so a round never holds the caller for long and the caller knows whether
 * to come back sooner.
 */

export interface PruneBudget {
  /** Rows per `DELETE` statement. */
  batchSize: number;
  /** Longest one call keeps deleting, in milliseconds; a batch already started is finished. */
  budgetMs: number;
}

export interface PruneResult {
  deleted: number;
  /** The last batch was short: nothing expired is left (as far as this pruner could see). */
  caughtUp: boolean;
}

/** Calls `deleteBatch(batchSize)` until it deletes fewer rows than asked or the budget is spent. */
export async function pruneInBatches(
  deleteBatch: (limit: number) => Promise<number>,
  { batchSize, budgetMs }: PruneBudget,
  clock: () => number = () => performance.now(),
): Promise<PruneResult> {
  const started = clock();
  let deleted = 0;
  for (;;) {
    const batch = await deleteBatch(batchSize);
    deleted += batch;
    if (batch < batchSize) return { deleted, caughtUp: true };
    if (clock() - started >= budgetMs) return { deleted, caughtUp: false };
  }
}
