/**
 * A database connection that goes silent without a reset (a failover that sends no FIN or RST, a peer that
 * vanished): the suite's TCP proxy half-closes every connection toward PostgreSQL and leaves the service's side
 * open and unanswered. Every role — relay, worker, sweeper and the API — must notice within a bounded time:
 * its readiness fails (so an orchestrator would take it out of rotation or restart it), an API request answers
 * 503 instead of hanging, and once the database answers again each role recovers by itself, without a restart,
 * although the connections that went silent never answer again.
 */
import { expect } from 'chai';
import { startApiOpsServer } from '../../../src/ops-server.js';
import type { OpsServer } from '../../../src/ops-server.js';
import {
  completedCount,
  createPayouts,
  useConsumerHarness,
  waitFor,
  waitUntilFinal,
} from '../../support/consumers.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';
import type { TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';
import type { TcpProxy } from '../../support/tcp-proxy.js';

/** Small limits, so that the bounds show within a test: a statement unanswered for 2 s + 2 s means a silent socket. */
const LIMITS = {
  DATABASE_STATEMENT_TIMEOUT_MS: '2000',
  DATABASE_LOCK_TIMEOUT_MS: '1000',
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '5000',
};
/** How long after the silence every role must have noticed it (its /readyz 503). */
const NOTICED_WITHIN_MS = 15_000;
/** How long after the database answers again every role must be back (ready, a payout created and completed). */
const RECOVERED_WITHIN_MS = 20_000;

describe('consumers: a database connection that goes silent (half-open)', function () {
  this.timeout(180_000);
  const harness = useConsumerHarness();
  const closers: Array<() => Promise<void>> = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function readyz(port: number | undefined): Promise<number> {
    try {
      return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5_000) })).status;
    } catch {
      return 0;
    }
  }

  /** Milliseconds from `since` until `condition` held, failing after `withinMs`. */
  async function elapsedUntil(
    since: number,
    withinMs: number,
    condition: () => Promise<boolean>,
    what: string,
  ): Promise<number> {
    await waitFor(condition, { timeoutMs: withinMs - (Date.now() - since), intervalMs: 200, message: what });
    return Date.now() - since;
  }

  /** A relay, a worker and a sweeper, and the API with its operations port, all through `proxy`. */
  async function startRoles(proxy: TcpProxy) {
    const env = { DATABASE_URL: proxy.url(harness.config.databaseUrl), PROVIDER_DELAY_MS: '5', ...LIMITS };
    const relay = await harness.startRelay(env);
    const worker = await harness.startWorker(env);
    const sweeper = await harness.startSweeper(env);
    const api: TestApi = await startTestApi(harness.roleContext(env).db, {}, env);
    closers.push(() => api.close());
    const apiOps: OpsServer = await startApiOpsServer({
      ...api.ctx,
      config: { ...api.ctx.config, metricsPort: 0 },
    });
    closers.push(() => apiOps.close());
    const ports = {
      relay: relay.opsPort,
      worker: worker.opsPort,
      sweeper: sweeper.opsPort,
      api: apiOps.port,
    };
    const allReady = async () =>
      (await Promise.all(Object.values(ports).map(readyz))).every((code) => code === 200);
    await waitFor(allReady, { timeoutMs: 20_000, message: 'every role ready at first' });
    return { api, ports, allReady };
  }

  /** Payouts in flight on every pool, and API requests in flight, when `fault` strikes; the requests' statuses. */
  async function strikeUnderLoad(
    api: TestApi,
    client: TestClient,
    fault: () => void,
  ): Promise<{ first: string[]; inFlight: Promise<number[]> }> {
    const first = await createPayouts(harness.ctx, client.principal, 40);
    await waitFor(async () => (await completedCount(harness.ctx.db, client.clientId)) >= 5);
    const inFlight = Promise.all(
      Array.from({ length: 8 }, () =>
        api.raw('GET', '/api/payouts?limit=5', { key: client.key }).then(
          (response) => response.status,
          () => 0,
        ),
      ),
    );
    fault();
    return { first, inFlight };
  }

  it('silent, then back: every role fails its readiness within a bound, answers 503, and recovers without a restart', async () => {
    const client = await createTestClient(harness.ctx.db, 'half-open');
    const proxy = await harness.databaseProxy();
    const { api, ports, allReady } = await startRoles(proxy);
    const { first, inFlight } = await strikeUnderLoad(api, client, () => proxy.halfOpen());
    const silentAt = Date.now();

    // Each role notices: its /readyz answers 503 within the bound.
    const noticed: Record<string, number> = {};
    await Promise.all(
      Object.entries(ports).map(async ([role, port]) => {
        noticed[role] = await elapsedUntil(
          silentAt,
          NOTICED_WITHIN_MS,
          async () => (await readyz(port)) === 503,
          `${role} /readyz 503`,
        );
      }),
    );
    // An API request answers 503 with Retry-After, not a hung socket.
    const asked = Date.now();
    const during = await api.raw('POST', '/api/payouts', { key: client.key, json: payoutInput() });
    const answeredInMs = Date.now() - asked;
    expect(answeredInMs, `a create during the silence answered ${during.status} after`).to.be.lessThan(
      NOTICED_WITHIN_MS,
    );
    expect(during.status, during.text).to.equal(503);
    expect(during.headers.get('retry-after')).to.match(/^\d+$/);
    // The requests that were in flight at the silence ended too, none with a 500.
    expect((await inFlight).filter((code) => code !== 200 && code !== 503)).to.deep.equal([]);

    await proxy.restore();
    const restoredAt = Date.now();
    const readyAgainMs = await elapsedUntil(
      restoredAt,
      RECOVERED_WITHIN_MS,
      allReady,
      'every role ready again',
    );
    // A new payout is taken (201) and completed by the same relay and worker, none of them restarted.
    const created = await api.request('POST', '/api/payouts', { key: client.key, json: payoutInput() });
    expect(created.status, created.text).to.equal(201);
    await waitUntilFinal(harness.ctx.db, client.clientId, {
      timeoutMs: RECOVERED_WITHIN_MS - (Date.now() - restoredAt),
    });
    const completedMs = Date.now() - restoredAt;
    expect(await completedCount(harness.ctx.db, client.clientId)).to.equal(first.length + 1);
    console.log(
      `      silent then back: /readyz 503 after (ms) ${JSON.stringify(noticed)}; a create answered 503 in ` +
        `${answeredInMs} ms; every role ready ${readyAgainMs} ms and a new payout completed ${completedMs} ms ` +
        'after the restore',
    );
    await harness.expectNothingDeadLettered();
  });

  it('a failover without a reset: the old connections stay silent, new ones answer; every role carries on by itself', async () => {
    const client = await createTestClient(harness.ctx.db, 'failover');
    const proxy = await harness.databaseProxy();
    const { api, allReady } = await startRoles(proxy);
    const { first, inFlight } = await strikeUnderLoad(api, client, () =>
      proxy.halfOpen({ newConnections: 'forward' }),
    );
    const failedOverAt = Date.now();
    expect((await inFlight).filter((code) => code !== 200 && code !== 503)).to.deep.equal([]);
    const inFlightEndedMs = Date.now() - failedOverAt;
    // Without anybody restoring anything: every payout completes, every role is ready, the API takes payouts.
    await waitUntilFinal(harness.ctx.db, client.clientId, { timeoutMs: RECOVERED_WITHIN_MS });
    const created = await api.request('POST', '/api/payouts', { key: client.key, json: payoutInput() });
    expect(created.status, created.text).to.equal(201);
    await waitUntilFinal(harness.ctx.db, client.clientId, {
      timeoutMs: RECOVERED_WITHIN_MS - (Date.now() - failedOverAt),
    });
    await waitFor(allReady, { timeoutMs: RECOVERED_WITHIN_MS - (Date.now() - failedOverAt) });
    const recoveredMs = Date.now() - failedOverAt;
    expect(await completedCount(harness.ctx.db, client.clientId)).to.equal(first.length + 1);
    console.log(
      `      failover: requests in flight ended within ${inFlightEndedMs} ms; everything completed and every ` +
        `role ready ${recoveredMs} ms after it`,
    );
    await harness.expectNothingDeadLettered();
  });
});
