/** The payout as the domain sees it. */
import type { PayoutFailure, PayoutLastError } from '../machines/payout.machine.js';
import type {
  PayoutAction,
  PayoutStage,
  PayoutStatus,
  PersistedPayoutSnapshot,
} from '../machines/payout-lifecycle.js';
import { PAYOUT_POSITIONS, PayoutLifecycle } from '../machines/payout-lifecycle.js';
import { ROLES } from '../machines/payout.machine.js';
import type { Money } from './money.js';
import type { Recipient } from './recipient.js';
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

/**
 * A payout as a page of the list shows it: everything but its machine's snapshot, of which a list needs only the
 * last error. A page's rows are read without their snapshots: reading and parsing them cost a fifth to a third of
 * the page statement's CPU, the API's and PostgreSQL's together (bench/README.md).
 */
export interface PayoutSummary extends Omit<Payout, 'snapshot' | 'machineVersion'> {
  lastError: PayoutLastError | null;
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
export function availableActions(payout: Payout | PayoutSummary, principal: Principal): PayoutAction[] {
  return ACTIONS.actionsFor(payout.status, payout.stage, principal.role);
}

/**
 * `availableActions` for every position of the machine and every role, keyed `role:status.stage` (`role:status.` for a
 * final status): what a store that renders payouts itself looks them up in.
 */
export function availableActionsTable(): Record<string, PayoutAction[]> {
  const table: Record<string, PayoutAction[]> = {};
  for (const role of ROLES) {
    for (const { status, stage } of PAYOUT_POSITIONS) {
      table[`${role}:${status}.${stage ?? ''}`] = ACTIONS.actionsFor(status, stage, role);
    }
  }
  return table;
}

/** The last thing that went wrong on the way, from the machine's context; null when nothing did. */
export function lastErrorOf(payout: Payout | PayoutSummary): PayoutLastError | null {
  if (!('snapshot' in payout)) return payout.lastError;
  const context = payout.snapshot.context as { last_error?: PayoutLastError | null } | undefined;
  return context?.last_error ?? null;
}
