/**
 * Helpers shared by the HTTP tests: the API a `describe` runs against, and the field errors of a problem
 * document. (Payouts driven into a status: `payoutIn` in test/support/fixtures.ts.)
 */
import { expect } from 'chai';
import type { AppOptions } from '../../../src/http/app.js';
import type { Db } from '../../../src/persistence/db.js';
import { openTestDb } from '../../support/database.js';
import { payoutInput } from '../../support/fixtures.js';
import type { ApiResponse, TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';

/** The API of a `describe`, with the pool it runs on. */
export interface DescribedApi extends Omit<TestApi, 'close'> {
  /** The API's own pool on the run's database, for looking at rows and creating clients. */
  readonly db: Db;
}

/**
 * Registers, in the calling `describe`, an API on a pool of its own (`poolMax` connections: the server allows 100
 * for everybody) started before its tests and closed after them, the API before its pool. Hooks the file registers
 * after this call run after these. Using the API before the setup ran throws.
 */
export function useTestApi(poolMax = 5, appOptions: AppOptions = {}): DescribedApi {
  let started: { db: Db; api: TestApi } | undefined;
  const current = () => {
    if (!started) throw new Error('the test API is used before its setup ran');
    return started;
  };
  before(async () => {
    const db = openTestDb(poolMax);
    started = { db, api: await startTestApi(db, {}, {}, appOptions) };
  });
  after(async () => {
    if (!started) return;
    await started.api.close();
    await started.db.destroy();
  });
  return {
    get db() {
      return current().db;
    },
    get ctx() {
      return current().api.ctx;
    },
    get baseUrl() {
      return current().api.baseUrl;
    },
    get port() {
      return current().api.port;
    },
    request: (method, path, options) => current().api.request(method, path, options),
    raw: (method, path, options) => current().api.raw(method, path, options),
  };
}

/** The `errors` of a 400 problem document as `pointer → message`, after checking it is one. */
export function fieldErrorsOf(response: ApiResponse): Record<string, string> {
  expect(response.status, response.text).to.equal(400);
  expect(response.body.code).to.equal('validation_failed');
  const errors = response.body.errors as Array<{ pointer: string; message: string }>;
  const byPointer: Record<string, string> = {};
  for (const error of errors) {
    expect(byPointer, `one error per field: ${error.pointer}`).to.not.have.property(error.pointer);
    byPointer[error.pointer] = error.message;
  }
  return byPointer;
}

/**
 * Creates a payout over HTTP as the holder of `key` (`body` defaults to a valid `payoutInput()`), asserts the
 * answer is 201 with an id, and returns the id.
 */
export async function createPayoutOverHttp(
  api: Pick<TestApi, 'request'>,
  key: string,
  body: unknown = payoutInput(),
): Promise<string> {
  const response = await api.request('POST', '/api/payouts', { key, json: body });
  expect(response.status, response.text).to.equal(201);
  expect(response.body.id).to.be.a('string');
  return response.body.id as string;
}
