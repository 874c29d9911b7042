/** API clients and their keys. Keys are stored only as SHA-256 hashes. */
import type { Knex } from 'knex';
import type { ApiKeyRow } from './models.js';
import { ClientRow } from './models.js';
import { withConnection } from './pg-session.js';

type Runner = Knex | Knex.Transaction;

export interface ApiKeyRecord {
  id: string;
  clientId: string;
  role: 'client' | 'operator';
}

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

export async function insertApiKey(
  runner: Runner,
  key: { id: string; clientId: string; role: 'client' | 'operator'; hash: string; prefix: string },
): Promise<void> {
  await runner('api_keys').insert({
    id: key.id,
    client_id: key.clientId,
    role: key.role,
    key_hash: key.hash,
    key_prefix: key.prefix,
  });
}

/** Every request runs this, so it is a named statement on a plain connection (see `pg-session`). */
const FIND_ACTIVE_KEY = 'SELECT id, client_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL';

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

export interface ApiKeyListing {
  client: string;
  keyId: string;
  prefix: string;
  role: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export async function listApiKeys(runner: Runner): Promise<ApiKeyListing[]> {
  const rows = (await runner('api_keys as k')
    .join('clients as c', 'c.id', 'k.client_id')
    .select('c.name', 'k.id', 'k.key_prefix', 'k.role', 'k.created_at', 'k.revoked_at')
    .orderBy([{ column: 'c.name' }, { column: 'k.created_at' }])) as Array<{
    name: string;
    id: string;
    key_prefix: string;
    role: string;
    created_at: Date;
    revoked_at: Date | null;
  }>;
  return rows.map((row) => ({
    client: row.name,
    keyId: row.id,
    prefix: row.key_prefix,
    role: row.role,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  }));
}
