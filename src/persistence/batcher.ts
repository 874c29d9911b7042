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
  /** Largest batch; the items beyond it go in further statements, sent alongside. */
  maxBatch: number;
  /**
   * Items with the same key never run at the same time: the later one waits until the statements holding the
   * earlier one have settled, so each statement's items are distinct (say, one change per payout, each
   * answered by its own row) and a change does not find its payout busy with the change before it.
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
  /** Items held back from a flush because their key was already in it, and whether their release is pending. */
  private held: Array<Pending<I, O>> = [];
  private releasing = false;

  /** `runBatch` answers one result per item, in the items' order. */
  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly options: BatcherOptions<I>,
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const { keyOf, maxBatch } = this.options;
    const keys = new Set<string>();
    const sent: Array<Promise<void>> = [];
    let batch: Array<Pending<I, O>> = [];
    for (const pending of this.queue) {
      const key = keyOf?.(pending.item);
      if (key !== undefined) {
        if (keys.has(key)) {
          this.held.push(pending);
          continue;
        }
        keys.add(key);
      }
      batch.push(pending);
      if (batch.length === maxBatch) {
        sent.push(this.send(batch));
        batch = [];
      }
    }
    if (batch.length > 0) sent.push(this.send(batch));
    this.queue = [];
    // An item whose key is already in one of these statements waits until they have all settled: it would only
    // find its row busy (or changed) while they run.
    if (this.held.length > 0 && !this.releasing) {
      this.releasing = true;
      void Promise.all(sent).then(() => {
        this.releasing = false;
        this.queue.unshift(...this.held.splice(0));
        this.schedule();
      });
    }
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
        await Promise.all(batch.map((pending) => this.send([pending])));
      }
      return;
    }
    batch.forEach((pending, index) => pending.resolve(results[index]!));
  }
}
