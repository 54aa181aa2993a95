import type { ModelRecord } from "../domain/model.js";
import { ModelLoadError, QueueFullError, RequestCancelledError, toAppError } from "../domain/errors.js";
import type { Engine, LoadedModel } from "../engine/engine.js";
import type { BlobStore } from "../store/blob-store.js";
import { Semaphore } from "./semaphore.js";

export interface SchedulerOptions {
  /** Context window when a request names none (capped at the model's training context). */
  defaultContextSize: number;
  /** Idle time before a model is unloaded; -1 = never, 0 = as soon as it is idle. */
  defaultKeepAliveMs: number;
  slotsPerModel: number;
  threads: number;
  /** Requests that may wait for a slot, across all models, before new ones are refused. */
  maxQueue: number;
}

export interface AcquireOptions {
  contextSize?: number;
  /** Overrides the default keep-alive from the moment this request finishes. */
  keepAliveMs?: number;
}

/** A slot on a loaded model, held for one request. Release it exactly once (or `using` it). */
export interface Lease extends Disposable {
  readonly model: LoadedModel;
  /** Time this request spent waiting for the model to load, in nanoseconds (0 when it was loaded). */
  readonly loadDurationNs: number;
  release(): void;
}

/** A loaded model, as /api/ps shows it. */
export interface RunningModel {
  record: ModelRecord;
  contextLength: number;
  ram: number;
  vram: number;
  /** When it will be unloaded; null = never (or busy and not yet counting down). */
  expiresAt: Date | null;
  active: number;
  queued: number;
}

interface Instance {
  record: ModelRecord;
  contextSize: number;
  loading: Promise<LoadedModel>;
  model?: LoadedModel;
  slots: Semaphore;
  keepAliveMs: number;
  expiresAt: Date | null;
  timer?: NodeJS.Timeout;
  unloading?: Promise<void>;
}

/**
 * Owns which models are loaded. Each loaded model is an Instance keyed by model digest; a request acquires a
 * Lease on one of its slots and the lease's release restarts the keep-alive countdown. Loads happen one at a
 * time; requests for loaded models keep flowing meanwhile. A request that needs another context size waits for
 * the old instance to go idle, which is then replaced.
 */
export class Scheduler {
  private readonly instances = new Map<string, Instance>();
  private loadChain: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(
    private readonly engine: Engine,
    private readonly blobs: BlobStore,
    private readonly options: SchedulerOptions,
  ) {}

  async acquire(record: ModelRecord, options: AcquireOptions, signal: AbortSignal): Promise<Lease> {
    const contextSize = this.contextSizeFor(record, options.contextSize);
    for (;;) {
      if (signal.aborted) throw new RequestCancelledError();
      let instance = this.instances.get(record.digest);
      if (instance && instance.contextSize !== contextSize) {
        await this.retire(instance, signal);
        continue;
      }
      if (!instance) instance = this.startLoad(record, contextSize);
      const wasLoaded = instance.model !== undefined;
      const loadStart = process.hrtime.bigint();
      const model = await raceAbort(instance.loading, signal);
      const loadDurationNs = wasLoaded ? 0 : Number(process.hrtime.bigint() - loadStart);
      if (this.instances.get(record.digest) !== instance) continue; // unloaded while we waited
      if (instance.slots.available === 0 && this.waiting >= this.options.maxQueue) throw new QueueFullError(1);
      this.waiting++;
      try {
        await instance.slots.acquire(signal);
      } finally {
        this.waiting--;
      }
      this.clearTimer(instance);
      return this.lease(instance, model, options.keepAliveMs, loadDurationNs);
    }
  }

  /** Unloads the model now if it is idle, or as soon as its current requests finish. */
  async unload(record: ModelRecord): Promise<void> {
    const instance = this.instances.get(record.digest);
    if (!instance) return;
    instance.keepAliveMs = 0;
    if (instance.slots.inUse === 0) await this.drop(instance);
  }

  running(): RunningModel[] {
    return [...this.instances.values()]
      .filter((i) => i.model)
      .map((i) => ({
        record: i.record,
        contextLength: i.contextSize,
        ram: i.model?.memory.ram ?? 0,
        vram: i.model?.memory.vram ?? 0,
        expiresAt: i.expiresAt,
        active: i.slots.inUse,
        queued: i.slots.waiting,
      }));
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.instances.values()].map((i) => this.drop(i)));
    await this.engine.close();
  }

  private contextSizeFor(record: ModelRecord, requested: number | undefined): number {
    const trained = record.metadata.contextLength;
    const wanted = requested ?? this.options.defaultContextSize;
    return trained > 0 ? Math.min(wanted, trained) : wanted;
  }

  private startLoad(record: ModelRecord, contextSize: number): Instance {
    const spec = { modelPath: this.blobs.pathOf(record.modelDigest), contextSize, slots: this.options.slotsPerModel, threads: this.options.threads };
    const loading = this.loadChain.then(() => this.engine.load(spec));
    this.loadChain = loading.catch(() => undefined);
    const instance: Instance = {
      record,
      contextSize,
      loading,
      slots: new Semaphore(this.options.slotsPerModel),
      keepAliveMs: this.options.defaultKeepAliveMs,
      expiresAt: null,
    };
    this.instances.set(record.digest, instance);
    loading.then(
      (model) => {
        instance.model = model;
      },
      () => {
        if (this.instances.get(record.digest) === instance) this.instances.delete(record.digest);
      },
    );
    instance.loading = loading.catch((error: unknown) => {
      const appError = toAppError(error);
      throw appError.status === 500 && !(appError instanceof ModelLoadError)
        ? new ModelLoadError(`failed to load model "${record.name}": ${appError.message}`, { cause: error })
        : appError;
    });
    return instance;
  }

  private lease(instance: Instance, model: LoadedModel, keepAliveMs: number | undefined, loadDurationNs: number): Lease {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (keepAliveMs !== undefined) instance.keepAliveMs = keepAliveMs;
      instance.slots.release();
      if (instance.slots.inUse === 0) this.startTimer(instance);
    };
    return { model, loadDurationNs, release, [Symbol.dispose]: release };
  }

  private startTimer(instance: Instance): void {
    this.clearTimer(instance);
    if (instance.keepAliveMs < 0) return;
    if (instance.keepAliveMs === 0) {
      void this.drop(instance);
      return;
    }
    instance.expiresAt = new Date(Date.now() + instance.keepAliveMs);
    instance.timer = setTimeout(() => void this.drop(instance), instance.keepAliveMs);
    instance.timer.unref();
  }

  private clearTimer(instance: Instance): void {
    if (instance.timer) clearTimeout(instance.timer);
    instance.timer = undefined;
    instance.expiresAt = null;
  }

  /** Waits until the instance is idle, then unloads it. */
  private async retire(instance: Instance, signal: AbortSignal): Promise<void> {
    await raceAbort(instance.loading.catch(() => undefined), signal);
    await instance.slots.drain(signal);
    await this.drop(instance);
  }

  private drop(instance: Instance): Promise<void> {
    if (instance.unloading) return instance.unloading;
    this.clearTimer(instance);
    if (this.instances.get(instance.record.digest) === instance) this.instances.delete(instance.record.digest);
    instance.unloading = instance.loading.then(
      (model) => model.unload(),
      () => undefined,
    );
    return instance.unloading;
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new RequestCancelledError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new RequestCancelledError());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
