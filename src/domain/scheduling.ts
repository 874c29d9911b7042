/**
 * The scheduling port: how a change asks for asynchronous processing. The outbox adapter writes a message row
 * in the caller's transaction; the relay publishes it after commit.
 */
import type { Knex } from 'knex';

export interface ProcessingRequest {
  payoutId: string;
  clientId: string;
  requestId: string | null;
}

/** A processing message as it is stored until published: the row a create writes with its payout. */
export interface ScheduledMessage {
  id: string;
  topic: string;
  payload: Record<string, unknown>;
  payoutId: string;
}

export interface ProcessingScheduler {
  /** Records, inside `tx`, that these payouts need processing. Nothing is published before `tx` commits. */
  schedule(tx: Knex.Transaction, requests: ProcessingRequest[]): Promise<void>;
  /**
   * The message that schedules one payout, for a caller that stores it in its own statement (the create writes
   * it with the payout: one round trip fewer). That caller must commit it with the payout, as `schedule` would.
   */
  messageFor(request: ProcessingRequest): ScheduledMessage;
}

/** Told after a commit that scheduled work, so relays wake without waiting for their next poll. */
export interface OutboxWaker {
  wake(): void;
}
