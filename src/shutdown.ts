/**
 * Graceful shutdown on SIGTERM/SIGINT: the first signal stops the role (stop taking work, finish or release what
 * is in flight, close connections) and exits; a second signal, or a stop that outlasts the grace period, exits at
 * once. Exiting mid-work is safe by design: unacknowledged messages are redelivered and leased outbox rows are
 * claimed again, so the hard exit costs time, never a payout.
 */
import type { Logger } from './logger.js';

export interface ShutdownOptions {
  log: Logger;
  /** Longest wait for `stop` before exiting anyway, in milliseconds. */
  graceMs?: number;
  signals?: readonly NodeJS.Signals[];
  /** Replaced in tests. */
  exit?: (code: number) => void;
}

/** Installs the handlers; returns a function that removes them. */
export function handleShutdownSignals(stop: () => Promise<void>, options: ShutdownOptions): () => void {
  const { log, graceMs = 30_000, signals = ['SIGTERM', 'SIGINT'] } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting at once');
      exit(130);
      return;
    }
    stopping = true;
    log.info({ signal, grace_ms: graceMs }, 'stopping: finishing in-flight work');
    const timer = setTimeout(() => {
      log.error({ grace_ms: graceMs }, 'graceful stop took too long: exiting');
      exit(1);
    }, graceMs);
    timer.unref();
    stop().then(
      () => {
        clearTimeout(timer);
        log.info('stopped');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        log.error({ err: error }, 'graceful stop failed');
        exit(1);
      },
    );
  };

  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
