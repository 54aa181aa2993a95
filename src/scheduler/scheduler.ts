import { engineFor, speculativeFor } from "./speculative.js";
import os from "node:os";
import { formatBytes } from "../domain/byte-size.js";
import { EngineCrashedError, InsufficientMemoryError, ModelLoadError, QueueFullError, RequestCancelledError } from "../domain/errors.js";
import type { ModelRecord } from "../domain/model.js";
import type { EngineCrash, Engine, LoadedModel, LoadSpec } from "../engine/engine.js";
import { LoadFailures } from "./cooldown.js";
import { CRASH_LIMIT, CrashHistory } from "./crashes.js";
import { formatDuration, RequestDeadline } from "./deadline.js";
import { planAdmission, type Resident } from "./eviction.js";
import { asLoadError, cooldownError, crashNamed, loadKeyOf, raceAbort, sameShape } from "./helpers.js";
import { LeasedModel, type Lease } from "./lease.js";
import { budgetOf, describe, larger, NO_MEMORY, subtract, total, type Memory } from "./memory.js";
import { chooseSlots, fixedSlots, modelParallel, type SlotChoice } from "./slots.js";
import { Semaphore } from "./semaphore.js";
import { DEFAULT_UPSTREAM_SLOTS, upstreamSlotsReason, upstreamSpec } from "./upstream-spec.js";
import type { AcquireOptions, Instance, ModelRequests, RunningModel, SchedulerOptions, SchedulerStatus } from "./types.js";

export type { Lease, ModelHandle } from "./lease.js";
export type { AcquireOptions, ModelRequests, RunningModel, SchedulerEvents, SchedulerOptions, SchedulerStatus } from "./types.js";

/**
 * Owns which models are loaded, and every request's path onto one. All state changes happen in this class's
 * synchronous sections; the decisions are pure helpers (eviction.ts, memory.ts, cooldown.ts).
 *
 * - A request acquires a Lease on one of a model's slots (sequences served together by the engine's continuous
 *   batching); the lease's release restarts the keep-alive countdown.
 * - Loads happen one at a time. Before one, the model is admitted against the memory budget: idle models are
 *   unloaded least recently used first until it fits; models in use are never unloaded, so it waits for them
 *   instead; a model that could never fit fails at once with what it needs and what the budget is.
 * - Requests that cannot be served at once wait (FIFO per model) up to `maxQueue` across the server, then get 503.
 * - A failed load is remembered for a cooldown during which requests fail fast with its reason.
 * - A model whose engine process crashes is dropped at once (its requests end with the crash's error, those waiting
 *   for a slot go on to a new load); one that crashes again and again is treated as a failed load (the cooldown).
 * - Instances are keyed by the weights' digest: aliases share one; a re-created model with new weights gets a
 *   new one while the old one finishes its requests and is unloaded when idle (hot swap).
 */
export class Scheduler {
  private readonly instances = new Map<string, Instance>();
  private readonly unloadingInstances = new Set<Instance>();
  private readonly failures: LoadFailures;
  private readonly crashes: CrashHistory;
  private readonly now: () => number;
  private loadChain: Promise<unknown> = Promise.resolve();
  private loadingNow?: Instance;
  private waiting = 0;
  private uses = 0;
  private changeWaiters: Array<() => void> = [];
  private budgetCache?: Promise<Memory>;
  private knownBudget?: Memory;
  /** Moving average of how long a lease is held, for Retry-After. */
  private serviceMs = 1000;

  constructor(
    private readonly engine: Engine,
    /** Where the weights with this digest are on disk. */
    private readonly modelPath: (modelDigest: string) => string,
    private readonly options: SchedulerOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.failures = new LoadFailures(options.loadCooldownMs, this.now);
    this.crashes = new CrashHistory(options.crashLimit ?? CRASH_LIMIT, this.now);
  }

  /**
   * Waits for a slot on `record`'s model (loading it first when needed) and leases it. Rejects with
   * QueueFullError when too many requests wait, RequestTimeoutError past the request timeout,
   * RequestCancelledError when `signal` aborts, ModelLoadError (also during a failed load's cooldown) or
   * InsufficientMemoryError.
   */
  async acquire(record: ModelRecord, options: AcquireOptions, signal: AbortSignal): Promise<Lease> {
    const deadline = new RequestDeadline(signal, options.timeoutMs ?? this.options.requestTimeoutMs);
    try {
      const { instance, model, loadDurationNs } = await this.reserve(record, options.contextSize, deadline);
      if (options.pin) instance.pinned = true;
      return this.lease(instance, model, options.keepAliveMs, loadDurationNs, deadline);
    } catch (error) {
      deadline[Symbol.dispose]();
      throw deadline.explain(error);
    }
  }

  /** Unloads the model now if it is idle, or as soon as its current requests finish (new ones load it afresh). */
  async unload(record: ModelRecord): Promise<void> {
    const instance = this.instances.get(record.modelDigest);
    if (!instance) return;
    this.retire(instance);
    await instance.unloading;
  }

  running(): RunningModel[] {
    return [...this.instances.values()].flatMap((i) =>
      i.model
        ? [
            {
              record: i.record,
              contextLength: i.spec.contextSize,
              slots: i.spec.slots,
              slotsReason: i.slotsReason,
              engine: i.spec.engine ?? this.engine.name,
              ram: i.booked.ram,
              vram: i.booked.vram,
              expiresAt: i.expiresAt,
              active: i.slots.inUse,
              queued: i.slots.waiting,
              stats: i.model.stats(),
            },
          ]
        : [],
    );
  }

  /** Brings every loaded model's engine counters up to date (before a scrape; bounded by the engines, never fails). */
  async refreshStats(): Promise<void> {
    await Promise.all([...this.instances.values()].map((i) => i.model?.refreshStats?.()));
  }

  /** Requests on every model loaded or loading: holding a slot, or waiting for one or for the load (a scrape's read). */
  requests(): ModelRequests[] {
    return [...this.instances.values()].map((i) => ({ model: i.record.name, running: i.slots.inUse, waiting: i.slots.waiting + i.demand }));
  }

  status(): SchedulerStatus {
    const loading = this.loadingNow;
    return {
      loading: loading ? { model: loading.record.name, ...(loading.blocked !== undefined && { waiting: loading.blocked }) } : null,
      waiting: this.waiting,
      maxQueue: this.options.maxQueue,
      memory: this.knownBudget ? { budget: this.knownBudget, booked: total(this.residents().map((r) => r.memory)) } : null,
      failedLoads: this.failures.list().map((f) => ({
        model: f.model,
        error: f.error.message,
        failedAt: new Date(f.failedAtMs),
        retryAt: new Date(f.retryAtMs),
      })),
    };
  }

  /**
   * What the GGUF at `modelPath` would need loaded as a request without options loads it (the default context,
   * capped at `trainedContextLength`, the default slots and engine), beside the memory budget: the same estimate
   * admission uses. A pull sizes the files it could download with it.
   */
  async footprint(modelPath: string, trainedContextLength: number): Promise<{ need: Memory; budget: Memory }> {
    const wanted = this.options.defaultContextSize;
    const contextSize = trainedContextLength > 0 ? Math.min(wanted, trainedContextLength) : wanted;
    // Automatic slots fall back to one when memory is short: a model that fits with one fits.
    const spec: LoadSpec = { modelPath, contextSize, slots: this.options.slotsPerModel || 1, threads: this.options.threads };
    return { need: await this.engine.estimateMemory(spec), budget: await this.budget() };
  }

  async close(): Promise<void> {
    const all = [...this.instances.values()];
    for (const instance of all) instance.loadAbort.abort();
    await Promise.allSettled(all.map((i) => this.drop(i)));
    await Promise.allSettled([...this.unloadingInstances].map((i) => i.unloading));
    await this.engine.close();
  }

  // ------------------------------------------------------------------ the request path

  /** The load spec a request needs: context (capped at the model's), the model's slot count (0 = automatic), threads. */
  private specFor(record: ModelRecord, requestedContext: number | undefined): LoadSpec {
    if (record.upstream) return upstreamSpec(record, record.upstream, this.options.upstreamSlots ?? DEFAULT_UPSTREAM_SLOTS);
    const trained = record.metadata.contextLength;
    const wanted = requestedContext ?? this.options.defaultContextSize;
    const contextSize = trained > 0 ? Math.min(wanted, trained) : wanted;
    const slots = modelParallel(record) ?? this.options.slotsPerModel; // 0: chosen at admission
    const speculative = speculativeFor(record, (name) => this.options.latest?.(name), this.modelPath);
    const engine = engineFor(record);
    return { modelPath: this.modelPath(record.modelDigest), contextSize, slots, threads: this.options.threads, ...(speculative && { speculative }), ...(engine && { engine }) };
  }

  /** Waits until `record`'s model is loaded in the shape `spec` and one of its slots is held by this request. */
  private async reserve(
    requested: ModelRecord,
    contextSize: number | undefined,
    deadline: RequestDeadline,
  ): Promise<{ instance: Instance; model: LoadedModel; loadDurationNs: number }> {
    let record = requested;
    let spec = this.specFor(record, contextSize);
    let key = record.modelDigest;
    let loadKey = loadKeyOf(key, spec);
    const { signal } = deadline;
    let queued = false;
    const enqueue = (): void => {
      if (queued) return;
      if (this.waiting >= this.options.maxQueue) throw new QueueFullError(this.retryAfterSeconds());
      this.waiting++;
      queued = true;
    };
    let loadDurationNs = 0;
    let weightsHere = this.options.ensureWeights === undefined;
    try {
      for (;;) {
        if (signal.aborted) throw new RequestCancelledError();
        const failure = this.failures.active(loadKey);
        if (failure) throw cooldownError(failure.error, this.now() - failure.failedAtMs, failure.retryAtMs - this.now(), failure.what);

        let instance = this.instances.get(key);
        const latest = instance ? undefined : this.replacement(record);
        if (latest) {
          // The name was re-created with other weights after this request looked it up, and the old ones are gone.
          record = latest;
          weightsHere = this.options.ensureWeights === undefined;
          spec = this.specFor(record, contextSize);
          key = record.modelDigest;
          loadKey = loadKeyOf(key, spec);
          continue;
        }
        if (instance && (instance.retiring || !sameShape(instance.requested, spec))) {
          enqueue();
          deadline.phase = "waiting for the model to load";
          this.retire(instance);
          await this.whileLive(instance, signal);
          continue;
        }
        if (!instance && !weightsHere) {
          deadline.phase = "waiting for the model's weights to be fetched";
          await this.options.ensureWeights?.(record, signal);
          weightsHere = true;
          continue; // much may have changed meanwhile
        }
        let starting = false;
        if (!instance) {
          instance = this.startLoad(record, spec, loadKey);
          starting = true;
        }
        if (!instance.model) {
          if (!starting) enqueue(); // the request that starts a load does not wait behind anyone
          deadline.phase = "waiting for the model to load";
          const loadStart = process.hrtime.bigint();
          instance.demand++;
          try {
            await raceAbort(instance.ready, signal);
          } catch (error) {
            instance.demand--;
            this.leave(instance);
            throw error;
          }
          instance.demand--;
          loadDurationNs = Number(process.hrtime.bigint() - loadStart);
          if (this.instances.get(key) !== instance) continue; // unloaded or replaced while we waited
        }
        const model = instance.model;
        if (!model) continue;
        if (instance.slots.available === 0 || instance.slots.waiting > 0) enqueue();
        deadline.phase = "waiting for a slot";
        try {
          await instance.slots.acquire(signal);
        } catch (error) {
          this.leave(instance);
          if (instance.crashed && !signal.aborted) continue; // its process died while we waited: load it again
          throw error;
        }
        if (this.instances.get(key) !== instance) {
          instance.slots.release();
          continue;
        }
        this.clearTimer(instance);
        instance.record = record;
        return { instance, model, loadDurationNs };
      }
    } catch (error) {
      const blocked = this.instances.get(key)?.blocked;
      if (deadline.timedOut && blocked !== undefined) deadline.note = blocked;
      throw error;
    } finally {
      if (queued) this.waiting--;
    }
  }

  private lease(instance: Instance, model: LoadedModel, keepAliveMs: number | undefined, loadDurationNs: number, deadline: RequestDeadline): Lease {
    let released = false;
    const startedMs = this.now();
    const release = (): void => {
      if (released) return;
      released = true;
      deadline[Symbol.dispose]();
      this.serviceMs = 0.8 * this.serviceMs + 0.2 * (this.now() - startedMs);
      // As in Ollama, each request sets the keep-alive: its own, else the server's default (for ever when pinned).
      instance.keepAliveMs = keepAliveMs ?? (instance.pinned ? -1 : this.options.defaultKeepAliveMs);
      instance.slots.release();
      this.leave(instance);
    };
    return { model: new LeasedModel(model, deadline, instance.record.name), loadDurationNs, release, [Symbol.dispose]: release };
  }

  /** A request stopped using or waiting for `instance`: once nothing does, count down or unload it. */
  private leave(instance: Instance): void {
    if (this.instances.get(instance.key) !== instance) return;
    if (!instance.model) {
      if (instance.demand === 0) this.abandon(instance);
      return;
    }
    if (!this.isIdle(instance)) return;
    instance.lastUsed = ++this.uses;
    this.changed();
    if (instance.retiring || this.isStale(instance)) void this.drop(instance);
    else this.startTimer(instance);
  }

  /** The record now under `record`'s name when it names other weights and no name refers to `record`'s any more. */
  private replacement(record: ModelRecord): ModelRecord | undefined {
    if (!this.options.latest || !this.isStale(record.modelDigest)) return undefined;
    const latest = this.options.latest(record.name);
    return latest && latest.modelDigest !== record.modelDigest ? latest : undefined;
  }

  private retryAfterSeconds(): number {
    return Math.min(60, Math.max(1, Math.ceil(this.serviceMs / 1000)));
  }

  // ------------------------------------------------------------------ loading and admission

  private startLoad(record: ModelRecord, spec: LoadSpec, loadKey: string): Instance {
    const onLoaded = (model: LoadedModel): LoadedModel => {
      if (this.instances.get(instance.key) !== instance) {
        void model.unload(); // every waiter left while it loaded
        throw new RequestCancelledError();
      }
      instance.model = model;
      instance.booked = larger(instance.booked, model.memory);
      instance.lastUsed = ++this.uses;
      this.failures.clear(loadKey);
      model.onCrash?.((crash) => this.crashed(instance, crash));
      return model;
    };
    const onFailed = (error: unknown): never => {
      const appError = asLoadError(record, error);
      if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
      if (!(appError instanceof RequestCancelledError || appError instanceof InsufficientMemoryError)) {
        this.failures.record(loadKey, record.name, appError);
        this.options.events?.modelLoadFailed(record.name);
      }
      this.changed();
      throw appError;
    };
    const instance: Instance = {
      key: record.modelDigest,
      loadKey,
      record,
      requested: spec,
      spec,
      slotsReason: "",
      slots: new Semaphore(spec.slots),
      // A model served by remote endpoints takes no memory here and waits for no local load.
      ready: (spec.upstream ? Promise.resolve().then(() => this.loadRemote(instance)) : this.loadChain.then(() => this.admitAndLoad(instance))).then(onLoaded, onFailed),
      loadAbort: new AbortController(),
      booked: NO_MEMORY,
      demand: 0,
      keepAliveMs: this.options.defaultKeepAliveMs,
      pinned: false,
      expiresAt: null,
      lastUsed: ++this.uses,
      retiring: false,
    };
    if (!spec.upstream) this.loadChain = instance.ready.catch(() => undefined); // one load at a time; waiters may all have left
    this.instances.set(instance.key, instance);
    this.dropStale();
    return instance;
  }

  /** Runs in the load chain: waits until the model fits (unloading idle ones), then loads it. */
  private async admitAndLoad(instance: Instance): Promise<LoadedModel> {
    const signal = instance.loadAbort.signal;
    if (signal.aborted) throw new RequestCancelledError();
    this.loadingNow = instance;
    try {
      const budget = await this.budget();
      await this.chooseSlots(instance, budget);
      const need = await this.engine.estimateMemory(instance.spec);
      instance.booked = need;
      for (;;) {
        if (signal.aborted) throw new RequestCancelledError();
        const others = this.residents().filter((r) => r.key !== instance.key);
        const plan = planAdmission(need, others, budget, this.options.maxLoadedModels);
        if (plan.kind === "never") throw this.neverFits(instance, need, budget, others);
        if (plan.kind === "admit") {
          const victims = plan.victims.map((key) => this.instances.get(key)).filter((v): v is Instance => v !== undefined);
          await Promise.all(victims.map((victim) => this.drop(victim)));
          break;
        }
        instance.blocked = plan.reason;
        await this.nextChange(signal);
      }
      instance.blocked = undefined;
      const started = performance.now();
      const model = await this.engine.load(instance.spec, signal);
      this.options.events?.modelLoaded(instance.record.name, (performance.now() - started) / 1000);
      return model;
    } finally {
      instance.blocked = undefined;
      if (this.loadingNow === instance) this.loadingNow = undefined;
    }
  }

  /**
   * Loads a model served by remote endpoints (its engine checks them): nothing to admit, since it holds no memory here,
   * and so no local model is ever unloaded for it.
   */
  private async loadRemote(instance: Instance): Promise<LoadedModel> {
    if (instance.loadAbort.signal.aborted) throw new RequestCancelledError();
    if (instance.spec.upstream) instance.slotsReason = upstreamSlotsReason(instance.spec.upstream.config);
    const started = performance.now();
    const model = await this.engine.load(instance.spec, instance.loadAbort.signal);
    this.options.events?.modelLoaded(instance.record.name, (performance.now() - started) / 1000);
    return model;
  }

  /**
   * Settles `instance`'s slot count: the one set by hand, or (automatic) the most that fit in the memory the other
   * models leave free now.
   */
  private async chooseSlots(instance: Instance, budget: Memory): Promise<void> {
    const { requested } = instance;
    let choice: SlotChoice;
    if (requested.slots > 0) {
      choice = fixedSlots(requested.slots, modelParallel(instance.record) !== undefined ? "model" : "setting");
    } else {
      const others = total(this.residents().filter((r) => r.key !== instance.key).map((r) => r.memory));
      choice = await chooseSlots((slots) => this.engine.estimateMemory({ ...requested, slots }), subtract(budget, others), requested.contextSize);
    }
    instance.spec = { ...requested, slots: choice.slots };
    instance.slotsReason = choice.reason;
    instance.slots.resize(choice.slots);
  }

  /**
   * Every loaded, loading or unloading instance, as admission sees it; upstream models are not among them (they hold
   * no memory and do not count against AI_SERVER_MAX_LOADED_MODELS).
   */
  private residents(): Resident[] {
    const live = [...this.instances.values()].filter((i) => !i.spec.upstream).map((i) => ({
      key: i.key,
      memory: i.booked,
      idle: this.isIdle(i),
      lastUsed: i.lastUsed,
      stale: this.isStale(i),
    }));
    const leaving = [...this.unloadingInstances].filter((i) => !i.spec.upstream).map((i) => ({ key: `unloading:${i.key}`, memory: i.booked, idle: false, lastUsed: i.lastUsed, stale: true }));
    return [...live, ...leaving];
  }

  private neverFits(instance: Instance, need: Memory, budget: Memory, others: Resident[]): InsufficientMemoryError {
    const { contextSize, slots } = instance.spec;
    const free = { ram: budget.ram - total(others.map((o) => o.memory)).ram, vram: budget.vram - total(others.map((o) => o.memory)).vram };
    const headroom = this.options.memory.headroom;
    return new InsufficientMemoryError(
      `model "${instance.record.name}" needs ${describe(need)} (weights and a ${contextSize}-token context × ${slots} slot${slots === 1 ? "" : "s"}) ` +
        `but the memory budget is ${describe(budget)} (after ${formatBytes(headroom)} of headroom; ${describe({ ram: Math.max(0, free.ram), vram: Math.max(0, free.vram) })} free now), ` +
        `so it cannot be loaded even with every other model unloaded: use a smaller num_ctx, fewer slots (num_parallel) or a smaller quantization, or raise the budget`,
    );
  }

  private budget(): Promise<Memory> {
    this.budgetCache ??= (async () => {
      const measured = (await this.engine.capacity?.()) ?? { ram: os.totalmem(), vram: 0 };
      this.knownBudget = budgetOf({ configured: this.options.memory.budget, measured, headroom: this.options.memory.headroom });
      return this.knownBudget;
    })();
    return this.budgetCache;
  }

  // ------------------------------------------------------------------ keep-alive, retiring, unloading

  private isIdle(instance: Instance): boolean {
    return instance.model !== undefined && instance.slots.inUse === 0 && instance.slots.waiting === 0 && instance.demand === 0;
  }

  private isStale(instanceOrKey: Instance | string): boolean {
    const key = typeof instanceOrKey === "string" ? instanceOrKey : instanceOrKey.key;
    return this.options.isReferenced !== undefined && !this.options.isReferenced(key);
  }

  /**
   * Unloads idle instances whose weights no model name refers to any more (the old side of a hot swap, or a
   * deleted model); busy ones follow when their requests finish. Call after the store changes.
   */
  dropStale(): void {
    for (const instance of this.instances.values()) if (this.isIdle(instance) && this.isStale(instance)) void this.drop(instance);
  }

  /** Stops `instance` from taking new requests; it unloads once its current ones finish. */
  private retire(instance: Instance): void {
    instance.retiring = true;
    if (this.isIdle(instance)) void this.drop(instance);
  }

  /**
   * One of `instance`'s engine processes died on its own. Counted (the metrics); a helper process (embeddings,
   * rerank) the model starts again by itself. The generation process: the instance is dropped at once (it leaves
   * /api/ps, its memory is freed in the accounting once its other processes are stopped, the next request loads it
   * again) and the requests waiting for one of its slots go on to that new load; the requests it was serving end
   * with the crash's error from the engine. The limit-th crash within the window puts the model in the cooldown.
   */
  private crashed(instance: Instance, crash: EngineCrash): void {
    const name = instance.record.name;
    const error = crashNamed(crash.error, name) as EngineCrashedError;
    this.options.events?.engineCrashed(name, error.detail);
    if (!crash.fatal || instance.crashed || instance.unloading) return;
    instance.crashed = error;
    instance.slots.close(error);
    if (this.crashes.record(instance.loadKey)) {
      const { count, windowMs } = this.crashes.limit;
      const reason = new ModelLoadError(`model "${name}" keeps crashing (${count} times within ${formatDuration(windowMs)}), so it is not loaded again for now; the last crash: ${error.detail}`, {
        cause: error,
      });
      this.failures.record(instance.loadKey, name, reason, "last crash");
    }
    void this.drop(instance);
  }

  /** Every waiter left a load that has not finished: cancel it. */
  private abandon(instance: Instance): void {
    this.instances.delete(instance.key);
    instance.loadAbort.abort();
    this.changed();
  }

  private startTimer(instance: Instance): void {
    this.clearTimer(instance);
    if (instance.keepAliveMs < 0) return;
    if (instance.keepAliveMs === 0) {
      void this.drop(instance);
      return;
    }
    instance.expiresAt = new Date(this.now() + instance.keepAliveMs);
    instance.timer = setTimeout(() => {
      if (this.isIdle(instance)) void this.drop(instance);
    }, instance.keepAliveMs);
    instance.timer.unref();
  }

  private clearTimer(instance: Instance): void {
    if (instance.timer) clearTimeout(instance.timer);
    instance.timer = undefined;
    instance.expiresAt = null;
  }

  /** Removes the instance at once (new requests load afresh) and unloads it; its memory counts until unloaded. */
  private drop(instance: Instance): Promise<void> {
    if (instance.unloading) return instance.unloading;
    this.clearTimer(instance);
    if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
    this.unloadingInstances.add(instance);
    instance.unloading = instance.ready
      .then(
        (model) => model.unload(),
        () => undefined,
      )
      .finally(() => {
        this.unloadingInstances.delete(instance);
        this.changed();
      });
    this.changed();
    return instance.unloading;
  }

  /** Resolves once `instance` is no longer the live instance of its weights (dropped or abandoned). */
  private async whileLive(instance: Instance, signal: AbortSignal): Promise<void> {
    while (this.instances.get(instance.key) === instance) await this.nextChange(signal);
  }

  /** Wakes everything waiting for a change: a model went idle, was dropped, finished unloading, or failed. */
  private changed(): void {
    this.changeWaiters.splice(0).forEach((wake) => wake());
  }

  private nextChange(signal: AbortSignal): Promise<void> {
    return raceAbort(new Promise<void>((resolve) => this.changeWaiters.push(resolve)), signal);
  }
}
