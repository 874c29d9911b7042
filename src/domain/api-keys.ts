/**
 * API keys: 32 random bytes, shown once, stored as SHA-256. A key looks like `pk_live_<secret>` (client) or
 * `pk_op_<secret>` (operator) only to make it recognisable in a secret scanner; authentication hashes the whole
 * string. Revoked and expired keys stop working at once: a key this process has seen before is remembered only to
 * save a lookup, and is checked again by the statement that serves the request (`remembered`). A key records when it was last used, at most
 * once a minute and never on the request's path.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { KEY_NOT_ACTIVE, Unauthenticated, ValidationFailed } from './errors.js';
import type { ApiKeyListing, ApiKeyRecord, ApiKeyStore } from './ports.js';
import type { KeyProof, Principal } from './principal.js';

export type { ApiKeyListing };

function principalOfKey(found: ApiKeyRecord): Principal {
  return { clientId: found.clientId, role: found.role, actor: `key:${found.id}` };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A client's name: what `make key NAME=…` takes. */
const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * What every key this service issues looks like: its role's prefix and 32 random bytes in base64url (43
 * characters). Anything else cannot be a key, and is refused without asking the store.
 */
const KEY_SHAPE = /^pk_(live|op)_[A-Za-z0-9_-]{43}$/;

/** The characters of a key kept to tell keys apart in a listing: the prefix and a few random ones. */
export const SHOWN_KEY_CHARACTERS = 12;

/** A key's use is recorded at most this often. */
const TOUCH_INTERVAL_MS = 60_000;

/** Most keys remembered by one process; when full it starts over (an entry costs ~200 bytes). */
const REMEMBERED_KEYS = 10_000;

export interface IssueOptions {
  /** The key stops working after this many days; never when absent. */
  expiresInDays?: number;
}

export class ApiKeys {
  /** When each key's use was last recorded by this process. */
  private readonly touched = new Map<string, number>();
  /** The keys this process has authenticated, by hash: never trusted alone (see `remembered`). */
  private readonly known = new Map<string, ApiKeyRecord>();

  constructor(
    private readonly store: ApiKeyStore,
    /** Told when recording a key's use failed (it is retried on a later use). */
    private readonly onTouchError: (error: unknown) => void = () => undefined,
  ) {}

  /** Issues a key for the named client (created on its first key); the key is returned once, never stored. */
  async issue(
    clientName: string,
    role: string,
    options: IssueOptions = {},
  ): Promise<{ key: string; clientId: string; keyId: string }> {
    if (!CLIENT_NAME.test(clientName)) {
      throw new ValidationFailed([{ field: 'name', message: 'must be 1-64 letters, digits, _ . -' }]);
    }
    if (role !== 'client' && role !== 'operator') {
      throw new ValidationFailed([{ field: 'role', message: 'must be client or operator' }]);
    }
    const days = options.expiresInDays;
    if (days !== undefined && (!Number.isInteger(days) || days < 1 || days > 3650)) {
      throw new ValidationFailed([
        { field: 'expires', message: 'must be a whole number of days from 1 to 3650' },
      ]);
    }
    const key = `pk_${role === 'operator' ? 'op' : 'live'}_${randomBytes(32).toString('base64url')}`;
    const keyId = randomUUID();
    const clientId = await this.store.addKey(clientName, {
      id: keyId,
      role,
      hash: hashApiKey(key),
      prefix: key.slice(0, SHOWN_KEY_CHARACTERS),
      expiresAt: days === undefined ? null : new Date(Date.now() + days * 86_400_000),
    });
    return { key, clientId, keyId };
  }

  /** The principal behind a bearer key, or Unauthenticated. */
  async authenticate(key: string | undefined): Promise<Principal> {
    if (key === undefined || !KEY_SHAPE.test(key)) throw new Unauthenticated();
    const hash = hashApiKey(key);
    const found: ApiKeyRecord | null = await this.store.findActive(hash);
    if (!found) {
      this.known.delete(hash);
      throw new Unauthenticated(KEY_NOT_ACTIVE);
    }
    if (this.known.size >= REMEMBERED_KEYS) this.known.clear();
    this.known.set(hash, found);
    this.recordUse(found.id);
    return principalOfKey(found);
  }

  /**
   * The principal of a key this process authenticated before, without asking the store now: it carries the key's
   * `proof`, which the store checks in the same statement that serves the request (one round trip instead of
   * two). Undefined for a key not seen yet (or malformed): the caller authenticates it instead.
   */
  remembered(key: string | undefined): Principal | undefined {
    if (key === undefined || !KEY_SHAPE.test(key)) return undefined;
    const keyHash = hashApiKey(key);
    const found = this.known.get(keyHash);
    if (found === undefined) return undefined;
    this.recordUse(found.id);
    return { ...principalOfKey(found), proof: { keyHash, role: found.role } };
  }

  /** Forgets a remembered key that the store refused (revoked, expired): its next request authenticates afresh. */
  forget(proof: KeyProof): void {
    this.known.delete(proof.keyHash);
  }

  /** Revokes every active key of the named client; returns how many. */
  revoke(clientName: string): Promise<number> {
    return this.store.revokeAll(clientName);
  }

  /** Revokes one key by its id; false when there is no such active key. */
  revokeKey(keyId: string): Promise<boolean> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(keyId)) {
      throw new ValidationFailed([{ field: 'key_id', message: 'must be a key id as key-list shows it' }]);
    }
    return this.store.revokeOne(keyId);
  }

  /**
   * A new key for the named client in place of all its others: what `make dev` gives each run, so the keys of
   * earlier runs stop working.
   */
  async reissue(
    clientName: string,
    role: string,
  ): Promise<{ key: string; clientId: string; keyId: string; revoked: number }> {
    const revoked = await this.store.revokeAll(clientName);
    return { ...(await this.issue(clientName, role)), revoked };
  }

  list(clientName?: string): Promise<ApiKeyListing[]> {
    return this.store.list(clientName);
  }

  /** Records the key's use in the background, at most once per `TOUCH_INTERVAL_MS`: never delays the request. */
  private recordUse(keyId: string): void {
    const now = Date.now();
    if (now - (this.touched.get(keyId) ?? 0) < TOUCH_INTERVAL_MS) return;
    this.touched.set(keyId, now);
    void this.store.touch([keyId]).catch((error: unknown) => {
      this.touched.delete(keyId);
      this.onTouchError(error);
    });
  }
}
