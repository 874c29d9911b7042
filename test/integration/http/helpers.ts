/**
 * Helpers shared by the HTTP tests: the API a `describe` runs against, payouts driven into a status, and field
 * errors of a problem document.
 */
import { expect } from 'chai';
import type { AppContext } from '../../../src/context.js';
import type { PayoutEvent, PayoutStatus } from '../../../src/machines/payout.machine.js';
import { sampleEvent } from '../../../src/machines/payout.machine.js';
import { machineDefinition } from '../../../src/machines/definition.js';
import type { Principal } from '../../../src/domain/principal.js';
import { workerPrincipal } from '../../../src/domain/principal.js';
import type { Db } from '../../../src/persistence/db.js';
import { openTestDb } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
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
export function useTestApi(poolMax = 5): DescribedApi {
  let started: { db: Db; api: TestApi } | undefined;
  const current = () => {
    if (!started) throw new Error('the test API is used before its setup ran');
    return started;
  };
  before(async () => {
    const db = openTestDb(poolMax);
    started = { db, api: await startTestApi(db) };
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

/** Each status → the transitions (event, from) that reach it, read from the machine definition itself. */
export function transitionsInto(): Map<
  PayoutStatus,
  Array<{ from: PayoutStatus; event: PayoutEvent['type'] }>
> {
  const into = new Map<PayoutStatus, Array<{ from: PayoutStatus; event: PayoutEvent['type'] }>>();
  for (const [from, state] of Object.entries(machineDefinition().states)) {
    for (const [event, target] of Object.entries(state.on ?? {})) {
      const to = (
        typeof target === 'string' ? target : (target as { target: string }).target
      ) as PayoutStatus;
      into.set(to, [
        ...(into.get(to) ?? []),
        { from: from as PayoutStatus, event: event as PayoutEvent['type'] },
      ]);
    }
  }
  return into;
}

/**
 * A new payout of `client` in `status`, reached through the service the way production reaches it: the
 * worker starts, succeeds and fails payouts, the client cancels. The path is found by walking the machine
 * backwards from the status, so a new state needs no change here.
 */
export async function payoutIn(ctx: AppContext, client: TestClient, status: PayoutStatus): Promise<string> {
  const { body } = await ctx.service.createPayout(client.principal, payoutInput(), { requestId: 'setup' });
  const into = transitionsInto();
  const path: Array<PayoutEvent['type']> = [];
  for (let current = status; current !== 'created';) {
    const step = into.get(current)?.[0];
    if (!step) throw new Error(`no transition into ${current}`);
    path.unshift(step.event);
    current = step.from;
  }
  for (const type of path) {
    const principal: Principal = type === 'CANCEL' ? client.principal : workerPrincipal(client.clientId);
    const event =
      type === 'FAIL' ? { type, code: 'provider_refused', message: 'Refused in a test' } : sampleEvent(type);
    await ctx.service.applyEvent(principal, body.id, event, { requestId: 'setup' });
  }
  return body.id;
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
