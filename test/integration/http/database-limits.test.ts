/**
 * The database limits every connection of a running role has (`DATABASE_STATEMENT_TIMEOUT_MS`,
 * `DATABASE_LOCK_TIMEOUT_MS`, `DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS`), on the real PostgreSQL: a statement
 * that runs too long is cancelled (57014), one that waits too long for a lock fails (55P03), a transaction left idle
 * loses its session — on knex's statements and on the plain connections pg-session.ts borrows alike — and the API
 * answers 503 with `Retry-After` instead of hanging. A request is bounded end to end: a handler that never
 * answers is answered 503 by the server.
 */
import { expect } from 'chai';
import type { Knex } from 'knex';
import sinon from 'sinon';
import { loadConfig } from '../../../src/config.js';
import type { Config } from '../../../src/config.js';
import { createApp } from '../../../src/http/app.js';
import { createApiServer } from '../../../src/http/server.js';
import { createLogger } from '../../../src/logger.js';
import { createMetrics } from '../../../src/metrics.js';
import type { Db } from '../../../src/persistence/db.js';
import { withConnection } from '../../../src/persistence/pg-session.js';
import { openDatabase } from '../../../src/roles/parts.js';
import { createTestContext } from '../../support/context.js';
import { openTestDb, testDatabaseUrl } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient } from '../../support/fixtures.js';
import type { TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';
import { createPayoutOverHttp } from './helpers.js';
import { LogCapture } from '../../support/logs.js';

const LIMITS = {
  DATABASE_STATEMENT_TIMEOUT_MS: '400',
  DATABASE_LOCK_TIMEOUT_MS: '200',
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '1000',
};

function limitedConfig(env: Record<string, string> = LIMITS): Config {
  return loadConfig({ DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'silent', ...env });
}

/** What a promise settled with, within `ms` (a statement that hangs fails the test instead of the run). */
async function settled(work: Promise<unknown>, ms = 5_000): Promise<{ error?: unknown; ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([work, hung]);
    return { ms: Date.now() - started };
  } catch (error) {
    if ((error as Error).message === `still waiting after ${ms} ms`) throw error;
    return { error, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** Holds an exclusive lock on the payouts table from another connection until the returned release. */
async function lockPayouts(db: Knex): Promise<() => Promise<void>> {
  const trx = await db.transaction();
  await trx.raw('LOCK TABLE payouts IN ACCESS EXCLUSIVE MODE');
  return async () => {
    await trx.rollback();
  };
}

describe('HTTP: database limits on every connection, and every request bounded', function () {
  this.timeout(60_000);
  let admin: Db;
  let roleDb: Db;
  let client: TestClient;

  before(async () => {
    admin = openTestDb(3);
    client = await createTestClient(admin, 'db-limits');
  });
  beforeEach(() => {
    roleDb = openDatabase(limitedConfig(), createLogger({ level: 'silent' }), 3);
  });
  afterEach(async () => {
    sinon.restore();
    await roleDb.destroy();
  });
  after(() => admin.destroy());

  it('a statement longer than DATABASE_STATEMENT_TIMEOUT_MS is cancelled (57014), through knex and pg-session', async () => {
    const viaKnex = await settled(roleDb.raw('SELECT pg_sleep(3)'));
    expect(viaKnex.error, `cancelled, not run for ${viaKnex.ms} ms`).to.have.property('code', '57014');
    expect(viaKnex.ms).to.be.lessThan(2_000);
    const viaSession = await settled(withConnection(roleDb, (pg) => pg.query('SELECT pg_sleep(3)')));
    expect(viaSession.error, `cancelled, not run for ${viaSession.ms} ms`).to.have.property('code', '57014');
    const shown = await roleDb.raw<{ rows: Array<Record<string, string>> }>(
      `SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock,
              current_setting('idle_in_transaction_session_timeout') AS idle`,
    );
    expect(shown.rows[0]).to.deep.equal({ statement: '400ms', lock: '200ms', idle: '1s' });
  });

  it('a transaction idle longer than DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS loses its session; the pool goes on', async () => {
    const idle = await settled(
      roleDb.transaction(async (trx) => {
        await trx.raw('SELECT 1');
        await new Promise((resolve) => setTimeout(resolve, 1_800));
        await trx.raw('SELECT 1');
      }),
    );
    expect(idle.error, 'the idle transaction failed').to.be.an('error');
    const after = await roleDb.raw<{ rows: Array<{ one: number }> }>('SELECT 1 AS one');
    expect(after.rows[0]!.one).to.equal(1);
  });

  it('an API request whose statement waits on a lock answers 503 with Retry-After, not a hung socket', async () => {
    const api: TestApi = await startTestApi(roleDb, {}, LIMITS);
    const id = await createPayoutOverHttp(api, client.key);
    const release = await lockPayouts(admin);
    try {
      const started = Date.now();
      const response = await api.request('GET', `/api/payouts/${id}`, {
        key: client.key,
        headers: { 'x-request-id': 'lock-wait' },
      });
      expect(response.status, response.text).to.equal(503);
      expect(response.body).to.include({ code: 'service_unavailable' });
      expect(response.headers.get('retry-after')).to.match(/^[1-9]\d*$/);
      expect(Date.now() - started).to.be.lessThan(3_000);
    } finally {
      await release();
      await api.close();
    }
    // Once the lock is gone the same API answers again.
    const again = await startTestApi(roleDb, {}, LIMITS);
    try {
      expect((await again.request('GET', `/api/payouts/${id}`, { key: client.key })).status).to.equal(200);
    } finally {
      await again.close();
    }
  });

  it('a request still unanswered after REQUEST_TIMEOUT_MS is answered 503 problem+json, and its late answer dropped', async () => {
    const config = limitedConfig();
    const logs = new LogCapture();
    const ctx = createTestContext(config, {
      db: roleDb,
      log: createLogger({ level: 'info', destination: logs }),
      metrics: createMetrics({ defaults: false }),
    });
    let answerLate: () => void = () => undefined;
    const plain = await startTestApi(admin);
    const id = await createPayoutOverHttp(plain, client.key).finally(() => plain.close());
    const payout = await ctx.service.getPayoutResource(client.principal, id);
    sinon.stub(ctx.service, 'getPayoutResource').callsFake(
      () =>
        new Promise((resolve) => {
          answerLate = () => resolve(payout);
        }),
    );
    const server = createApiServer(await createApp(ctx), { requestTimeoutMs: 1_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const started = Date.now();
      const response = await fetch(`http://127.0.0.1:${port}/api/payouts/${id}`, {
        headers: { authorization: `Bearer ${client.key}`, 'x-request-id': 'slow-1' },
        signal: AbortSignal.timeout(5_000),
      });
      const took = Date.now() - started;
      expect(response.status).to.equal(503);
      expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
      expect(response.headers.get('retry-after')).to.match(/^[1-9]\d*$/);
      expect(response.headers.get('x-request-id')).to.equal('slow-1');
      expect(await response.json()).to.include({
        status: 503,
        code: 'service_unavailable',
        request_id: 'slow-1',
      });
      expect(took).to.be.within(900, 3_000);
      // The handler's answer, when it comes, goes nowhere and breaks nothing.
      answerLate();
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The access line says why the request failed, as for every other problem answer.
      const access = logs.records().filter((line) => line.msg === 'request' && line.request_id === 'slow-1');
      expect(access.map((line) => [line.status, line.problem])).to.deep.equal([[503, 'service_unavailable']]);
    } finally {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  });
});
