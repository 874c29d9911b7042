/**
 * The transactional outbox: a message is inserted in the same transaction as the change that needs it, and the
 * relay publishes it after commit. Claims use a lease instead of holding row locks while publishing.
 */
import type { Knex } from 'knex';
import type { ScheduledMessage } from '../domain/scheduling.js';

type Runner = Knex | Knex.Transaction;

export const OUTBOX_CHANNEL = 'payouts_outbox';

export interface OutboxMessage {
  id: string;
  topic: string;
  payload: Record<string, unknown>;
  attempts: number;
}

export async function insertOutboxMessages(
  tx: Knex.Transaction,
  messages: ScheduledMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  await tx('outbox').insert(
    messages.map((message) => ({
      payout_id: message.payoutId,
      id: message.id,
      topic: message.topic,
      payload: JSON.stringify(message.payload),
    })),
  );
}

/** The unpublished rows a claim may take, oldest first (`?`: how many): what every claim reads through. */
export const CLAIMABLE_ROWS = `SELECT id FROM outbox
   WHERE published_at IS NULL AND (locked_until IS NULL OR locked_until < now())
   ORDER BY seq
   LIMIT ?
   FOR UPDATE SKIP LOCKED`;

/**
 * Claims up to `limit` unpublished rows whose lease is free or expired and leases them for `leaseMs`. The
 * row locks of `FOR UPDATE SKIP LOCKED` last only for this statement's transaction; the lease is what keeps
 * other relays away while this one publishes.
 */
export async function claimOutboxBatch(
  runner: Runner,
  limit: number,
  leaseMs: number,
): Promise<OutboxMessage[]> {
  const result = await runner.raw<{ rows: OutboxMessage[] }>(
    `UPDATE outbox SET locked_until = now() + make_interval(secs => ?::double precision / 1000), attempts = attempts + 1
      WHERE id IN (${CLAIMABLE_ROWS})
      RETURNING id, topic, payload, attempts`,
    [leaseMs, limit],
  );
  return result.rows;
}

export async function markOutboxPublished(runner: Runner, ids: string[]): Promise<void> {
  if (ids.length > 0)
    await runner('outbox').update({ published_at: runner.fn.now(), locked_until: null }).whereIn('id', ids);
}

/**
 * Gives a row back after a failed publish. With `retryInMs` the row stays leased that long (a back-off, so a
 * broker that refuses publishes is not hammered by every relay); without it the next claim retries it at once.
 */
export async function releaseOutboxMessage(
  runner: Runner,
  id: string,
  error: string,
  retryInMs = 0,
): Promise<void> {
  await runner('outbox')
    .update({
      locked_until:
        retryInMs > 0
          ? runner.raw(`now() + make_interval(secs => ?::double precision / 1000)`, [retryInMs])
          : null,
      last_error: error.slice(0, 1000),
    })
    .where({ id });
}

/**
 * Deletes up to `limit` published rows older than the retention. Rows another relay is deleting at the same moment
 * are skipped rather than waited for.
 */
export async function pruneOutbox(runner: Runner, retentionHours: number, limit: number): Promise<number> {
  const result = await runner.raw<{ rowCount: number }>(
    `DELETE FROM outbox WHERE id IN (
       SELECT id FROM outbox WHERE published_at < now() - make_interval(hours => ?) LIMIT ? FOR UPDATE SKIP LOCKED)`,
    [retentionHours, limit],
  );
  return result.rowCount;
}

export async function outboxBacklog(runner: Runner): Promise<{ count: number; oldestAgeSeconds: number }> {
  const result = await runner.raw<{ rows: Array<{ count: string; oldest: string | null }> }>(
    `SELECT count(*) AS count, extract(epoch FROM now() - min(created_at))::text AS oldest
       FROM outbox WHERE published_at IS NULL`,
  );
  const row = result.rows[0];
  return { count: Number(row?.count ?? 0), oldestAgeSeconds: row?.oldest ? Number(row.oldest) : 0 };
}

/** Wakes relays. Sent after commit by the caller, outside any hot transaction. */
export async function notifyOutbox(runner: Runner): Promise<void> {
  await runner.raw(`SELECT pg_notify(?, '')`, [OUTBOX_CHANNEL]);
}
