/** API clients and their keys (the domain's `ApiKeyStore`). Keys are stored only as SHA-256 hashes. */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { ApiKeyListing, ApiKeyRecord, ApiKeyStore, NewApiKey } from '../domain/ports.js';
import type { ApiKeyRow } from './models.js';
import { ClientRow } from './models.js';
import { withConnection } from './pg-session.js';
import { translated } from './payout-store.js';

type Runner = Knex | Knex.Transaction;

export async function findOrCreateClient(
  runner: Runner,
  id: string,
  name: string,
): Promise<{ id: string; name: string }> {
  await runner('clients').insert({ id, name }).onConflict('name').ignore();
  const row = await ClientRow.query(runner).findOne({ name });
  if (!row) throw new Error(`client ${name} vanished`);
  return { id: row.id, name: row.name };
}

export async function insertApiKey(runner: Runner, key: NewApiKey & { clientId: string }): Promise<void> {
  await runner('api_keys').insert({
    id: key.id,
    client_id: key.clientId,
    role: key.role,
    key_hash: key.hash,
    key_prefix: key.prefix,
    expires_at: key.expiresAt,
  });
}

/** Every request runs this, so it is a named statement on a plain connection (see `pg-session`). */
const FIND_ACTIVE_KEY = `SELECT id, client_id, role FROM api_keys
  WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`;

export async function findActiveKeyByHash(db: Knex, hash: string): Promise<ApiKeyRecord | null> {
  const result = await withConnection(db, (client) =>
    client.query<Pick<ApiKeyRow, 'id' | 'client_id' | 'role'>>({
      name: 'api_keys.find_active',
      text: FIND_ACTIVE_KEY,
      values: [hash],
    }),
  );
  const row = result.rows[0];
  return row ? { id: row.id, clientId: row.client_id, role: row.role } : null;
}

/** Revokes every active key of the named client; returns how many. */
export async function revokeClientKeys(runner: Runner, clientName: string): Promise<number> {
  return runner('api_keys')
    .update({ revoked_at: runner.fn.now() })
    .whereNull('revoked_at')
    .whereIn('client_id', runner('clients').select('id').where({ name: clientName }));
}

export async function listApiKeys(runner: Runner, clientName?: string): Promise<ApiKeyListing[]> {
  const query = runner('api_keys as k')
    .join('clients as c', 'c.id', 'k.client_id')
    .select(
      'c.name',
      'k.id',
      'k.key_prefix',
      'k.role',
      'k.created_at',
      'k.last_used_at',
      'k.expires_at',
      'k.revoked_at',
    )
    .orderBy([{ column: 'c.name' }, { column: 'k.created_at' }]);
  if (clientName !== undefined) void query.where('c.name', clientName);
  const rows = (await query) as Array<{
    name: string;
    id: string;
    key_prefix: string;
    role: string;
    created_at: Date;
    last_used_at: Date | null;
    expires_at: Date | null;
    revoked_at: Date | null;
  }>;
  return rows.map((row) => ({
    client: row.name,
    keyId: row.id,
    prefix: row.key_prefix,
    role: row.role,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  }));
}

export class PgApiKeyStore implements ApiKeyStore {
  constructor(private readonly db: Knex) {}

  addKey(clientName: string, key: NewApiKey): Promise<string> {
    return translated(() =>
      this.db.transaction(async (tx) => {
        const client = await findOrCreateClient(tx, randomUUID(), clientName);
        await insertApiKey(tx, { ...key, clientId: client.id });
        return client.id;
      }),
    );
  }

  findActive(hash: string): Promise<ApiKeyRecord | null> {
    return translated(() => findActiveKeyByHash(this.db, hash));
  }

  touch(keyIds: readonly string[]): Promise<void> {
    return translated(async () => {
      await this.db('api_keys').update({ last_used_at: this.db.fn.now() }).whereIn('id', keyIds);
    });
  }

  revokeAll(clientName: string): Promise<number> {
    return translated(() => revokeClientKeys(this.db, clientName));
  }

  revokeOne(keyId: string): Promise<boolean> {
    return translated(async () => {
      const count = await this.db('api_keys')
        .update({ revoked_at: this.db.fn.now() })
        .where({ id: keyId })
        .whereNull('revoked_at');
      return count > 0;
    });
  }

  list(clientName?: string): Promise<ApiKeyListing[]> {
    return translated(() => listApiKeys(this.db, clientName));
  }
}
