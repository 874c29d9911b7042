/** Builders shared by tests: clients with keys, valid payout bodies, principals. */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { ApiKeys } from '../../src/domain/api-keys.js';
import { PgApiKeyStore } from '../../src/persistence/client-repository.js';
import type { CreateContext, CreatePayoutInput, PayoutService } from '../../src/domain/payout-service.js';
import type { PayoutResource } from '../../src/http/resources.js';
import { toPayoutResource } from '../../src/http/resources.js';
import type { TestContext as AppContext } from './context.js';
import type { Payout } from '../../src/domain/payout.js';
import type { Principal, Role } from '../../src/domain/principal.js';
import { workerPrincipal } from '../../src/domain/principal.js';
import type { PayoutEventType } from '../../src/machines/payout.machine.js';
import type { PayoutStatus } from '../../src/machines/payout-lifecycle.js';
import type { EventInput } from '../../src/domain/payout-service.js';

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
 * The events each role may send, copied from SPEC and the machine issue by hand — deliberately not read from the
 * machine, so the tests that derive their 403 cases from it check the code instead of repeating it.
 */
export const SPEC_ROLE_EVENTS: Readonly<Record<Role, readonly PayoutEventType[]>> = {
  client: ['CANCEL'],
  operator: ['CANCEL', 'SUCCEED', 'FAIL', 'RETRY'],
  worker: [
    'START',
    'PROVIDER_SUCCEEDED',
    'PROVIDER_FAILED',
    'PROVIDER_NOT_FOUND',
    'PROVIDER_UNAVAILABLE',
    'DEAD_LETTERED',
  ],
  system: ['REDRIVE', 'DEAD_LETTERED'],
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
 * The worker's way into each status: START, then the provider's answer to the submit START issued (command 2: a
 * new payout's command 1 is its processing message). `cancelled` is the client's CANCEL.
 */
const PATHS: Readonly<Record<PayoutStatus, ReadonlyArray<EventInput>>> = {
  created: [],
  processing: [{ type: 'START' }],
  completed: [{ type: 'START' }, { type: 'PROVIDER_SUCCEEDED', seq: 2 }],
  failed: [
    { type: 'START' },
    { type: 'PROVIDER_FAILED', seq: 2, failure: { code: 'provider_refused', message: 'Refused in a test' } },
  ],
  cancelled: [{ type: 'CANCEL' }],
};

/**
 * A new payout of `client` in `status`, reached through the service the way production reaches it: the worker
 * starts payouts and reports the provider's answers, the client cancels.
 */
export async function payoutIn(ctx: AppContext, client: TestClient, status: PayoutStatus): Promise<Payout> {
  const { body } = await createWire(ctx.service, client.principal, payoutInput(), { requestId: 'setup' });
  for (const event of PATHS[status]) {
    const principal: Principal =
      event.type === 'CANCEL' ? client.principal : workerPrincipal(client.clientId);
    await ctx.service.applyEvent(principal, body.id, event, { requestId: 'setup' });
  }
  return ctx.service.getPayout(client.principal, body.id);
}

/**
 * A create through the service with the API's answer (the wire resource, status 201), as the HTTP handler makes
 * it: what the tests of the service read back, and what an idempotent replay returns.
 */
export async function createWire(
  service: PayoutService,
  principal: Principal,
  input: CreatePayoutInput,
  context: Omit<CreateContext, 'answer'>,
): Promise<{ body: PayoutResource; replayed: boolean }> {
  const result = await service.createPayout(principal, input, {
    ...context,
    answer: (payout) => ({
      status: 201,
      body: toPayoutResource(payout, principal) as unknown as Record<string, unknown>,
    }),
  });
  return { body: result.answer.body as unknown as PayoutResource, replayed: result.replayed };
}

/** The API keys on `db`, as the roles build them: for tests that issue, revoke and check keys. */
export function apiKeys(db: Knex): ApiKeys {
  return new ApiKeys(new PgApiKeyStore(db));
}

export function issueApiKey(
  db: Knex,
  clientName: string,
  role: 'client' | 'operator',
): Promise<{ key: string; clientId: string; keyId: string }> {
  return apiKeys(db).issue(clientName, role);
}

export function revokeApiKeys(db: Knex, clientName: string): Promise<number> {
  return apiKeys(db).revoke(clientName);
}

export function authenticate(db: Knex, key: string | undefined): Promise<Principal> {
  return apiKeys(db).authenticate(key);
}
