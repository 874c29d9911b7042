/**
 * Reads and writes of payouts and their history. Every function takes the query runner (the pool or the
 * service's transaction) and, for payouts, the client id: there is no unscoped read of a payout.
 */
import type { Knex } from 'knex';
import type { PayoutFailure, PayoutStatus, PersistedPayoutSnapshot } from '../machines/payout.machine.js';
import { MINOR_DIGITS } from '../domain/currency.js';
import { Money } from '../domain/money.js';
import type { Payout, PayoutHistoryEntry } from '../domain/payout.js';
import type { Recipient } from '../domain/recipient.js';
import { PayoutEventRow, PayoutRow } from './models.js';

type Runner = Knex | Knex.Transaction;

export function toPayout(row: PayoutRow): Payout {
  const currency = row.currency;
  const minorDigits = MINOR_DIGITS[currency];
  if (minorDigits === undefined) throw new Error(`payout ${row.id} has unknown currency ${currency}`);
  const failure: PayoutFailure | null =
    row.failure_code === null ? null : { code: row.failure_code, message: row.failure_message ?? '' };
  return {
    id: row.id,
    clientId: row.client_id,
    amount: Money.fromStored(row.amount_minor, currency, minorDigits),
    recipient: row.recipient as unknown as Recipient,
    status: row.status as PayoutStatus,
    snapshot: row.snapshot,
    machineVersion: row.machine_version,
    version: row.version,
    description: row.description,
    failure,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** What a create supplies; the database sets the rest (version, timestamps). */
export type NewPayout = Pick<
  Payout,
  'id' | 'clientId' | 'amount' | 'recipient' | 'status' | 'snapshot' | 'machineVersion' | 'description'
>;

// The hot paths below (insert, find by id) use the knex builder directly: objection's model layer costs more CPU
// per query than the query itself on this workload, and these run on every request.

/**
 * The history row a payout statement writes with it, as one more data-modifying CTE over the CTE `source` that
 * returned the payout row: it exists only when that row was written. `now()` is the transaction's time, the same
 * as the payout's `updated_at`. Bindings: `historyBindings`.
 */
const HISTORY_OF = (source: 'p' | 'u') => `h AS (
       INSERT INTO payout_events (payout_id, from_status, to_status, event, actor, actor_role, reason, request_id)
       SELECT ${source}.id, ?, ${source}.status, ?, ?, ?, ?, ? FROM ${source})`;

function historyBindings(entry: Omit<NewHistoryEntry, 'payoutId' | 'to'>): Knex.Value[] {
  return [entry.from, entry.event, entry.actor, entry.actorRole, entry.reason, entry.requestId];
}

/**
 * Inserts a new payout and its first history row in one statement (data-modifying CTEs): one round trip on the
 * hottest path, with the same atomicity inside the caller's transaction. With `lock`, the statement first takes
 * the idempotency key's transaction-scoped advisory lock (`pg_try_advisory_xact_lock`, volatile, so evaluated
 * once) and inserts nothing when another transaction holds it: the result is then null, a duplicate in flight.
 */
export async function insertPayout(
  tx: Knex.Transaction,
  payout: NewPayout,
  first: Omit<NewHistoryEntry, 'payoutId' | 'from' | 'to'>,
  lock?: { clientId: string; key: string },
): Promise<Payout | null> {
  const gate = lock
    ? tx.raw(`SELECT pg_try_advisory_xact_lock(hashtextextended(? || ':' || ?, 0)) AS locked`, [
        lock.clientId,
        lock.key,
      ])
    : tx.raw('SELECT true AS locked');
  const result = await tx.raw<{ rows: PayoutRow[] }>(
    `WITH l AS (?),
     p AS (
       INSERT INTO payouts
         (id, client_id, amount_minor, currency, recipient, status, snapshot, machine_version, description)
       SELECT ?::uuid, ?::uuid, ?::bigint, ?, ?::jsonb, ?, ?::jsonb, ?::integer, ? FROM l WHERE l.locked
       RETURNING *),
     ${HISTORY_OF('p')}
     SELECT * FROM p`,
    [
      gate,
      payout.id,
      payout.clientId,
      payout.amount.minor.toString(),
      payout.amount.currency,
      JSON.stringify(payout.recipient),
      payout.status,
      JSON.stringify(payout.snapshot),
      payout.machineVersion,
      payout.description,
      ...historyBindings({ ...first, from: null }),
    ],
  );
  const row = result.rows[0];
  return row ? toPayout(row) : null;
}

export async function findPayout(
  runner: Runner,
  clientId: string,
  id: string,
  options: { forUpdate?: boolean; includeDeleted?: boolean } = {},
): Promise<Payout | null> {
  const query = runner('payouts').where({ id, client_id: clientId }).first();
  if (!options.includeDeleted) void query.whereNull('deleted_at');
  if (options.forUpdate) void query.forUpdate();
  const row = (await query) as PayoutRow | undefined;
  return row ? toPayout(row) : null;
}

export interface PayoutChanges {
  status?: PayoutStatus;
  snapshot?: PersistedPayoutSnapshot;
  description?: string | null;
  failure?: PayoutFailure | null;
  deleted?: boolean;
}

/**
 * The only write of an existing payout: `UPDATE … WHERE id AND client AND version`, bumping the version, with
 * its history row.
 * Returns null when zero rows matched, i.e. somebody else changed the payout first: the caller re-reads and
 * decides again, it never overwrites.
 */
export async function updatePayoutVersioned(
  tx: Runner,
  clientId: string,
  id: string,
  expectedVersion: number,
  changes: PayoutChanges,
  history: Omit<NewHistoryEntry, 'payoutId' | 'to'>,
): Promise<Payout | null> {
  const patch: Record<string, unknown> = {
    version: tx.raw('version + 1'),
    updated_at: tx.fn.now(),
  };
  if (changes.status !== undefined) {
    patch.status = changes.status;
    patch.status_changed_at = tx.fn.now();
  }
  if (changes.snapshot !== undefined) patch.snapshot = JSON.stringify(changes.snapshot);
  if (changes.description !== undefined) patch.description = changes.description;
  if (changes.failure !== undefined) {
    patch.failure_code = changes.failure?.code ?? null;
    patch.failure_message = changes.failure?.message ?? null;
  }
  if (changes.deleted) patch.deleted_at = tx.fn.now();
  const update = tx('payouts')
    .update(patch)
    .where({ id, client_id: clientId, version: expectedVersion })
    .whereNull('deleted_at')
    .returning('*');
  // The history row is written by the same statement, and only when the versioned UPDATE matched: one round
  // trip per change, and no history row can exist for a change that lost the race.
  const result = await tx.raw<{ rows: PayoutRow[] }>(
    `WITH u AS (?),
     ${HISTORY_OF('u')}
     SELECT * FROM u`,
    [update, ...historyBindings(history)],
  );
  const row = result.rows[0];
  return row ? toPayout(row) : null;
}

export interface PayoutListFilter {
  limit: number;
  /** Exclusive upper bound on `seq`: the keyset position of the previous page's last row. */
  beforeSeq?: string;
  status?: PayoutStatus;
  currency?: string;
  createdGte?: Date;
  createdLt?: Date;
}

/** One page, newest first; fetches one row more than asked to know whether another page exists. */
export async function listPayoutPage(
  runner: Runner,
  clientId: string,
  filter: PayoutListFilter,
): Promise<{ payouts: Payout[]; lastSeq: string | null; hasMore: boolean }> {
  const query = PayoutRow.query(runner)
    .where('client_id', clientId)
    .whereNull('deleted_at')
    .orderBy('seq', 'desc')
    .limit(filter.limit + 1);
  if (filter.beforeSeq !== undefined) void query.where('seq', '<', filter.beforeSeq);
  if (filter.status !== undefined) void query.where('status', filter.status);
  if (filter.currency !== undefined) void query.where('currency', filter.currency);
  if (filter.createdGte !== undefined) void query.where('created_at', '>=', filter.createdGte);
  if (filter.createdLt !== undefined) void query.where('created_at', '<', filter.createdLt);
  const rows = await query;
  const page = rows.slice(0, filter.limit);
  return {
    payouts: page.map(toPayout),
    lastSeq: page.length > 0 ? page[page.length - 1]!.seq : null,
    hasMore: rows.length > filter.limit,
  };
}

/** A history row as written; the database sets `id` and `at`. */
export type NewHistoryEntry = Omit<PayoutHistoryEntry, 'id' | 'at'> & { payoutId: string };

export async function listHistory(runner: Runner, payoutId: string): Promise<PayoutHistoryEntry[]> {
  const rows = await PayoutEventRow.query(runner).where('payout_id', payoutId).orderBy('id', 'asc');
  return rows.map((row) => ({
    id: String(row.id),
    from: row.from_status as PayoutStatus | null,
    to: row.to_status as PayoutStatus,
    event: row.event,
    actor: row.actor,
    actorRole: row.actor_role,
    reason: row.reason,
    requestId: row.request_id,
    at: row.at,
  }));
}

/** Marks a payout as just scheduled (a message for it went into the outbox). Not a change of the payout. */
export async function markScheduled(tx: Knex.Transaction, ids: string[]): Promise<void> {
  if (ids.length > 0) await tx('payouts').update({ scheduled_at: tx.fn.now() }).whereIn('id', ids);
}

/**
 * Payouts left in `created` or `processing` whose last message is older than the threshold, across clients:
 * the sweeper works for the whole service. Locked with SKIP LOCKED so two sweepers split the work.
 */
export async function claimStuckPayouts(
  tx: Knex.Transaction,
  olderThanSeconds: number,
  limit: number,
): Promise<Array<{ id: string; clientId: string; status: PayoutStatus }>> {
  const rows = (await tx('payouts')
    .select('id', 'client_id', 'status')
    .whereIn('status', ['created', 'processing'])
    .where('scheduled_at', '<', tx.raw(`now() - make_interval(secs => ?)`, [olderThanSeconds]))
    // A message still waiting in the outbox (the broker is down, or the relay is behind) will arrive: another one
    // would only pile up behind it.
    .whereNotExists(
      tx('outbox').select(tx.raw('1')).whereRaw('outbox.payout_id = payouts.id').whereNull('published_at'),
    )
    .orderBy('scheduled_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()) as Array<{ id: string; client_id: string; status: PayoutStatus }>;
  return rows.map((row) => ({ id: row.id, clientId: row.client_id, status: row.status }));
}

/** Unfinished payouts in their status for longer than the threshold, by status: the stuck-payouts gauge. */
export async function countStuckPayouts(
  runner: Runner,
  olderThanSeconds: number,
): Promise<Record<string, number>> {
  const rows: Array<{ status: string; count: string }> = await runner('payouts')
    .select('status')
    .count({ count: '*' })
    .whereIn('status', ['created', 'processing'])
    .where('status_changed_at', '<', runner.raw(`now() - make_interval(secs => ?)`, [olderThanSeconds]))
    .groupBy('status');
  const counts: Record<string, number> = { created: 0, processing: 0 };
  for (const row of rows) counts[row.status] = Number(row.count);
  return counts;
}
