/**
 * "Needs attention" on PostgreSQL: a client's unfinished payouts that wait for a person or have been in their status
 * longer than the threshold, the longest waiting first; never another client's, never a fresh or finished one.
 */
import { expect } from 'chai';
import { workerPrincipal } from '../../../src/domain/principal.js';
import type { TestContext } from '../../support/context.js';
import { serviceTestContext } from '../../support/database.js';
import { createTestClient, payoutIn } from '../../support/fixtures.js';
import type { TestClient } from '../../support/fixtures.js';

describe('console: payouts needing attention (store and service)', () => {
  let ctx: TestContext;

  before(() => {
    ctx = serviceTestContext();
  });

  after(async () => {
    await ctx.db.destroy();
  });

  async function givenToAPerson(client: TestClient): Promise<string> {
    const payout = await payoutIn(ctx, client, 'processing');
    await ctx.service.applyEvent(
      workerPrincipal(client.clientId),
      payout.id,
      {
        type: 'DEAD_LETTERED',
        code: 'delivery_limit',
        message: 'too many deliveries',
        at: new Date().toISOString(),
      },
      { requestId: 'test' },
    );
    return payout.id;
  }

  it('lists waiting and stuck payouts of the client only, the longest waiting first', async () => {
    const acme = await createTestClient(ctx.db, 'attention');
    const other = await createTestClient(ctx.db, 'attention-other');
    const waiting = await givenToAPerson(acme);
    const stuck = (await payoutIn(ctx, acme, 'created')).id;
    await ctx
      .db('payouts')
      .where({ id: stuck })
      .update({ status_changed_at: ctx.db.raw(`now() - interval '1 hour'`) });
    await payoutIn(ctx, acme, 'created'); // fresh: not stuck
    const old = (await payoutIn(ctx, acme, 'completed')).id; // final: never listed, however old
    await ctx
      .db('payouts')
      .where({ id: old })
      .update({ status_changed_at: ctx.db.raw(`now() - interval '2 hours'`) });
    await givenToAPerson(other);

    const listed = await ctx.service.listNeedingAttention(acme.operator, {
      limit: 10,
      stuckAfterSeconds: 300,
    });
    expect(listed.map((payout) => payout.id)).to.deep.equal([stuck, waiting]);
    expect(listed[1]).to.include({ status: 'processing', stage: 'needs_attention' });
    expect(
      await ctx.service.listNeedingAttention(acme.operator, { limit: 1, stuckAfterSeconds: 300 }),
    ).to.have.length(1);
  });
});
