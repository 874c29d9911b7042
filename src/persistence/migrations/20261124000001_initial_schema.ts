import type { Knex } from 'knex';

/**
 * The whole schema of the first release. Constraints repeat the domain rules so that a bug above cannot store
 * a payout the domain would refuse.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE clients (
      id uuid PRIMARY KEY,
      name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE api_keys (
      id uuid PRIMARY KEY,
      client_id uuid NOT NULL REFERENCES clients (id),
      role text NOT NULL CHECK (role IN ('client', 'operator')),
      -- SHA-256 of the key, hex. The key itself is shown once and never stored.
      key_hash text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
      key_prefix text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    );
    CREATE INDEX api_keys_client_idx ON api_keys (client_id);

    CREATE TABLE payouts (
      id uuid PRIMARY KEY,
      -- Insertion order: the exact keyset of pagination (timestamps lose microseconds in JS and tie).
      seq bigserial NOT NULL UNIQUE,
      client_id uuid NOT NULL REFERENCES clients (id),
      amount_minor bigint NOT NULL CHECK (amount_minor > 0),
      currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
      recipient jsonb NOT NULL CHECK (jsonb_typeof(recipient) = 'object' AND recipient \\? 'type'),
      status text NOT NULL CHECK (status IN ('created', 'processing', 'completed', 'failed', 'cancelled')),
      snapshot jsonb NOT NULL,
      machine_version integer NOT NULL CHECK (machine_version > 0),
      version integer NOT NULL DEFAULT 1 CHECK (version > 0),
      description text CHECK (char_length(description) <= 500),
      failure_code text,
      failure_message text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      -- When a message for this payout was last put in the outbox: the sweeper re-drives from here.
      scheduled_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz,
      CONSTRAINT payouts_failure_iff_failed CHECK ((status = 'failed') = (failure_code IS NOT NULL)),
      CONSTRAINT payouts_deleted_only_cancelled CHECK (deleted_at IS NULL OR status = 'cancelled')
    );
    CREATE INDEX payouts_client_page_idx ON payouts (client_id, seq DESC) WHERE deleted_at IS NULL;
    CREATE INDEX payouts_unfinished_idx ON payouts (scheduled_at) WHERE status IN ('created', 'processing');

    CREATE TABLE payout_events (
      id bigserial PRIMARY KEY,
      payout_id uuid NOT NULL REFERENCES payouts (id),
      from_status text,
      to_status text NOT NULL,
      event text NOT NULL,
      actor text NOT NULL,
      actor_role text NOT NULL CHECK (actor_role IN ('client', 'operator', 'worker', 'system')),
      reason text CHECK (char_length(reason) <= 500),
      request_id text,
      at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX payout_events_payout_idx ON payout_events (payout_id, id);

    CREATE TABLE outbox (
      id uuid PRIMARY KEY,
      seq bigserial NOT NULL UNIQUE,
      topic text NOT NULL,
      payload jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      published_at timestamptz,
      attempts integer NOT NULL DEFAULT 0,
      -- A relay that claims a row leases it until then; an expired lease lets another relay take it.
      locked_until timestamptz,
      last_error text
    );
    CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;
    CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

    CREATE TABLE idempotency_keys (
      client_id uuid NOT NULL REFERENCES clients (id),
      key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
      request_hash text NOT NULL,
      payout_id uuid NOT NULL REFERENCES payouts (id),
      response_status integer NOT NULL,
      -- json, not jsonb: a replay returns the stored document byte for byte, key order included.
      response_body json NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (client_id, key)
    );
    CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

    -- The simulated provider's own ledger of effects: one row per idempotency key, ever.
    CREATE TABLE provider_transfers (
      id bigserial PRIMARY KEY,
      idempotency_key text NOT NULL UNIQUE,
      payout_id uuid NOT NULL,
      result text NOT NULL CHECK (result IN ('succeeded', 'failed')),
      failure_code text,
      failure_message text,
      at timestamptz NOT NULL DEFAULT now()
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE provider_transfers, idempotency_keys, outbox, payout_events, payouts, api_keys, clients;
  `);
}
