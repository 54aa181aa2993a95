import type { Idle } from "./messages-response.js";

const IDLE: Idle = { type: "idle" };

/**
 * The items of `source`, with an `idle` mark whenever it has been silent for a while: first after `firstMs` (a long
 * prompt is still being read), then after every `everyMs` without an item. A client that hears nothing for long
 * gives up; the marks let the stream say it is alive. The source is closed when this generator is (its cleanup
 * runs: generation stopped, lease released); an item still pending then is awaited, and the client's signal that
 * closed the stream has already stopped the generation it waits for.
 */
export async function* withHeartbeat<T>(source: AsyncIterable<T>, firstMs: number, everyMs: number): AsyncGenerator<T | Idle> {
  const iterator = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined;
  let waitMs = firstMs;
  let done = false;
  try {
    for (;;) {
      pending ??= iterator.next();
      const timer = idleAfter(waitMs);
      const next = await Promise.race([pending, timer.idle]).finally(timer.cancel);
      waitMs = everyMs;
      if ("type" in next) {
        yield IDLE;
        continue;
      }
      pending = undefined;
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } catch (error) {
    done = true;
    throw error;
  } finally {
    if (!done) await iterator.return?.();
  }
}

function idleAfter(ms: number): { idle: Promise<Idle>; cancel: () => void } {
  let handle: NodeJS.Timeout | undefined;
  const idle = new Promise<Idle>((resolve) => {
    handle = setTimeout(resolve, ms, IDLE);
  });
  return { idle, cancel: () => clearTimeout(handle) };
}
