/** One delivery attempt's decisions, on fakes of the store and the sender (ports): what follows each answer. */
import { expect } from 'chai';
import type {
  AttemptRecord,
  DeliveryWork,
  WebhookDeliveryStore,
  WebhookRequest,
  WebhookResponse,
} from '../../src/domain/webhook-delivery.js';
import { WebhookDispatcher, retryDelayAfter, webhookEventBody } from '../../src/domain/webhook-delivery.js';
import { PayoutLifecycle } from '../../src/machines/payout-lifecycle.js';
import { Money } from '../../src/domain/money.js';

const lifecycle = new PayoutLifecycle();
const initial = lifecycle.initial();

function work(overrides: Partial<DeliveryWork> = {}): DeliveryWork {
  return {
    id: '0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d5e',
    eventId: 'evt_0192f4f27c3e7a519d0e6c1f2b3a4d5e',
    type: 'payout.created',
    payoutVersion: 1,
    createdAt: new Date('2026-12-01T00:00:00.000Z'),
    status: 'pending',
    attempts: 0,
    payout: {
      id: '0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d5f',
      clientId: '0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d60',
      amount: Money.fromStored('125050', 'EUR', 2),
      recipient: { type: 'iban', iban: 'DE89370400440532013000', bic: null, holder_name: 'Jane' },
      status: initial.status,
      stage: initial.stage,
      snapshot: initial.snapshot,
      machineVersion: 2,
      version: 1,
      description: null,
      failure: null,
      createdAt: new Date('2026-12-01T00:00:00.000Z'),
      updatedAt: new Date('2026-12-01T00:00:00.000Z'),
    },
    endpoint: { id: 'e1', url: 'https://hooks.example.com/in', status: 'enabled', deleted: false },
    secrets: ['whsec_a'],
    ...overrides,
  };
}

function setup(answers: WebhookResponse[], current = work()) {
  const records: AttemptRecord[] = [];
  const sent: WebhookRequest[] = [];
  const store: WebhookDeliveryStore = {
    loadDelivery: () => Promise.resolve(current),
    recordAttempt: (_work, record) => {
      records.push(record);
      return Promise.resolve({ recorded: true, endpointDisabled: record.outcome === 'failed' });
    },
  };
  const dispatcher = new WebhookDispatcher({
    store,
    sender: { send: (request) => (sent.push(request), Promise.resolve(answers.shift()!)) },
    retryScheduleMs: [1000, 2000],
    disableAfter: 3,
    now: () => new Date('2026-12-01T00:00:10.000Z'),
  });
  return { dispatcher, records, sent };
}

describe('webhook delivery decisions', () => {
  it('the schedule: a wait after each of its attempts, then none', () => {
    expect([1, 2, 3].map((attempt) => retryDelayAfter([1000, 2000], attempt))).to.deep.equal([
      1000,
      2000,
      null,
    ]);
  });

  it('a 2xx is delivered; the request carries the body, event id and signature of this attempt', async () => {
    const { dispatcher, records, sent } = setup([{ kind: 'answered', statusCode: 204, body: '' }]);
    expect(await dispatcher.deliver('d')).to.deep.equal({ kind: 'delivered', statusCode: 204 });
    expect(records.map((record) => record.outcome)).to.deep.equal(['delivered']);
    expect(sent[0]!.body).to.equal(webhookEventBody(work()));
    expect(sent[0]!.headers['Payouts-Event-Id']).to.equal(work().eventId);
    expect(sent[0]!.headers['Payouts-Signature']).to.match(/^t=1796083210,v1=[0-9a-f]{64}$/);
    const body = JSON.parse(sent[0]!.body) as { data: { object: Record<string, unknown> } };
    expect(body.data.object).to.include({ amount: '1250.50', status: 'created', version: 1 });
    expect(body.data.object.available_actions).to.deep.equal(['cancel']);
  });

  it('a 500, a redirect, a refusal or a timeout is retried while the schedule lasts, then failed', async () => {
    const { dispatcher, records } = setup([
      { kind: 'answered', statusCode: 302, body: 'redirect to x not followed' },
    ]);
    expect(await dispatcher.deliver('d')).to.include({ kind: 'retry', delayMs: 1000, attempt: 1 });
    expect(records[0]).to.include({
      outcome: 'retry',
      statusCode: 302,
      error: 'HTTP 302: redirect to x not followed',
    });
    expect(records[0]!.nextAttemptAt!.toISOString()).to.equal('2026-12-01T00:00:11.000Z');

    const spent = setup([{ kind: 'unreachable', error: 'no answer within 10000 ms' }], work({ attempts: 2 }));
    expect(await spent.dispatcher.deliver('d')).to.deep.equal({
      kind: 'failed',
      endpointDisabled: true,
      detail: 'no answer within 10000 ms',
    });
  });

  it('a settled delivery or a deleted endpoint is not attempted', async () => {
    const settled = setup([], work({ status: 'delivered' }));
    expect(await settled.dispatcher.deliver('d')).to.deep.equal({ kind: 'skipped', reason: 'settled' });
    expect(settled.sent).to.have.length(0);
    const gone = setup(
      [],
      work({ endpoint: { id: 'e1', url: 'https://x.example', status: 'disabled', deleted: true } }),
    );
    expect(await gone.dispatcher.deliver('d')).to.deep.equal({ kind: 'skipped', reason: 'endpoint_gone' });
    expect(gone.records).to.deep.equal([
      {
        outcome: 'failed',
        statusCode: null,
        error: 'endpoint deleted',
        nextAttemptAt: null,
        disableAfter: 0,
      },
    ]);
  });
});

describe('webhook delivery: duplicate messages', () => {
  it('a copy whose attempt another copy recorded first schedules no retry of its own', async () => {
    const store: WebhookDeliveryStore = {
      loadDelivery: () => Promise.resolve(work()),
      recordAttempt: () => Promise.resolve({ recorded: false, endpointDisabled: false }),
    };
    const dispatcher = new WebhookDispatcher({
      store,
      sender: { send: () => Promise.resolve({ kind: 'answered', statusCode: 503, body: '' }) },
      retryScheduleMs: [1000],
      disableAfter: 3,
    });
    expect(await dispatcher.deliver('d')).to.deep.equal({ kind: 'skipped', reason: 'settled' });
  });
});
