/**
 * The API without its database — the database missing (3D000), the login refused (28000), the port closed — through
 * the suite's TCP proxy in front of the real PostgreSQL: every request answers 503 problem+json with `Retry-After`
 * (never a 500), `/readyz` on the operations port says which of them it is, the outage is logged once (and its end
 * once), and the `api` process starts and stays up without its database, answering 503 until it is back.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/logger.js';
import { startApiOpsServer } from '../../../src/ops-server.js';
import type { OpsServer } from '../../../src/ops-server.js';
import type { Db } from '../../../src/persistence/db.js';
import { openDatabase } from '../../../src/roles/parts.js';
import { openTestDb, testDatabaseUrl } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';
import type { ApiResponse, TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';
import { LogCapture } from '../../support/logs.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { waitFor } from '../../support/wait.js';

/** `url` with another database name or user. */
function withUrl(url: string, change: { database?: string; user?: string }): string {
  const changed = new URL(url);
  if (change.database !== undefined) changed.pathname = `/${change.database}`;
  if (change.user !== undefined) changed.username = change.user;
  return changed.toString();
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('HTTP: the database missing, the login refused, the port closed → 503, never 500', function () {
  this.timeout(60_000);
  let db: Db;
  let client: TestClient;
  let proxy: TcpProxy;
  const closers: Array<() => Promise<void>> = [];

  before(async () => {
    db = openTestDb(2);
    client = await createTestClient(db, 'db-unavailable');
  });
  after(() => db.destroy());
  beforeEach(async () => {
    const target = new URL(testDatabaseUrl());
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await proxy.stop();
  });

  /** The API and its operations port on a pool of the role's own kind on `databaseUrl`, logging into `logs`. */
  async function apiOn(
    databaseUrl: string,
    logs = new LogCapture(),
  ): Promise<{ api: TestApi; ops: OpsServer; logs: LogCapture }> {
    const log = createLogger({ level: 'debug', destination: logs });
    const config = loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'debug', METRICS_PORT: '0' });
    const roleDb = openDatabase(config, log, 2);
    closers.push(() => roleDb.destroy());
    const api = await startTestApi(roleDb, { log }, { DATABASE_URL: databaseUrl });
    closers.push(() => api.close());
    const ops = await startApiOpsServer({ ...api.ctx, config, log });
    closers.push(() => ops.close());
    return { api, ops, logs };
  }

  function expectUnavailable(response: ApiResponse): void {
    expect(response.status, response.text).to.equal(503);
    expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(response.body).to.include({ status: 503, code: 'service_unavailable' });
    expect(response.headers.get('retry-after')).to.match(/^[1-9]\d*$/);
  }

  async function readiness(ops: OpsServer): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`http://127.0.0.1:${ops.port}/readyz`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  const cases: Array<[string, () => string, string]> = [
    [
      'the database does not exist (3D000)',
      () => withUrl(proxy.url(testDatabaseUrl()), { database: 'payouts_no_such_database' }),
      'missing database',
    ],
    [
      'the login is refused (28000)',
      () => withUrl(proxy.url(testDatabaseUrl()), { user: 'payouts_no_such_role' }),
      'login refused',
    ],
    ['the port is closed', () => proxy.url(testDatabaseUrl()), 'unreachable'],
  ];
  for (const [what, databaseUrl, cause] of cases) {
    it(`${what}: every request 503 with Retry-After; /readyz 503 naming "${cause}"`, async () => {
      if (cause === 'unreachable') await proxy.cut();
      const { api, ops } = await apiOn(databaseUrl());
      expectUnavailable(await api.request('GET', '/api/payouts', { key: client.key }));
      expectUnavailable(
        await api.request('POST', '/api/payouts', {
          key: client.key,
          json: payoutInput(),
          headers: { 'idempotency-key': `unavailable-${cause}` },
        }),
      );
      const ready = await readiness(ops);
      expect(ready.status).to.equal(503);
      expect(ready.body).to.deep.include({
        code: 'not_ready',
        checks: { database: 'down' },
        causes: { database: cause },
      });
      expect(ready.body.detail).to.equal(`Unavailable: database (${cause}).`);
    });
  }

  it('logs an outage once at warn and its end once, never a stack per probe, however often it is probed', async () => {
    const { api, ops, logs } = await apiOn(proxy.url(testDatabaseUrl()));
    expect((await readiness(ops)).status).to.equal(200);
    await proxy.cut();
    for (let probe = 0; probe < 6; probe += 1) expect((await readiness(ops)).status).to.equal(503);
    // A request of the outage is a warning naming the cause, without a stack.
    expectUnavailable(await api.request('GET', '/api/payouts', { key: client.key }));
    await proxy.restore();
    for (let probe = 0; probe < 3; probe += 1) expect((await readiness(ops)).status).to.equal(200);
    const records = logs.records();
    const readinessLines = records.filter((line) => line.component === 'readiness');
    expect(readinessLines.map((line) => [line.level, line.msg])).to.deep.equal([
      ['warn', 'not ready: database is down (unreachable)'],
      ['info', 'ready again: database is up'],
    ]);
    // knex's own report of each failed connection (with its stack) is kept for the debug log.
    const loud = records.filter((line) => line.level === 'warn' || line.level === 'error');
    expect(loud.filter((line) => JSON.stringify(line).includes('    at '))).to.deep.equal([]);
  });

  it('the api process starts without its database, stays up answering 503, and serves once it is back', async () => {
    await proxy.cut();
    const [port, opsPort] = [await freePort(), await freePort()];
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'api'], {
      env: {
        ...process.env,
        DATABASE_URL: proxy.url(testDatabaseUrl()),
        PORT: String(port),
        METRICS_PORT: String(opsPort),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    closers.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return Promise.resolve();
    });
    const base = `http://127.0.0.1:${port}`;
    const get = (path: string, init: RequestInit = {}) =>
      fetch(`${base}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${client.key}`, ...init.headers },
      });
    await waitFor(() => output.join('').includes('api listening'), {
      timeoutMs: 20_000,
      message: () => output.join(''),
    });
    for (let round = 0; round < 3; round += 1) {
      const response = await get('/api/payouts');
      expect(response.status).to.equal(503);
      expect(response.headers.get('retry-after')).to.match(/^[1-9]\d*$/);
      const ready = await fetch(`http://127.0.0.1:${opsPort}/readyz`);
      expect(ready.status).to.equal(503);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(child.exitCode, output.join('')).to.equal(null);

    await proxy.restore();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status === 200, {
      timeoutMs: 10_000,
    });
    const created = await get('/api/payouts', {
      method: 'POST',
      body: JSON.stringify(payoutInput()),
      headers: { 'content-type': 'application/json' },
    });
    expect(created.status, await created.clone().text()).to.equal(201);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).to.equal(0);
    const said = output.join('');
    expect(said.match(/not ready: database is down/g) ?? []).to.have.lengthOf(1);
  });
});
