// Waiting in tests for something that happens asynchronously: poll a check with a bound instead of
// sleeping for a guessed time. Exported only from @ambient/core/testing.

/**
 * Retries `check` until it neither throws nor returns `false`, and resolves with its value; after
 * `timeoutMs` rethrows the check's last error (or says the condition stayed false).
 */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5_000, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      const value = await check();
      if (value !== false) return value;
      failure = new Error(`eventually: the condition was still false after ${timeoutMs} ms`);
    } catch (err) {
      failure = err;
    }
    if (Date.now() > deadline) throw failure;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
