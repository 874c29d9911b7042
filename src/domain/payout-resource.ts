/**
 * The public representation of a payout (the `Payout` schema of openapi.yaml): what the API answers and what a
 * webhook event carries as its `data.object`, so both say the same thing in the same words. Snake case, decimal
 * strings, the account masked, RFC 3339 times; `available_actions` as the given principal may act.
 */
import type { Payout, PayoutAction, PayoutSummary } from './payout.js';
import { availableActions, lastErrorOf } from './payout.js';
import type { Principal } from './principal.js';
import type { MaskedRecipient } from './recipient.js';
import { maskRecipient } from './recipient.js';
import type { PayoutFailure, PayoutLastError } from '../machines/payout.machine.js';
import type { PayoutStage, PayoutStatus } from '../machines/payout-lifecycle.js';

/** The API representation of a payout (the `Payout` schema of openapi.yaml). */
export interface PayoutResource {
  id: string;
  amount: string;
  currency: string;
  recipient: MaskedRecipient;
  status: PayoutStatus;
  stage: PayoutStage | null;
  available_actions: PayoutAction[];
  description: string | null;
  failure: PayoutFailure | null;
  last_error: PayoutLastError | null;
  created_at: string;
  updated_at: string;
  version: number;
}

export function toPayoutResource(payout: Payout | PayoutSummary, principal: Principal): PayoutResource {
  return {
    id: payout.id,
    amount: payout.amount.toDecimal(),
    currency: payout.amount.currency,
    recipient: maskRecipient(payout.recipient),
    status: payout.status,
    stage: payout.stage,
    available_actions: availableActions(payout, principal),
    description: payout.description,
    failure: payout.failure,
    last_error: lastErrorOf(payout),
    created_at: payout.createdAt.toISOString(),
    updated_at: payout.updatedAt.toISOString(),
    version: payout.version,
  };
}
