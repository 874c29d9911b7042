/**
 * The scheduling port: how a change hands the payout's commands to the outside world. The outbox adapter turns
 * each command into a message row written by the change's own statement; the relay publishes it after commit.
 */
import type { PayoutCommand } from '../machines/payout.machine.js';

export interface CommandRequest {
  payoutId: string;
  clientId: string;
  requestId: string | null;
  command: PayoutCommand;
  /**
   * Keep relays away from the row this long: the worker that wrote it carries the command out itself, and the
   * row is only the fallback should that worker die. 0: publish at once.
   */
  leaseMs?: number;
}

/** A command as it is stored until published: the row a change writes with its payout. */
export interface ScheduledMessage {
  id: string;
  topic: string;
  payload: Record<string, unknown>;
  payoutId: string;
  /** The payout's command number (`PayoutCommand.seq`). */
  commandSeq: number;
  leaseMs?: number;
}

export interface ProcessingScheduler {
  /** The message that carries one command, for the change's statement to store with the payout. */
  messageFor(request: CommandRequest): ScheduledMessage;
}

/** Told after a commit that scheduled work, so relays wake without waiting for their next poll. */
export interface OutboxWaker {
  wake(): void;
}
