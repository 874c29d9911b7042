/**
 * Reads and writes of payouts and their history. Every function takes the query runner (the pool or the
 * service's transaction) and, for payouts, the client id: there is no unscoped read of a payout.
 */
import type { Knex } from 'knex';
import type { PayoutFailure, PayoutLastError } from '../machines/payout.machine.js';
import type { PayoutStage, PayoutStatus } from '../machines/payout-lifecycle.js';
import { ATTENTION_STAGE, UNFINISHED_STATUSES } from '../machines/payout-lifecycle.js';
import { MINOR_DIGITS } from '../domain/currency.js';
import { Money } from '../domain/money.js';
import type { Payout, PayoutHistoryEntry, PayoutSummary } from '../domain/payout.js';
import type { KeyProof, Role } from '../domain/principal.js';
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
  PayoutResourcePage,
  RenderedPayout,
  ScheduledMessage,
  VersionedChange,
} from '../domain/ports.js';
import { MAX_PAGE_SIZE } from '../domain/ports.js';
import type { PayoutRow } from './models.js';
import type { PayoutEventRow } from './models.js';
import { payoutResourceSql } from './payout-resource-sql.js';
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

/**
 * The columns of a list page: those of a read but the machine's snapshot (and its version), of which a page shows
 * only the last error, selected as `last_error` (see `PayoutSummary`).
 */
const SUMMARY_COLUMNS = [
  ...PAYOUT_COLUMNS.filter((column) => column !== 'snapshot' && column !== 'machine_version'),
  `snapshot->'context'->'last_error' AS last_error`,
].join(', ');

type SummaryColumns = Omit<PayoutColumns, 'snapshot' | 'machine_version'> & {
  /** The snapshot's `context.last_error`: SQL null when the path is missing, JSON null when nothing went wrong. */
  last_error: PayoutLastError | null;
};

/** `PAYOUT_COLUMNS` of the table aliased `alias` (or unqualified). */
function payoutColumns(alias?: string): string {
  return PAYOUT_COLUMNS.map((column) => (alias === undefined ? column : `${alias}.${column}`)).join(', ');
}

export function toPayout(row: PayoutColumns): Payout {
  return { ...summaryFields(row), snapshot: row.snapshot, machineVersion: row.machine_version };
}

function toPayoutSummary(row: SummaryColumns): PayoutSummary {
  return { ...summaryFields(row), lastError: row.last_error };
}

/** What a payout and its summary both read from a row. */
function summaryFields(row: Omit<SummaryColumns, 'last_error'>): Omit<PayoutSummary, 'lastError'> {
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

/** One create as the store writes it: the payout as decided, its first history row, its message and the rest. */
export interface NewPayoutWrite {
  payout: Payout;
  first: Omit<NewHistoryEntry, 'payoutId' | 'from' | 'to'>;
  message: ScheduledMessage;
  /** With an idempotency key: the outcome stored under it (the answer to replay). */
  outcome: IdempotentOutcome | null;
  webhookEvent?: NewWebhookEvent;
  /** A remembered caller's key, checked inside the statement. */
  proof?: KeyProof;
}

/**
 * The idempotency lock of a create with a key: what its advisory lock is taken on, and what keeps two creates with
 * the same key out of one statement (`PgPayoutStore`); none without a key.
 */
export function createLockKey({ payout, outcome }: NewPayoutWrite): string | undefined {
  return outcome ? `${payout.clientId}:${outcome.key}` : undefined;
}

/** The columns of one create in the statement's input (`json_to_recordset`), named as `createInputRow` writes them. */
const CREATE_INPUT_COLUMNS = `n integer, lock_key text,
         id uuid, client_id uuid, amount_minor bigint, currency text, recipient jsonb, status text, stage text,
         snapshot jsonb, machine_version integer, version integer, description text, created_at timestamptz,
         key text, request_hash text, response_status integer, response_body json, ttl_hours integer,
         event text, actor text, actor_role text, reason text, request_id text,
         message_id uuid, topic text, payload jsonb, command_seq integer,
         event_id text, event_type text, key_hash text, key_role text`;

/**
 * Creates as one statement, hence one transaction (data-modifying CTEs, committed together or not at all): for
 * each create of the input `r` (one row per create, `$1`, a JSON array), the idempotency key's advisory lock, the
 * stored outcome, the payout, its first history row, its processing message and its `payout.created` webhook
 * deliveries. The creates a process receives at the same time share the statement (`PgPayoutStore.create`), and
 * so its round trip, its plan's start-up and its commit; each create's rows are decided on their own:
 *
 * - `l`: for a remembered caller (`key_hash`), whether its key is still active (`authorized`); when not, nothing
 *   of that create is written and it is refused as unauthenticated, so that remembering a key never saves a
 *   revoked one a request. With a key, its transaction-scoped advisory lock (`pg_try_advisory_xact_lock`,
 *   volatile, and `l` is materialized, so taken once); when another transaction holds it nothing is written: a
 *   duplicate in flight. And whether the client has an enabled endpoint subscribed to the event (`subscribed`),
 *   by one probe of a partial index.
 * - `k`: the outcome, unless a live (unexpired) one is already stored under (client, key); an expired row the
 *   sweeper has not removed yet is replaced. Under the lock no other transaction with this key is in flight, so
 *   ON CONFLICT meets only committed rows; two creates of one statement never share a key (the store holds the
 *   second back until the first has settled).
 * - `p`, `h`, `o`: the payout, only when the lock was taken and the outcome stored (without a key: always), then
 *   its history row and its message. The first history row is dated like the payout.
 *
 * It comes in two forms, so that a client without endpoints pays for no webhook table: the plain one
 * (`payouts.insert`) writes nothing at all of a create whose client is `subscribed`, and that create is then
 * written by the form with deliveries (`payouts.insert.webhooks`), whose `w` adds one delivery per subscribed
 * endpoint and whose `o` their outbox rows. A measured ~5 % of a create's cost, paid only by clients with
 * endpoints (README, "Webhooks").
 */
function insertPayoutsSql(withWebhooks: boolean): string {
  const subscribed = `EXISTS (SELECT FROM webhook_endpoints e WHERE r.event_id IS NOT NULL AND e.client_id = r.client_id
           AND e.status = 'enabled' AND r.event_type = ANY (e.events))`;
  const unlessSubscribed = withWebhooks ? '' : ' AND NOT l.subscribed';
  return `WITH r AS (SELECT * FROM json_to_recordset($1::json) AS r (${CREATE_INPUT_COLUMNS})),
     l AS MATERIALIZED (
       SELECT r.*, a.authorized,
         CASE WHEN NOT a.authorized THEN false WHEN r.lock_key IS NULL THEN true
           ELSE pg_try_advisory_xact_lock(hashtextextended(r.lock_key, 0)) END AS locked,
         ${withWebhooks ? 'true' : subscribed} AS subscribed
       FROM r CROSS JOIN LATERAL (SELECT r.key_hash IS NULL
           OR EXISTS (${activeKeyProof('r.key_hash', 'r.client_id', 'r.key_role')}) AS authorized) a),
     k AS (
       INSERT INTO idempotency_keys AS k
         (client_id, key, request_hash, payout_id, response_status, response_body, created_at)
       SELECT l.client_id, l.key, l.request_hash, l.id, l.response_status, l.response_body, now() FROM l
        WHERE l.locked AND l.lock_key IS NOT NULL${unlessSubscribed}
       ON CONFLICT (client_id, key) DO UPDATE SET
         request_hash = EXCLUDED.request_hash, payout_id = EXCLUDED.payout_id,
         response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body, created_at = now()
       WHERE k.created_at < now() - make_interval(hours =>
         (SELECT t.ttl_hours FROM l t WHERE t.client_id = EXCLUDED.client_id AND t.key = EXCLUDED.key))
       RETURNING client_id, key),
     p AS (
       INSERT INTO payouts (id, client_id, amount_minor, currency, recipient, status, snapshot, machine_version,
         version, description, created_at, updated_at, status_changed_at, stage)
       SELECT l.id, l.client_id, l.amount_minor, l.currency, l.recipient, l.status, l.snapshot, l.machine_version,
         l.version, l.description, l.created_at, l.created_at, l.created_at, l.stage
       FROM l WHERE l.locked${unlessSubscribed}
         AND (l.lock_key IS NULL OR EXISTS (SELECT FROM k WHERE k.client_id = l.client_id AND k.key = l.key))
       RETURNING id),
     s AS (
       SELECT l.*, NULL::text AS failure_code, NULL::text AS failure_message, l.created_at AS updated_at
         FROM p JOIN l ON l.id = p.id),
     h AS (
       INSERT INTO payout_events
         (payout_id, from_status, to_status, event, actor, actor_role, reason, request_id, at)
       SELECT s.id, NULL, s.status, s.event, s.actor, s.actor_role, s.reason, s.request_id, s.created_at FROM s),
     ${withWebhooks ? `${webhookDeliveries('s')},` : ''}
     o AS (
       INSERT INTO outbox (id, topic, payload, payout_id, command_seq)
       SELECT s.message_id, s.topic, s.payload, s.id, s.command_seq FROM s${
         withWebhooks ? ` UNION ALL ${webhookOutboxRows(5)}` : ''
       })
     SELECT l.n, l.authorized, l.locked, l.subscribed, s.id IS NOT NULL AS created
       FROM l LEFT JOIN s ON s.id = l.id ORDER BY l.n`;
}

const INSERT_PAYOUTS = insertPayoutsSql(false);
const INSERT_PAYOUTS_WITH_WEBHOOKS = insertPayoutsSql(true);

/** A create as one row of the statement's input (`CREATE_INPUT_COLUMNS`). */
function createInputRow(create: NewPayoutWrite, n: number): Record<string, unknown> {
  const { payout, first, message, outcome, webhookEvent, proof } = create;
  return {
    n,
    lock_key: createLockKey(create),
    id: payout.id,
    client_id: payout.clientId,
    amount_minor: payout.amount.minor.toString(),
    currency: payout.amount.currency,
    recipient: payout.recipient,
    status: payout.status,
    stage: payout.stage,
    snapshot: payout.snapshot,
    machine_version: payout.machineVersion,
    version: payout.version,
    description: payout.description,
    created_at: payout.createdAt,
    key: outcome?.key,
    request_hash: outcome?.requestHash,
    response_status: outcome?.status,
    response_body: outcome?.body,
    ttl_hours: outcome?.ttlHours,
    event: first.event,
    actor: first.actor,
    actor_role: first.actorRole,
    reason: first.reason,
    request_id: first.requestId,
    message_id: message.id,
    topic: message.topic,
    payload: message.payload,
    command_seq: message.commandSeq,
    event_id: webhookEvent?.eventId,
    event_type: webhookEvent?.type,
    key_hash: proof?.keyHash,
    key_role: proof?.role,
  };
}

interface CreateRow {
  n: number;
  authorized: boolean;
  locked: boolean;
  subscribed: boolean;
  created: boolean;
}

/**
 * Writes new payouts as their creates decided them (version 1, no failure), each dated `payout.createdAt`, with
 * its first history row, its processing message, with an idempotency key its outcome, and its webhook deliveries,
 * in one statement (`insertPayoutsSql`); one outcome per create, in their order. Named statements, so each
 * connection parses and plans them once.
 */
export async function insertPayouts(db: Knex, creates: readonly NewPayoutWrite[]): Promise<CreateOutcome[]> {
  const run = async (name: string, text: string, batch: readonly NewPayoutWrite[]) => {
    const input = JSON.stringify(batch.map(createInputRow));
    const { rows } = await withConnection(db, (client) =>
      client.query<CreateRow>({ name, text, values: [input] }),
    );
    return rows;
  };
  const rows = await run('payouts.insert', INSERT_PAYOUTS, creates);
  // A subscribed client's create wrote nothing: it is written, whole, by the form with deliveries.
  const subscribed = rows.filter((row) => row.authorized && row.subscribed);
  if (subscribed.length > 0) {
    const again = await run(
      'payouts.insert.webhooks',
      INSERT_PAYOUTS_WITH_WEBHOOKS,
      subscribed.map((row) => creates[row.n]!),
    );
    again.forEach((row, index) => (rows[subscribed[index]!.n] = { ...row, n: subscribed[index]!.n }));
  }
  return rows.map(createOutcome);
}

function createOutcome(row: CreateRow): CreateOutcome {
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
  return findRows(runner, 'payouts.find', reads, payoutColumns('p'), toPayout, options);
}

/** The columns of a rendered read: the resource for the role of the read, `r.role`. */
const RENDERED_COLUMNS = `p.id, p.version, p.currency, ${payoutResourceSql('p', 'r.role')} AS resource`;

/** A rendered payout's resource, refused (as `toPayout` refuses the row) when its currency is not one we know. */
function renderedResource(row: { id: string; currency: string; resource: string }): string {
  if (MINOR_DIGITS[row.currency] === undefined) {
    throw new Error(`payout ${row.id} has unknown currency ${row.currency}`);
  }
  return row.resource;
}

/**
 * `findPayouts`, each payout as the API shows it to the principal of its read (`role`): its resource written by
 * PostgreSQL (see `payoutResourceSql`).
 */
export async function findPayoutResources(
  runner: Runner,
  reads: ReadonlyArray<PayoutRead & { role: Role }>,
): Promise<Array<RenderedPayout | null | typeof KEY_REFUSED>> {
  return findRows(
    runner,
    'payouts.find.resource',
    reads,
    RENDERED_COLUMNS,
    (row: RenderedPayout & { id: string; currency: string }) => ({
      version: row.version,
      resource: renderedResource(row),
    }),
  );
}

/**
 * `findPayouts`' statement, selecting `columns` of `p` (and of the read, `r`), each row found made an item. Outside
 * a transaction it is a named statement (`name`, planned once per connection and kind of batch: the resource's
 * expression alone took PostgreSQL longer to parse and plan than to run); in one, the transaction's own.
 */
async function findRows<Row, Item>(
  runner: Runner,
  name: string,
  reads: ReadonlyArray<PayoutRead & { role?: Role }>,
  columns: string,
  item: (row: Row) => Item,
  options: { forUpdate?: boolean } = {},
): Promise<Array<Item | null | typeof KEY_REFUSED>> {
  const input = reads.map((read, index) => ({
    n: index,
    id: read.id,
    client_id: read.clientId,
    include_deleted: read.includeDeleted,
    key_hash: read.proof?.keyHash,
    key_role: read.proof?.role,
    role: read.role,
  }));
  const proven = reads.some((read) => read.proof !== undefined);
  if (proven && options.forUpdate) throw new Error('a locking read takes no key proof');
  if (options.forUpdate && !runner.isTransaction) throw new Error('a locking read runs in a transaction');
  /** The statement, its one parameter (the reads as JSON) written `placeholder`. */
  const statement = (placeholder: string) => {
    const recordset = `json_to_recordset(${placeholder}::json)
         AS r(n integer, id uuid, client_id uuid, include_deleted boolean, key_hash text, key_role text, role text)`;
    return proven
      ? // A row per read, even when no payout matched, so that a refused key is told from a payout not found.
        `SELECT ${columns}, r.n AS batch_index, a.authorized
           FROM ${recordset}
          CROSS JOIN LATERAL (SELECT r.key_hash IS NULL
                OR EXISTS (${activeKeyProof('r.key_hash', 'r.client_id', 'r.key_role')}) AS authorized) a
           LEFT JOIN payouts p ON a.authorized AND p.id = r.id AND p.client_id = r.client_id
                AND (p.deleted_at IS NULL OR r.include_deleted)`
      : `SELECT ${columns}, r.n AS batch_index
           FROM ${recordset}
           JOIN payouts p ON p.id = r.id AND p.client_id = r.client_id
          WHERE p.deleted_at IS NULL OR r.include_deleted
         ${options.forUpdate ? 'FOR UPDATE OF p' : ''}`;
  };
  type Found = Row & { id: string | null; batch_index: number; authorized?: boolean };
  const values = [JSON.stringify(input)];
  const rows = runner.isTransaction
    ? (await runner.raw<{ rows: Found[] }>(statement('?'), values)).rows
    : (
        await withConnection(runner, (client) =>
          // A name per text (node-postgres refuses a known name with another text); no locking read gets here.
          client.query<Found>({ name: `${name}${proven ? '.proven' : ''}`, text: statement('$1'), values }),
        )
      ).rows;
  const found = new Array<Item | null | typeof KEY_REFUSED>(reads.length).fill(null);
  for (const row of rows) {
    if (row.authorized === false) found[row.batch_index] = KEY_REFUSED;
    else if (row.id !== null) found[row.batch_index] = item(row);
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
  return rows.map((row) => (row.id === null ? null : toPayout(row as PayoutColumns)));
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
    if (row.id !== null) return toPayout(row as PayoutColumns);
    return row.locked ? null : ROW_LOCKED;
  });
}

/**
 * One row per change, in their order: the payout as updated (`id` null when not), in the columns `toPayout` reads
 * (the statement's own — its commands, history fields — are not sent back to be parsed), and whether its row was
 * locked.
 */
type VersionedUpdateRow = Omit<PayoutColumns, 'id'> & { id: string | null; locked: boolean };

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
     SELECT l.id IS NOT NULL AS locked, ${payoutColumns('u')}
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

/** The most rows a page's statement reads: the largest page, and one to know of a next. */
const MAX_PAGE_ROWS = MAX_PAGE_SIZE + 1;

/** How a page's rows are selected and turned into its items. */
interface PageRendering<Row, Item> {
  /** Names the page's statements. */
  name: string;
  /** The select list; its own parameters (`listPage`'s `parameters`), if any, are `$3` on. */
  columns: string;
  item: (row: Row) => Item;
}

/**
 * One page, newest first; fetches one row more than asked to know whether another page exists. A named statement
 * per rendering and combination of the filters given (at most 2^6 per connection and rendering, each planned for
 * its own conditions), on a plain connection like the create: the query builder cost more CPU than PostgreSQL
 * spends on a page. With a remembered caller's `proof`, the page comes only if its key is still active, and a row
 * says whether it is.
 */
async function listPage<Row extends { seq: string }, Item>(
  db: Knex,
  rendering: PageRendering<Row, Item>,
  parameters: unknown[],
  clientId: string,
  filter: PayoutListFilter,
  proof: KeyProof | undefined,
): Promise<{ items: Item[]; last: string | null; hasMore: boolean } | typeof KEY_REFUSED> {
  const values: unknown[] = [clientId, filter.limit + 1, ...parameters];
  const conditions = ['client_id = $1::uuid', 'deleted_at IS NULL'];
  let name = `payouts.list.${rendering.name}`;
  for (const [field, condition] of LIST_CONDITIONS) {
    const value = filter[field];
    if (value === undefined) continue;
    values.push(value);
    conditions.push(condition.replace('$', `$${values.length}`));
    name += `.${field}`;
  }
  // The rows are chosen under a constant bound, then `$2` of them rendered. With the page's size as its only limit,
  // the generic plan of the statement (a limit it cannot see: a tenth of the client's rows, by the planner's default)
  // looked ten times dearer than a plan for the given values, so PostgreSQL planned the statement afresh at every
  // execution, the resource's long expression included: 0.54 ms of its CPU per page on 5,000,000 payouts, against
  // 0.24 ms with the generic plan kept (bench/README.md). The rows are pulled one at a time: no more than `$2` are read.
  let text = `SELECT ${rendering.columns}
       FROM (SELECT * FROM payouts WHERE ${conditions.join(' AND ')} ORDER BY seq DESC LIMIT ${MAX_PAGE_ROWS}) payouts
      ORDER BY seq DESC LIMIT $2::integer`;
  if (proof !== undefined) {
    values.push(proof.keyHash, proof.role);
    const [hash, keyRole] = [`$${values.length - 1}::text`, `$${values.length}::text`];
    name += '.proven';
    text = `SELECT a.authorized, p.*
         FROM (SELECT EXISTS (${activeKeyProof(hash, '$1::uuid', keyRole)}) AS authorized) a
         LEFT JOIN LATERAL (${text}) p ON a.authorized`;
  }
  const result = await withConnection(db, (client) =>
    client.query<Row & { authorized?: boolean }>({ name, text, values }),
  );
  let rows = result.rows;
  if (proof !== undefined) {
    if (rows[0]?.authorized !== true) return KEY_REFUSED;
    rows = rows.filter((row) => row.seq !== null);
  }
  const page = rows.slice(0, filter.limit);
  return {
    items: page.map(rendering.item),
    last: page.length > 0 ? page[page.length - 1]!.seq : null,
    hasMore: rows.length > filter.limit,
  };
}

const SUMMARIES: PageRendering<SummaryColumns, PayoutSummary> = {
  name: 'summary',
  columns: SUMMARY_COLUMNS,
  item: toPayoutSummary,
};

/** One page of summaries (see `listPage`). */
export async function listPayoutPage(
  db: Knex,
  clientId: string,
  filter: PayoutListFilter,
  proof?: KeyProof,
): Promise<PayoutListPage | typeof KEY_REFUSED> {
  const page = await listPage(db, SUMMARIES, [], clientId, filter, proof);
  if (page === KEY_REFUSED) return page;
  return { payouts: page.items, last: page.last, hasMore: page.hasMore };
}

/** Each payout's resource for the principal's role, `$3` (see `payoutResourceSql`). */
const RESOURCES: PageRendering<{ seq: string; id: string; currency: string; resource: string }, string> = {
  name: 'resource',
  columns: `seq, id, currency, ${payoutResourceSql('payouts', '$3::text')} AS resource`,
  item: renderedResource,
};

/**
 * One page as the API shows it to a principal of `role`: each payout's `PayoutResource` JSON, written by
 * PostgreSQL (see `payoutResourceSql`), with the page's position (see `listPage`).
 */
export async function listPayoutResourcePage(
  db: Knex,
  clientId: string,
  role: Role,
  filter: PayoutListFilter,
  proof?: KeyProof,
): Promise<PayoutResourcePage | typeof KEY_REFUSED> {
  const page = await listPage(db, RESOURCES, [role], clientId, filter, proof);
  if (page === KEY_REFUSED) return page;
  return { resources: page.items, last: page.last, hasMore: page.hasMore };
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
