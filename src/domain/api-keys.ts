/**
 * API keys: 32 random bytes, shown once, stored as SHA-256. A key looks like `pk_live_<secret>` (client) or
 * `pk_op_<secret>` (operator) only to make it recognisable in a secret scanner; authentication hashes the whole string.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import * as clients from '../persistence/client-repository.js';
import type { Principal } from './principal.js';
import { Unauthenticated, ValidationFailed } from './errors.js';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export async function issueApiKey(
  db: Knex,
  clientName: string,
  role: 'client' | 'operator',
): Promise<{ key: string; clientId: string; keyId: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(clientName)) {
    throw new ValidationFailed([{ pointer: '/name', message: 'must be 1-64 letters, digits, _ . -' }]);
  }
  if (role !== 'client' && role !== 'operator') {
    throw new ValidationFailed([{ pointer: '/role', message: 'must be client or operator' }]);
  }
  const secret = randomBytes(32).toString('base64url');
  const prefix = `pk_${role === 'operator' ? 'op' : 'live'}_`;
  const key = `${prefix}${secret}`;
  const keyId = randomUUID();
  const client = await db.transaction(async (tx) => {
    const found = await clients.findOrCreateClient(tx, randomUUID(), clientName);
    await clients.insertApiKey(tx, {
      id: keyId,
      clientId: found.id,
      role,
      hash: hashApiKey(key),
      prefix,
    });
    return found;
  });
  return { key, clientId: client.id, keyId };
}

/** The principal behind a bearer key, or Unauthenticated. Revoked keys stop working at once (no cache). */
export async function authenticate(db: Knex, key: string | undefined): Promise<Principal> {
  if (key === undefined || key.length < 16 || key.length > 200) throw new Unauthenticated();
  const found = await clients.findActiveKeyByHash(db, hashApiKey(key));
  if (!found) throw new Unauthenticated('The API key is unknown or revoked.');
  return { clientId: found.clientId, role: found.role, actor: `key:${found.id}` };
}

export async function revokeApiKeys(db: Knex, clientName: string): Promise<number> {
  return clients.revokeClientKeys(db, clientName);
}

export const listApiKeys = clients.listApiKeys;
