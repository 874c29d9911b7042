/**
 * Fills an empty, migrated database with payouts shaped like production's, in set-based SQL (no API, no service):
 * clients with a key each, one client holding a share of all payouts, statuses mostly `completed`, currencies
 * spread, every payout with its history rows, the messages and idempotency outcomes still within their
 * retention, webhook endpoints for one client in five with delivered events, and the provider's transfers. Then
 * `VACUUM ANALYZE`, so the planner sees the statistics of a large table.
 *
 * Used by `make plans-check` (the plan of every statement on large tables) and `make bench-scale`.
 */
import type pg from 'pg';

export interface SeedOptions {
  payouts: number;
  clients: number;
  /** The share of all payouts held by the first client (0.2: one client in five payouts). */
  bigClientShare: number;
}

/** Statuses by the payout's number modulo 100: 88 completed, 4 failed, 2 cancelled, 3 processing, 3 created. */
const STATUS = `CASE WHEN i % 100 < 88 THEN 'completed' WHEN i % 100 < 92 THEN 'failed'
  WHEN i % 100 < 94 THEN 'cancelled' WHEN i % 100 < 97 THEN 'processing' ELSE 'created' END`;

/** Currencies by the payout's number modulo 10: half EUR, then GBP, USD, a little JPY. */
const CURRENCY = `CASE WHEN i % 10 < 5 THEN 'EUR' WHEN i % 10 < 7 THEN 'GBP' WHEN i % 10 < 9 THEN 'USD' ELSE 'JPY' END`;

export async function seed(client: pg.Client, options: SeedOptions): Promise<void> {
  const { payouts, clients } = options;
  const big = Math.round(payouts * options.bigClientShare);
  await client.query(
    `INSERT INTO clients (id, name)
     SELECT gen_random_uuid(), 'seed-' || lpad(i::text, 6, '0') FROM generate_series(1, $1::integer) i`,
    [clients],
  );
  await client.query(
    `INSERT INTO api_keys (id, client_id, role, key_hash, key_prefix)
     SELECT gen_random_uuid(), id, 'client', encode(sha256(convert_to(name, 'UTF8')), 'hex'), 'pk_live_seed'
       FROM clients WHERE name LIKE 'seed-%'`,
  );
  // Payout i belongs to the big client for i ≤ big, otherwise to one of the others in turn; created 2 s apart,
  // oldest first, so that `seq` and `created_at` follow each other as they do in production.
  await client.query(
    `WITH c AS (SELECT array_agg(id ORDER BY name) AS ids, count(*)::integer AS n FROM clients WHERE name LIKE 'seed-%'),
     s AS (
       SELECT i, ${STATUS} AS status, ${CURRENCY} AS currency,
              now() - make_interval(secs => ($1::integer - i) * 2) AS at,
              CASE WHEN i <= $2::integer THEN c.ids[1] ELSE c.ids[2 + (i % greatest(c.n - 1, 1))] END AS client_id
         FROM generate_series(1, $1::integer) i, c)
     INSERT INTO payouts (id, client_id, amount_minor, currency, recipient, status, stage, snapshot,
       machine_version, version, description, failure_code, failure_message, created_at, updated_at,
       scheduled_at, status_changed_at, deleted_at)
     SELECT gen_random_uuid(), client_id, 100 + (i::bigint * 7919) % 1000000, currency,
            '{"type":"iban","iban":"DE89370400440532013000","bic":null,"holder_name":"Seed Holder"}',
            status,
            CASE status WHEN 'created' THEN 'queued' WHEN 'processing' THEN 'confirming' END,
            jsonb_build_object('value', CASE status WHEN 'created' THEN '{"created":"queued"}'::jsonb
                WHEN 'processing' THEN '{"processing":"confirming"}'::jsonb ELSE to_jsonb(status) END,
              'status', CASE WHEN status IN ('created', 'processing') THEN 'active' ELSE 'done' END,
              'context', '{"attempts":1,"commands":2,"redrives":0,"last_error":null}'::jsonb),
            2, CASE status WHEN 'created' THEN 1 WHEN 'processing' THEN 2 ELSE 3 END,
            CASE WHEN i % 3 = 0 THEN 'Invoice ' || i END,
            CASE WHEN status = 'failed' THEN 'provider_refused' END,
            CASE WHEN status = 'failed' THEN 'Refused by the provider' END,
            at, at + interval '3 seconds', at + interval '3 seconds', at + interval '3 seconds',
            CASE WHEN status = 'cancelled' AND i % 2 = 0 THEN at + interval '1 second' END
       FROM s`,
    [payouts, big],
  );
  await client.query(
    `INSERT INTO payout_events (payout_id, from_status, to_status, event, actor, actor_role, request_id, at)
     SELECT id, NULL, 'created', 'CREATE', 'key:seed', 'client', 'seed', created_at FROM payouts
     UNION ALL
     SELECT id, 'created', 'processing', 'START', 'worker', 'worker', NULL, created_at + interval '1 second'
       FROM payouts WHERE status IN ('processing', 'completed', 'failed')
     UNION ALL
     SELECT id, 'processing', status, CASE status WHEN 'completed' THEN 'PROVIDER_SUCCEEDED' ELSE 'PROVIDER_FAILED' END,
            'worker', 'worker', NULL, updated_at
       FROM payouts WHERE status IN ('completed', 'failed')
     UNION ALL
     SELECT id, 'created', 'cancelled', 'CANCEL', 'key:seed', 'client', 'seed', updated_at
       FROM payouts WHERE status = 'cancelled'`,
  );
  // The last third of the payouts are within the outbox's and the idempotency keys' retention; the unfinished
  // ones still have a message to send.
  const recent = Math.floor(payouts / 3);
  await client.query(
    `INSERT INTO outbox (id, topic, payload, created_at, published_at, payout_id, command_seq)
     SELECT gen_random_uuid(), 'payout.process', jsonb_build_object('payout_id', id, 'client_id', client_id),
            created_at, CASE WHEN status NOT IN ('created', 'processing') THEN created_at + interval '1 second' END,
            id, 1
       FROM payouts WHERE seq > (SELECT max(seq) FROM payouts) - $1::integer OR status IN ('created', 'processing')`,
    [recent],
  );
  await client.query(
    `INSERT INTO idempotency_keys (client_id, key, request_hash, payout_id, response_status, response_body, created_at)
     SELECT client_id, id::text, 'seed', id, 201, '{}'::json, created_at
       FROM payouts WHERE seq > (SELECT max(seq) FROM payouts) - $1::integer`,
    [recent],
  );
  await client.query(
    `INSERT INTO webhook_endpoints (id, client_id, url, events, status, secret_ciphertext)
     SELECT gen_random_uuid(), id, 'https://receiver.example/hooks', ARRAY['payout.completed', 'payout.failed'],
            'enabled', '\\x00'::bytea
       FROM (SELECT id, row_number() OVER (ORDER BY name) AS n FROM clients WHERE name LIKE 'seed-%') c
      WHERE n % 5 = 2`,
  );
  await client.query(
    `INSERT INTO webhook_deliveries (id, event_id, endpoint_id, client_id, type, payout_id, payout_version, payout,
       created_at, status, attempts, last_status_code, last_attempt_at, delivered_at)
     SELECT gen_random_uuid(), 'evt_' || replace(p.id::text, '-', ''), e.id, p.client_id, 'payout.' || p.status,
            p.id, p.version, '{}'::jsonb, p.updated_at, 'delivered', 1, 200, p.updated_at, p.updated_at
       FROM payouts p JOIN webhook_endpoints e ON e.client_id = p.client_id
      WHERE p.status IN ('completed', 'failed') AND p.seq > (SELECT max(seq) FROM payouts) - $1::integer`,
    [recent],
  );
  await client.query(
    `INSERT INTO provider_transfers (idempotency_key, payout_id, result, failure_code, failure_message, at)
     SELECT id::text || ':1', id, CASE status WHEN 'completed' THEN 'succeeded' ELSE 'failed' END,
            failure_code, failure_message, updated_at
       FROM payouts WHERE status IN ('completed', 'failed')`,
  );
  await client.query('VACUUM ANALYZE');
}
