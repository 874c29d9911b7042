/**
 * Coalesces single-row calls into one statement. Callers ask for one item and get one result; the calls made
 * in the same turn of the event loop (for a worker: the handlers woken by the previous statement's answer) are
 * sent together as one statement on the next turn. Nothing is weakened by the grouping: each statement is
 * atomic on its own, and a caller's promise settles only when the statement holding its item has committed.
 *
 * Under light load a batch holds one item and costs what a single statement costs; under load the round trips,
 * pool checkouts and query parsing are shared by the batch.
 */
import { isDatabaseUnavailable } from './db.js';

export interface BatcherOptions<I> {
  /** Largest batch sent at once; more items wait for the next statement. */
  maxBatch: number;
  /**
   * Items with the same key never share a statement (say, two changes of one payout: a statement may apply
   * only one of them, and the loser must see the winner's row). The later item goes in another statement.
   */
  keyOf?: (item: I) => string;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export class Batcher<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private scheduled = false;

  /** `runBatch` answers one result per item, in the items' order. */
  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly options: BatcherOptions<I>,
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      void this.send(batch);
    }
  }

  /** The next batch: up to `maxBatch` items in arrival order, at most one per key; the rest stays queued. */
  private takeBatch(): Array<Pending<I, O>> {
    const { keyOf, maxBatch } = this.options;
    const batch: Array<Pending<I, O>> = [];
    const rest: Array<Pending<I, O>> = [];
    const keys = new Set<string>();
    for (const pending of this.queue) {
      const key = keyOf?.(pending.item);
      if (batch.length >= maxBatch || (key !== undefined && keys.has(key))) {
        rest.push(pending);
        continue;
      }
      if (key !== undefined) keys.add(key);
      batch.push(pending);
    }
    this.queue = rest;
    return batch;
  }

  private async send(batch: Array<Pending<I, O>>): Promise<void> {
    let results: O[];
    try {
      results = await this.runBatch(batch.map((pending) => pending.item));
    } catch (error) {
      // One bad item (a constraint it breaks) must not fail the others: each is sent again on its own, and
      // only its own caller sees its error. A database that is away fails every item alike, at once.
      if (batch.length === 1 || isDatabaseUnavailable(error)) {
        for (const pending of batch) pending.reject(error);
      } else {
        for (const pending of batch) void this.send([pending]);
      }
      return;
    }
    batch.forEach((pending, index) => pending.resolve(results[index]!));
  }
}
