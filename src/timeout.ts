/**
 * The one way this service bounds a wait: a promise raced against a timer that is always cleared, so a settled
 * race leaves nothing pending that would keep the process alive.
 */

/**
 * Settles like `work`, or rejects with `onTimeout()` when `work` has not settled within `ms` milliseconds. `work`
 * itself is not cancelled: whatever it does goes on, and its late result or error is ignored.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
