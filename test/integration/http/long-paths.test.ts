/**
 * Long paths cost the event loop nothing more than their length: a flood of trailing slashes is stripped in
 * linear time (a backtracking `/\/+$/` took ~400 ms of one thread for 15,000 slashes, during which `/healthz`
 * waited too), and a path over 4 KiB is refused before routing with 414 `uri_too_long`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { expect } from 'chai';
import { openTestDb } from '../../support/database.js';
import type { TestApi } from '../../support/http.js';
import { rawHttp, startTestApi } from '../../support/http.js';
import type { Db } from '../../../src/persistence/db.js';

/** The longest path served; one byte more is 414. */
const MAX_PATH = 4096;
/** What one request may hold the event loop for. */
const BUDGET_MS = 5;
const RUNS = 5;

describe('HTTP long paths', () => {
  let db: Db;
  let api: TestApi;

  before(async () => {
    db = openTestDb(2);
    api = await startTestApi(db);
  });
  after(async () => {
    await api.close();
    await db.destroy();
  });

  function get(path: string) {
    return rawHttp(
      api.port,
      Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 'latin1'),
    );
  }

  /**
   * The longest stretch (ms) the event loop was held while the server answered `path`, as the fastest of a few
   * runs, with the status of the last answer: a garbage collection or another process on the machine only adds
   * time, while a path handled in more than linear time is slow in every run.
   */
  async function eventLoopHeld(path: string): Promise<{ status: number; heldMs: number; runs: number[] }> {
    await get(path); // warm: first-call compilation is not the request's cost
    const runs: number[] = [];
    let status = 0;
    for (let run = 0; run < RUNS; run++) {
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      status = (await get(path)).status;
      delay.disable();
      runs.push(delay.max / 1e6);
    }
    return { status, heldMs: Math.min(...runs), runs };
  }

  it('a flood of 15,000 trailing slashes holds the event loop < 5 ms and is refused with 414', async () => {
    const { status, heldMs, runs } = await eventLoopHeld(`/${'/'.repeat(15_000)}a`);
    expect(heldMs, `event loop held per run (ms): ${runs.map((ms) => ms.toFixed(1)).join(', ')}`).to.be.below(
      BUDGET_MS,
    );
    expect(status).to.equal(414);
  });

  it('trailing slashes are stripped in linear time under the limit too (4,000 slashes → 404, < 5 ms)', async () => {
    const { status, heldMs, runs } = await eventLoopHeld(`/${'/'.repeat(4_000)}a`);
    expect(heldMs, `event loop held per run (ms): ${runs.map((ms) => ms.toFixed(1)).join(', ')}`).to.be.below(
      BUDGET_MS,
    );
    expect(status).to.equal(404);
  });

  it('/healthz sent right after a slash flood is answered at once', async () => {
    const flood = get(`/${'/'.repeat(15_000)}a`);
    const started = performance.now();
    const health = await get('/healthz');
    const ms = performance.now() - started;
    await flood;
    expect(health.status).to.equal(200);
    expect(ms, 'ms /healthz waited').to.be.below(50);
  });

  it('a 5 KiB path → 414 problem+json uri_too_long, before routing and authentication', async () => {
    for (const path of [`/api/payouts/${'a'.repeat(5 * 1024)}`, `/${'x'.repeat(5 * 1024)}`]) {
      const response = await get(path);
      expect(response.status, path.slice(0, 20)).to.equal(414);
      expect(response.headers['content-type']).to.match(/^application\/problem\+json/);
      const body = JSON.parse(response.body) as Record<string, unknown>;
      expect(body).to.include({
        status: 414,
        code: 'uri_too_long',
        type: 'urn:payouts:problem:uri_too_long',
      });
      expect(body.request_id).to.be.a('string').and.equal(response.headers['x-request-id']);
      expect(response.headers['x-content-type-options']).to.equal('nosniff');
    }
  });

  it('a path of exactly 4 KiB is routed as usual (404 for no such route, 401 without a key)', async () => {
    const unknown = `/${'x'.repeat(MAX_PATH - 1)}`;
    expect(unknown.length).to.equal(MAX_PATH);
    expect((await get(unknown)).status).to.equal(404);
    const payouts = `/api/payouts/${'a'.repeat(MAX_PATH - '/api/payouts/'.length)}`;
    expect(payouts.length).to.equal(MAX_PATH);
    expect((await get(payouts)).status).to.equal(401);
    expect((await get(`${payouts}a`)).status).to.equal(414);
  });
});
