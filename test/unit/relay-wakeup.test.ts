/**
 * The relay's wake-up flag, shared by its lanes: a NOTIFY must reach every lane that waits, and one that arrives
 * while no lane waits must not be lost.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import { Wakeup } from '../../src/relay/outbox-relay.js';

describe('relay wake-up', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  /** Settles `waits` in order; the ones still pending after the microtasks run show as false. */
  async function settled(waits: Array<Promise<void>>): Promise<boolean[]> {
    const done = waits.map(() => false);
    waits.forEach((wait, index) => void wait.then(() => (done[index] = true)));
    await clock.tickAsync(0);
    return done;
  }

  it('wakes every lane waiting, at once', async () => {
    const wakeup = new Wakeup();
    const waits = [wakeup.wait(1_000), wakeup.wait(1_000), wakeup.wait(1_000)];
    wakeup.wake();
    expect(await settled(waits)).to.deep.equal([true, true, true]);
  });

  it('remembers a wake-up while no lane waits: the next wait returns at once, the one after waits', async () => {
    const wakeup = new Wakeup();
    wakeup.wake();
    expect(await settled([wakeup.wait(1_000)])).to.deep.equal([true]);
    expect(await settled([wakeup.wait(1_000)])).to.deep.equal([false]);
  });

  it('lets a lane that nobody wakes go on after its poll interval, without waking the others', async () => {
    const wakeup = new Wakeup();
    const short = wakeup.wait(100);
    const long = wakeup.wait(1_000);
    await clock.tickAsync(100);
    expect(await settled([short, long])).to.deep.equal([true, false]);
    wakeup.wake();
    expect(await settled([long])).to.deep.equal([true]);
  });
});
