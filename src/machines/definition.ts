/**
 * The machine definition as plain JSON: the config object `createMachine` was given, which the Stately
 * visualizer (stately.ai/viz) loads as it is, with our definition version in XState's own `version` field.
 * Guards built with `and(...)` are functions in the config; they are written out as the names they combine
 * (`sentBy(worker) && answersCommand`), so the JSON keeps every rule. Served at `GET /api/machine` and drawn
 * into the README by `make diagram`.
 */
import { createPayoutMachine } from './payout.machine.js';
import { PAYOUT_MACHINE_VERSION } from './payout-lifecycle.js';

export interface MachineDefinition {
  id: string;
  version: string;
  initial: string;
  states: Record<string, unknown>;
  [key: string]: unknown;
}

/** A guard as text: a name, a name with its parameters, or an `and` of guards. */
export function guardLabel(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function' && Array.isArray((guard as { guards?: unknown }).guards)) {
    return (guard as unknown as { guards: unknown[] }).guards.map(guardLabel).join(' && ');
  }
  const named = guard as { type?: string; params?: { roles?: string[] } };
  if (named?.type && named.params?.roles) return `${named.type}(${named.params.roles.join(', ')})`;
  return named?.type ?? 'inline';
}

function withGuardLabels(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withGuardLabels);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        key === 'guard' ? guardLabel(item) : withGuardLabels(item),
      ]),
    );
  }
  return value;
}

export function machineDefinition(): MachineDefinition {
  // A JSON round trip drops what is left of functions and freezes nothing we later mutate.
  const config = JSON.parse(
    JSON.stringify(withGuardLabels(createPayoutMachine().config)),
  ) as MachineDefinition;
  return { ...config, version: String(PAYOUT_MACHINE_VERSION) };
}
