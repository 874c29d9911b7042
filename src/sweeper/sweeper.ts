/**
 * The sweeper role: the safety net under the pipeline.
 *
 * - Re-drives payouts left in `created` or `processing` longer than `STUCK_AFTER_SECONDS` with no message waiting
 *   (a message lost or dropped): a `REDRIVE` event each, on which the machine sends its outstanding command again
 *   (the relays are woken after the commit) or, past `MAX_REDRIVES`, gives the payout to a person
 *   (`needs_attention`), which the sweeper then leaves alone. The worker is idempotent, so a re-drive of a payout
 *   whose message was merely slow costs a duplicate.
 * - Exports the stuck-payout, needs-attention and dead-letter-queue gauges, so nothing stays stuck without an
 *   operator seeing it.
 * - Removes expired idempotency keys.
 *
 * The database work is the maintenance service's (src/domain/maintenance-service.ts); this role only paces it and
 * exports what it finds.
 */
import { v7 as uuidv7 } from 'uuid';
import type { Connection } from 'rabbitmq-client';
import type { MaintenanceService } from '../domain/maintenance-service.js';
import type { Logger } from '../logger.js';
import { openBrokerConnection, sleep } from '../messaging/amqp.js';
import type { RoleDeps, RoleHandle, RoleOptions } from '../ops-server.js';
import { startRoleOpsServer } from '../ops-server.js';
import { closeBrokerConnection, ensureTopology } from '../messaging/amqp.js';
import { queueDepth, topologyNames } from '../messaging/topology.js';
import { UNFINISHED_STATUSES } from '../machines/payout-lifecycle.js';
import { zeroed } from '../metrics.js';

/** Payouts re-driven per transaction, and transactions per sweep: bounded work, the next sweep continues. */
const REDRIVE_BATCH = 500;
const REDRIVE_BATCHES_PER_SWEEP = 20;

export interface SweepReport {
  redriven: number;
  stuck: Record<string, number>;
  needsAttention: number;
  expiredKeysDeleted: number;
  dlqDepth: number | null;
}

/** Re-drives stuck payouts through the outbox; returns how many, by status. */
/** What the sweeper role is made of: the maintenance service and the role's own. */
export interface SweeperDeps extends RoleDeps {
  maintenance: MaintenanceService;
}

export async function redriveStuckPayouts(ctx: SweeperDeps, log: Logger): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let batch = 0; batch < REDRIVE_BATCHES_PER_SWEEP; batch += 1) {
    const requestId = `sweeper-${uuidv7()}`;
    const stuck = await ctx.maintenance.redriveStuckPayouts(REDRIVE_BATCH, requestId);
    if (stuck.length === 0) break;
    for (const payout of stuck) {
      counts[payout.status] = (counts[payout.status] ?? 0) + 1;
      ctx.metrics.sweeperRedriven.inc({ status: payout.status });
    }
    log.warn({ request_id: requestId, count: stuck.length }, 're-drove stuck payouts through the outbox');
    if (stuck.length < REDRIVE_BATCH) break;
  }
  return counts;
}

/** One sweep. Each duty runs even when another fails; failures are logged and retried next sweep. */
export async function sweepOnce(ctx: SweeperDeps, log: Logger, broker?: Connection): Promise<SweepReport> {
  const report: SweepReport = {
    redriven: 0,
    stuck: {},
    needsAttention: 0,
    expiredKeysDeleted: 0,
    dlqDepth: null,
  };
  const duty = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (error) {
      log.warn({ err: error, duty: name }, 'sweeper duty failed');
    }
  };
  await duty('redrive', async () => {
    const counts = await redriveStuckPayouts(ctx, log);
    report.redriven = Object.values(counts).reduce((sum, count) => sum + count, 0);
  });
  await duty('stuck_gauge', async () => {
    const counts = await ctx.maintenance.countStuckPayouts();
    report.stuck = counts.stuck;
    report.needsAttention = counts.needsAttention;
    for (const [status, count] of Object.entries(report.stuck))
      ctx.metrics.stuckPayouts.set({ status }, count);
    ctx.metrics.needsAttention.set(counts.needsAttention);
  });
  await duty('idempotency_keys', async () => {
    report.expiredKeysDeleted = await ctx.maintenance.removeExpiredIdempotencyKeys();
    if (report.expiredKeysDeleted > 0)
      log.info({ deleted: report.expiredKeysDeleted }, 'removed expired idempotency keys');
  });
  if (broker) {
    await duty('dlq_gauge', async () => {
      report.dlqDepth = await queueDepth(broker, topologyNames(ctx.config.amqpNamespace).deadLetterQueue);
      ctx.metrics.dlqDepth.set(report.dlqDepth);
    });
  }
  return report;
}

export async function startSweeper(ctx: SweeperDeps, options: RoleOptions = {}): Promise<RoleHandle> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'sweeper' });
  // Re-drives are rare: without these zeros the re-drive panel of a healthy service would say "No data".
  zeroed(
    ctx.metrics.sweeperRedriven,
    UNFINISHED_STATUSES.map((status) => ({ status })),
  );
  const connection = openBrokerConnection(config, log, 'sweeper');
  const ops = await startRoleOpsServer(ctx, options, () => connection.ready);

  const abort = new AbortController();
  // The DLQ gauge needs the queue; re-driving does not, so the sweeps start whatever the broker does.
  const declaring = ensureTopology(connection, config, log, abort.signal);
  const running = (async () => {
    while (!abort.signal.aborted) {
      await sweepOnce(ctx, log, connection);
      await sleep(config.sweepIntervalMs, abort.signal);
    }
  })();
  log.info(
    { interval_ms: config.sweepIntervalMs, stuck_after_s: config.stuckAfterSeconds },
    'sweeper started',
  );

  return {
    opsPort: ops?.port,
    async stop() {
      abort.abort();
      await running;
      await declaring;
      await closeBrokerConnection(connection, log);
      await ops?.close();
      log.info('sweeper stopped');
    },
  };
}
