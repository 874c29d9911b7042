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
  /** Largest batch (default `DEFAULT_MAX_BATCH`); the items beyond it go in further statements, sent alongside. */
  maxBatch?: number;
  /**
   * Items with the same key never run at the same time: the later one waits until the statement holding the
   * earlier one has settled, so each statement's items are distinct (say, one change per payout, each
   * answered by its own row) and a change does not find its payout busy with the change before it. An item
   * without a key (undefined) is never held.
   */
  keyOf?: (item: I) => string | undefined;
  /**
   * Most statements in flight at once (default: no limit). The items that arrive while all of them run wait, and
   * go together in the next statement when one settles: under load, fewer and fuller statements.
   */
  maxStatements?: number;
}

/** Most items in one statement unless told otherwise: big enough for a worker's handlers, small enough to plan fast. */
export const DEFAULT_MAX_BATCH = 128;

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export class Batcher<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private scheduled = false;
  /** Keys of the items in statements not yet settled, and the items held back because their key is among them. */
  private readonly inFlight = new Set<string>();
  private held: Array<Pending<I, O>> = [];
  /** Statements sent and not yet settled. */
  private statements = 0;

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
    const { keyOf, maxBatch = DEFAULT_MAX_BATCH, maxStatements = Infinity } = this.options;
    let batch: Array<Pending<I, O>> = [];
    let taken = 0;
    for (const pending of this.queue) {
      // Every statement allowed is running: the rest waits for one to settle, and goes with it then.
      if (batch.length === 0 && this.statements >= maxStatements) break;
      taken += 1;
      const key = keyOf?.(pending.item);
      if (key !== undefined) {
        // In a statement already: it would only find its row busy (or changed) while that statement runs.
        if (this.inFlight.has(key)) {
          this.held.push(pending);
          continue;
        }
        this.inFlight.add(key);
      }
      batch.push(pending);
      if (batch.length === maxBatch) {
        void this.send(batch);
        batch = [];
      }
    }
    if (batch.length > 0) void this.send(batch);
    this.queue = this.queue.slice(taken);
  }

  /** Runs one statement, then frees its keys and lets the items held back for them try again. */
  private async send(batch: Array<Pending<I, O>>): Promise<void> {
    this.statements += 1;
    await this.execute(batch);
    this.statements -= 1;
    const { keyOf } = this.options;
    if (keyOf) {
      for (const pending of batch) {
        const key = keyOf(pending.item);
        if (key !== undefined) this.inFlight.delete(key);
      }
    }
    if (this.held.length > 0) {
      const held = this.held;
      this.held = [];
      this.queue = held.concat(this.queue);
    }
    if (this.queue.length > 0) this.schedule();
  }

  /** Settles every item of the batch; never throws. */
  private async execute(batch: Array<Pending<I, O>>): Promise<void> {
    let results: O[];
    try {
      results = await this.runBatch(batch.map((pending) => pending.item));
    } catch (error) {
      // One bad item (a constraint it breaks) must not fail the others: each is sent again on its own, and
      // only its own caller sees its error. A database that is away fails every item alike, at once.
      if (batch.length === 1 || isDatabaseUnavailable(error)) {
        for (const pending of batch) pending.reject(error);
      } else {
        await Promise.all(batch.map((pending) => this.execute([pending])));
      }
      return;
    }
    batch.forEach((pending, index) => pending.resolve(results[index]!));
  }
}
