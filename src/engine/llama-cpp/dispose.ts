/** How long a dispose may take before we stop waiting for it (it hung in some runs without a bound). */
const DISPOSE_TIMEOUT_MS = 10_000;

/** Runs a dispose call, giving up after a timeout instead of hanging the caller; errors are swallowed. */
export async function disposeWithTimeout(dispose: () => Promise<void> | void, what: string, timeoutMs = DISPOSE_TIMEOUT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      process.emitWarning(`disposing the ${what} took over ${timeoutMs} ms; continuing without waiting`);
      resolve();
    }, timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([Promise.resolve().then(dispose).catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
