/**
 * A worker in a child process, so that a test can SIGKILL it mid-batch: `node --import tsx
 * test/support/worker-child.ts`, configured by the environment like the real role. Prints `ready` on stdout
 * once started.
 */
import { loadConfig } from '../../src/config.js';
import { startWorker } from '../../src/consumers/payout-consumer.js';
import { createContext } from '../../src/context.js';
import { handleShutdownSignals } from '../../src/shutdown.js';

const config = loadConfig();
const ctx = createContext(config);
const worker = await startWorker(ctx, { opsServer: false });
handleShutdownSignals(
  async () => {
    await worker.stop();
    await ctx.db.destroy();
  },
  { log: ctx.log },
);
process.stdout.write('ready\n');
