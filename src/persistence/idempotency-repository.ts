/** Stored outcomes of `POST /api/payouts` per (client, Idempotency-Key). */
import type { Knex } from 'knex';
import type { IdempotencyKeyRow } from './models.js';

type Runner = Knex | Knex.Transaction;

export interface StoredOutcome {
  requestHash: string;
  payoutId: string;
  status: number;
  body: Record<string, unknown>;
}

/**
 * Serialises requests that carry the same key: a transaction-scoped advisory lock on (client, key). Returns
 * false at once when another transaction holds it (a duplicate still in flight) instead of waiting.
 */
export async function tryLockIdempotencyKey(
  tx: Knex.Transaction,
  clientId: string,
  key: string,
): Promise<boolean> {
  const result = await tx.raw<{ rows: Array<{ locked: boolean }> }>(
    `SELECT pg_try_advisory_xact_lock(hashtextextended(? || ':' || ?, 0)) AS locked`,
    [clientId, key],
  );
  return result.rows[0]?.locked === true;
}

export async function findIdempotentOutcome(
  runner: Runner,
  clientId: string,
  key: string,
  ttlHours: number,
): Promise<StoredOutcome | null> {
  const row = (await runner('idempotency_keys')
    .where({ client_id: clientId, key })
    .where('created_at', '>=', runner.raw(`now() - make_interval(hours => ?)`, [ttlHours]))
    .first()) as IdempotencyKeyRow | undefined;
  if (!row) return null;
  return {
    requestHash: row.request_hash,
    payoutId: row.payout_id,
    status: row.response_status,
    body: row.response_body,
  };
}

export async function saveIdempotentOutcome(
  tx: Knex.Transaction,
  clientId: string,
  key: string,
  outcome: StoredOutcome,
): Promise<void> {
  // An expired row for the same key may still be there if the sweeper has not run yet: replace it.
  await tx('idempotency_keys')
    .insert({
      client_id: clientId,
      key,
      request_hash: outcome.requestHash,
      payout_id: outcome.payoutId,
      response_status: outcome.status,
      response_body: JSON.stringify(outcome.body),
      created_at: tx.fn.now(),
    })
    .onConflict(['client_id', 'key'])
    .merge();
}

export async function deleteExpiredIdempotencyKeys(
  runner: Runner,
  ttlHours: number,
  limit = 10_000,
): Promise<number> {
  const result = await runner.raw<{ rowCount: number }>(
    `DELETE FROM idempotency_keys WHERE ctid IN (
       SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(hours => ?) LIMIT ?)`,
    [ttlHours, limit],
  );
  return result.rowCount;
}
