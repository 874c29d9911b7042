/** The machine definition served as JSON by GET /api/machine (src/machines/definition.ts). */
import { expect } from 'chai';
import { machineDefinition } from '../../src/machines/definition.js';
import { PAYOUT_STATUSES } from '../../src/machines/payout-lifecycle.js';

/** Every value of every `guard` key in a JSON tree, with where it was found. */
function guardsIn(value: unknown, path = ''): Array<{ path: string; guard: unknown }> {
  if (Array.isArray(value)) return value.flatMap((item, index) => guardsIn(item, `${path}[${index}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) =>
      key === 'guard' ? [{ path: `${path}.guard`, guard: item }] : guardsIn(item, `${path}.${key}`),
    );
  }
  return [];
}

describe('machine definition (GET /api/machine)', () => {
  const definition = machineDefinition();

  it('is JSON-serialisable without loss', () => {
    const text = JSON.stringify(definition);
    expect(JSON.parse(text)).to.deep.equal(definition);
    // No functions, undefined or symbols were dropped on the way: serialising twice gives the same text.
    expect(JSON.stringify(JSON.parse(text))).to.equal(text);
  });

  it('carries version "2" and the five statuses as its top-level states', () => {
    expect(definition.version).to.equal('2');
    expect(definition.id).to.equal('payout');
    expect(definition.initial).to.equal('created');
    expect(Object.keys(definition.states)).to.deep.equal(PAYOUT_STATUSES);
  });

  it('writes every guard as a string naming its rules', () => {
    const guards = guardsIn(definition.states);
    expect(guards.length).to.be.greaterThan(20);
    for (const { path, guard } of guards) {
      expect(guard, path).to.be.a('string');
      expect(guard, path).to.not.equal('inline');
      expect(guard, path).to.not.equal('');
    }
    const labels = new Set(guards.map(({ guard }) => guard as string));
    expect(labels).to.include('sentBy(worker) && answersCommand');
    expect(labels).to.include('sentBy(worker)');
    expect(labels).to.include('sentBy(client, operator)');
    expect(labels).to.include('sentBy(operator) && hasReason');
    expect(labels).to.include('sentBy(system) && redrivesLeft');
    expect(labels).to.include('sentBy(worker) && answersCommand && triesLeft');
    expect(labels).to.include('sentBy(worker) && answersCommand && failRequested');
  });

  it('keeps the guards where the machine has them', () => {
    interface StateJson {
      type?: string;
      on?: Record<string, { guard?: unknown }>;
      states?: Record<string, StateJson>;
    }
    const states = definition.states as Record<string, StateJson>;
    expect(states.created!.on!.CANCEL!.guard).to.equal('sentBy(client, operator)');
    expect(states.created!.states!.queued!.on!.START!.guard).to.equal('sentBy(worker)');
    expect(states.processing!.on!.PROVIDER_SUCCEEDED!.guard).to.equal('sentBy(worker) && answersCommand');
    expect(states.processing!.states!.needs_attention!.on!.RETRY!.guard).to.equal(
      'sentBy(operator) && hasReason',
    );
    expect(states.completed!.type).to.equal('final');
  });
});
