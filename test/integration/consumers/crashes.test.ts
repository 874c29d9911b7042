/**
 * Crashes and outages: a worker SIGKILLed mid-batch, the broker connection cut, the database connection cut.
 * Whatever happens, every payout ends final with exactly one provider effect, and nothing is dead-lettered.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import {
  completedCount,
  consumerEnv,
  createPayouts,
  expectAllCompletedOnce,
  useConsumerHarness,
  waitFor,
  waitUntilFinal,
} from '../../support/consumers.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient } from '../../support/fixtures.js';
import type { TcpProxy } from '../../support/tcp-proxy.js';

describe('consumers: crashes and outages', function () {
  this.timeout(180_000);
  const harness = useConsumerHarness();

  afterEach(() => harness.expectNothingDeadLettered());

  it('finishes every payout exactly once although the worker is SIGKILLed three times mid-batch', async () => {
    const client = await createTestClient(harness.ctx.db, 'sigkill');
    // A small provider delay keeps messages in flight at every kill, at each step of the processing.
    const env = {
      ...process.env,
      ...consumerEnv(harness.config.amqpNamespace, {
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
      const ids = await createPayouts(harness.ctx, client.principal, 240);
      await harness.startRelay();
      let worker = await spawnWorker();
      const kills: number[] = [];
      for (const threshold of [30, 90, 150]) {
        await waitFor(async () => (await completedCount(harness.ctx.db, client.clientId)) >= threshold, {
          timeoutMs: 60_000,
        });
        kills.push(await completedCount(harness.ctx.db, client.clientId));
        await kill(worker);
        worker = await spawnWorker();
      }
      await waitUntilFinal(harness.ctx.db, client.clientId, { timeoutMs: 90_000 });
      // Killed mid-batch each time: payouts were still unfinished at every kill.
      expect(kills.every((done) => done < ids.length)).to.equal(true);
      await expectAllCompletedOnce(harness.ctx, client.clientId, ids);
      worker.kill('SIGTERM');
      await new Promise((resolve) => worker.once('exit', resolve));
    } finally {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  /**
   * Runs a relay and a worker with `overrides` (which route one of their connections through `proxy`), cuts that
   * connection once payouts complete, creates more while it is cut, restores it: every payout completes once.
   */
  async function expectCompletedAcrossCut(
    client: TestClient,
    proxy: TcpProxy,
    overrides: Record<string, string>,
  ): Promise<void> {
    await harness.startRelay(overrides);
    await harness.startWorker(overrides);
    const first = await createPayouts(harness.ctx, client.principal, 150);
    await waitFor(async () => (await completedCount(harness.ctx.db, client.clientId)) >= 40);
    await proxy.cut();
    // Payouts keep being accepted while the connection is cut: their outbox rows wait.
    const during = await createPayouts(harness.ctx, client.principal, 30);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await completedCount(harness.ctx.db, client.clientId)).to.be.lessThan(
      first.length + during.length,
      'cut mid-run',
    );
    await proxy.restore();
    await waitUntilFinal(harness.ctx.db, client.clientId, { timeoutMs: 60_000 });
    await expectAllCompletedOnce(harness.ctx, client.clientId, [...first, ...during]);
  }

  it('completes everything when the broker connection is cut and restored mid-run', async () => {
    const client = await createTestClient(harness.ctx.db, 'broker-cut');
    const amqp = await harness.brokerProxy();
    await expectCompletedAcrossCut(client, amqp, {
      AMQP_URL: amqp.url(harness.config.amqpUrl),
      PROVIDER_DELAY_MS: '5',
    });
  });

  it('completes everything when the database connection is cut and restored mid-run', async () => {
    const client = await createTestClient(harness.ctx.db, 'db-cut');
    const pg = await harness.databaseProxy();
    await expectCompletedAcrossCut(client, pg, {
      DATABASE_URL: pg.url(harness.config.databaseUrl),
      PROVIDER_DELAY_MS: '5',
      RELAY_LEASE_MS: '2000',
    });
  });
});
