/**
 * `createApp` replaces openapi-backend's `router.getOperations` with the list it returned once, because the router
 * rebuilt that list for every request it matched (src/http/app.ts). That is a reach into the library's internals:
 * this test fails loudly on a version where routing no longer goes through `getOperations`, or where the list is
 * not the one to route by.
 */
import { expect } from 'chai';
import { OpenAPIBackend } from 'openapi-backend';
import sinon from 'sinon';
import { loadSpec } from '../../src/http/spec.js';

describe('openapi-backend internals the app relies on (pinned)', () => {
  afterEach(() => sinon.restore());

  it('routes every request through router.getOperations, so a cached list serves every match', async () => {
    const api = new OpenAPIBackend({ definition: loadSpec().document(), quick: true, validate: false });
    await api.init();
    const operations = api.router.getOperations();
    expect(operations.map((operation) => operation.operationId)).to.include.members([
      'createPayout',
      'getPayout',
      'retryPayout',
    ]);
    const cached = sinon.fake.returns(operations);
    api.router.getOperations = cached;
    const matched = api.router.matchOperation({
      method: 'get',
      path: '/api/payouts/0190a000-0000-7000-8000-000000000000',
      headers: {},
    });
    expect(matched && matched.operationId).to.equal('getPayout');
    expect(cached.called, 'matching asks getOperations').to.equal(true);
  });
});
