/** The payout as the domain sees it, and its public representation. */
import type {
  PayoutEventType,
  PayoutFailure,
  PayoutStatus,
  PersistedPayoutSnapshot,
} from '../machines/payout.machine.js';
import { acceptedEvents, restorePayoutSnapshot } from '../machines/payout.machine.js';
import type { Money } from './money.js';
import type { MaskedRecipient, Recipient } from './recipient.js';
import { maskRecipient } from './recipient.js';
import type { Principal } from './principal.js';
import { roleMaySend } from './principal.js';

export interface Payout {
  id: string;
  clientId: string;
  amount: Money;
  recipient: Recipient;
  status: PayoutStatus;
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

/** Actions a caller may take next, as they appear in `available_actions`. */
export type PayoutAction = 'cancel' | 'start' | 'succeed' | 'fail';

/**
 * What this principal may do next with this payout: the machine's accepted events the role may send. The
 * machine has no guards, so what a state accepts depends on the state alone: it is asked once per (machine
 * version, status) and remembered, instead of rehydrating an actor for every payout in every response.
 */
export function availableActions(payout: Payout, principal: Principal): PayoutAction[] {
  const key = `${payout.machineVersion}:${payout.status}`;
  let accepted = ACCEPTED_BY_STATE.get(key);
  if (!accepted) {
    accepted = acceptedEvents(restorePayoutSnapshot(payout.snapshot, payout.machineVersion));
    ACCEPTED_BY_STATE.set(key, accepted);
  }
  return accepted
    .filter((event) => roleMaySend(principal.role, event))
    .map((event) => event.toLowerCase() as PayoutAction);
}

const ACCEPTED_BY_STATE = new Map<string, PayoutEventType[]>();

/** The API representation of a payout (the `Payout` schema of openapi.yaml). */
export interface PayoutResource {
  id: string;
  amount: string;
  currency: string;
  recipient: MaskedRecipient;
  status: PayoutStatus;
  available_actions: PayoutAction[];
  description: string | null;
  failure: PayoutFailure | null;
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
    available_actions: availableActions(payout, principal),
    description: payout.description,
    failure: payout.failure,
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
