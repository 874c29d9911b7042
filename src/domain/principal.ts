/**
 * Who is asking. Every service call takes one; every query is scoped by its `clientId`.
 *
 * - `client`: an API client's key. May create, read, describe and cancel its own payouts.
 * - `operator`: a back-office key of the same client. Everything a client may do, plus resolving a payout
 *   stuck in `processing` with SUCCEED or FAIL and a reason.
 * - `worker`: the processing pipeline, acting for the payout's client. Sends START, SUCCEED and FAIL.
 */
import type { PayoutEventType } from '../machines/payout.machine.js';

export type Role = 'client' | 'operator' | 'worker';
export const API_KEY_ROLES = ['client', 'operator'] as const;

export interface Principal {
  clientId: string;
  role: Role;
  /** The API key's id, or the worker's name: recorded in the history as the actor. */
  actor: string;
}

/** Events each role may send, whatever the state. */
const ALLOWED_EVENTS: Readonly<Record<Role, readonly PayoutEventType[]>> = {
  client: ['CANCEL'],
  operator: ['CANCEL', 'SUCCEED', 'FAIL'],
  worker: ['START', 'SUCCEED', 'FAIL'],
};

export function roleMaySend(role: Role, event: PayoutEventType): boolean {
  return ALLOWED_EVENTS[role].includes(event);
}

/** Operators resolve payouts by hand, so they must say why. */
export function roleNeedsReason(role: Role, event: PayoutEventType): boolean {
  return role === 'operator' && (event === 'SUCCEED' || event === 'FAIL');
}

/**
 * Deleted payouts are hidden from API callers. The worker still sees them: a client's DELETE racing the
 * processing message must end as "already cancelled" (acknowledged), not as an unknown payout dead-lettered.
 */
export function roleSeesDeleted(role: Role): boolean {
  return role === 'worker';
}

export function workerPrincipal(clientId: string, actor = 'worker'): Principal {
  return { clientId, role: 'worker', actor };
}
