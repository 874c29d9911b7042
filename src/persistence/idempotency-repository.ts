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

/**
 * Stores the outcome under (client, key) unless a live (unexpired) outcome is already there; an expired row the
 * sweeper has not removed yet is replaced. Returns false when a live outcome exists: the caller rolls back and
 * answers from it. Called under the key's advisory lock, so no other transaction with this key is in flight.
 */
export async function saveIdempotentOutcome(
  tx: Knex.Transaction,
  clientId: string,
  key: string,
  outcome: StoredOutcome,
  ttlHours: number,
): Promise<boolean> {
  const result = await tx.raw<{ rowCount: number }>(
    `INSERT INTO idempotency_keys AS k
       (client_id, key, request_hash, payout_id, response_status, response_body, created_at)
     VALUES (?, ?, ?, ?, ?, ?, now())
     ON CONFLICT (client_id, key) DO UPDATE SET
       request_hash = EXCLUDED.request_hash, payout_id = EXCLUDED.payout_id,
       response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body, created_at = now()
     WHERE k.created_at < now() - make_interval(hours => ?)`,
    [
      clientId,
      key,
      outcome.requestHash,
      outcome.payoutId,
      outcome.status,
      JSON.stringify(outcome.body),
      ttlHours,
    ],
  );
  return result.rowCount === 1;
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
