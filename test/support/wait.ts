/** Polling until a condition holds, with a deadline. */

/**
 * Resolves once `condition` holds, checking every `intervalMs`; throws after `timeoutMs` (default 30 s) with
 * `message` (a string, or a function computing it at the time of the failure).
 */
export async function waitFor(
  condition: () => Promise<boolean> | boolean,
  options: {
    timeoutMs?: number;
    intervalMs?: number;
    message?: string | (() => Promise<string> | string);
  } = {},
): Promise<void> {
  const { timeoutMs = 30_000, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      const message = typeof options.message === 'function' ? await options.message() : options.message;
      throw new Error(`timed out after ${timeoutMs} ms${message ? `: ${message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
