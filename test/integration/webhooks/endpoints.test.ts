/**
 * The webhook endpoints' API as a black box: register (the secret shown once, stored sealed), list, read, change,
 * delete, rotate; scoped by client; every bad field a 400 naming it.
 */
import { expect } from 'chai';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient } from '../../support/fixtures.js';
import { fieldErrorsOf, useTestApi } from '../http/helpers.js';

const URL = 'https://hooks.example.com/payouts';

describe('webhook endpoints over HTTP', () => {
  const api = useTestApi(5);
  let client: TestClient;
  let other: TestClient;

  before(async () => {
    client = await createTestClient(api.db, 'hooks');
    other = await createTestClient(api.db, 'hooks-other');
  });

  async function register(body: Record<string, unknown> = { url: URL }, key = client.key) {
    const response = await api.request('POST', '/api/webhook-endpoints', { key, json: body });
    expect(response.status, response.text).to.equal(201);
    return response;
  }

  it('registers an endpoint: 201, every event by default, the secret once, sealed at rest', async () => {
    const response = await register({ url: URL, description: '  Ledger sync ' });
    const body = response.body;
    expect(response.headers.get('location')).to.equal(`/api/webhook-endpoints/${body.id}`);
    expect(response.headers.get('cache-control')).to.equal('no-store');
    expect(body).to.include({
      url: URL,
      status: 'enabled',
      description: 'Ledger sync',
      disabled_reason: null,
    });
    expect(body.events).to.deep.equal([
      'payout.created',
      'payout.processing',
      'payout.completed',
      'payout.failed',
      'payout.cancelled',
      'payout.needs_attention',
    ]);
    expect(body.secret).to.match(/^whsec_[A-Za-z0-9_-]{43}$/);

    const read = await api.request('GET', `/api/webhook-endpoints/${body.id}`, { key: client.key });
    expect(read.status).to.equal(200);
    expect(read.body).to.not.have.property('secret');

    const row = await api.db('webhook_endpoints').where({ id: body.id }).first();
    const stored = Buffer.from(row.secret_ciphertext as Buffer);
    expect(stored.includes(Buffer.from(body.secret as string))).to.equal(false);
    expect(stored.includes(Buffer.from((body.secret as string).slice(6)))).to.equal(false);
    expect(await api.ctx.webhookStore.signingSecrets(body.id as string)).to.deep.equal([body.secret]);
  });

  it('an operator manages its client endpoints too; another client sees none of them (404)', async () => {
    const { body } = await register({ url: URL, events: ['payout.completed'] }, client.operatorKey);
    const mine = await api.request('GET', `/api/webhook-endpoints/${body.id}`, { key: client.key });
    expect(mine.status).to.equal(200);
    for (const [method, path, json] of [
      ['GET', `/api/webhook-endpoints/${body.id}`, undefined],
      ['PATCH', `/api/webhook-endpoints/${body.id}`, { status: 'disabled' }],
      ['DELETE', `/api/webhook-endpoints/${body.id}`, undefined],
      ['POST', `/api/webhook-endpoints/${body.id}/rotate-secret`, undefined],
    ] as const) {
      const response = await api.request(method, path, { key: other.key, json });
      expect(response.status, `${method} ${path}`).to.equal(404);
      expect(response.body.code).to.equal('webhook_endpoint_not_found');
    }
    const list = await api.request('GET', '/api/webhook-endpoints', { key: other.key });
    expect(list.body.data).to.deep.equal([]);
  });

  it('refuses bad fields, naming each one', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ url: 'http://hooks.example.com/x' }, '/body/url'],
      [{ url: 'not a url' }, '/body/url'],
      [{ url: 'https://user:pass@hooks.example.com/' }, '/body/url'],
      [{ url: 'https://127.0.0.1/hook' }, '/body/url'],
      [{ url: 'https://[::1]/hook' }, '/body/url'],
      [{ url: 'https://169.254.169.254/latest' }, '/body/url'],
      [{ url: 'https://10.1.2.3/hook' }, '/body/url'],
      [{ url: 'https://localhost:8443/hook' }, '/body/url'],
      [{ url: 'https://[::ffff:192.168.0.1]/hook' }, '/body/url'],
      [{ url: URL, events: [] }, '/body/events'],
      [{ url: URL, events: ['payout.paid'] }, '/body/events/0'],
      [{ url: URL, events: ['payout.created', 'payout.created'] }, '/body/events'],
      [{ url: URL, description: 'a\u0000b' }, '/body/description'],
      [{ url: URL, secret: 'whsec_mine' }, '/body/secret'],
      [{ events: ['payout.created'] }, '/body/url'],
    ];
    for (const [json, pointer] of cases) {
      const response = await api.request('POST', '/api/webhook-endpoints', { key: client.key, json });
      expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
      expect(Object.keys(fieldErrorsOf(response)), JSON.stringify(json)).to.include(pointer);
    }
    expect(
      await api.db('webhook_endpoints').where({ client_id: client.clientId, url: 'https://127.0.0.1/hook' }),
    ).to.have.length(0);
  });

  it('changes url, events, description and status; an empty change is 400', async () => {
    const { body } = await register();
    const path = `/api/webhook-endpoints/${body.id}`;
    const changed = await api.request('PATCH', path, {
      key: client.key,
      json: {
        url: 'https://hooks.example.com/v2',
        events: ['payout.failed'],
        description: null,
        status: 'disabled',
      },
    });
    expect(changed.status, changed.text).to.equal(200);
    expect(changed.body).to.include({
      url: 'https://hooks.example.com/v2',
      status: 'disabled',
      description: null,
    });
    expect(changed.body.events).to.deep.equal(['payout.failed']);
    expect(fieldErrorsOf(await api.request('PATCH', path, { key: client.key, json: {} }))).to.have.property(
      '/body',
    );
    expect(
      fieldErrorsOf(
        await api.request('PATCH', path, { key: client.key, json: { url: 'ftp://x.example.com' } }),
      ),
    ).to.have.property('/body/url');
    expect(
      fieldErrorsOf(await api.request('PATCH', path, { key: client.key, json: { status: 'paused' } })),
    ).to.have.property('/body/status');
  });

  it('rotates the secret: a new one shown once, the old one still signing during the overlap', async () => {
    const { body } = await register();
    const rotated = await api.request('POST', `/api/webhook-endpoints/${body.id}/rotate-secret`, {
      key: client.key,
    });
    expect(rotated.status, rotated.text).to.equal(200);
    expect(rotated.body.secret)
      .to.match(/^whsec_/)
      .and.not.equal(body.secret);
    expect(await api.ctx.webhookStore.signingSecrets(body.id as string)).to.deep.equal([
      rotated.body.secret,
      body.secret,
    ]);
    const later = new Date(Date.now() + 25 * 3_600_000);
    expect(await api.ctx.webhookStore.signingSecrets(body.id as string, later)).to.deep.equal([
      rotated.body.secret,
    ]);
  });

  it('deletes: 204, then 404 and gone from the list; the row stays, disabled', async () => {
    const { body } = await register();
    const path = `/api/webhook-endpoints/${body.id}`;
    expect((await api.request('DELETE', path, { key: client.key })).status).to.equal(204);
    expect((await api.request('GET', path, { key: client.key })).status).to.equal(404);
    expect((await api.request('DELETE', path, { key: client.key })).status).to.equal(404);
    const row = await api.db('webhook_endpoints').where({ id: body.id }).first();
    expect(row.status).to.equal('disabled');
    expect(row.deleted_at).to.be.an.instanceOf(Date);
  });

  it('lists newest first, one page at a time; a malformed id and a foreign cursor are 400 naming the field', async () => {
    const lister = await createTestClient(api.db, 'hooks-list');
    const ids: string[] = [];
    for (let n = 0; n < 5; n += 1)
      ids.push((await register({ url: `${URL}/${n}` }, lister.key)).body.id as string);
    const first = await api.request('GET', '/api/webhook-endpoints?limit=3', { key: lister.key });
    expect(first.body.data.map((e: { id: string }) => e.id)).to.deep.equal(ids.slice(2).reverse());
    const second = await api.request(
      'GET',
      `/api/webhook-endpoints?limit=3&cursor=${first.body.next_cursor as string}`,
      { key: lister.key },
    );
    expect(second.body.data.map((e: { id: string }) => e.id)).to.deep.equal(ids.slice(0, 2).reverse());
    expect(second.body.next_cursor).to.equal(null);
    expect(
      fieldErrorsOf(await api.request('GET', '/api/webhook-endpoints/not-a-uuid', { key: lister.key })),
    ).to.have.property('/path/id');
    const payoutCursor = Buffer.from('v1:5').toString('base64url');
    expect(
      fieldErrorsOf(
        await api.request('GET', `/api/webhook-endpoints?cursor=${payoutCursor}`, { key: lister.key }),
      ),
    ).to.have.property('/query/cursor');
    expect(
      fieldErrorsOf(await api.request('GET', '/api/webhook-endpoints?limit=0', { key: lister.key })),
    ).to.have.property('/query/limit');
  });

  it('needs a key', async () => {
    expect((await api.request('GET', '/api/webhook-endpoints')).status).to.equal(401);
  });
});
