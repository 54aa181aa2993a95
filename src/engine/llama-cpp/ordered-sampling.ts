import type { LlamaContext } from "node-llama-cpp";

/** The part of node-llama-cpp 3.21.1's native context object (`LlamaContext._ctx`) this module wraps. */
interface NativeContext {
  decodeBatch(...args: unknown[]): Promise<unknown>;
  sampleToken(...args: unknown[]): Promise<unknown>;
}

/**
 * Makes the first sampling after each decode of `context` run alone.
 *
 * Why: node-llama-cpp 3.21.1 samples every sequence of a batch at once, each on its own worker thread. When
 * llama.cpp split the batch so that its output rows came out of order (sequences not in ascending order, or a
 * prompt read beside a decode), it puts them back in order lazily, on the first read of the logits, without a
 * lock. Two sequences reading at once both apply the swaps, so rows end up swapped back and a sequence samples
 * from another's logits (seen: two parallel chats of a scripted model trading their last tokens; random-model
 * generations run 4 at a time diverged from the same prompts run alone in 10 of 400). After the first read the
 * rows are in order and reads are safe, so the others start as soon as it is done.
 *
 * Relies on node-llama-cpp internals, pinned with the package (exactly 3.21.1); throws at load if they moved.
 */
export function orderFirstSampleAfterDecode(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: NativeContext })._ctx;
  if (typeof native?.decodeBatch !== "function" || typeof native.sampleToken !== "function") {
    throw new Error("node-llama-cpp's context internals changed: cannot order sampling after a batched decode");
  }
  const decode = native.decodeBatch.bind(native);
  const sample = native.sampleToken.bind(native);
  let first: Promise<unknown> | undefined; // the first sampling since the last decode, while it runs
  let ordered = true; // whether the last decode's rows have been read (and so put in order) once

  // The native prototype's methods are read-only; own properties on the instance shadow them.
  define(native, "decodeBatch", (...args) => {
    ordered = false;
    first = undefined;
    return decode(...args);
  });
  define(native, "sampleToken", (...args) => {
    if (ordered) return sample(...args);
    if (first) {
      const after = (): Promise<unknown> => sample(...args);
      return first.then(after, after);
    }
    const run = sample(...args);
    first = run;
    const done = (): void => {
      if (first === run) [ordered, first] = [true, undefined];
    };
    run.then(done, done);
    return run;
  });
}

function define(target: NativeContext, name: keyof NativeContext, value: (...args: unknown[]) => Promise<unknown>): void {
  Object.defineProperty(target, name, { value, writable: true, configurable: true });
}
