/**
 * The `webhooks` role in a child process, so that a test can SIGKILL it mid-delivery: `node --import tsx
 * test/support/webhooks-child.ts`, configured by the environment like the real role. Prints `ready` on stdout once
 * started.
 */
import { loadConfig } from '../../src/config.js';
import { startWebhooks } from '../../src/consumers/webhook-consumer.js';
import { webhookDispatcher } from '../../src/roles/parts.js';
import { handleShutdownSignals } from '../../src/shutdown.js';
import { createTestContext as createContext } from './context.js';

const config = loadConfig();
const ctx = createContext(config);
const webhooks = await startWebhooks(
  { ...ctx, dispatcher: webhookDispatcher(config, ctx.webhookStore), backlog: ctx.webhookStore },
  { opsServer: false },
);
handleShutdownSignals(
  async () => {
    await webhooks.stop();
    await ctx.db.destroy();
  },
  { log: ctx.log },
);
process.stdout.write('ready\n');
