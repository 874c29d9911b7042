import type { Knex } from 'knex';

/**
 * Sessions of the operator console (`/console`): an operator key exchanged for a session at sign-in.
 *
 * - `id_hash`: the SHA-256 (hex) of the random session token the browser holds in its cookie; the token itself is
 *   never stored, so a read of this table does not give anybody a session.
 * - `key_id`: the operator key the session was opened with. A session is honoured only while that key is active
 *   (not revoked, not expired) and the session itself is neither revoked (signed out) nor past `expires_at`.
 * - `csrf_token`: the session's CSRF token, rendered into every form of the console and compared on every POST.
 *
 * The runtime role gets its rights on the new table from `migrate` (src/persistence/runtime-role.ts grants DML on
 * every table of the schema after the migrations ran).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE console_sessions (
      id_hash text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
      key_id uuid NOT NULL REFERENCES api_keys (id),
      client_id uuid NOT NULL REFERENCES clients (id),
      csrf_token text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz
    );
    CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE console_sessions;`);
}
