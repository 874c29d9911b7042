import type { Knex } from 'knex';

/**
 * Webhooks: the endpoints a client registers and the deliveries of payout events to them.
 *
 * - `webhook_endpoints`: the signing secret is stored encrypted (AES-256-GCM, `WEBHOOK_SECRET_KEY`), never hashed,
 *   because the service must sign with it; after a rotation the previous secret keeps signing until
 *   `previous_secret_expires_at`. A deleted endpoint keeps its row (its deliveries name it) with `deleted_at` set.
 *   The partial index serves the fan-out in the statement of every payout change: with no enabled endpoint of the
 *   client it answers no row from an index probe.
 * - `webhook_deliveries`: one row per event and endpoint, written by the same statement as the change that caused
 *   the event. `payout` holds the payout's row at that version (the event's body is rendered from it), `event_id`
 *   is shared by the rows of one event. Settled rows are pruned after `WEBHOOK_RETENTION_DAYS` (by the settled
 *   index); pending ones never are.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE webhook_endpoints (
      id uuid PRIMARY KEY,
      seq bigserial NOT NULL UNIQUE,
      client_id uuid NOT NULL REFERENCES clients (id),
      url text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2048),
      events text[] NOT NULL CHECK (cardinality(events) > 0),
      description text CHECK (char_length(description) <= 500),
      status text NOT NULL CHECK (status IN ('enabled', 'disabled')),
      disabled_reason text,
      secret_ciphertext bytea NOT NULL,
      previous_secret_ciphertext bytea,
      previous_secret_expires_at timestamptz,
      consecutive_failures integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz,
      CONSTRAINT webhook_endpoints_deleted_disabled CHECK (deleted_at IS NULL OR status = 'disabled')
    );
    CREATE INDEX webhook_endpoints_client_idx ON webhook_endpoints (client_id, seq DESC) WHERE deleted_at IS NULL;
    CREATE INDEX webhook_endpoints_enabled_idx ON webhook_endpoints (client_id) WHERE status = 'enabled';

    CREATE TABLE webhook_deliveries (
      id uuid PRIMARY KEY,
      seq bigserial NOT NULL UNIQUE,
      event_id text NOT NULL,
      endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id),
      client_id uuid NOT NULL,
      type text NOT NULL,
      payout_id uuid NOT NULL,
      payout_version integer NOT NULL,
      payout jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      last_status_code integer,
      last_error text,
      last_attempt_at timestamptz,
      next_attempt_at timestamptz,
      delivered_at timestamptz,
      UNIQUE (event_id, endpoint_id)
    );
    CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, seq DESC);
    CREATE INDEX webhook_deliveries_payout_idx ON webhook_deliveries (endpoint_id, payout_id, seq DESC);
    CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (created_at) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_settled_idx ON webhook_deliveries (created_at) WHERE status <> 'pending';
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE webhook_deliveries, webhook_endpoints;`);
}
