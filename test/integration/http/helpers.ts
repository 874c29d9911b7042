/** Helpers shared by the HTTP tests: payouts driven into a status, and field errors of a problem document. */
import { expect } from 'chai';
import type { AppContext } from '../../../src/context.js';
import type { PayoutEvent, PayoutStatus } from '../../../src/machines/payout.machine.js';
import { sampleEvent } from '../../../src/machines/payout.machine.js';
import { machineDefinition } from '../../../src/machines/definition.js';
import type { Principal } from '../../../src/domain/principal.js';
import { workerPrincipal } from '../../../src/domain/principal.js';
import type { TestClient } from '../../support/fixtures.js';
import { payoutInput } from '../../support/fixtures.js';
import type { ApiResponse } from '../../support/http.js';

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
