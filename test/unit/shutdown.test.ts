/** Graceful shutdown on signals (src/shutdown.ts): a second signal exits at once, the finished stop exits 0. */
import { expect } from 'chai';
import { createLogger } from '../../src/logger.js';
import { handleShutdownSignals } from '../../src/shutdown.js';

describe('handleShutdownSignals', () => {
  it('exits at once on a second signal', async () => {
    const exits: number[] = [];
    let release: () => void = () => undefined;
    const dispose = handleShutdownSignals(() => new Promise<void>((resolve) => (release = resolve)), {
      log: createLogger({ level: 'silent' }),
      signals: ['SIGUSR2'],
      exit: (code) => exits.push(code),
    });
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      expect(exits).to.deep.equal([]);
      process.emit('SIGUSR2', 'SIGUSR2');
      expect(exits).to.deep.equal([130]);
      release();
      await new Promise((resolve) => setImmediate(resolve));
      expect(exits).to.deep.equal([130, 0]);
    } finally {
      dispose();
    }
  });
});
