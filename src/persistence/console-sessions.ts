/**
 * The operator console's sessions on PostgreSQL (table `console_sessions`). A session is found only while it is
 * not revoked, not expired, and the operator key it was opened with is still active: revoking or expiring the
 * key ends every session opened with it at once, in the same statement that reads the session.
 */
import type { Knex } from 'knex';
import { translated } from './payout-store.js';

export interface NewConsoleSession {
  /** SHA-256 (hex) of the session token; the token itself is never stored. */
  idHash: string;
  keyId: string;
  clientId: string;
  csrfToken: string;
  expiresAt: Date;
}

/** A live session: whose it is and its CSRF token. */
export interface ConsoleSession {
  keyId: string;
  clientId: string;
  csrfToken: string;
  expiresAt: Date;
}

export interface ConsoleSessionStore {
  create(session: NewConsoleSession): Promise<void>;
  /** The live session with this hash, or null (unknown, signed out, expired, or its key no longer active). */
  findActive(idHash: string): Promise<ConsoleSession | null>;
  /** Ends the session (sign-out); false when there was no live session with this hash. */
  revoke(idHash: string): Promise<boolean>;
}

const FIND_ACTIVE = `SELECT s.key_id, s.client_id, s.csrf_token, s.expires_at
    FROM console_sessions s
    JOIN api_keys k ON k.id = s.key_id
   WHERE s.id_hash = ? AND s.revoked_at IS NULL AND s.expires_at > now()
     AND k.role = 'operator' AND k.client_id = s.client_id
     AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`;

export class PgConsoleSessions implements ConsoleSessionStore {
  constructor(private readonly db: Knex) {}

  create(session: NewConsoleSession): Promise<void> {
    return translated(async () => {
      await this.db('console_sessions').insert({
        id_hash: session.idHash,
        key_id: session.keyId,
        client_id: session.clientId,
        csrf_token: session.csrfToken,
        expires_at: session.expiresAt,
      });
    });
  }

  findActive(idHash: string): Promise<ConsoleSession | null> {
    return translated(async () => {
      const result = await this.db.raw<{
        rows: Array<{ key_id: string; client_id: string; csrf_token: string; expires_at: Date }>;
      }>(FIND_ACTIVE, [idHash]);
      const row = result.rows[0];
      return row
        ? { keyId: row.key_id, clientId: row.client_id, csrfToken: row.csrf_token, expiresAt: row.expires_at }
        : null;
    });
  }

  revoke(idHash: string): Promise<boolean> {
    return translated(async () => {
      const count = await this.db('console_sessions')
        .update({ revoked_at: this.db.fn.now() })
        .where({ id_hash: idHash })
        .whereNull('revoked_at');
      return count > 0;
    });
  }
}
