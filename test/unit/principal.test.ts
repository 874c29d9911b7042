/**
 * The role rules as the machine states them (`mayEverSend`, read off its `sentBy` guards) against SPEC's table,
 * copied by hand into the fixtures; and the machine definition served as JSON.
 */
import { expect } from 'chai';
import type { Role } from '../../src/domain/principal.js';
import { senderOf, systemPrincipal, workerPrincipal } from '../../src/domain/principal.js';
import { machineDefinition } from '../../src/machines/definition.js';
import { ROLES } from '../../src/machines/payout.machine.js';
import { PAYOUT_EVENT_TYPES, PAYOUT_STATUSES, mayEverSend } from '../../src/machines/payout-lifecycle.js';
import { SPEC_ROLE_EVENTS } from '../support/fixtures.js';

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

describe('roles', () => {
  it('the machine knows exactly the four roles of SPEC', () => {
    expect(Object.keys(SPEC_ROLE_EVENTS)).to.have.members(['client', 'operator', 'worker', 'system']);
    expect([...ROLES]).to.have.members(Object.keys(SPEC_ROLE_EVENTS));
    expect(ROLES).to.have.lengthOf(4);
  });

  it('mayEverSend agrees with the SPEC role table for every role and event type', () => {
    const roles = Object.keys(SPEC_ROLE_EVENTS) as Role[];
    let checked = 0;
    for (const role of roles) {
      for (const type of PAYOUT_EVENT_TYPES) {
        expect(mayEverSend(role, type), `${role} may send ${type}`).to.equal(
          SPEC_ROLE_EVENTS[role].includes(type),
        );
        checked += 1;
      }
    }
    expect(checked).to.equal(4 * 11);
  });

  it('every event type of SPEC is one the machine has, and someone may send each', () => {
    for (const [role, types] of Object.entries(SPEC_ROLE_EVENTS)) {
      for (const type of types) expect(PAYOUT_EVENT_TYPES, `${role} ${type}`).to.include(type);
    }
    for (const type of PAYOUT_EVENT_TYPES) {
      expect(
        ROLES.some((role) => mayEverSend(role, type)),
        type,
      ).to.equal(true);
    }
  });

  it('an unknown event type may be sent by nobody', () => {
    for (const role of ROLES) {
      expect(mayEverSend(role, 'DELETE' as never)).to.equal(false);
    }
  });

  it('principals become senders with their role and actor', () => {
    expect(senderOf(workerPrincipal('c1'))).to.deep.equal({ role: 'worker', id: 'worker' });
    expect(senderOf(systemPrincipal('c1'))).to.deep.equal({ role: 'system', id: 'sweeper' });
    expect(senderOf({ clientId: 'c1', role: 'operator', actor: 'key:7' })).to.deep.equal({
      role: 'operator',
      id: 'key:7',
    });
  });
});

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
