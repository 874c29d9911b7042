/** The waker that NOTIFYs relays after a commit that stored messages. */
import type { Knex } from 'knex';
import type { OutboxWaker } from '../domain/scheduling.js';
import { notifyOutbox } from './outbox-repository.js';

/**
 * Sends `NOTIFY` after commit, at most once per `minIntervalMs`: a wake-up that arrives while one is in flight or
 * within the interval is folded into one more, sent when the interval is over. A relay then claims everything
 * committed meanwhile in one batch, so under load the NOTIFYs stay a few per second instead of one per create,
 * at the cost of at most `minIntervalMs` of added latency.
 */
export class NotifyWaker implements OutboxWaker {
  private busy = false;
  private again = false;

  constructor(
    private readonly db: Knex,
    private readonly onError: (error: unknown) => void,
    private readonly minIntervalMs = 10,
  ) {}

  wake(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    void notifyOutbox(this.db)
      .catch(this.onError)
      .then(() => new Promise((resolve) => setTimeout(resolve, this.minIntervalMs).unref()))
      .finally(() => {
        this.busy = false;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }
}
