/** The simulated provider against its real table: one effect per key, deterministic refusals, seeded faults. */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Config } from '../../../src/config.js';
import type { SimulatedProviderOptions } from '../../../src/adapters/simulated-provider.js';
import {
  ProviderTransientError,
  SimulatedProvider,
  mulberry32,
  simulatedProviderOptions,
} from '../../../src/adapters/simulated-provider.js';
import type { TestContext as AppContext } from '../../support/context.js';
import { PayoutProcessor, ProviderCallStalled } from '../../../src/consumers/process-payout.js';
import { classifyError } from '../../../src/consumers/retry-policy.js';
import type { Payout } from '../../../src/domain/payout.js';
import { workerPrincipal } from '../../../src/domain/principal.js';
import type { PaymentProvider } from '../../../src/domain/provider.js';
import type { ProcessMessage } from '../../../src/messaging/payout-message.js';
import { consumerConfig, createPayouts, query, testContext, testNamespace } from '../../support/consumers.js';
import { IBANS, createTestClient, payoutInput } from '../../support/fixtures.js';

describe('consumers: simulated provider', () => {
  let config: Config;
  let ctx: AppContext;
  let options: SimulatedProviderOptions;

  before(() => {
    config = consumerConfig(testNamespace(), {
      PROVIDER_LIMITS: 'EUR:250000,JPY:30000000,KWD:1000.5',
      PROVIDER_BLOCKED_IBANS: IBANS.NL,
    });
    ctx = testContext(config);
    options = simulatedProviderOptions(config, ctx.db);
  });

  after(async () => {
    await ctx.db.destroy();
  });

  async function payout(input = payoutInput()): Promise<Payout> {
    const client = await createTestClient(ctx.db, 'provider');
    const [id] = await createPayouts(ctx, client.principal, 1, () => input);
    return ctx.service.getPayout(client.principal, id!);
  }

  const effects = async (key: string) =>
    Number(
      (
        await query<{ count: string }>(
          ctx.db,
          'SELECT count(*) AS count FROM provider_transfers WHERE idempotency_key = ?',
          [key],
        )
      )[0]!.count,
    );

  it('records one effect per key and answers a repeated submit with the first result', async () => {
    const target = await payout();
    const provider = new SimulatedProvider(options);
    const results = await Promise.all(Array.from({ length: 10 }, () => provider.submit(target, target.id)));
    expect(results.every((result) => result.status === 'succeeded')).to.equal(true);
    expect(await effects(target.id)).to.equal(1);
    // Even a provider whose rules changed since answers with the first result.
    const stricter = new SimulatedProvider({ ...options, blockedIbans: [target.recipient.iban] });
    expect(await stricter.submit(target, target.id)).to.deep.equal({ status: 'succeeded' });
    expect(await stricter.status(target.id)).to.deep.equal({ status: 'succeeded' });
    expect(await provider.status(randomUUID())).to.equal(null);
  });

  it('records concurrent submits of many keys in shared statements, one effect per key', async () => {
    const targets = await Promise.all([
      ...Array.from({ length: 12 }, () => payout()),
      payout(payoutInput({ recipient: { type: 'iban', iban: IBANS.NL, holder_name: 'Blocked' } })),
    ]);
    const provider = new SimulatedProvider(options);
    const statements: string[] = [];
    const onQuery = (query: { sql: string }) => statements.push(query.sql);
    ctx.db.on('query', onQuery);
    let results;
    try {
      // Every key twice in the same turn: one effect per key, and both calls answer with its result.
      results = await Promise.all(
        [...targets, ...targets].map((target) => provider.submit(target, target.id)),
      );
    } finally {
      ctx.db.off('query', onQuery);
    }
    const inserts = statements.filter((sql) => sql.startsWith('INSERT INTO provider_transfers'));
    expect(inserts.length).to.be.greaterThan(0).and.below(targets.length);
    expect(results.map((result) => result.status)).to.deep.equal(
      [...targets, ...targets].map((target) => (target.recipient.iban === IBANS.NL ? 'failed' : 'succeeded')),
    );
    for (const target of targets) expect(await effects(target.id)).to.equal(1);
  });

  it('refuses blocked recipients and amounts above the per-currency limit, compared exactly', async () => {
    const provider = new SimulatedProvider(options);
    const blocked = await payout(
      payoutInput({ recipient: { type: 'iban', iban: IBANS.NL, holder_name: 'Blocked' } }),
    );
    expect(await provider.submit(blocked, blocked.id)).to.deep.include({ status: 'failed' });
    expect(((await provider.status(blocked.id)) as { failure: { code: string } }).failure.code).to.equal(
      'recipient_blocked',
    );

    const atLimit = await payout(payoutInput({ amount: '250000.00' }));
    expect(await provider.submit(atLimit, atLimit.id)).to.deep.equal({ status: 'succeeded' });
    const oneCentOver = await payout(payoutInput({ amount: '250000.01' }));
    const refused = await provider.submit(oneCentOver, oneCentOver.id);
    expect(refused.status === 'failed' && refused.failure.code).to.equal('provider_limit_exceeded');
  });

  it('throws seeded transient faults before recording anything', async () => {
    const target = await payout();
    const always = new SimulatedProvider({ ...options, faultRate: 1 });
    let error: unknown;
    try {
      await always.submit(target, target.id);
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(ProviderTransientError);
    expect(await effects(target.id)).to.equal(0);
    // The same seed gives the same sequence.
    const a = mulberry32(7);
    const b = mulberry32(7);
    expect(Array.from({ length: 5 }, a)).to.deep.equal(Array.from({ length: 5 }, b));
  });

  it('voids a key: nothing is paid under it afterwards, and an earlier payment wins', async () => {
    const provider = new SimulatedProvider(options);
    const unpaid = await payout();
    const voided = await provider.voidTransfer(unpaid.id, unpaid.id, {
      code: 'retries_exhausted',
      message: 'gave up',
    });
    expect(voided).to.deep.equal({
      status: 'failed',
      failure: { code: 'retries_exhausted', message: 'gave up' },
    });
    expect((await provider.submit(unpaid, unpaid.id)).status).to.equal('failed');

    const paid = await payout();
    await provider.submit(paid, paid.id);
    expect(
      await provider.voidTransfer(paid.id, paid.id, { code: 'retries_exhausted', message: 'gave up' }),
    ).to.deep.equal({ status: 'succeeded' });
    expect(await effects(paid.id)).to.equal(1);
  });

  it("turns the provider's timeout into PROVIDER_UNAVAILABLE: a retry spent and scheduled, nothing recorded", async () => {
    const target = await payout();
    const slow = new SimulatedProvider({ ...options, delayMs: 200, timeoutMs: 50 });
    const message: ProcessMessage = {
      schema_version: 1,
      message_id: randomUUID(),
      payout_id: target.id,
      client_id: target.clientId,
      request_id: 'provider-timeout',
    };
    const outcome = await new PayoutProcessor(ctx.service, slow).process(message);
    expect(outcome).to.deep.equal({ found: 'created', status: 'processing', acted: true });
    const after = await ctx.service.getPayout(workerPrincipal(target.clientId), target.id);
    expect(after.stage).to.equal('submitting');
    // The next try waits out the first back-off as a command of its own; this message's work is done.
    expect(after.snapshot.context).to.deep.include({ attempts: 2 });
    expect((after.snapshot.context as { command: unknown }).command).to.deep.equal({
      seq: 3,
      type: 'submit',
      try: 2,
      delay_ms: config.retryDelaysMs[0],
    });
    expect((after.snapshot.context as { last_error: { code: string } }).last_error.code).to.equal(
      'provider_unavailable',
    );
    expect(await effects(target.id)).to.equal(0);
  });

  it('bounds a provider call that stalls past every promise as an outage of ours: no retry spent, resumable', async () => {
    const target = await payout();
    const silent: PaymentProvider = {
      submit: () => new Promise<never>(() => undefined),
      status: () => Promise.resolve(null),
      voidTransfer: () => Promise.reject(new Error('not used')),
    };
    const processor = new PayoutProcessor(ctx.service, silent, undefined, 50);
    const message: ProcessMessage = {
      schema_version: 1,
      message_id: randomUUID(),
      payout_id: target.id,
      client_id: target.clientId,
      request_id: 'provider-stall',
    };
    const outcome = await processor.process(message).catch((error: unknown) => error);
    expect(outcome).to.be.instanceOf(ProviderCallStalled);
    expect(classifyError(outcome)).to.deep.include({ transient: true });
    expect((classifyError(outcome) as { rule: { spendsAttempt: boolean } }).rule.spendsAttempt).to.equal(
      false,
    );
    // START was saved; the redelivered message carries out the outstanding submit and pays once.
    const stalled = await ctx.service.getPayout(workerPrincipal(target.clientId), target.id);
    expect(stalled).to.include({ status: 'processing', stage: 'submitting' });
    expect(stalled.snapshot.context).to.deep.include({ attempts: 1 });
    const resumed = await new PayoutProcessor(ctx.service, new SimulatedProvider(options)).process(message);
    expect(resumed).to.deep.equal({ found: 'processing', status: 'completed', acted: true });
    expect(await effects(target.id)).to.equal(1);
  });
  it('spends no retry when our own database stalls under the ledger write, however long past the provider timeout', async () => {
    const target = await payout();
    const quick = new SimulatedProvider({ ...options, delayMs: 0, timeoutMs: 50 });
    // Another transaction holds the ledger's key: the provider's INSERT waits on our database, not on the provider.
    const holder = await ctx.db.transaction();
    try {
      await holder('provider_transfers').insert({
        idempotency_key: target.id,
        payout_id: target.id,
        result: 'failed',
        failure_code: 'held',
      });
      const message: ProcessMessage = {
        schema_version: 1,
        message_id: randomUUID(),
        payout_id: target.id,
        client_id: target.clientId,
        request_id: 'database-stall',
      };
      const running = new PayoutProcessor(ctx.service, quick).process(message);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await holder.rollback();
      expect(await running).to.deep.equal({ found: 'created', status: 'completed', acted: true });
    } finally {
      if (!holder.isCompleted()) await holder.rollback();
    }
    const done = await ctx.service.getPayout(workerPrincipal(target.clientId), target.id);
    expect(done.snapshot.context).to.deep.include({ attempts: 1, last_error: null });
    expect(await effects(target.id)).to.equal(1);
  });
});
