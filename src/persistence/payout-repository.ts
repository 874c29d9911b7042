/**
 * Reads and writes of payouts and their history. Every function takes the query runner (the pool or the
 * service's transaction) and, for payouts, the client id: there is no unscoped read of a payout.
 */
import type { Knex } from 'knex';
import type { PayoutFailure } from '../machines/payout.machine.js';
import type { PayoutStage, PayoutStatus } from '../machines/payout-lifecycle.js';
import { ATTENTION_STAGE, UNFINISHED_STATUSES } from '../machines/payout-lifecycle.js';
import { MINOR_DIGITS } from '../domain/currency.js';
import { Money } from '../domain/money.js';
import type { Payout, PayoutHistoryEntry } from '../domain/payout.js';
import type { KeyProof } from '../domain/principal.js';
import type { Recipient } from '../domain/recipient.js';
import type {
  CreateOutcome,
  IdempotentOutcome,
  NewHistoryEntry,
  NewWebhookEvent,
  PayoutHistoryPage,
  PayoutHistoryQuery,
  PayoutListFilter,
  PayoutListPage,
  PayoutRead,
  ScheduledMessage,
  VersionedChange,
} from '../domain/ports.js';
import type { PayoutRow } from './models.js';
import type { PayoutEventRow } from './models.js';
import { withConnection } from './pg-session.js';

type Runner = Knex | Knex.Transaction;

/**
 * The columns `toPayout` reads, and the list's position (`seq`): what a read selects, so that no row pays for
 * parsing timestamps it does not use (`scheduled_at`, `status_changed_at`, `deleted_at`).
 */
const PAYOUT_COLUMNS = [
  'id',
  'seq',
  'client_id',
  'amount_minor',
  'currency',
  'recipient',
  'status',
  'stage',
  'snapshot',
  'machine_version',
  'version',
  'description',
  'failure_code',
  'failure_message',
  'created_at',
  'updated_at',
] as const satisfies ReadonlyArray<keyof PayoutRow>;

/** A payout row as a read selects it. */
type PayoutColumns = Pick<PayoutRow, (typeof PAYOUT_COLUMNS)[number]>;

/** `PAYOUT_COLUMNS` of the table aliased `alias` (or unqualified). */
function payoutColumns(alias?: string): string {
  return PAYOUT_COLUMNS.map((column) => (alias === undefined ? column : `${alias}.${column}`)).join(', ');
}

export function toPayout(row: PayoutColumns): Payout {
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
    stage: row.stage as PayoutStage | null,
    snapshot: row.snapshot,
    machineVersion: row.machine_version,
    version: row.version,
    description: row.description,
    failure,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * The payout row `alias` as the JSON a webhook delivery keeps (its event's body is rendered from it): the columns
 * `toPayout` reads, the amount as text (a bigint must never become a JSON number).
 */
function payoutJson(alias: string): string {
  return `jsonb_build_object('id', ${alias}.id, 'client_id', ${alias}.client_id,
    'amount_minor', ${alias}.amount_minor::text, 'currency', ${alias}.currency, 'recipient', ${alias}.recipient,
    'status', ${alias}.status, 'stage', ${alias}.stage, 'snapshot', ${alias}.snapshot,
    'machine_version', ${alias}.machine_version, 'version', ${alias}.version, 'description', ${alias}.description,
    'failure_code', ${alias}.failure_code, 'failure_message', ${alias}.failure_message,
    'created_at', ${alias}.created_at, 'updated_at', ${alias}.updated_at)`;
}

/** The outbox topic of a webhook delivery: the relay hands it to the webhooks queue. */
export const WEBHOOK_DELIVERY_TOPIC = 'webhook.deliver';

/**
 * The webhook fan-out of changed rows `source` (with `event_id` and `event_type` columns, null when the change causes
 * no event), as the CTE `w`: one delivery per enabled endpoint of the payout's client subscribed to the type. Their
 * outbox rows are added to the statement's own outbox insert (`webhookOutboxRows`), so a change without deliveries
 * writes no extra table: a client without endpoints costs one probe of the partial index
 * `webhook_endpoints_enabled_idx` and one empty insert.
 */
function webhookDeliveries(source: string): string {
  return `w AS (
       INSERT INTO webhook_deliveries
         (id, event_id, endpoint_id, client_id, type, payout_id, payout_version, payout)
       SELECT gen_random_uuid(), s.event_id, e.id, s.client_id, s.event_type, s.id, s.version, ${payoutJson('s')}
         FROM ${source} s
         JOIN webhook_endpoints e ON e.client_id = s.client_id AND e.status = 'enabled'
        WHERE s.event_id IS NOT NULL AND s.event_type = ANY (e.events)
       RETURNING id)`;
}

/** The outbox rows of the deliveries `w`, as a query to UNION ALL into an outbox insert of `columns` columns. */
function webhookOutboxRows(columns: number): string {
  const rest = Array.from({ length: columns - 3 }, () => 'NULL').join(', ');
  return `SELECT gen_random_uuid(), '${WEBHOOK_DELIVERY_TOPIC}', jsonb_build_object('delivery_id', w.id)${
    rest === '' ? '' : `, ${rest}`
  } FROM w`;
}

/**
 * The condition that a remembered caller's key (its hash, client and role as SQL expressions) is still active: the
 * same test as authenticating it afresh (`FIND_ACTIVE_KEY`), made inside the statement that serves the request.
 */
export function activeKeyProof(hash: string, clientId: string, role: string): string {
  return `SELECT FROM api_keys ak WHERE ak.key_hash = ${hash} AND ak.client_id = ${clientId} AND ak.role = ${role}
         AND ak.revoked_at IS NULL AND (ak.expires_at IS NULL OR ak.expires_at > now())`;
}

/**
 * The whole create as one statement, hence one transaction (data-modifying CTEs, committed together or not at
 * all): the idempotency key's advisory lock, the stored outcome, the payout, its first history row, its
 * processing message and its `payout.created` webhook deliveries. One round trip on the hottest path.
 *
 * - `a`: for a remembered caller (`proof`), whether its key is still active; when not, nothing is written and the
 *   create is refused as unauthenticated, so that remembering a key never saves a revoked one a request.
 * - `l`: with a key, its transaction-scoped advisory lock (`pg_try_advisory_xact_lock`, volatile, so evaluated
 *   once); when another transaction holds it nothing is written: a duplicate in flight. And whether the client
 *   has an enabled endpoint subscribed to the event (`subscribed`), by one probe of a partial index.
 * - `k`: the outcome, unless a live (unexpired) one is already stored under (client, key); an expired row the
 *   sweeper has not removed yet is replaced. Under the lock no other transaction with this key is in flight, so
 *   ON CONFLICT meets only committed rows.
 * - `p`, `h`, `o`: the payout, only when the lock was taken and the outcome stored (without a key: always), then
 *   its history row and its message from the payout row written. The first history row is dated like the payout.
 *
 * It comes in two forms, so that a client without endpoints pays for no webhook table: the plain one
 * (`payouts.insert`) writes nothing at all when the client is `subscribed`, and the create is then written by the
 * form with deliveries (`payouts.insert.webhooks`), whose `w` adds one delivery per subscribed endpoint and whose
 * `o` their outbox rows. A measured ~5 % of a create's cost, paid only by clients with endpoints (README,
 * "Webhooks").
 */
function insertPayoutSql(withWebhooks: boolean): string {
  const subscribed = `EXISTS (SELECT FROM webhook_endpoints e WHERE $28::text IS NOT NULL AND e.client_id = $3::uuid
           AND e.status = 'enabled' AND $29::text = ANY (e.events))`;
  const unlessSubscribed = withWebhooks ? '' : ' AND NOT l.subscribed';
  return `WITH a AS (
       SELECT $30::text IS NULL OR EXISTS (${activeKeyProof('$30::text', '$3::uuid', '$31::text')}) AS authorized),
     l AS (
       SELECT a.authorized, CASE WHEN NOT a.authorized THEN false WHEN $1::text IS NULL THEN true
           ELSE pg_try_advisory_xact_lock(hashtextextended($1, 0)) END AS locked,
         ${withWebhooks ? 'true' : subscribed} AS subscribed
       FROM a),
     k AS (
       INSERT INTO idempotency_keys AS k
         (client_id, key, request_hash, payout_id, response_status, response_body, created_at)
       SELECT $3::uuid, $13::text, $14::text, $2::uuid, $27::integer, $15::json, now() FROM l
        WHERE l.locked AND $1 IS NOT NULL${unlessSubscribed}
       ON CONFLICT (client_id, key) DO UPDATE SET
         request_hash = EXCLUDED.request_hash, payout_id = EXCLUDED.payout_id,
         response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body, created_at = now()
       WHERE k.created_at < now() - make_interval(hours => $16::integer)
       RETURNING 1),
     p AS (
       INSERT INTO payouts (id, client_id, amount_minor, currency, recipient, status, snapshot, machine_version,
         version, description, created_at, updated_at, status_changed_at, stage)
       SELECT $2, $3, $4::bigint, $5::text, $6::jsonb, $7::text, $8::jsonb, $9::integer, $10::integer, $11::text,
         $12::timestamptz, $12, $12, $25::text
       FROM l WHERE l.locked AND ($1 IS NULL OR EXISTS (SELECT FROM k))${unlessSubscribed}
       RETURNING id, status, created_at),
     h AS (
       INSERT INTO payout_events
         (payout_id, from_status, to_status, event, actor, actor_role, reason, request_id, at)
       SELECT p.id, NULL, p.status, $17::text, $18::text, $19::text, $20::text, $21::text, p.created_at FROM p),
     ${
       withWebhooks
         ? `w AS (
       INSERT INTO webhook_deliveries
         (id, event_id, endpoint_id, client_id, type, payout_id, payout_version, payout, created_at)
       SELECT gen_random_uuid(), $28::text, e.id, $3::uuid, $29::text, $2::uuid, $10::integer,
              jsonb_build_object('id', $2::uuid, 'client_id', $3::uuid, 'amount_minor', $4::text,
                'currency', $5::text, 'recipient', $6::jsonb, 'status', $7::text, 'stage', $25::text,
                'snapshot', $8::jsonb, 'machine_version', $9::integer, 'version', $10::integer,
                'description', $11::text, 'failure_code', NULL, 'failure_message', NULL,
                'created_at', $12::timestamptz, 'updated_at', $12::timestamptz),
              $12::timestamptz
         FROM webhook_endpoints e
        WHERE $28::text IS NOT NULL AND EXISTS (SELECT FROM p)
          AND e.client_id = $3::uuid AND e.status = 'enabled' AND $29::text = ANY (e.events)
       RETURNING id),
     o AS (
       INSERT INTO outbox (id, topic, payload, payout_id, command_seq)
       SELECT $22::uuid, $23::text, $24::jsonb, p.id, $26::integer FROM p
       UNION ALL ${webhookOutboxRows(5)})`
         : `o AS (
       INSERT INTO outbox (id, topic, payload, payout_id, command_seq)
       SELECT $22::uuid, $23::text, $24::jsonb, p.id, $26::integer FROM p)`
     }
     SELECT l.authorized, l.locked, l.subscribed, EXISTS (SELECT FROM p) AS created FROM l`;
}

const INSERT_PAYOUT = insertPayoutSql(false);
const INSERT_PAYOUT_WITH_WEBHOOKS = insertPayoutSql(true);

/**
 * Writes a new payout as the create decided it (version 1, no failure), dated `payout.createdAt`, with its first
 * history row, its processing message, with an idempotency key its outcome, and its webhook deliveries: see
 * `insertPayoutSql`. Named statements, so each connection parses and plans them once.
 */
export async function insertPayout(
  db: Knex,
  payout: Payout,
  first: Omit<NewHistoryEntry, 'payoutId' | 'from' | 'to'>,
  message: ScheduledMessage,
  outcome: IdempotentOutcome | null,
  webhookEvent?: NewWebhookEvent,
  proof?: KeyProof,
): Promise<CreateOutcome> {
  const values = [
    outcome && `${payout.clientId}:${outcome.key}`,
    // $2-$12: the payout
    payout.id,
    payout.clientId,
    payout.amount.minor.toString(),
    payout.amount.currency,
    JSON.stringify(payout.recipient),
    payout.status,
    JSON.stringify(payout.snapshot),
    payout.machineVersion,
    payout.version,
    payout.description,
    payout.createdAt,
    // $13-$16: the outcome
    outcome?.key,
    outcome?.requestHash,
    outcome && JSON.stringify(outcome.body),
    outcome?.ttlHours,
    // $17-$21: the history row
    first.event,
    first.actor,
    first.actorRole,
    first.reason,
    first.requestId,
    // $22-$24: the message
    message.id,
    message.topic,
    JSON.stringify(message.payload),
    // $25-$26: the stage and the message's command
    payout.stage,
    message.commandSeq,
    // $27: the status of the stored answer
    outcome?.status,
    // $28-$29: the webhook event
    webhookEvent?.eventId ?? null,
    webhookEvent?.type ?? null,
    // $30-$31: a remembered caller's key, checked here
    proof?.keyHash ?? null,
    proof?.role ?? null,
  ];
  const run = (name: string, text: string) =>
    withConnection(db, (client) =>
      client.query<{ authorized: boolean; locked: boolean; subscribed: boolean; created: boolean }>({
        name,
        text,
        values,
      }),
    );
  // The statement selects from `l`: always one row.
  let row = (await run('payouts.insert', INSERT_PAYOUT)).rows[0]!;
  if (!row.authorized) return 'unauthenticated';
  // A subscribed client's create wrote nothing: it is written, whole, by the form with deliveries.
  if (row.subscribed) row = (await run('payouts.insert.webhooks', INSERT_PAYOUT_WITH_WEBHOOKS)).rows[0]!;
  if (!row.authorized) return 'unauthenticated';
  if (row.created) return 'created';
  return row.locked ? 'key_used' : 'in_flight';
}

/** A read whose remembered key (`PayoutRead.proof`) is no longer active: the store refuses it as unauthenticated. */
export const KEY_REFUSED = Symbol('key refused');

/**
 * Reads many payouts in one statement, each scoped by its own client; the result is in the order of `reads`,
 * null where no payout matched, `KEY_REFUSED` where the read's key proof failed. With `forUpdate` the rows found
 * are locked for the caller's transaction (never asked with proofs: those are the API's plain reads).
 */
export async function findPayouts(
  runner: Runner,
  reads: readonly PayoutRead[],
  options: { forUpdate?: boolean } = {},
): Promise<Array<Payout | null | typeof KEY_REFUSED>> {
  const input = reads.map((read, index) => ({
    n: index,
    id: read.id,
    client_id: read.clientId,
    include_deleted: read.includeDeleted,
    key_hash: read.proof?.keyHash,
    key_role: read.proof?.role,
  }));
  const proven = reads.some((read) => read.proof !== undefined);
  if (proven && options.forUpdate) throw new Error('a locking read takes no key proof');
  const recordset = `json_to_recordset(?::json)
         AS r(n integer, id uuid, client_id uuid, include_deleted boolean, key_hash text, key_role text)`;
  const result = await runner.raw<{
    rows: Array<PayoutColumns & { batch_index: number; authorized?: boolean }>;
  }>(
    proven
      ? // A row per read, even when no payout matched, so that a refused key is told from a payout not found.
        `SELECT ${payoutColumns('p')}, r.n AS batch_index, a.authorized
           FROM ${recordset}
          CROSS JOIN LATERAL (SELECT r.key_hash IS NULL
                OR EXISTS (${activeKeyProof('r.key_hash', 'r.client_id', 'r.key_role')}) AS authorized) a
           LEFT JOIN payouts p ON a.authorized AND p.id = r.id AND p.client_id = r.client_id
                AND (p.deleted_at IS NULL OR r.include_deleted)`
      : `SELECT ${payoutColumns('p')}, r.n AS batch_index
           FROM ${recordset}
           JOIN payouts p ON p.id = r.id AND p.client_id = r.client_id
          WHERE p.deleted_at IS NULL OR r.include_deleted
         ${options.forUpdate ? 'FOR UPDATE OF p' : ''}`,
    [JSON.stringify(input)],
  );
  const found = new Array<Payout | null | typeof KEY_REFUSED>(reads.length).fill(null);
  for (const row of result.rows) {
    if (row.authorized === false) found[row.batch_index] = KEY_REFUSED;
    else if (row.id !== null) found[row.batch_index] = toPayout(row);
  }
  return found;
}

/**
 * The only write of an existing payout: `UPDATE … WHERE id AND client AND version`, bumping the version, with
 * its history row, for many payouts in one statement (at most one change per payout: see `Batcher`'s `keyOf`).
 * A change's result is null when zero rows matched, i.e. somebody else changed the payout first: the caller
 * re-reads and decides again, it never overwrites. The history rows are written by the same statement, and only
 * for the rows the UPDATE matched: no history row can exist for a change that lost the race. Results are in
 * the order of `changes`. The statement waits for rows locked by other transactions: see
 * `updateUnlockedPayoutsVersioned` for batches.
 */
export async function updatePayoutsVersioned(
  runner: Runner,
  changes: readonly VersionedChange[],
): Promise<Array<Payout | null>> {
  const rows = await runVersionedUpdate(runner, changes, 'wait');
  return rows.map((row) => (row.id === null ? null : toPayout(row as PayoutRow)));
}

/** The result of a change whose payout's row another transaction held when the batch ran: nothing was tried. */
export const ROW_LOCKED = 'row_locked';

/**
 * `updatePayoutsVersioned` for a batch of unrelated changes: rows locked by another transaction are skipped
 * (their changes answer `ROW_LOCKED`, to be sent again on their own), so one busy payout never holds up the
 * rest of a batch, and two batches never wait for each other's rows: no deadlock between them.
 */
export async function updateUnlockedPayoutsVersioned(
  runner: Runner,
  changes: readonly VersionedChange[],
): Promise<Array<Payout | null | typeof ROW_LOCKED>> {
  const rows = await runVersionedUpdate(runner, changes, 'skip');
  return rows.map((row) => {
    if (row.id !== null) return toPayout(row as PayoutRow);
    return row.locked ? null : ROW_LOCKED;
  });
}

/** One row per change, in their order: the payout as updated (`id` null when not), and whether its row was locked. */
type VersionedUpdateRow = Omit<PayoutRow, 'id'> & { id: string | null; locked: boolean };

async function runVersionedUpdate(
  runner: Runner,
  changes: readonly VersionedChange[],
  lockedRows: 'wait' | 'skip',
): Promise<VersionedUpdateRow[]> {
  const input = changes.map((change, index) => {
    const { status, stage, snapshot, machineVersion, description, failure, deleted } = change.changes;
    return {
      n: index,
      id: change.id,
      client_id: change.clientId,
      expected_version: change.expectedVersion,
      // Absent means unchanged: a null status or snapshot keeps the row's own; the set_ flags tell "set to null"
      // apart from "leave alone" for the nullable columns.
      status: status ?? null,
      set_stage: stage !== undefined,
      stage: stage ?? null,
      snapshot: snapshot ?? null,
      machine_version: machineVersion ?? null,
      set_description: description !== undefined,
      description: description ?? null,
      set_failure: failure !== undefined,
      failure_code: failure?.code ?? null,
      failure_message: failure?.message ?? null,
      deleted: deleted === true,
      h_from: change.history.from,
      h_event: change.history.event,
      h_actor: change.history.actor,
      h_actor_role: change.history.actorRole,
      h_reason: change.history.reason,
      h_request_id: change.history.requestId,
      settled_seq: change.settledSeq ?? null,
      event_id: change.webhookEvent?.eventId ?? null,
      event_type: change.webhookEvent?.type ?? null,
      commands: (change.commands ?? []).map((message) => ({
        id: message.id,
        topic: message.topic,
        payload: message.payload,
        command_seq: message.commandSeq,
        lease_ms: message.leaseMs ?? 0,
      })),
    };
  });
  // `l` locks the rows first (a row changed by a transaction that committed meanwhile is locked in its newest
  // version, which the UPDATE's version check then sees); `u` changes only locked rows.
  const result = await runner.raw<{ rows: VersionedUpdateRow[] }>(
    `WITH c AS (
       SELECT * FROM json_to_recordset(?::json) AS c(
         n integer, id uuid, client_id uuid, expected_version integer, status text, snapshot jsonb,
         set_description boolean, description text, set_failure boolean, failure_code text, failure_message text,
         deleted boolean, h_from text, h_event text, h_actor text, h_actor_role text, h_reason text,
         h_request_id text, set_stage boolean, stage text, settled_seq integer, commands json,
         machine_version integer, event_id text, event_type text)),
     l AS (
       SELECT p.id FROM payouts p WHERE (p.id, p.client_id) IN (SELECT id, client_id FROM c)
       FOR UPDATE OF p${lockedRows === 'skip' ? ' SKIP LOCKED' : ''}),
     u AS (
       UPDATE payouts p SET
         version = p.version + 1,
         updated_at = now(),
         status = coalesce(c.status, p.status),
         status_changed_at = CASE WHEN c.status IS NULL OR c.status = p.status THEN p.status_changed_at ELSE now() END,
         stage = CASE WHEN c.set_stage THEN c.stage ELSE p.stage END,
         scheduled_at = CASE WHEN json_array_length(c.commands) > 0 THEN now() ELSE p.scheduled_at END,
         snapshot = coalesce(c.snapshot, p.snapshot),
         machine_version = coalesce(c.machine_version, p.machine_version),
         description = CASE WHEN c.set_description THEN c.description ELSE p.description END,
         failure_code = CASE WHEN c.set_failure THEN c.failure_code ELSE p.failure_code END,
         failure_message = CASE WHEN c.set_failure THEN c.failure_message ELSE p.failure_message END,
         deleted_at = CASE WHEN c.deleted THEN now() ELSE p.deleted_at END
       FROM c JOIN l ON l.id = c.id
       WHERE p.id = c.id AND p.client_id = c.client_id AND p.version = c.expected_version
         AND p.deleted_at IS NULL
       RETURNING p.*, c.n AS batch_index, c.h_from, c.h_event, c.h_actor, c.h_actor_role, c.h_reason,
         c.h_request_id, c.settled_seq, c.commands, c.event_id, c.event_type),
     h AS (
       INSERT INTO payout_events (payout_id, from_status, to_status, event, actor, actor_role, reason, request_id)
       SELECT id, h_from, status, h_event, h_actor, h_actor_role, h_reason, h_request_id FROM u),
     ${webhookDeliveries('u')},
     o AS (
       INSERT INTO outbox (id, topic, payload, payout_id, command_seq, locked_until)
       SELECT m.id, m.topic, m.payload, u.id, m.command_seq,
              CASE WHEN m.lease_ms > 0 THEN now() + make_interval(secs => m.lease_ms / 1000.0) END
         FROM u, json_to_recordset(u.commands) AS m(id uuid, topic text, payload jsonb, command_seq integer,
                                                    lease_ms integer)
       UNION ALL ${webhookOutboxRows(6)}),
     s AS (
       UPDATE outbox SET published_at = now(), locked_until = NULL
        WHERE published_at IS NULL AND (payout_id, command_seq) IN (
          SELECT id, settled_seq FROM u WHERE settled_seq IS NOT NULL))
     SELECT l.id IS NOT NULL AS locked, u.*
       FROM c LEFT JOIN l ON l.id = c.id LEFT JOIN u ON u.batch_index = c.n
      ORDER BY c.n`,
    [JSON.stringify(input)],
  );
  // One row per change (`l` holds each payout once): the callers' answers are matched by position.
  if (result.rows.length !== changes.length) {
    throw new Error(`versioned update answered ${result.rows.length} rows for ${changes.length} changes`);
  }
  return result.rows;
}

/** The list's optional conditions, each with its placeholder (`$`) to number. */
const LIST_CONDITIONS = [
  ['after', 'seq < $::bigint'],
  ['status', 'status = $::text'],
  ['stage', 'stage = $::text'],
  // As the column's type (char(3)), so that the planner uses its statistics; as text it guessed 1 row in 200 and,
  // in a generic plan, sorted a large client's whole page range (make bench-scale).
  ['currency', 'currency = $::bpchar'],
  ['createdGte', 'created_at >= $::timestamptz'],
  ['createdLt', 'created_at < $::timestamptz'],
] as const satisfies ReadonlyArray<readonly [keyof PayoutListFilter, string]>;

/**
 * One page, newest first; fetches one row more than asked to know whether another page exists. A named statement
 * per combination of the filters given (at most 2^6 per connection, each planned for its own conditions), on a
 * plain connection like the create: the query builder cost more CPU than PostgreSQL spends on a page. With a
 * remembered caller's `proof`, the page comes only if its key is still active, and a row says whether it is.
 */
export async function listPayoutPage(
  db: Knex,
  clientId: string,
  filter: PayoutListFilter,
  proof?: KeyProof,
): Promise<PayoutListPage | typeof KEY_REFUSED> {
  const values: unknown[] = [clientId, filter.limit + 1];
  const conditions = ['client_id = $1::uuid', 'deleted_at IS NULL'];
  let name = 'payouts.list';
  for (const [field, condition] of LIST_CONDITIONS) {
    const value = filter[field];
    if (value === undefined) continue;
    values.push(value);
    conditions.push(condition.replace('$', `$${values.length}`));
    name += `.${field}`;
  }
  let text = `SELECT ${payoutColumns()} FROM payouts WHERE ${conditions.join(' AND ')}
       ORDER BY seq DESC LIMIT $2::integer`;
  if (proof !== undefined) {
    values.push(proof.keyHash, proof.role);
    const [hash, role] = [`$${values.length - 1}::text`, `$${values.length}::text`];
    name += '.proven';
    text = `SELECT a.authorized, p.*
         FROM (SELECT EXISTS (${activeKeyProof(hash, '$1::uuid', role)}) AS authorized) a
         LEFT JOIN LATERAL (${text}) p ON a.authorized`;
  }
  const result = await withConnection(db, (client) =>
    client.query<PayoutColumns & { authorized?: boolean }>({ name, text, values }),
  );
  let rows = result.rows;
  if (proof !== undefined) {
    if (rows[0]?.authorized !== true) return KEY_REFUSED;
    rows = rows.filter((row) => row.id !== null);
  }
  const page = rows.slice(0, filter.limit);
  return {
    payouts: page.map(toPayout),
    last: page.length > 0 ? page[page.length - 1]!.seq : null,
    hasMore: rows.length > filter.limit,
  };
}

/**
 * One page of a payout's history, oldest first, by the rows' ids (bigserial, never a timestamp); fetches one row
 * more than asked to know whether another page exists. Exact: a payout's changes are written one at a time, each
 * with its history row under the payout's row lock, so its rows are committed in the order of their ids; once a
 * row is visible, so is every earlier one, and a walk never skips a row behind its cursor. With `withTotal`, the
 * rows matching `event` are counted too.
 */
export async function listHistory(
  runner: Runner,
  payoutId: string,
  query: PayoutHistoryQuery,
): Promise<PayoutHistoryPage> {
  const rowsQuery = runner<PayoutEventRow>('payout_events')
    .where('payout_id', payoutId)
    .orderBy('id', 'asc')
    .limit(query.limit + 1);
  if (query.after !== undefined) void rowsQuery.where('id', '>', query.after);
  if (query.event !== undefined) void rowsQuery.where('event', query.event);
  const [rows, total] = await Promise.all([
    rowsQuery as Promise<PayoutEventRow[]>,
    query.withTotal ? countHistory(runner, payoutId, query.event) : undefined,
  ]);
  const page = rows.slice(0, query.limit);
  return {
    entries: page.map(toHistoryEntry),
    last: page.length > 0 ? String(page[page.length - 1]!.id) : null,
    hasMore: rows.length > query.limit,
    ...(total === undefined ? {} : { total }),
  };
}

/** How many history rows the payout has, only those of `event` when given (e.g. its description changes). */
export async function countHistory(runner: Runner, payoutId: string, event?: string): Promise<number> {
  const query = runner('payout_events').count({ count: '*' }).where('payout_id', payoutId);
  if (event !== undefined) void query.where('event', event);
  const rows = (await query) as Array<{ count: string | number }>;
  return Number(rows[0]?.count ?? 0);
}

function toHistoryEntry(row: PayoutEventRow): PayoutHistoryEntry {
  return {
    id: String(row.id),
    from: row.from_status as PayoutStatus | null,
    to: row.to_status as PayoutStatus,
    event: row.event,
    actor: row.actor,
    actorRole: row.actor_role,
    reason: row.reason,
    requestId: row.request_id,
    at: row.at,
  };
}

/**
 * Unfinished payouts whose last command is older than the threshold (its message was lost, dropped or
 * dead-lettered), across clients: the sweeper works for the whole service. Payouts that need a person are left
 * alone, and so is a payout with a message still waiting in the outbox (the broker is down, the relay is behind,
 * or a worker holds the lease on a command it is carrying out): another message would only pile up behind it.
 * The claim moves `scheduled_at` in the same statement, so two sweepers never claim the same payout.
 */
export async function claimStuckPayouts(
  runner: Runner,
  olderThanSeconds: number,
  limit: number,
): Promise<Array<{ id: string; clientId: string; status: PayoutStatus }>> {
  const result = await runner.raw<{ rows: Array<{ id: string; client_id: string; status: PayoutStatus }> }>(
    // `= ANY (ARRAY(…))`, not `IN (…)`: the claimed ids are then looked up by primary key whatever their number,
    // where `IN` let the planner join a large claim against the whole table (make plans-check).
    `UPDATE payouts SET scheduled_at = now()
      WHERE id = ANY (ARRAY(
        SELECT p.id FROM payouts p
         WHERE p.status = ANY (?::text[]) AND p.stage IS DISTINCT FROM ?
           AND p.scheduled_at < now() - make_interval(secs => ?)
           AND NOT EXISTS (SELECT FROM outbox o WHERE o.payout_id = p.id AND o.published_at IS NULL)
         ORDER BY p.scheduled_at
         LIMIT ?
         FOR UPDATE SKIP LOCKED))
      RETURNING id, client_id, status`,
    [UNFINISHED_STATUSES, ATTENTION_STAGE, olderThanSeconds, limit],
  );
  return result.rows.map((row) => ({ id: row.id, clientId: row.client_id, status: row.status }));
}

/**
 * A client's unfinished payouts that wait for a person or have been in their status longer than the threshold
 * (the operator console's "needs attention"), the longest waiting first. Scoped by client like every read.
 */
export async function listNeedingAttention(
  runner: Runner,
  clientId: string,
  stuckAfterSeconds: number,
  limit: number,
): Promise<Payout[]> {
  const result = await runner.raw<{ rows: PayoutColumns[] }>(
    `SELECT ${payoutColumns()} FROM payouts
      WHERE client_id = ? AND deleted_at IS NULL AND status = ANY (?::text[])
        AND (stage = ? OR status_changed_at < now() - make_interval(secs => ?))
      ORDER BY status_changed_at, seq
      LIMIT ?`,
    [clientId, UNFINISHED_STATUSES, ATTENTION_STAGE, stuckAfterSeconds, limit],
  );
  return result.rows.map(toPayout);
}

/**
 * Unfinished payouts in their status for longer than the threshold, by status, except those waiting for a person
 * (the stuck-payouts gauge); and the payouts waiting for a person (the attention gauge).
 */
export async function countStuckPayouts(
  runner: Runner,
  olderThanSeconds: number,
): Promise<{ stuck: Record<string, number>; needsAttention: number }> {
  const rows: Array<{ status: string; count: string }> = await runner('payouts')
    .select('status')
    .count({ count: '*' })
    .whereIn('status', UNFINISHED_STATUSES)
    // Payouts that need a person have a gauge (and an alert) of their own.
    .whereNot('stage', ATTENTION_STAGE)
    .where('status_changed_at', '<', runner.raw(`now() - make_interval(secs => ?)`, [olderThanSeconds]))
    .groupBy('status');
  const stuck: Record<string, number> = Object.fromEntries(UNFINISHED_STATUSES.map((status) => [status, 0]));
  for (const row of rows) stuck[row.status] = Number(row.count);
  const attention = (await runner('payouts').count({ count: '*' }).where('stage', ATTENTION_STAGE)) as Array<{
    count: string;
  }>;
  return { stuck, needsAttention: Number(attention[0]?.count ?? 0) };
}
