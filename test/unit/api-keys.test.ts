/**
 * `ApiKeys.remembered`: a key is remembered only once authenticated, carries the proof the store checks it by, and
 * is forgotten when the store refuses it or when it no longer authenticates.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { ApiKeys, hashApiKey } from '../../src/domain/api-keys.js';
import { Unauthenticated } from '../../src/domain/errors.js';
import type { ApiKeyRecord, ApiKeyStore } from '../../src/domain/ports.js';

function storeOf(active: Map<string, ApiKeyRecord>): ApiKeyStore & { lookups: number } {
  const store = {
    lookups: 0,
    findActive: (hash: string) => {
      store.lookups += 1;
      return Promise.resolve(active.get(hash) ?? null);
    },
    touch: () => Promise.resolve(),
    addKey: () => Promise.reject(new Error('not here')),
    revokeAll: () => Promise.resolve(0),
    revokeOne: () => Promise.resolve(false),
    list: () => Promise.resolve([]),
  };
  return store;
}

describe('ApiKeys.remembered', () => {
  const key = `pk_live_${randomBytes(32).toString('base64url')}`;
  const record: ApiKeyRecord = { id: 'key-1', clientId: 'client-1', role: 'client' };

  it('knows a key only after it authenticated, with the proof the store checks', async () => {
    const active = new Map([[hashApiKey(key), record]]);
    const keys = new ApiKeys(storeOf(active));
    expect(keys.remembered(key), 'not authenticated yet').to.equal(undefined);
    const principal = await keys.authenticate(key);
    expect(principal).to.deep.equal({ clientId: 'client-1', role: 'client', actor: 'key:key-1' });
    expect(keys.remembered(key)).to.deep.equal({
      ...principal,
      proof: { keyHash: hashApiKey(key), role: 'client' },
    });
    expect(keys.remembered(`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`), 'another key').to.equal(
      undefined,
    );
    expect(keys.remembered('pk_live_short'), 'a malformed key').to.equal(undefined);
    expect(keys.remembered(undefined)).to.equal(undefined);
  });

  it('forgets a key the store refused, and one that no longer authenticates', async () => {
    const active = new Map([[hashApiKey(key), record]]);
    const keys = new ApiKeys(storeOf(active));
    await keys.authenticate(key);
    keys.forget(keys.remembered(key)!.proof!);
    expect(keys.remembered(key)).to.equal(undefined);

    await keys.authenticate(key);
    active.clear();
    let refused: unknown;
    await keys.authenticate(key).catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(Unauthenticated);
    expect(keys.remembered(key)).to.equal(undefined);
  });
});
