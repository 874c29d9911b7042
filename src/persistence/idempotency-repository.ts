/**
 * Stored outcomes of `POST /api/payouts` per (client, Idempotency-Key). They are written by the create's own
 * statement (`insertPayouts`), in the transaction of the payout they answer.
 */
import type { Knex } from 'knex';
import type { StoredOutcome } from '../domain/ports.js';
import type { IdempotencyKeyRow } from './models.js';

type Runner = Knex | Knex.Transaction;

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

export async function deleteExpiredIdempotencyKeys(
  runner: Runner,
  ttlHours: number,
  limit: number,
): Promise<number> {
  const result = await runner.raw<{ rowCount: number }>(
    `DELETE FROM idempotency_keys WHERE ctid IN (
       SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(hours => ?) LIMIT ? FOR UPDATE SKIP LOCKED)`,
    [ttlHours, limit],
  );
  return result.rowCount;
}
