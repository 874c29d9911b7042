/**
 * Payouts written by machine version 1, on a database migrated from before version 2: the migration gives them
 * their stage, every read upgrades their snapshot, their next change stores it as version 2, and the messages
 * version 1 left in the queues (no command in them) still finish them — a payout that was `processing` under the
 * same provider key as before, so a payment made before the upgrade is found, never made again.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import pg from 'pg';
import { loadConfig } from '../../../src/config.js';
import { PayoutProcessor } from '../../../src/consumers/process-payout.js';
import type { TestContext as AppContext } from '../../support/context.js';
import { createTestContext as createContext } from '../../support/context.js';
import { toPayoutResource } from '../../../src/http/resources.js';
import type { Principal } from '../../../src/domain/principal.js';
import { workerPrincipal } from '../../../src/domain/principal.js';
import { createLogger } from '../../../src/logger.js';
import { PAYOUT_MACHINE_VERSION } from '../../../src/machines/payout-lifecycle.js';
import { createMetrics } from '../../../src/metrics.js';
import type { ProcessMessage } from '../../../src/messaging/payout-message.js';
import { createDb } from '../../../src/persistence/db.js';
import { ADMIN_URL } from '../../support/database.js';
import { IBANS } from '../../support/fixtures.js';

/** The last migration of the version-1 release. */
const V1_SCHEMA = '20261124000002_outbox_payout_and_status_clock';

function fixture(name: string): { machine_version: number; snapshot: Record<string, unknown> } {
  return JSON.parse(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url), 'utf8')) as {
    machine_version: number;
    snapshot: Record<string, unknown>;
  };
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('machine version 1 rows and messages after the upgrade', function () {
  this.timeout(60_000);
  const name = `payouts_v1_${process.pid}_${randomUUID().slice(0, 8)}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  let ctx: AppContext;
  const clientId = randomUUID();
  const ids = {
    created: randomUUID(),
    processing: randomUUID(),
    paidProcessing: randomUUID(),
    completed: randomUUID(),
    failed: randomUUID(),
  };

  before(async () => {
    await admin(`CREATE DATABASE ${name}`);
    const db = createDb(url.toString(), 2);
    try {
      // The schema as version 1 left it, and rows as version 1 wrote them.
      while (!(await db.migrate.currentVersion()).startsWith(V1_SCHEMA.split('_')[0]!)) await db.migrate.up();
      await db('clients').insert({ id: clientId, name: `v1-${randomUUID().slice(0, 8)}` });
      const rows = [
        [ids.created, 'payout-snapshot.v1.created.json', 'created'],
        [ids.processing, 'payout-snapshot.v1.json', 'processing'],
        [ids.paidProcessing, 'payout-snapshot.v1.json', 'processing'],
        [ids.completed, 'payout-snapshot.v1.completed.json', 'completed'],
        [ids.failed, 'payout-snapshot.v1.failed.json', 'failed'],
      ] as const;
      for (const [id, file, status] of rows) {
        const { machine_version, snapshot } = fixture(file);
        const failure = (snapshot.context as { failure: { code: string; message: string } | null }).failure;
        await db('payouts').insert({
          id,
          client_id: clientId,
          amount_minor: '125050',
          currency: 'EUR',
          recipient: { type: 'iban', iban: IBANS.DE, bic: null, holder_name: 'Jane Doe' },
          status,
          snapshot,
          machine_version,
          failure_code: failure?.code ?? null,
          failure_message: failure?.message ?? null,
        });
      }
      // A worker of version 1 had paid this one and died before saving SUCCEED: the provider's ledger has it.
      await db('provider_transfers').insert({
        idempotency_key: ids.paidProcessing,
        payout_id: ids.paidProcessing,
        result: 'succeeded',
      });
      await db.migrate.latest();
    } finally {
      await db.destroy();
    }
    const config = loadConfig({ DATABASE_URL: url.toString(), DATABASE_POOL_MAX: '3', LOG_LEVEL: 'silent' });
    ctx = createContext(config, {
      log: createLogger({ level: 'silent' }),
      metrics: createMetrics({ defaults: false }),
    });
  });

  after(async () => {
    await ctx?.db.destroy();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });

  const worker = (): Principal => workerPrincipal(clientId);
  const operator = (): Principal => ({ clientId, role: 'operator', actor: 'key:v1-test' });

  /** A message as version 1 wrote it: no command. */
  function v1Message(payoutId: string): ProcessMessage {
    return {
      schema_version: 1,
      message_id: randomUUID(),
      payout_id: payoutId,
      client_id: clientId,
      request_id: 'v1-message',
    };
  }

  it('gives every unfinished version-1 payout its stage, and reads it upgraded before any write', async () => {
    const rows = await ctx
      .db('payouts')
      .select('id', 'status', 'stage', 'machine_version')
      .where({ client_id: clientId });
    const byId = new Map(rows.map((row: { id: string }) => [row.id, row]));
    expect(byId.get(ids.created)).to.include({ stage: 'queued', machine_version: 1 });
    expect(byId.get(ids.processing)).to.include({ stage: 'submitting', machine_version: 1 });
    expect(byId.get(ids.completed)).to.include({ stage: null, machine_version: 1 });

    const processing = await ctx.service.getPayout(operator(), ids.processing);
    const resource = toPayoutResource(processing, operator());
    expect(resource).to.include({ status: 'processing', stage: 'submitting' });
    expect(resource.available_actions).to.deep.equal(['succeed', 'fail']);
    const failed = toPayoutResource(await ctx.service.getPayout(operator(), ids.failed), operator());
    expect(failed.failure).to.deep.equal({
      code: 'provider_refused',
      message: 'The provider refused the payout',
    });
    expect(failed.available_actions).to.deep.equal([]);
    // As the API answers them (rendered by PostgreSQL from the same rows): the same resources.
    for (const id of Object.values(ids)) {
      const rendered = await ctx.service.getPayoutResource(operator(), id);
      const expected = toPayoutResource(await ctx.service.getPayout(operator(), id), operator());
      expect(JSON.parse(rendered.resource), id).to.deep.equal(JSON.parse(JSON.stringify(expected)));
    }
  });

  it('finishes a version-1 processing payout from a version-1 message, under the same provider key', async () => {
    const outcome = await new PayoutProcessor(ctx.service, ctx.provider).process(v1Message(ids.processing));
    expect(outcome).to.deep.equal({ found: 'processing', status: 'completed', acted: true });
    const ledger = await ctx.db('provider_transfers').where({ payout_id: ids.processing });
    expect(ledger).to.have.length(1);
    expect(ledger[0]).to.include({ idempotency_key: ids.processing, result: 'succeeded' });
    const row = await ctx.db('payouts').where({ id: ids.processing }).first();
    expect(row).to.include({ machine_version: PAYOUT_MACHINE_VERSION, status: 'completed', stage: null });
  });

  it('finds the payment a version-1 worker made before it died: completed, paid once', async () => {
    const outcome = await new PayoutProcessor(ctx.service, ctx.provider).process(
      v1Message(ids.paidProcessing),
    );
    expect(outcome.status).to.equal('completed');
    expect(await ctx.db('provider_transfers').where({ payout_id: ids.paidProcessing })).to.have.length(1);
  });

  it('starts and finishes a version-1 created payout from its version-1 message', async () => {
    const outcome = await new PayoutProcessor(ctx.service, ctx.provider).process(v1Message(ids.created));
    expect(outcome).to.deep.equal({ found: 'created', status: 'completed', acted: true });
    const events = await ctx.db('payout_events').where({ payout_id: ids.created }).orderBy('id');
    expect(events.map((event: { event: string }) => event.event)).to.deep.equal([
      'START',
      'PROVIDER_SUCCEEDED',
    ]);
  });

  it('acknowledges a version-1 message of a payout already final, doing nothing', async () => {
    const before = await ctx.db('payouts').where({ id: ids.completed }).first();
    const outcome = await new PayoutProcessor(ctx.service, ctx.provider).process(v1Message(ids.completed));
    expect(outcome).to.deep.equal({ found: 'completed', status: 'completed', acted: false });
    expect(await ctx.db('payouts').where({ id: ids.completed }).first()).to.deep.equal(before);
    expect(await ctx.service.getPayout(worker(), ids.completed)).to.include({ machineVersion: 1 });
  });
});
