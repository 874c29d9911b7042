/** The `api` role's server: listens on the configured port, and stops without dropping requests in flight. */
import { expect } from 'chai';
import sinon from 'sinon';
import { loadConfig } from '../../../src/config.js';
import { createTestContext as createContext } from '../../support/context.js';
import type { TestContext as AppContext } from '../../support/context.js';
import { startApi } from '../../../src/http/server.js';
import { createLogger } from '../../../src/logger.js';
import { createMetrics } from '../../../src/metrics.js';
import { openTestDb, testDatabaseUrl } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';

describe('startApi', () => {
  let ctx: AppContext;
  let client: TestClient;

  before(async () => {
    const config = loadConfig({
      DATABASE_URL: testDatabaseUrl(),
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
    });
    ctx = createContext(config, {
      db: openTestDb(3),
      log: createLogger({ level: 'silent' }),
      metrics: createMetrics({ defaults: false }),
      waker: { wake() {} },
    });
    client = await createTestClient(ctx.db, 'server');
  });
  after(() => ctx.db.destroy());
  afterEach(() => sinon.restore());

  it('serves on a free port and stops gracefully: the request in flight completes, new ones are refused', async () => {
    const api = await startApi(ctx);
    const base = `http://127.0.0.1:${api.port}`;
    const created = await fetch(`${base}/api/payouts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${client.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(payoutInput()),
    });
    expect(created.status).to.equal(201);
    const { id } = (await created.json()) as { id: string };

    // Hold one request inside the service while the server stops.
    const real = ctx.service.getPayoutResource.bind(ctx.service);
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    sinon.stub(ctx.service, 'getPayoutResource').callsFake(async (principal, payoutId) => {
      entered();
      await new Promise((resolve) => setTimeout(resolve, 300));
      return real(principal, payoutId);
    });
    const inFlight = fetch(`${base}/api/payouts/${id}`, {
      headers: { authorization: `Bearer ${client.key}` },
    });
    await inside;
    const stopped = api.stop();

    const response = await inFlight;
    expect(response.status).to.equal(200);
    expect(((await response.json()) as { id: string }).id).to.equal(id);
    await stopped;
    const refused = await fetch(`${base}/healthz`).then(
      () => 'answered',
      (error: { cause?: { code?: string } }) => error.cause?.code,
    );
    expect(refused).to.equal('ECONNREFUSED');
  });
});
