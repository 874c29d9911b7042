/**
 * Crashes and outages: a worker SIGKILLed mid-batch, the broker connection cut, the database connection cut.
 * Whatever happens, every payout ends final with exactly one provider effect, and nothing is dead-lettered.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../../../src/config.js';
import { startRelay } from '../../../src/consumers/outbox-relay.js';
import { startWorker } from '../../../src/consumers/payout-consumer.js';
import type { RoleHandle } from '../../../src/consumers/role.js';
import { queueDepth, topologyNames } from '../../../src/consumers/topology.js';
import type { AppContext } from '../../../src/context.js';
import {
  consumerConfig,
  consumerEnv,
  createPayouts,
  declareTestTopology,
  deleteTestTopology,
  histories,
  providerEffects,
  statusCounts,
  testBroker,
  testContext,
  testNamespace,
  unfinishedCount,
  waitFor,
} from '../../support/consumers.js';
import { createTestClient } from '../../support/fixtures.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

const completedCount = async (ctx: AppContext, clientId: string) =>
  (await statusCounts(ctx.db, clientId)).completed ?? 0;

/** Every payout completed, one provider effect each, history created→processing→completed once. */
async function expectAllCompletedOnce(ctx: AppContext, clientId: string, ids: string[]): Promise<void> {
  expect(await statusCounts(ctx.db, clientId)).to.deep.equal({ completed: ids.length });
  const effects = await providerEffects(ctx.db, clientId);
  expect(effects.size).to.equal(ids.length);
  expect(
    [...effects.values()].filter((effect) => effect.count !== 1 || effect.results[0] !== 'succeeded'),
  ).to.deep.equal([]);
  const all = await histories(ctx.db, clientId);
  const wrong = ids.filter(
    (id) =>
      JSON.stringify(all.get(id)) !==
      JSON.stringify(['>created', 'created>processing', 'processing>completed']),
  );
  expect(wrong).to.deep.equal([]);
}

describe('consumers: crashes and outages', function () {
  this.timeout(180_000);
  let config: Config;
  let ctx: AppContext;
  let broker: Connection;
  const roles: RoleHandle[] = [];
  const contexts: AppContext[] = [];
  const proxies: TcpProxy[] = [];

  function roleContext(overrides: Record<string, string> = {}): AppContext {
    const roleCtx = testContext(consumerConfig(config.amqpNamespace, overrides));
    contexts.push(roleCtx);
    return roleCtx;
  }

  async function proxy(host: string, port: number): Promise<TcpProxy> {
    const created = new TcpProxy(host, port);
    await created.start();
    proxies.push(created);
    return created;
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
    await Promise.all(proxies.splice(0).map((created) => created.stop()));
    expect(await queueDepth(broker, topologyNames(config.amqpNamespace).deadLetterQueue)).to.equal(
      0,
      'nothing dead-lettered',
    );
  });

  after(async () => {
    await deleteTestTopology(broker, config);
    await broker.close();
    await ctx.db.destroy();
  });

  it('finishes every payout exactly once although the worker is SIGKILLed three times mid-batch', async () => {
    const client = await createTestClient(ctx.db, 'sigkill');
    // A small provider delay keeps messages in flight at every kill, at each step of the processing.
    const env = {
      ...process.env,
      ...consumerEnv(config.amqpNamespace, {
        PROVIDER_DELAY_MS: '5',
        WORKER_CONCURRENCY: '8',
        DATABASE_POOL_MAX: '5',
      }),
    };
    const children: ChildProcess[] = [];
    const output: string[] = [];
    const spawnWorker = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/worker-child.ts'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      await new Promise<void>((resolve, reject) => {
        child.once('exit', (code) =>
          reject(new Error(`worker child exited with ${code}: ${output.join('')}`)),
        );
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('ready')) resolve();
        });
      });
      return child;
    };
    const kill = async (child: ChildProcess) => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    };

    try {
      const ids = await createPayouts(ctx, client.principal, 240);
      roles.push(await startRelay(roleContext()));
      let worker = await spawnWorker();
      const kills: number[] = [];
      for (const threshold of [30, 90, 150]) {
        await waitFor(async () => (await completedCount(ctx, client.clientId)) >= threshold, {
          timeoutMs: 60_000,
        });
        kills.push(await completedCount(ctx, client.clientId));
        await kill(worker);
        worker = await spawnWorker();
      }
      await waitFor(async () => (await unfinishedCount(ctx.db, client.clientId)) === 0, {
        timeoutMs: 90_000,
        message: async () => JSON.stringify(await statusCounts(ctx.db, client.clientId)),
      });
      // Killed mid-batch each time: payouts were still unfinished at every kill.
      expect(kills.every((done) => done < ids.length)).to.equal(true);
      await expectAllCompletedOnce(ctx, client.clientId, ids);
      worker.kill('SIGTERM');
      await new Promise((resolve) => worker.once('exit', resolve));
    } finally {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('completes everything when the broker connection is cut and restored mid-run', async () => {
    const client = await createTestClient(ctx.db, 'broker-cut');
    const amqp = await proxy('127.0.0.1', Number(new URL(config.amqpUrl).port || 5672));
    const overrides = { AMQP_URL: amqp.url(config.amqpUrl), PROVIDER_DELAY_MS: '5' };
    roles.push(await startRelay(roleContext(overrides)), await startWorker(roleContext(overrides)));
    const first = await createPayouts(ctx, client.principal, 150);
    await waitFor(async () => (await completedCount(ctx, client.clientId)) >= 40);
    await amqp.cut();
    // Payouts keep being accepted while the broker is away: their outbox rows wait.
    const during = await createPayouts(ctx, client.principal, 30);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await completedCount(ctx, client.clientId)).to.be.lessThan(
      first.length + during.length,
      'cut mid-run',
    );
    await amqp.restore();
    await waitFor(async () => (await unfinishedCount(ctx.db, client.clientId)) === 0, {
      timeoutMs: 60_000,
      message: async () => JSON.stringify(await statusCounts(ctx.db, client.clientId)),
    });
    await expectAllCompletedOnce(ctx, client.clientId, [...first, ...during]);
  });

  it('completes everything when the database connection is cut and restored mid-run', async () => {
    const client = await createTestClient(ctx.db, 'db-cut');
    const databaseUrl = new URL(config.databaseUrl);
    const pg = await proxy(databaseUrl.hostname, Number(databaseUrl.port || 5432));
    const overrides = {
      DATABASE_URL: pg.url(config.databaseUrl),
      PROVIDER_DELAY_MS: '5',
      RELAY_LEASE_MS: '2000',
    };
    roles.push(await startRelay(roleContext(overrides)), await startWorker(roleContext(overrides)));
    const first = await createPayouts(ctx, client.principal, 150);
    await waitFor(async () => (await completedCount(ctx, client.clientId)) >= 40);
    await pg.cut();
    const during = await createPayouts(ctx, client.principal, 30);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await completedCount(ctx, client.clientId)).to.be.lessThan(
      first.length + during.length,
      'cut mid-run',
    );
    await pg.restore();
    await waitFor(async () => (await unfinishedCount(ctx.db, client.clientId)) === 0, {
      timeoutMs: 60_000,
      message: async () => JSON.stringify(await statusCounts(ctx.db, client.clientId)),
    });
    await expectAllCompletedOnce(ctx, client.clientId, [...first, ...during]);
  });
});
