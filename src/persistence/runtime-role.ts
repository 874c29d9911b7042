/**
 * Least privilege: the running roles (api, worker, relay, sweeper) connect as a role that may read and write rows
 * but not change the schema; `migrate` connects with a DDL-capable role (`DATABASE_MIGRATION_URL`) and makes sure
 * the runtime role exists with exactly those grants. When everything runs on one superuser URL (local runs, CI),
 * the runtime role is still created and granted, so the grants are always exercised, and nothing else changes.
 */
import type { Knex } from 'knex';
import pg from 'pg';

/** The runtime role's name and, for a role that logs in with a password, that password. */
export interface RuntimeRole {
  name: string;
  password?: string;
}

/** A role name PostgreSQL takes without quoting surprises. */
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Creates the runtime role if missing (idempotent, and safe when several databases of one server run it at once:
 * roles are cluster-wide, so a concurrent CREATE may win the race, which is fine), sets its password when given,
 * and grants it DML on every table and sequence of the schema, now and for tables later migrations create.
 */
export async function ensureRuntimeRole(db: Knex, role: RuntimeRole): Promise<void> {
  if (!ROLE_NAME.test(role.name)) throw new Error(`"${role.name}" is not a role name this service creates`);
  // Catalog rows updated by two sessions at once fail one of them ("tuple concurrently updated"): within a
  // database an advisory lock serialises them; across databases (roles are cluster-wide) a few tries absorb it.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await db.transaction((tx) => grantRuntimeRole(tx, role));
      return;
    } catch (error) {
      const concurrent = /tuple concurrently (updated|deleted)/.test(String((error as Error)?.message));
      if (!concurrent || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

async function grantRuntimeRole(tx: Knex.Transaction, role: RuntimeRole): Promise<void> {
  const name = pg.escapeIdentifier(role.name);
  await tx.raw(`SELECT pg_advisory_xact_lock(hashtextextended('payouts.runtime_role', 0))`);
  await tx.raw(`
    DO $$
    BEGIN
      CREATE ROLE ${name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL;
    END
    $$`);
  if (role.password !== undefined) {
    await tx.raw(`ALTER ROLE ${name} PASSWORD ${pg.escapeLiteral(role.password)}`);
  }
  const database = pg.escapeIdentifier(
    (await tx.raw<{ rows: Array<{ db: string }> }>('SELECT current_database() AS db')).rows[0]!.db,
  );
  await tx.raw(`
    GRANT CONNECT ON DATABASE ${database} TO ${name};
    GRANT USAGE ON SCHEMA public TO ${name};
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${name};
    GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${name};
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${name};
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${name};
  `);
}
