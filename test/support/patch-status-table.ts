/**
 * The expected answer to PATCH /api/payouts/{id} `{ status }` for every (role, current status, requested status),
 * written from SPEC and the machine issue (not read from the machine, so a change of either shows in the tests
 * that use it): a role that may never send the event behind the requested status → 403; a state that does not
 * accept it → 409; a cancel of a created payout → 200; an operator's `completed`/`failed` of a payout in flight →
 * 202, recorded for the worker to carry out against the provider.
 */
import type { API_KEY_ROLES } from '../../src/domain/principal.js';
import type { PayoutStatus } from '../../src/machines/payout-lifecycle.js';

export type ApiRole = (typeof API_KEY_ROLES)[number];

/** The roles an API key can have. */
export const API_ROLES: readonly ApiRole[] = ['client', 'operator'];

export function expectedPatchStatus(
  role: ApiRole,
  from: PayoutStatus,
  to: PayoutStatus,
): 200 | 202 | 403 | 409 {
  if (to === 'cancelled') return from === 'created' ? 200 : 409;
  if (to === 'completed' || to === 'failed') {
    if (role !== 'operator') return 403;
    return from === 'processing' ? 202 : 409;
  }
  return 403;
}
