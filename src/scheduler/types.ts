import type { AppError } from "../domain/errors.js";
import type { ModelRecord } from "../domain/model.js";
import type { LoadedModel, LoadSpec, ModelStats } from "../engine/engine.js";
import type { Memory } from "./memory.js";
import type { Semaphore } from "./semaphore.js";

export interface SchedulerOptions {
  /** Context window when a request names none (capped at the model's training context). */
  defaultContextSize: number;
  /** Idle time before a model is unloaded; -1 = never, 0 = as soon as it is idle. */
  defaultKeepAliveMs: number;
  /**
   * Parallel slots per model, unless the model's `num_parallel` parameter says otherwise; 0 = automatic: the most
   * (up to AUTO_SLOTS_MAX, slots.ts) that fit in the memory free when the model loads.
   */
  slotsPerModel: number;
  threads: number;
  /** Slots of a model served by remote endpoints whose configuration names no max_parallel (default 32). */
  upstreamSlots?: number;
  /** Requests that may wait (for a load, memory or a slot), across all models, before new ones get 503. */
  maxQueue: number;
  /** Most models loaded at once; 0 = no cap. */
  maxLoadedModels: number;
  /** Budgets (unset = the machine's totals) and the headroom kept free below them, in bytes. */
  memory: { budget: { ram?: number | undefined; vram?: number | undefined }; headroom: number };
  /** How long a failed load is remembered (requests fail fast meanwhile); 0 = not at all. */
  loadCooldownMs: number;
  /**
   * Crashes of a loaded model's engine process within a window that make it a failed load (the cooldown, with the
   * crash as the reason) instead of loading it again; default CRASH_LIMIT (crashes.ts).
   */
  crashLimit?: { count: number; windowMs: number };
  /** Longest a request may wait and run; 0 = no limit. */
  requestTimeoutMs: number;
  /** Whether some model name still refers to these weights; instances of weights no name uses are unloaded when idle. */
  isReferenced?: (modelDigest: string) => boolean;
  /** The record stored under a name now (a request that looked up a name just before a hot swap follows it). */
  latest?: (name: string) => ModelRecord | undefined;
  /**
   * Makes sure a model's weights are on this machine before its load starts (a replica fetches those it lacks from a
   * peer or the model's recorded source); rejects when they cannot be had. Not part of the load: its failure starts
   * no cooldown, and other loads go on meanwhile.
   */
  ensureWeights?: (record: ModelRecord, signal: AbortSignal) => Promise<void>;
  /** The clock, in milliseconds (injectable for tests). */
  now?: () => number;
  /** Told of loads, failed loads and engine crashes as they happen (the metrics). */
  events?: SchedulerEvents;
}

/** What the scheduler reports as it works, for the metrics: called synchronously, so it must be cheap and not throw. */
export interface SchedulerEvents {
  /** A model finished loading after `seconds` in the engine's load (waiting for memory or for other loads not counted). */
  modelLoaded(model: string, seconds: number): void;
  /** A load failed for a reason the cooldown remembers (a cancelled load, or one refused for memory, is not counted). */
  modelLoadFailed(model: string): void;
  /**
   * One of a loaded model's engine processes died on its own (crash, OOM kill, kill -9), noticed at once: `reason`
   * says which process and how, with its last log lines (for a log line).
   */
  engineCrashed(model: string, reason: string): void;
}

/** Requests on one model now, by the name it was last used through. */
export interface ModelRequests {
  model: string;
  /** Holding one of its slots. */
  running: number;
  /** Waiting for one of its slots, or for it to load. */
  waiting: number;
}

export interface AcquireOptions {
  contextSize?: number;
  /** Overrides the model's keep-alive from the moment this request finishes. */
  keepAliveMs?: number;
  /** Overrides the server's request timeout (0 = none), e.g. for start-up preloads. */
  timeoutMs?: number;
  /** Keeps the model loaded (keep-alive -1) for requests that name no keep-alive, e.g. a start-up preload. */
  pin?: boolean;
}

/** A loaded model, as /api/ps shows it. */
export interface RunningModel {
  record: ModelRecord;
  contextLength: number;
  /** Parallel slots (sequences batched together). */
  slots?: number;
  /** How the slot count was chosen (automatically from memory, or set by hand). */
  slotsReason?: string;
  /** The engine serving it ("llama-cpp", "llama-server"). */
  engine: string;
  ram: number;
  vram: number;
  /** When it will be unloaded; null = never (or busy and not yet counting down). */
  expiresAt: Date | null;
  active: number;
  queued: number;
  /** The engine's counters (batching, speculative decoding). */
  stats: ModelStats;
}

/** The scheduler's state, for the health endpoint. */
export interface SchedulerStatus {
  /** The load in progress, if any, and why it waits when it does. */
  loading: { model: string; waiting?: string } | null;
  waiting: number;
  maxQueue: number;
  memory: { budget: Memory; booked: Memory } | null;
  failedLoads: Array<{ model: string; error: string; failedAt: Date; retryAt: Date }>;
}

/** One set of weights loaded (or loading) in one shape (the scheduler's own state). */
export interface Instance {
  /** The weights' digest: every name (alias, copy) for the same weights shares the instance. */
  readonly key: string;
  /** Weights and shape: what a failed load is remembered by. */
  readonly loadKey: string;
  /** The model name it was last used through. */
  record: ModelRecord;
  /** The shape requests ask for (slots 0 = automatic): what decides whether an instance can serve a request. */
  readonly requested: LoadSpec;
  /** The shape loaded: `requested` with the slot count chosen at admission. */
  spec: LoadSpec;
  /** Why it has that many slots (/api/ps). */
  slotsReason: string;
  /** Its slots; sized once the slot count is chosen (nothing acquires one before the load ends). */
  readonly slots: Semaphore;
  model?: LoadedModel;
  ready: Promise<LoadedModel>;
  readonly loadAbort: AbortController;
  /** Memory booked for it: the estimate, then what the engine reports if that is larger. */
  booked: Memory;
  /** Requests waiting for the load. */
  demand: number;
  /** Why the load waits, while it waits for memory. */
  blocked?: string;
  /** The keep-alive the countdown uses: the last finished request's, else the default (-1 when pinned). */
  keepAliveMs: number;
  /** Preloaded: requests that name no keep-alive leave it loaded for ever. */
  pinned: boolean;
  expiresAt: Date | null;
  timer?: NodeJS.Timeout;
  /** Order of last use (a counter: the clock can tie). */
  lastUsed: number;
  /** Replaced (another shape was asked for): takes no new requests and unloads once idle. */
  retiring: boolean;
  /** Its engine process crashed: it is dropped, and requests waiting for one of its slots go on to a new load. */
  crashed?: AppError;
  unloading?: Promise<void>;
}
