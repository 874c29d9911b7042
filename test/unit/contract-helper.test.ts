/**
 * The contract check of test/support/http.ts, which every HTTP integration test runs on every response, must
 * itself be able to fail: fabricated responses that break openapi.yaml in one way each are refused. No server.
 */
import { expect } from 'chai';
import type { ApiResponse } from '../support/contract.js';
import { contract } from '../support/contract.js';

const ID = '0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d5e';

function payout(): Record<string, unknown> {
  return {
    id: ID,
    amount: '1250.50',
    currency: 'EUR',
    recipient: {
      type: 'iban',
      iban_last4: '3000',
      iban_masked: '******************3000',
      bic: null,
      holder_name: 'Jane',
    },
    status: 'created',
    stage: 'queued',
    available_actions: ['cancel'],
    description: null,
    failure: null,
    last_error: null,
    created_at: '2026-11-24T10:00:00.000Z',
    updated_at: '2026-11-24T10:00:00.000Z',
    version: 1,
  };
}

function response(status: number, body: unknown, headers: Record<string, string> = {}): ApiResponse {
  const problem = status >= 400;
  return {
    status,
    body,
    text: body === undefined ? '' : JSON.stringify(body),
    headers: new Headers({
      'x-request-id': 'req-1',
      'content-type': problem ? 'application/problem+json; charset=utf-8' : 'application/json; charset=utf-8',
      ...headers,
    }),
  };
}

const created = { location: `/api/payouts/${ID}`, etag: '"1"' };
const problem = (status: number) => ({
  type: 'urn:payouts:problem:x',
  title: 'X',
  status,
  detail: 'x',
  code: 'x',
});

describe('the contract check used by every HTTP test', () => {
  it('accepts a response that follows the contract', () => {
    contract().check('POST', '/api/payouts', response(201, payout(), created));
    contract().check('GET', `/api/payouts/${ID}`, response(404, problem(404)));
  });

  const broken: Array<[string, string, string, ApiResponse]> = [
    [
      'a full IBAN leaking into the recipient',
      'POST',
      '/api/payouts',
      response(
        201,
        { ...payout(), recipient: { ...(payout().recipient as object), iban: 'DE89370400440532013000' } },
        created,
      ),
    ],
    [
      'an amount as a number',
      'POST',
      '/api/payouts',
      response(201, { ...payout(), amount: 1250.5 }, created),
    ],
    ['a missing Location on 201', 'POST', '/api/payouts', response(201, payout(), { etag: '"1"' })],
    [
      'a missing X-Request-Id',
      'GET',
      '/healthz',
      { ...response(200, { status: 'ok' }), headers: new Headers({ 'content-type': 'application/json' }) },
    ],
    ['an undocumented status', 'GET', `/api/payouts/${ID}`, response(418, problem(418))],
    [
      'an error that is not problem+json',
      'GET',
      `/api/payouts/${ID}`,
      response(404, problem(404), { 'content-type': 'application/json' }),
    ],
    [
      'a problem without its code',
      'GET',
      `/api/payouts/${ID}`,
      response(404, { ...problem(404), code: undefined }),
    ],
    ['a problem whose status disagrees', 'GET', `/api/payouts/${ID}`, response(404, problem(400))],
    ['a 500', 'GET', `/api/payouts/${ID}`, response(500, problem(500))],
    ['a 405 without Allow', 'PUT', `/api/payouts/${ID}`, response(405, problem(405))],
    ['a list without next_cursor', 'GET', '/api/payouts', response(200, { data: [payout()] })],
  ];
  for (const [what, method, path, bad] of broken) {
    it(`refuses ${what}`, () => {
      expect(() => contract().check(method, path, bad)).to.throw();
    });
  }
});
