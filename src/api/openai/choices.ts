import type { RunEvent } from "../../inference/run-model.js";

/** An event of one of a request's choices (`n` > 1, or several prompts). */
export interface ChoiceEvent {
  index: number;
  event: RunEvent;
}

type Settled = { index: number; result: IteratorResult<RunEvent> } | { index: number; error: unknown };

/**
 * Runs `count` generations at once and yields their events as they come, each tagged with its choice index. Every
 * generation is started at once (each leases its own slot, so with enough slots they decode in one batch; with
 * fewer they queue). `start` gets a signal that fires when the client goes away or when the merged stream ends
 * early: one generation failing, or the consumer leaving, stops the others and waits for their cleanup (leases
 * released).
 */
export async function* runChoices(
  count: number,
  clientSignal: AbortSignal,
  start: (index: number, signal: AbortSignal) => AsyncIterable<RunEvent>,
): AsyncGenerator<ChoiceEvent> {
  const stop = new AbortController();
  const signal = AbortSignal.any([clientSignal, stop.signal]);
  const iterators = Array.from({ length: count }, (_, index) => start(index, signal)[Symbol.asyncIterator]());
  const live = new Set(iterators.keys());
  const pending = new Map<number, Promise<Settled>>();
  const pull = (index: number): void => {
    const iterator = iterators[index];
    if (!iterator) return;
    pending.set(
      index,
      iterator.next().then(
        (result): Settled => ({ index, result }),
        (error: unknown): Settled => ({ index, error }),
      ),
    );
  };
  for (const index of live) pull(index);
  try {
    while (pending.size > 0) {
      const settled = await Promise.race(pending.values());
      pending.delete(settled.index);
      if ("error" in settled) {
        live.delete(settled.index);
        throw settled.error;
      }
      if (settled.result.done) {
        live.delete(settled.index);
        continue;
      }
      yield { index: settled.index, event: settled.result.value };
      pull(settled.index);
    }
  } finally {
    if (live.size > 0) {
      stop.abort();
      // A generation still waiting for its next event closes once that event (or its cancellation) arrives.
      await Promise.all([...live].map((index) => iterators[index]?.return?.(undefined).catch(() => undefined)));
    }
  }
}
