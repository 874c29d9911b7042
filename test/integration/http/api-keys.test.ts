/**
 * API keys as an operator handles them: a token that cannot be a key costs no lookup, an expired key stops
 * working, a key records when it was used, one key can be revoked alone, `make dev` replaces the keys of its
 * earlier runs, and `key-list` shows each key by its id and first characters, never the key.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import sinon from 'sinon';
import { SHOWN_KEY_CHARACTERS } from '../../../src/domain/api-keys.js';
import { PgApiKeyStore } from '../../../src/persistence/client-repository.js';
import { testDatabaseUrl } from '../../support/database.js';
import { apiKeys } from '../../support/fixtures.js';
import { waitFor } from '../../support/wait.js';
import { useTestApi } from './helpers.js';

describe('API keys', () => {
  const api = useTestApi(4);
  afterEach(() => sinon.restore());

  const name = () => `keys-${randomBytes(4).toString('hex')}`;
  const statusWith = async (key: string) => (await api.request('GET', '/api/payouts', { key })).status;

  it('refuses a token that cannot be a key with 401, without looking it up', async () => {
    const lookups = sinon.spy(PgApiKeyStore.prototype, 'findActive');
    const wellFormedUnknown = `pk_live_${randomBytes(32).toString('base64url')}`;
    for (const token of [
      'pk_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      `pk_live_${randomBytes(32).toString('base64url')}x`,
      `pk_live_${randomBytes(31).toString('base64url')}`,
      `pk_live_${'+'.repeat(43)}`,
      'x'.repeat(60),
    ]) {
      expect(await statusWith(token), token).to.equal(401);
    }
    expect(lookups.callCount, 'no lookup for a malformed token').to.equal(0);
    // The positive control: a token of the right shape is looked up (and unknown).
    expect(await statusWith(wellFormedUnknown)).to.equal(401);
    expect(lookups.callCount).to.equal(1);
  });

  it('stops a key when it expires', async () => {
    const issued = await apiKeys(api.db).issue(name(), 'client', { expiresInDays: 1 });
    expect(await statusWith(issued.key)).to.equal(200);
    await api
      .db('api_keys')
      .where({ id: issued.keyId })
      .update({ expires_at: api.db.raw(`now() - interval '1 second'`) });
    expect(await statusWith(issued.key)).to.equal(401);
  });

  it('records when a key was last used, off the request path', async () => {
    const issued = await apiKeys(api.db).issue(name(), 'client');
    const lastUsed = async () =>
      ((await api.db('api_keys').where({ id: issued.keyId }).first()) as { last_used_at: Date | null })
        .last_used_at;
    expect(await lastUsed()).to.equal(null);
    expect(await statusWith(issued.key)).to.equal(200);
    await waitFor(async () => (await lastUsed()) !== null, { timeoutMs: 5_000 });
  });

  it('revokes one key of a client alone; the client’s other key keeps working', async () => {
    const client = name();
    const keys = apiKeys(api.db);
    const first = await keys.issue(client, 'client');
    const second = await keys.issue(client, 'operator');
    expect(await keys.revokeKey(first.keyId)).to.equal(true);
    expect(await keys.revokeKey(first.keyId), 'already revoked').to.equal(false);
    expect(await statusWith(first.key)).to.equal(401);
    expect(await statusWith(second.key)).to.equal(200);
  });

  it('gives each development run a key that replaces the keys of earlier runs', async () => {
    const keys = apiKeys(api.db);
    const client = name();
    const earlier = await keys.reissue(client, 'client');
    const now = await keys.reissue(client, 'client');
    expect(now.revoked).to.equal(1);
    expect(await statusWith(earlier.key)).to.equal(401);
    expect(await statusWith(now.key)).to.equal(200);
  });

  it('key-list shows each key by its id and first characters; key-revoke --key-id revokes that key', async () => {
    const client = name();
    const issued = await apiKeys(api.db).issue(client, 'operator');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
        env: { ...process.env, DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'silent' },
        encoding: 'utf8',
      });
    const listed = run('key-list', client);
    expect(listed.status, listed.stderr).to.equal(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines).to.have.length(1);
    const [id, shown, listedClient, role, , lastUsed, expiry, revoked] = lines[0]!.split('\t');
    expect({ id, shown, listedClient, role, lastUsed, expiry, revoked }).to.deep.equal({
      id: issued.keyId,
      shown: issued.key.slice(0, SHOWN_KEY_CHARACTERS),
      listedClient: client,
      role: 'operator',
      lastUsed: '-',
      expiry: '-',
      revoked: '-',
    });
    expect(shown!.length).to.equal(12);
    expect(listed.stdout).to.not.include(issued.key);
    const revoke = run('key-revoke', '--key-id', issued.keyId);
    expect(revoke.status, revoke.stderr).to.equal(0);
    const again = run('key-revoke', '--key-id', issued.keyId);
    expect(again.status).to.equal(1);
    expect(again.stderr.trim().split('\n')).to.have.length(1);
  });
});
