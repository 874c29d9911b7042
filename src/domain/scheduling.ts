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

export interface ProcessingScheduler {
  /** Records, inside `tx`, that these payouts need processing. Nothing is published before `tx` commits. */
  schedule(tx: Knex.Transaction, requests: ProcessingRequest[]): Promise<void>;
}

/** Told after a commit that scheduled work, so relays wake without waiting for their next poll. */
export interface OutboxWaker {
  wake(): void;
}
