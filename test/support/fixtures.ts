/** Builders shared by tests: clients with keys, valid payout bodies, principals. */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { issueApiKey } from '../../src/domain/api-keys.js';
import type { CreatePayoutInput } from '../../src/domain/payout-service.js';
import type { Principal } from '../../src/domain/principal.js';

/** Valid IBANs (mod-97 correct) for tests. */
export const IBANS = {
  DE: 'DE89370400440532013000',
  GB: 'GB29NWBK60161331926819',
  FR: 'FR1420041010050500013M02606',
  NL: 'NL91ABNA0417164300',
} as const;

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
