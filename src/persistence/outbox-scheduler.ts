/** The outbox adapter of the scheduling port, and the waker that NOTIFYs relays after commit. */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type {
  OutboxWaker,
  ProcessingRequest,
  ProcessingScheduler,
  ScheduledMessage,
} from '../domain/scheduling.js';
import { insertOutboxMessages, notifyOutbox } from './outbox-repository.js';

export const PROCESS_TOPIC = 'payout.process';
export const PROCESS_MESSAGE_SCHEMA_VERSION = 1;

/** The body of a processing message, as it travels from the outbox to the worker. */
export interface ProcessMessage {
  schema_version: 1;
  message_id: string;
  payout_id: string;
  client_id: string;
  request_id: string | null;
}

export class OutboxScheduler implements ProcessingScheduler {
  async schedule(tx: Knex.Transaction, requests: ProcessingRequest[]): Promise<void> {
    await insertOutboxMessages(
      tx,
      requests.map((request) => this.messageFor(request)),
    );
  }

  messageFor(request: ProcessingRequest): ScheduledMessage {
    const id = uuidv7();
    const payload: ProcessMessage = {
      schema_version: PROCESS_MESSAGE_SCHEMA_VERSION,
      message_id: id,
      payout_id: request.payoutId,
      client_id: request.clientId,
      request_id: request.requestId,
    };
    return {
      id,
      topic: PROCESS_TOPIC,
      payload: payload as unknown as Record<string, unknown>,
      payoutId: request.payoutId,
    };
  }
}

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
