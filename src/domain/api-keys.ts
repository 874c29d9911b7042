/**
 * API keys: 32 random bytes, shown once, stored as SHA-256. A key looks like `pk_live_<secret>` (client) or
 * `pk_op_<secret>` (operator) only to make it recognisable in a secret scanner; authentication hashes the whole
 * string. Revoked keys stop working at once (no cache).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Unauthenticated, ValidationFailed } from './errors.js';
import type { ApiKeyListing, ApiKeyRecord, ApiKeyStore } from './ports.js';
import type { Principal } from './principal.js';

export type { ApiKeyListing };

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A client's name: what `make key NAME=…` takes. */
const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export class ApiKeys {
  constructor(private readonly store: ApiKeyStore) {}

  /** Issues a key for the named client (created on its first key); the key is returned once, never stored. */
  async issue(clientName: string, role: string): Promise<{ key: string; clientId: string; keyId: string }> {
    if (!CLIENT_NAME.test(clientName)) {
      throw new ValidationFailed([{ field: 'name', message: 'must be 1-64 letters, digits, _ . -' }]);
    }
    if (role !== 'client' && role !== 'operator') {
      throw new ValidationFailed([{ field: 'role', message: 'must be client or operator' }]);
    }
    const prefix = `pk_${role === 'operator' ? 'op' : 'live'}_`;
    const key = `${prefix}${randomBytes(32).toString('base64url')}`;
    const keyId = randomUUID();
    const clientId = await this.store.addKey(clientName, { id: keyId, role, hash: hashApiKey(key), prefix });
    return { key, clientId, keyId };
  }

  /** The principal behind a bearer key, or Unauthenticated. */
  async authenticate(key: string | undefined): Promise<Principal> {
    if (key === undefined || key.length < 16 || key.length > 200) throw new Unauthenticated();
    const found: ApiKeyRecord | null = await this.store.findActive(hashApiKey(key));
    if (!found) throw new Unauthenticated('The API key is unknown or revoked.');
    return { clientId: found.clientId, role: found.role, actor: `key:${found.id}` };
  }

  /** Revokes every active key of the named client; returns how many. */
  revoke(clientName: string): Promise<number> {
    return this.store.revokeAll(clientName);
  }

  list(): Promise<ApiKeyListing[]> {
    return this.store.list();
  }
}
