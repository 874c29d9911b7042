/**
 * The transport around the operations: content types, sizes, malformed JSON, unknown routes and methods,
 * trailing slashes, request ids, conditional requests, unexpected errors, docs, health and metrics.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import sinon from 'sinon';
import YAML from 'yaml';
import { locateSpec } from '../../../src/http/spec.js';
import { createLogger } from '../../../src/logger.js';
import type { Db } from '../../../src/persistence/db.js';
import { startApiOpsServer } from '../../../src/ops-server.js';
import { createDb } from '../../../src/persistence/db.js';
import { openTestDb } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { IBANS, createTestClient, payoutInput } from '../../support/fixtures.js';
import type { ApiResponse, TestApi } from '../../support/http.js';
import { contract, startTestApi } from '../../support/http.js';
import { LogCapture } from '../../support/logs.js';
import { createPayoutOverHttp } from './helpers.js';

describe('HTTP transport', () => {
  let db: Db;
  let api: TestApi;
  let client: TestClient;
  let logs: LogCapture;
  let id: string;

  before(async () => {
    db = openTestDb(5);
    logs = new LogCapture();
    api = await startTestApi(db, { log: createLogger({ level: 'info', destination: logs }) });
    client = await createTestClient(db, 'transport');
    id = await createPayoutOverHttp(api, client.key);
  });
  after(async () => {
    await api.close();
    await db.destroy();
  });
  afterEach(() => sinon.restore());

  function expectProblem(response: ApiResponse, status: number, code: string): void {
    expect(response.status, response.text).to.equal(status);
    expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(response.body).to.include({ status, code, type: `urn:payouts:problem:${code}` });
    expect(response.body.request_id).to.equal(response.headers.get('x-request-id'));
  }

  describe('415, checked before routing', () => {
    const cases: Array<[string, string | undefined]> = [
      ['text/plain', 'text/plain'],
      ['form data', 'application/x-www-form-urlencoded'],
      ['a JSON-looking vendor type', 'application/vnd.api+json'],
      ['no content type', undefined],
    ];
    for (const [what, contentType] of cases) {
      it(`${what} → 415 on POST, PATCH, and on a route that does not exist`, async () => {
        const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
        const body = JSON.stringify(payoutInput());
        for (const [method, path] of [
          ['POST', '/api/payouts'],
          ['PATCH', `/api/payouts/${id}`],
          ['POST', '/api/nothing-here'],
        ] as const) {
          const response = await api.request(method, path, {
            key: client.key,
            headers,
            body: contentType ? body : Buffer.from(body),
          });
          expectProblem(response, 415, 'unsupported_media_type');
        }
      });
    }

    it('application/json with a charset other than UTF → 415', async () => {
      const response = await api.request('POST', '/api/payouts', {
        key: client.key,
        headers: { 'content-type': 'application/json; charset=latin1' },
        body: JSON.stringify(payoutInput()),
      });
      expectProblem(response, 415, 'unsupported_media_type');
    });

    it('application/json; charset=utf-8 is JSON', async () => {
      const response = await api.request('POST', '/api/payouts', {
        key: client.key,
        headers: { 'content-type': 'Application/JSON; charset=UTF-8' },
        body: JSON.stringify(payoutInput()),
      });
      expect(response.status).to.equal(201);
    });
  });

  it('malformed JSON → 400 that does not quote the body', async () => {
    for (const body of [
      '{"amount": "1.00",',
      `{"recipient": {"iban": "${IBANS.DE}"`,
      "{'a': 1}",
      '{"a": 1} trailing',
      '\u0000',
    ]) {
      const response = await api.request('POST', '/api/payouts', {
        key: client.key,
        headers: { 'content-type': 'application/json' },
        body,
      });
      expectProblem(response, 400, 'bad_request');
      expect(response.text).to.not.include(IBANS.DE);
      expect(response.body.detail).to.equal('The body is not valid JSON.');
    }
  });

  it('a body over 16 KiB → 413; 16 KiB is still read', async () => {
    const big = JSON.stringify({ ...payoutInput(), description: 'x'.repeat(17 * 1024) });
    expectProblem(
      await api.request('POST', '/api/payouts', {
        key: client.key,
        headers: { 'content-type': 'application/json' },
        body: big,
      }),
      413,
      'payload_too_large',
    );
    const filler = 'x'.repeat(16 * 1024 - JSON.stringify({ ...payoutInput(), pad: '' }).length);
    const atLimit = JSON.stringify({ ...payoutInput(), pad: filler });
    expect(Buffer.byteLength(atLimit)).to.equal(16 * 1024);
    const response = await api.request('POST', '/api/payouts', {
      key: client.key,
      headers: { 'content-type': 'application/json' },
      body: atLimit,
    });
    expect(response.status).to.equal(400);
    expect(response.body.errors).to.deep.equal([{ pointer: '/body/pad', message: 'is not a known field' }]);
  });

  it('an unknown route → 404, everywhere', async () => {
    for (const path of [
      '/',
      '/api',
      '/api/payout',
      '/api/payouts/x/y/z',
      `/api/payouts/${id}/events/1`,
      '/api/docs/nothing.js',
      '/.env',
    ]) {
      expectProblem(await api.request('GET', path, { key: client.key }), 404, 'route_not_found');
    }
  });

  it('a method a route does not accept → 405 with Allow', async () => {
    const cases: Array<[string, string, string]> = [
      ['PUT', `/api/payouts/${id}`, 'GET, HEAD, PATCH, DELETE'],
      ['POST', `/api/payouts/${id}`, 'GET, HEAD, PATCH, DELETE'],
      ['DELETE', '/api/payouts', 'GET, HEAD, POST'],
      ['OPTIONS', '/api/payouts', 'GET, HEAD, POST'],
      ['POST', '/api/machine', 'GET, HEAD'],
      ['DELETE', '/healthz', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const response = await api.request(method, path, { key: client.key });
      expectProblem(response, 405, 'method_not_allowed');
      expect(response.headers.get('allow'), `${method} ${path}`).to.equal(allow);
    }
  });

  it('paths work with and without a trailing slash', async () => {
    expect((await api.request('GET', '/api/payouts/', { key: client.key })).status).to.equal(200);
    expect((await api.request('GET', `/api/payouts/${id}/`, { key: client.key })).status).to.equal(200);
    expect((await api.request('GET', `/api/payouts/${id}/events/`, { key: client.key })).status).to.equal(
      200,
    );
    expect(
      (await api.request('POST', '/api/payouts/', { key: client.key, json: payoutInput() })).status,
    ).to.equal(201);
    expect((await api.request('GET', '/api/machine/')).status).to.equal(200);
    expect((await api.request('GET', '/healthz/')).status).to.equal(200);
  });

  describe('X-Request-Id', () => {
    it('is taken from the request when it is at most 128 safe characters', async () => {
      for (const requestId of ['abc', 'A.b_c:d-1', 'x'.repeat(128)]) {
        const response = await api.request('GET', '/healthz', { headers: { 'x-request-id': requestId } });
        expect(response.headers.get('x-request-id')).to.equal(requestId);
      }
    });

    it('is generated otherwise, on every response including errors', async () => {
      for (const requestId of ['x'.repeat(129), 'has space', 'semi;colon', 'ünï', '']) {
        const response = await api.request('GET', '/api/nothing', { headers: { 'x-request-id': requestId } });
        expect(response.headers.get('x-request-id')).to.not.equal(requestId);
        expect(response.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
      }
      const generated = await api.request('GET', '/healthz');
      expect(generated.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
    });

    it('is stored in the history of the change it caused', async () => {
      const created = await api.request('POST', '/api/payouts', {
        key: client.key,
        json: payoutInput(),
        headers: { 'x-request-id': 'trace-create' },
      });
      await api.request('PATCH', `/api/payouts/${created.body.id}`, {
        key: client.key,
        json: { status: 'cancelled' },
        headers: { 'x-request-id': 'trace-cancel' },
      });
      const events = await api.request('GET', `/api/payouts/${created.body.id}/events`, { key: client.key });
      expect(events.body.data.map((event: { request_id: string }) => event.request_id)).to.deep.equal([
        'trace-create',
        'trace-cancel',
      ]);
    });
  });

  describe('conditional requests', () => {
    it('GET answers ETag and 304 to a matching If-None-Match', async () => {
      const first = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
      const etag = first.headers.get('etag')!;
      expect(etag).to.equal(`"${first.body.version}"`);
      const again = await api.request('GET', `/api/payouts/${id}`, {
        key: client.key,
        headers: { 'if-none-match': etag },
      });
      expect(again.status).to.equal(304);
      const stale = await api.request('GET', `/api/payouts/${id}`, {
        key: client.key,
        headers: { 'if-none-match': '"999"' },
      });
      expect(stale.status).to.equal(200);
    });

    it('If-Match: * and the current version apply; a stale one is 412 with the current version', async () => {
      const own = (await api.request('POST', '/api/payouts', { key: client.key, json: payoutInput() })).body
        .id as string;
      expect(
        (
          await api.request('PATCH', `/api/payouts/${own}`, {
            key: client.key,
            json: { description: 'a' },
            headers: { 'if-match': '*' },
          })
        ).status,
      ).to.equal(200);
      expect(
        (
          await api.request('PATCH', `/api/payouts/${own}`, {
            key: client.key,
            json: { description: 'b' },
            headers: { 'if-match': '"2"' },
          })
        ).status,
      ).to.equal(200);
      const stale = await api.request('PATCH', `/api/payouts/${own}`, {
        key: client.key,
        json: { description: 'c' },
        headers: { 'if-match': '"2"' },
      });
      expectProblem(stale, 412, 'version_mismatch');
      expect(stale.body.current_version).to.equal(3);
    });

    it('HEAD answers like GET, without a body', async () => {
      const response = await api.request('HEAD', `/api/payouts/${id}`, { key: client.key });
      expect(response.status).to.equal(200);
      expect(response.text).to.equal('');
      expect(response.headers.get('etag')).to.match(/^"\d+"$/);
    });
  });

  it('DELETE cancels and hides a created payout (204), then it is gone; a started one is 409', async () => {
    const own = (await api.request('POST', '/api/payouts', { key: client.key, json: payoutInput() })).body
      .id as string;
    const deleted = await api.request('DELETE', `/api/payouts/${own}`, { key: client.key });
    expect(deleted.status).to.equal(204);
    expect(deleted.text).to.equal('');
    expectProblem(
      await api.request('GET', `/api/payouts/${own}`, { key: client.key }),
      404,
      'payout_not_found',
    );
    expectProblem(
      await api.request('DELETE', `/api/payouts/${own}`, { key: client.key }),
      404,
      'payout_not_found',
    );
    const row = await db('payouts').where({ id: own }).first();
    expect(row.status).to.equal('cancelled');
    expect(row.deleted_at).to.be.instanceOf(Date);

    const cancelled = (await api.request('POST', '/api/payouts', { key: client.key, json: payoutInput() }))
      .body.id as string;
    await api.request('PATCH', `/api/payouts/${cancelled}`, {
      key: client.key,
      json: { status: 'cancelled' },
    });
    const refused = await api.request('DELETE', `/api/payouts/${cancelled}`, { key: client.key });
    expectProblem(refused, 409, 'payout_not_deletable');
    expect(refused.body.payout_status).to.equal('cancelled');
  });

  describe('unexpected errors', () => {
    it('a PostgreSQL data error (SQLSTATE 22) that slips through → 400 that quotes nothing', async () => {
      const dataError = await db.raw(`select 'DE89370400440532013000'::int`).catch((error: unknown) => error);
      expect((dataError as { code: string }).code).to.equal('22P02');
      sinon.stub(api.ctx.service, 'listEvents').rejects(dataError);
      const response = await api.request('GET', `/api/payouts/${id}/events`, { key: client.key });
      expectProblem(response, 400, 'bad_request');
      // The request id is random hex (it may hold "de89"): only what the server quoted is looked at.
      const quoted = response.text.replace(String(response.body.request_id), '');
      expect(quoted).to.not.match(/select|int|DE89/i);
    });

    it('anything else → 500 that leaks no SQL or stack and is logged with the request id', async () => {
      const failure = new Error('insert into "payouts" ("secret") values ($1) - relation exploded');
      sinon.stub(api.ctx.service, 'getPayoutResource').rejects(failure);
      const response = await api.raw('GET', `/api/payouts/${id}`, {
        key: client.key,
        headers: { 'x-request-id': 'boom-1' },
      });
      contract().checkProblem('500', response);
      expectProblem(response, 500, 'internal_error');
      expect(response.text).to.not.match(/insert|"payouts"|secret|exploded|\.ts:\d+/);
      const logged = logs.lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.msg === 'request failed');
      expect(logged).to.include({ request_id: 'boom-1', level: 'error' });
      expect(JSON.stringify(logged)).to.include('relation exploded');
    });

    it('a lost database → 503, not 500', async () => {
      sinon
        .stub(api.ctx.service, 'getPayoutResource')
        .rejects(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
      expectProblem(
        await api.request('GET', `/api/payouts/${id}`, { key: client.key }),
        503,
        'service_unavailable',
      );
    });

    it('a database that does not answer → 503 on an authenticated route, not 500', async () => {
      const quiet = { warn: () => undefined, error: () => undefined };
      const unreachable = createDb('postgres://postgres@127.0.0.1:1/nothing', 1, quiet);
      const down = await startTestApi(unreachable);
      try {
        // Authentication reads the key from the dead database first: that failure is a 503 too.
        expectProblem(
          await down.request('GET', `/api/payouts/${id}`, { key: client.key }),
          503,
          'service_unavailable',
        );
      } finally {
        await down.close();
        await unreachable.destroy();
      }
    });
  });

  describe('documentation', () => {
    it('serves the contract as YAML and JSON, the same document', async () => {
      const yaml = await api.request('GET', '/api/openapi.yaml');
      expect(yaml.text).to.equal(readFileSync(locateSpec(), 'utf8'));
      const json = await api.request('GET', '/api/openapi.json');
      expect(json.body).to.deep.equal(YAML.parse(yaml.text));
      expect(json.body.openapi).to.equal('3.0.3');
    });

    it('serves Swagger UI at /api/docs/ with its own assets', async () => {
      const redirect = await api.request('GET', '/api/docs', { headers: {} });
      expect(redirect.status).to.equal(301);
      expect(redirect.headers.get('location')).to.equal('/api/docs/');
      const page = await api.request('GET', '/api/docs/');
      expect(page.status).to.equal(200);
      expect(page.text)
        .to.include('swagger-ui-bundle.js')
        .and.not.match(/src=["']https?:/);
      const init = await api.raw('GET', '/api/docs/swagger-ui-init.js');
      expect(init.text).to.include('/api/openapi.json');
      for (const asset of ['swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'swagger-ui.css']) {
        const response = await api.raw('GET', `/api/docs/${asset}`);
        expect(response.status, asset).to.equal(200);
      }
    });

    it('serves Redoc at /api/docs/redoc/ with its bundle from node_modules', async () => {
      const redirect = await api.request('GET', '/api/docs/redoc');
      expect(redirect.headers.get('location')).to.equal('/api/docs/redoc/');
      const page = await api.request('GET', '/api/docs/redoc/');
      expect(page.text).to.include('spec-url="/api/openapi.json"').and.include('src="./redoc.standalone.js"');
      expect(page.text).to.not.match(/https?:\/\//);
      const bundle = await api.raw('GET', '/api/docs/redoc/redoc.standalone.js');
      expect(bundle.status).to.equal(200);
      expect(bundle.headers.get('content-type')).to.match(/javascript/);
      expect(bundle.text.length).to.be.greaterThan(100_000);
    });

    it('serves the machine definition for the visualizer', async () => {
      const response = await api.request('GET', '/api/machine');
      expect(response.body).to.include({ id: 'payout', initial: 'created', version: '2' });
      expect(Object.keys(response.body.states)).to.have.members([
        'created',
        'processing',
        'completed',
        'failed',
        'cancelled',
      ]);
    });
  });

  describe('health and metrics', () => {
    /** The API's operations port, on the API's own registry and database: what the api role starts beside it. */
    async function opsOf(
      ctx: typeof api.ctx,
    ): Promise<{ get(path: string): Promise<Response>; close(): Promise<void> }> {
      const ops = await startApiOpsServer({ ...ctx, config: { ...ctx.config, metricsPort: 0 } });
      return { get: (path) => fetch(`http://127.0.0.1:${ops.port}${path}`), close: () => ops.close() };
    }

    it('/healthz is alive on the public port; /readyz on the operations port is ready while the database answers', async () => {
      expect((await api.request('GET', '/healthz')).body).to.deep.equal({ status: 'ok' });
      const ops = await opsOf(api.ctx);
      try {
        const ready = await ops.get('/readyz');
        expect(ready.status).to.equal(200);
        expect(await ready.json()).to.deep.include({ status: 'ready' });
      } finally {
        await ops.close();
      }
    });

    it('/readyz is 503 problem+json naming the database when it is unreachable; /healthz stays 200', async () => {
      const quiet = { warn: () => undefined, error: () => undefined };
      const unreachable = createDb('postgres://postgres@127.0.0.1:1/nothing', 1, quiet);
      const down = await startTestApi(unreachable);
      const ops = await opsOf(down.ctx);
      try {
        const ready = await ops.get('/readyz');
        expect(ready.status).to.equal(503);
        expect(ready.headers.get('content-type')).to.match(/^application\/problem\+json/);
        expect(await ready.json()).to.deep.include({ code: 'not_ready', checks: { database: 'down' } });
        expect((await down.request('GET', '/healthz')).status).to.equal(200);
      } finally {
        await ops.close();
        await down.close();
        await unreachable.destroy();
      }
    });

    it('/metrics (operations port) labels requests by route template, never by raw path', async () => {
      await api.request('GET', `/api/payouts/${id}`, { key: client.key });
      await api.request('GET', '/api/payouts/00000000-0000-4000-8000-000000000000', { key: client.key });
      await api.request('GET', '/no/such/route/0192f4f2');
      const ops = await opsOf(api.ctx);
      let text: string;
      try {
        text = await (await ops.get('/metrics')).text();
      } finally {
        await ops.close();
      }
      expect(text).to.match(
        /http_request_duration_seconds_count\{route="\/api\/payouts\/\{id\}",method="GET",status="200"\} \d+/,
      );
      expect(text).to.match(
        /http_request_duration_seconds_count\{route="\/api\/payouts\/\{id\}",method="GET",status="404"\} \d+/,
      );
      expect(text).to.match(
        /http_request_duration_seconds_count\{route="unmatched",method="GET",status="404"\} \d+/,
      );
      expect(text).to.include('payouts_created_total');
      expect(text).to.not.include(id).and.not.include('0192f4f2').and.not.include('00000000-0000');
    });
  });

  it('logs carry no API key, no Authorization header and no full IBAN', async () => {
    await api.request('POST', '/api/payouts', {
      key: client.key,
      json: payoutInput({ recipient: { type: 'iban', iban: IBANS.FR, holder_name: 'Jean' } }),
    });
    await api.request('POST', '/api/payouts', {
      key: client.key,
      json: { ...payoutInput(), recipient: { type: 'iban', iban: IBANS.NL, holder_name: '' } },
    });
    await api.request('GET', '/api/payouts', { key: client.operatorKey });
    expect(logs.lines.length).to.be.greaterThan(10);
    for (const secret of [
      client.key,
      client.operatorKey,
      client.key.slice(8),
      IBANS.DE,
      IBANS.FR,
      IBANS.NL,
    ]) {
      expect(logs.text).to.not.include(secret);
    }
    expect(logs.text.toLowerCase()).to.not.include('bearer');
  });
});
