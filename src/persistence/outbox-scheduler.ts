/** The outbox adapter of the scheduling port, and the waker that NOTIFYs relays after commit. */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type { PayoutCommandType } from '../machines/payout.machine.js';
import type {
  CommandRequest,
  OutboxWaker,
  ProcessingScheduler,
  ScheduledMessage,
} from '../domain/scheduling.js';
import { notifyOutbox } from './outbox-repository.js';

export const PROCESS_TOPIC = 'payout.process';
export const PROCESS_MESSAGE_SCHEMA_VERSION = 2;

/**
 * The body of a payout message, as it travels from the outbox to the worker: one of the payout's commands.
 * Version 1 (written before commands existed) has no `command`: the worker reads it as "carry out whatever the
 * payout has outstanding now".
 */
export interface ProcessMessage {
  schema_version: 1 | 2;
  message_id: string;
  payout_id: string;
  client_id: string;
  request_id: string | null;
  command?: { seq: number; type: PayoutCommandType; delay_ms: number };
}

export class OutboxScheduler implements ProcessingScheduler {
  messageFor(request: CommandRequest): ScheduledMessage {
    const id = uuidv7();
    const { seq, type, delay_ms } = request.command;
    const payload: ProcessMessage = {
      schema_version: PROCESS_MESSAGE_SCHEMA_VERSION,
      message_id: id,
      payout_id: request.payoutId,
      client_id: request.clientId,
      request_id: request.requestId,
      command: { seq, type, delay_ms },
    };
    return {
      id,
      topic: PROCESS_TOPIC,
      payload: payload as unknown as Record<string, unknown>,
      payoutId: request.payoutId,
      commandSeq: seq,
      leaseMs: request.leaseMs,
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
