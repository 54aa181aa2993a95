import { setTimeout as sleep } from "node:timers/promises";
import type { ChatRequest, CompletionRequest } from "../../src/domain/chat.js";
import type { EmbedRequest, EmbedResult, RerankResult, Token } from "../../src/domain/embedding.js";
import { RequestCancelledError, type AppError } from "../../src/domain/errors.js";
import type { GenerationEvent } from "../../src/domain/generation.js";
import type { ModelRecord } from "../../src/domain/model.js";
import type { Engine, LoadedModel, LoadSpec, MemoryEstimate, ModelStats } from "../../src/engine/engine.js";
import { Scheduler, type SchedulerOptions } from "../../src/scheduler/scheduler.js";
import { modelRecord } from "../helpers/records.js";

/**
 * An engine for the scheduler's own tests: model paths are the weights' digests, memory estimates are set per
 * model, loads can be made to fail or to wait for a gate, and every load and unload is recorded in order.
 */
export class TestEngine implements Engine {
  readonly name = "test";
  readonly events: string[] = [];
  readonly loads: LoadSpec[] = [];
  /** Loads running now, and the most that ever ran at once. */
  loading = 0;
  maxConcurrentLoads = 0;
  estimates = new Map<string, MemoryEstimate>();
  /** What each slot beyond the first adds to a model's estimate (its KV cache); none unless set. */
  perSlot = new Map<string, MemoryEstimate>();
  failures = new Map<string, AppError>();
  private readonly gates = new Map<string, { open: Promise<void>; release: () => void }>();
  capacityBytes: MemoryEstimate = { ram: 1000, vram: 0 };

  async load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel> {
    this.loads.push(spec);
    this.events.push(`load ${spec.modelPath}`);
    this.loading++;
    this.maxConcurrentLoads = Math.max(this.maxConcurrentLoads, this.loading);
    try {
      const gate = this.gates.get(spec.modelPath);
      if (gate) {
        await Promise.race([gate.open, new Promise((_, reject) => signal?.addEventListener("abort", () => reject(new RequestCancelledError())))]);
      }
      await sleep(1);
      const failure = this.failures.get(spec.modelPath);
      if (failure) throw failure;
      return new TestModel(spec, this.estimate(spec.modelPath), this);
    } finally {
      this.loading--;
    }
  }

  async estimateMemory(spec: LoadSpec): Promise<MemoryEstimate> {
    const base = this.estimate(spec.modelPath);
    const slot = this.perSlot.get(spec.modelPath) ?? { ram: 0, vram: 0 };
    return { ram: base.ram + (spec.slots - 1) * slot.ram, vram: base.vram + (spec.slots - 1) * slot.vram };
  }

  async capacity(): Promise<MemoryEstimate> {
    return this.capacityBytes;
  }

  async close(): Promise<void> {}

  /** Loads of `path` wait until the returned function is called. */
  hold(path: string): () => void {
    let release = (): void => {};
    const open = new Promise<void>((resolve) => (release = resolve));
    this.gates.set(path, { open, release });
    return () => {
      this.gates.delete(path);
      release();
    };
  }

  loadCount(path: string): number {
    return this.loads.filter((l) => l.modelPath === path).length;
  }

  private estimate(path: string): MemoryEstimate {
    return this.estimates.get(path) ?? { ram: 100, vram: 0 };
  }
}

class TestModel implements LoadedModel {
  constructor(
    readonly spec: LoadSpec,
    readonly memory: MemoryEstimate,
    private readonly engine: TestEngine,
  ) {}

  chat(request: ChatRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    return this.generate(request.sampling.maxTokens ?? 3, signal);
  }

  complete(request: CompletionRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    return this.generate(request.sampling.maxTokens ?? 3, signal);
  }

  async embed(_request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    if (signal.aborted) throw new RequestCancelledError();
    return { embeddings: [], promptTokens: 0 };
  }

  async rerank(): Promise<RerankResult> {
    return { scores: [], promptTokens: 0 };
  }

  async tokenize(): Promise<Token[]> {
    return [];
  }

  /** One token per word of every message. */
  async countTokens(request: ChatRequest): Promise<number> {
    return request.messages.reduce((n, m) => n + m.content.split(" ").length, 0);
  }

  async detokenize(): Promise<string> {
    return "";
  }

  stats(): ModelStats {
    return { speculative: { drafted: 0, accepted: 0 } };
  }

  async unload(): Promise<void> {
    this.engine.events.push(`unload ${this.spec.modelPath}`);
  }

  /** One token every 5 ms; stops (with `done`) when aborted. */
  private async *generate(tokens: number, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
    let n = 0;
    for (; n < tokens && !signal.aborted; n++) {
      await sleep(5);
      yield { type: "text", text: `t${n}` };
    }
    yield { type: "done", reason: "stop", usage: { promptTokens: 1, completionTokens: n, promptDurationNs: 1, evalDurationNs: 1 } };
  }
}

/** A record whose weights' digest (and so model path) is `digest`. */
export function record(digest: string, parameters: Record<string, unknown> = {}, name = `${digest}:latest`): ModelRecord {
  return modelRecord({ name, digest: `manifest-${digest}`, modelDigest: digest, parameters });
}

export const defaults: SchedulerOptions = {
  defaultContextSize: 512,
  defaultKeepAliveMs: -1,
  slotsPerModel: 1,
  threads: 1,
  maxQueue: 10,
  maxLoadedModels: 0,
  memory: { budget: {}, headroom: 0 },
  loadCooldownMs: 0,
  requestTimeoutMs: 0,
};

export function scheduler(engine: TestEngine, options: Partial<SchedulerOptions> = {}): Scheduler {
  return new Scheduler(engine, (digest) => digest, { ...defaults, ...options });
}

/** A signal that never fires. */
export const forever = new AbortController().signal;

/** Polls until `check` holds (or fails after 2 s). */
export async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(2);
  }
}
