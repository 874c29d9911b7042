/** Builders shared by tests: clients with keys, valid payout bodies, principals. */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { issueApiKey } from '../../src/domain/api-keys.js';
import type { CreatePayoutInput } from '../../src/domain/payout-service.js';
import type { AppContext } from '../../src/context.js';
import type { Payout } from '../../src/domain/payout.js';
import type { Principal, Role } from '../../src/domain/principal.js';
import { workerPrincipal } from '../../src/domain/principal.js';
import type { PayoutEventType, PayoutStatus } from '../../src/machines/payout.machine.js';
import { PAYOUT_TRANSITIONS, sampleEvent } from '../../src/machines/payout.machine.js';

/** Valid IBANs (mod-97 correct) for tests. */
export const IBANS = {
  DE: 'DE89370400440532013000',
  GB: 'GB29NWBK60161331926819',
  FR: 'FR1420041010050500013M02606',
  NL: 'NL91ABNA0417164300',
} as const;

/** An IBAN of the right shape whose mod-97 checksum is wrong (IBANS.DE with its last digit changed). */
export const BAD_CHECKSUM_IBAN = 'DE89370400440532013001';

/**
 * The events each role may send, copied from SPEC by hand — deliberately not from src/domain/principal.ts, so
 * the tests that derive their 403 cases from it check the code instead of repeating it.
 */
export const SPEC_ROLE_EVENTS: Readonly<Record<Role, readonly PayoutEventType[]>> = {
  client: ['CANCEL'],
  operator: ['CANCEL', 'SUCCEED', 'FAIL'],
  worker: ['START', 'SUCCEED', 'FAIL'],
};

/** Whether SPEC lets `role` send `event`. */
export function specAllows(role: Role, event: PayoutEventType): boolean {
  return SPEC_ROLE_EVENTS[role].includes(event);
}

export function payoutInput(overrides: Partial<CreatePayoutInput> = {}): CreatePayoutInput {
  return {
    amount: '1250.50',
    currency: 'EUR',
    recipient: { type: 'iban', iban: IBANS.DE, holder_name: 'Jane Doe' },
    description: 'Invoice 42',
    ...overrides,
  };
}

export interface TestClient {
  name: string;
  clientId: string;
  key: string;
  principal: Principal;
  operatorKey: string;
  operator: Principal;
}

/** A new API client with a client key and an operator key. */
export async function createTestClient(db: Knex, prefix = 'test'): Promise<TestClient> {
  const name = `${prefix}-${randomBytes(5).toString('hex')}`;
  const client = await issueApiKey(db, name, 'client');
  const operator = await issueApiKey(db, name, 'operator');
  return {
    name,
    clientId: client.clientId,
    key: client.key,
    principal: { clientId: client.clientId, role: 'client', actor: `key:${client.keyId}` },
    operatorKey: operator.key,
    operator: { clientId: client.clientId, role: 'operator', actor: `key:${operator.keyId}` },
  };
}

/**
 * A new payout of `client` in `status`, reached through the service the way production reaches it: the worker
 * starts, succeeds and fails payouts, the client cancels. The path is found by walking the machine's transitions
 * backwards from the status, so a new state needs no change here.
 */
export async function payoutIn(ctx: AppContext, client: TestClient, status: PayoutStatus): Promise<Payout> {
  const { body } = await ctx.service.createPayout(client.principal, payoutInput(), { requestId: 'setup' });
  const path: PayoutEventType[] = [];
  for (let current = status; current !== 'created';) {
    const step = PAYOUT_TRANSITIONS.find((transition) => transition.to === current);
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
  return ctx.service.getPayout(client.principal, body.id);
}
