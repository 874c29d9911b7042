/** The roles' operations endpoints and graceful shutdown. */
import { expect } from 'chai';
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../../../src/config.js';
import { startRelay } from '../../../src/consumers/outbox-relay.js';
import { startWorker } from '../../../src/consumers/payout-consumer.js';
import type { RoleHandle } from '../../../src/consumers/role.js';
import { startSweeper } from '../../../src/consumers/sweeper.js';
import type { AppContext } from '../../../src/context.js';
import { createLogger } from '../../../src/logger.js';
import { handleShutdownSignals } from '../../../src/shutdown.js';
import {
  consumerConfig,
  createPayouts,
  declareTestTopology,
  deleteTestTopology,
  statusCounts,
  testBroker,
  testContext,
  testNamespace,
  unfinishedCount,
  waitFor,
} from '../../support/consumers.js';
import { createTestClient } from '../../support/fixtures.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

describe('consumers: operations', function () {
  this.timeout(60_000);
  let config: Config;
  let ctx: AppContext;
  let broker: Connection;
  const roles: RoleHandle[] = [];
  const contexts: AppContext[] = [];

  function roleContext(overrides: Record<string, string> = {}): AppContext {
    const roleCtx = testContext(consumerConfig(config.amqpNamespace, overrides));
    contexts.push(roleCtx);
    return roleCtx;
  }

  before(async () => {
    config = consumerConfig(testNamespace());
    ctx = testContext(config);
    broker = await testBroker();
    await declareTestTopology(broker, config);
  });

  afterEach(async () => {
    await Promise.all(roles.splice(0).map((role) => role.stop()));
    await Promise.all(contexts.splice(0).map((roleCtx) => roleCtx.db.destroy()));
  });

  after(async () => {
    await deleteTestTopology(broker, config);
    await broker.close();
    await ctx.db.destroy();
  });

  it('serves /metrics, /healthz and /readyz, and answers 503 problem+json while the broker is away', async () => {
    const proxy = new TcpProxy('127.0.0.1', Number(new URL(config.amqpUrl).port || 5672));
    await proxy.start();
    try {
      const worker = await startWorker(roleContext({ AMQP_URL: proxy.url(config.amqpUrl) }));
      roles.push(worker);
      const base = `http://127.0.0.1:${worker.opsPort}`;
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200);
      const ready = (await (await fetch(`${base}/readyz`)).json()) as { checks: Record<string, string> };
      expect(ready.checks).to.deep.equal({ database: 'up', broker: 'up' });
      expect((await fetch(`${base}/healthz`)).status).to.equal(200);
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).to.equal(200);
      expect(await metrics.text()).to.contain('payouts_consumer_messages_total');

      await proxy.cut();
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 503);
      const down = await fetch(`${base}/readyz`);
      expect(down.headers.get('content-type')).to.equal('application/problem+json');
      const problem = (await down.json()) as { status: number; checks: Record<string, string> };
      expect(problem.status).to.equal(503);
      expect(problem.checks.broker).to.equal('down');
      expect((await fetch(`${base}/healthz`)).status).to.equal(200);
      expect((await fetch(`${base}/nowhere`)).status).to.equal(404);

      await proxy.restore();
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 20_000 });
    } finally {
      await proxy.stop();
    }
  });

  it('stops every role gracefully: in-flight work finishes, nothing is left half done', async () => {
    const client = await createTestClient(ctx.db, 'shutdown');
    const relay = await startRelay(roleContext());
    const worker = await startWorker(roleContext({ PROVIDER_DELAY_MS: '20' }));
    const sweeper = await startSweeper(roleContext());
    const ids = await createPayouts(ctx, client.principal, 60);
    await waitFor(async () => ((await statusCounts(ctx.db, client.clientId)).completed ?? 0) >= 5);
    await Promise.all([worker.stop(), relay.stop(), sweeper.stop()]);
    // Whatever was in flight finished; the rest waits in the queue or the outbox for the next worker.
    const counts = await statusCounts(ctx.db, client.clientId);
    expect(Object.values(counts).reduce((sum, count) => sum + count, 0)).to.equal(ids.length);

    roles.push(await startRelay(roleContext()), await startWorker(roleContext()));
    await waitFor(async () => (await unfinishedCount(ctx.db, client.clientId)) === 0);
    expect(await statusCounts(ctx.db, client.clientId)).to.deep.equal({ completed: ids.length });
  });

  it('exits at once on a second signal', async () => {
    const exits: number[] = [];
    let release: () => void = () => undefined;
    const dispose = handleShutdownSignals(() => new Promise<void>((resolve) => (release = resolve)), {
      log: createLogger({ level: 'silent' }),
      signals: ['SIGUSR2'],
      exit: (code) => exits.push(code),
    });
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      expect(exits).to.deep.equal([]);
      process.emit('SIGUSR2', 'SIGUSR2');
      expect(exits).to.deep.equal([130]);
      release();
      await new Promise((resolve) => setImmediate(resolve));
      expect(exits).to.deep.equal([130, 0]);
    } finally {
      dispose();
    }
  });
});
