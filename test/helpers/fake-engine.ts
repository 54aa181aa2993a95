import { setTimeout as sleep } from "node:timers/promises";
import type { ChatRequest, CompletionRequest, SamplingOptions, ToolCall } from "../../src/domain/chat.js";
import type { EmbedRequest, EmbedResult, RerankRequest, RerankResult, Token, TokenizeRequest } from "../../src/domain/embedding.js";
import { RequestCancelledError, type AppError } from "../../src/domain/errors.js";
import type { GenerationEvent } from "../../src/domain/generation.js";
import type { Engine, LoadedModel, LoadSpec, MemoryEstimate, ModelStats } from "../../src/engine/engine.js";

/**
 * What the fake engine does for the next generations. Tests change `engine.script` between requests.
 * This engine only proves HTTP behaviour (framing, validation, errors, aborts): real inference is tested on the
 * real engine with the scripted fixture models.
 */
export interface FakeScript {
  /** Text pieces, one event each. Default ["Hello", " world"]. */
  tokens?: string[];
  /** Emit text forever (until aborted or maxTokens), cycling through `tokens`. */
  endless?: boolean;
  /** Tool calls emitted after the text. */
  toolCalls?: ToolCall[];
  /** Pause before each event. */
  delayMs?: number;
  /** Thrown before the first event. */
  failBeforeFirst?: AppError;
  /** Thrown after this many text events. */
  failAfter?: { events: number; error: AppError };
  /** Thrown by load. */
  loadError?: AppError;
  /** Added to every completion's done event. */
  context?: number[];
}

interface RequestOf {
  chat: ChatRequest;
  complete: CompletionRequest;
  embed: EmbedRequest;
}

export type Recorded =
  | { kind: "chat"; request: ChatRequest }
  | { kind: "complete"; request: CompletionRequest }
  | { kind: "embed"; request: EmbedRequest };

export class FakeEngine implements Engine {
  readonly name = "fake";
  script: FakeScript = {};
  readonly requests: Recorded[] = [];
  readonly loads: LoadSpec[] = [];
  unloads = 0;
  /** Generations stopped by their signal. */
  aborts = 0;
  /** Generations running now. */
  running = 0;
  private abortWaiters: Array<() => void> = [];

  async load(spec: LoadSpec): Promise<LoadedModel> {
    if (this.script.loadError) throw this.script.loadError;
    this.loads.push(spec);
    return new FakeModel(spec, this);
  }

  async estimateMemory(): Promise<MemoryEstimate> {
    return { ram: 1000, vram: 0 };
  }

  async close(): Promise<void> {}

  /** Resolves at the next abort a generation observes (or at once if `count` aborts were already seen). */
  waitForAbort(count = 1): Promise<void> {
    if (this.aborts >= count) return Promise.resolve();
    return new Promise((resolve) => this.abortWaiters.push(resolve));
  }

  /** The last request of a kind, for asserting what the HTTP layer passed down. */
  last<K extends keyof RequestOf>(kind: K): RequestOf[K] | undefined {
    const found = [...this.requests].reverse().find((r) => r.kind === kind);
    return found?.request as RequestOf[K] | undefined;
  }

  /** @internal */
  noteAbort(): void {
    this.aborts++;
    this.abortWaiters.splice(0).forEach((wake) => wake());
  }
}

class FakeModel implements LoadedModel {
  readonly memory = { ram: 1000, vram: 0 };

  constructor(readonly spec: LoadSpec, private readonly engine: FakeEngine) {}

  chat(request: ChatRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    this.engine.requests.push({ kind: "chat", request });
    return this.generate(request.sampling, signal);
  }

  complete(request: CompletionRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    this.engine.requests.push({ kind: "complete", request });
    return this.generate(request.sampling, signal, this.engine.script.context);
  }

  async embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    this.engine.requests.push({ kind: "embed", request });
    if (signal.aborted) throw new RequestCancelledError();
    const embeddings = request.inputs.map((input) => {
      const vector = Array.from({ length: request.dimensions ?? 4 }, (_, i) => input.length + i);
      const norm = Math.hypot(...vector);
      return vector.map((v) => v / norm);
    });
    return { embeddings, promptTokens: request.inputs.reduce((n, input) => n + (typeof input === "string" ? input.split(" ").length : input.length), 0) };
  }

  async rerank(request: RerankRequest): Promise<RerankResult> {
    return { scores: request.documents.map((d) => d.length), promptTokens: 0 };
  }

  /** One token per word, numbered by word length. */
  async tokenize(request: TokenizeRequest): Promise<Token[]> {
    return request.text.split(" ").map((piece) => ({ id: piece.length, piece }));
  }

  /** One token per word of every message. */
  async countTokens(request: ChatRequest): Promise<number> {
    return request.messages.reduce((n, m) => n + m.content.split(" ").length, 0);
  }

  async detokenize(tokens: readonly number[]): Promise<string> {
    return tokens.map((t) => "x".repeat(t)).join(" ");
  }

  stats(): ModelStats {
    return { speculative: { drafted: 0, accepted: 0 } };
  }

  async unload(): Promise<void> {
    this.engine.unloads++;
  }

  private async *generate(sampling: SamplingOptions, signal: AbortSignal, context?: number[]): AsyncGenerator<GenerationEvent> {
    const script = this.engine.script;
    const tokens = script.tokens ?? ["Hello", " world"];
    const limit = sampling.maxTokens ?? Infinity;
    this.engine.running++;
    let emitted = 0;
    let text = "";
    try {
      if (script.failBeforeFirst) throw script.failBeforeFirst;
      let reason: "stop" | "length" = "stop";
      for (let i = 0; script.endless || i < tokens.length; i++) {
        if (emitted >= limit) {
          reason = "length";
          break;
        }
        if (script.delayMs) await sleep(script.delayMs, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) {
          this.engine.noteAbort();
          if (emitted === 0) throw new RequestCancelledError();
          break;
        }
        if (script.failAfter && emitted === script.failAfter.events) throw script.failAfter.error;
        const piece = tokens[i % tokens.length] ?? "";
        const stop = sampling.stop?.find((s) => (text + piece).includes(s));
        if (stop !== undefined) {
          const cut = (text + piece).indexOf(stop) - text.length;
          if (cut > 0) yield { type: "text", text: piece.slice(0, cut) };
          break;
        }
        text += piece;
        emitted++;
        yield { type: "text", text: piece };
      }
      for (const call of reason === "stop" && !signal.aborted ? (script.toolCalls ?? []) : []) yield { type: "tool_call", call };
      yield {
        type: "done",
        reason,
        usage: { promptTokens: 3, completionTokens: emitted, promptDurationNs: 1000, evalDurationNs: 2000 },
        ...(context && { context }),
      };
    } finally {
      this.engine.running--;
    }
  }
}
