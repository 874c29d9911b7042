/** The payout as the domain sees it, and its public representation. */
import type { PayoutFailure, PayoutLastError } from '../machines/payout.machine.js';
import type {
  PayoutAction,
  PayoutStage,
  PayoutStatus,
  PersistedPayoutSnapshot,
} from '../machines/payout-lifecycle.js';
import { PayoutLifecycle } from '../machines/payout-lifecycle.js';
import type { Money } from './money.js';
import type { MaskedRecipient, Recipient } from './recipient.js';
import { maskRecipient } from './recipient.js';
import type { Principal } from './principal.js';

export interface Payout {
  id: string;
  clientId: string;
  amount: Money;
  recipient: Recipient;
  status: PayoutStatus;
  /** Which effect is in flight, or that a person is needed; null once final. */
  stage: PayoutStage | null;
  snapshot: PersistedPayoutSnapshot;
  machineVersion: number;
  version: number;
  description: string | null;
  failure: PayoutFailure | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface PayoutHistoryEntry {
  id: string;
  from: PayoutStatus | null;
  to: PayoutStatus;
  event: string;
  actor: string;
  actorRole: string;
  reason: string | null;
  requestId: string | null;
  at: Date;
}

export type { PayoutAction };

/** The actions are the same for every policy: one lifecycle answers them for all. */
const ACTIONS = new PayoutLifecycle();

/**
 * What this principal may do next with this payout: the API-facing events the machine would accept from the
 * principal's role in the payout's state (see `PayoutLifecycle.actionsFor`).
 */
export function availableActions(payout: Payout, principal: Principal): PayoutAction[] {
  return ACTIONS.actionsFor(payout.status, payout.stage, principal.role);
}

/** The last thing that went wrong on the way, from the machine's context; null when nothing did. */
export function lastErrorOf(payout: Payout): PayoutLastError | null {
  const context = payout.snapshot.context as { last_error?: PayoutLastError | null } | undefined;
  return context?.last_error ?? null;
}

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

export function toPayoutResource(payout: Payout, principal: Principal): PayoutResource {
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

export interface PayoutEventResource {
  id: string;
  from: PayoutStatus | null;
  to: PayoutStatus;
  event: string;
  actor: string;
  actor_role: string;
  reason: string | null;
  request_id: string | null;
  at: string;
}

export function toPayoutEventResource(entry: PayoutHistoryEntry): PayoutEventResource {
  return {
    id: entry.id,
    from: entry.from,
    to: entry.to,
    event: entry.event,
    actor: entry.actor,
    actor_role: entry.actorRole,
    reason: entry.reason,
    request_id: entry.requestId,
    at: entry.at.toISOString(),
  };
}
