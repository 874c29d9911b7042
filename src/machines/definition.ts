/**
 * The machine definition as plain JSON: the config object `createMachine` was given, which the Stately
 * visualizer (stately.ai/viz) loads as it is, with our definition version in XState's own `version` field.
 * Served at `GET /api/machine` and drawn into the README by `make diagram`.
 */
import { PAYOUT_MACHINE_VERSION, payoutMachine } from './payout.machine.js';

export interface MachineDefinition {
  id: string;
  version: string;
  initial: string;
  states: Record<string, { type?: 'final'; description?: string; on?: Record<string, unknown> }>;
  [key: string]: unknown;
}

export function machineDefinition(): MachineDefinition {
  // A JSON round trip drops functions (none today) and freezes nothing we later mutate.
  const config = JSON.parse(JSON.stringify(payoutMachine.config)) as MachineDefinition;
  return { ...config, version: String(PAYOUT_MACHINE_VERSION) };
}
