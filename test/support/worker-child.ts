/**
 * A worker in a child process, so that a test can SIGKILL it mid-batch: `node --import tsx
 * test/support/worker-child.ts`, configured by the environment like the real role. Prints `ready` on stdout
 * once started. With `TEST_PROVIDER_CALLS_TABLE` set, every provider call is recorded (test/support/
 * recording-provider.ts) as a row of that table, which the test created: the calls of every worker, killed or
 * not, in one place to count.
 */
import { loadConfig } from '../../src/config.js';
import { startWorker } from '../../src/consumers/payout-consumer.js';
import { createTestContext as createContext } from './context.js';
import { handleShutdownSignals } from '../../src/shutdown.js';
import { RecordingProvider } from './recording-provider.js';

const config = loadConfig();
const ctx = createContext(config);
const table = process.env.TEST_PROVIDER_CALLS_TABLE;
const provider = table
  ? new RecordingProvider(ctx.provider, {
      recorded: async (call) => {
        await ctx.db(table).insert({
          payout_id: call.payoutId,
          kind: call.kind,
          started_at: new Date(call.startedAt),
          ended_at: new Date(call.endedAt ?? Date.now()),
          answer: call.answer,
          pid: process.pid,
        });
      },
    })
  : undefined;
const worker = await startWorker(ctx, { opsServer: false, provider });
handleShutdownSignals(
  async () => {
    await worker.stop();
    await ctx.db.destroy();
  },
  { log: ctx.log },
);
process.stdout.write('ready\n');
