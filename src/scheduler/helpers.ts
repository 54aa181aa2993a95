import { EngineCrashedError, InsufficientMemoryError, ModelLoadError, RequestCancelledError, toAppError, type AppError } from "../domain/errors.js";
import type { ModelRecord } from "../domain/model.js";
import type { LoadSpec } from "../engine/engine.js";
import { formatDuration } from "./deadline.js";

/** Small helpers of the scheduler: shapes, load errors, waiting with a signal. */

/** What makes one loaded instance differ from another: weights, context, slots, speculation, engine. */
function shapeOf(spec: LoadSpec): string {
  return JSON.stringify([spec.modelPath, spec.contextSize, spec.slots, spec.speculative ?? null, spec.engine ?? null]);
}

/** Whether an instance loaded as `a` can serve a request that needs `b`. */
export function sameShape(a: LoadSpec, b: LoadSpec): boolean {
  return shapeOf(a) === shapeOf(b);
}

/** What a failed load is remembered by: the instance key and the shape. */
export function loadKeyOf(key: string, spec: LoadSpec): string {
  return `${key}/${shapeOf(spec)}`;
}

/** Engine failures become ModelLoadError naming the model; catalog errors with a client status stay as they are. */
export function asLoadError(record: ModelRecord, error: unknown): AppError {
  const appError = toAppError(error);
  if (appError.status !== 500 || appError instanceof InsufficientMemoryError) return appError;
  const reason = appError.message.replace(/^failed to load model:\s*/i, "");
  return new ModelLoadError(`failed to load model "${record.name}": ${reason}`, { cause: error });
}

/**
 * What a request gets during a failed load's cooldown: the same reason, and when the load will be tried again.
 * `what` failed: "load failed", or "last crash" for a model that kept crashing.
 */
export function cooldownError(original: AppError, sinceMs: number, leftMs: number, what = "load failed"): ModelLoadError {
  return new ModelLoadError(`${original.message} (${what} ${formatDuration(sinceMs)} ago; next attempt in ${formatDuration(Math.max(1000, leftMs))})`, {
    cause: original,
  });
}

/** A crash's error naming the model by the name requests use (the engine knows only its file). */
export function crashNamed(error: unknown, model: string): unknown {
  return error instanceof EngineCrashedError && error.model !== model ? new EngineCrashedError(model, error.detail, { cause: error }) : error;
}

export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new RequestCancelledError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new RequestCancelledError());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
