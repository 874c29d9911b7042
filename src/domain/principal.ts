/**
 * Who is asking. Every service call takes one; every query is scoped by its `clientId`.
 *
 * - `client`: an API client's key. May create, read, describe and cancel its own payouts.
 * - `operator`: a back-office key of the same client. Everything a client may do, plus asking for a payout in
 *   `processing` to be failed or completed (with a reason), and retrying one that needs attention.
 * - `worker`: the processing pipeline, acting for the payout's client. Starts payouts and reports the provider's
 *   answers.
 * - `system`: the service's own housekeeping (the sweeper's re-drives).
 *
 * What each role may send, and when, is the machine's to say (its `sentBy` guards): see src/machines.
 */
import type { Role, Sender } from '../machines/payout.machine.js';

export type { Role };
export const API_KEY_ROLES = ['client', 'operator'] as const;

export interface Principal {
  clientId: string;
  role: Role;
  /** The API key's id, or the worker's name: recorded in the history as the actor. */
  actor: string;
  /**
   * Set on a principal remembered from an earlier request (`ApiKeys.remembered`) instead of looked up now: the
   * store checks, in the very statement that serves the request, that the key is still active for this client and
   * role, and refuses with `Unauthenticated` when it is not. A revoked or expired key stops at once either way.
   */
  proof?: KeyProof;
}

/** What the store checks a remembered principal's key by: its SHA-256 as stored, and the role it was issued for. */
export interface KeyProof {
  keyHash: string;
  role: Role;
}

/**
 * Deleted payouts are hidden from API callers. The worker and the sweeper still see them: a client's DELETE
 * racing the processing message must end as "already cancelled" (acknowledged), not as an unknown payout
 * dead-lettered.
 */
export function roleSeesDeleted(role: Role): boolean {
  return role === 'worker' || role === 'system';
}

/** The principal as the sender of a machine event. */
export function senderOf(principal: Principal): Sender {
  return { role: principal.role, id: principal.actor };
}

export function workerPrincipal(clientId: string, actor = 'worker'): Principal {
  return { clientId, role: 'worker', actor };
}

export function systemPrincipal(clientId: string, actor = 'sweeper'): Principal {
  return { clientId, role: 'system', actor };
}
