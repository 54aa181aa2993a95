import type { ChatRequest, CompletionRequest, Message } from "../../domain/chat.js";
import type { EmbedRequest, EmbedResult, RerankRequest, RerankResult, Token, TokenizeRequest } from "../../domain/embedding.js";
import { AppError, CapabilityError, ContextOverflowError, type EngineCrashedError, InternalError, InvalidRequestError } from "../../domain/errors.js";
import type { GenerationEvent } from "../../domain/generation.js";
import type { EngineCrash, LoadedModel, LoadSpec, MemoryEstimate, ModelStats } from "../engine.js";
import { renderPromptTemplate } from "../prompt-template.js";
import { hasLaterSystem, rendersSystemInPlace, SYSTEM_PROBE, systemAsUserTurns } from "../system-turns.js";
import { isRecord, ServerErrorResponse, type ServerClient } from "./client.js";
import { fitConversation, mightOverflow, type FittedConversation } from "./context-fit.js";
import { runGeneration, type StreamPlan, type Timings } from "./generation.js";
import { toFormatBody, toLogprobsBody, toOaiMessages, toSamplingBody, toThinkingBody, toToolsBody, type OaiMessage } from "./request-body.js";
import type { ServerProcess } from "./server-process.js";
import { SessionPlacement, type Placement } from "./session-placement.js";
import { KvCacheReading } from "./slots.js";
import { THINKING_MARKERS } from "./thinking-split.js";
import { normalise } from "../vectors.js";

/** What requests need from the model's GGUF header (read once at load). */
export interface ModelHeader {
  /** The model's name for messages (`general.name`, else the file's name). */
  name: string;
  /** Tokens in the vocabulary (0: not known, ids are not checked). */
  vocabSize: number;
  /** The header declares rank pooling (`<architecture>.pooling_type` = 4): a reranker. */
  rankPooling: boolean;
}

/** How the processes beside the generation one are started, each on first use. */
export interface SideProcesses {
  /** With --embeddings (mean pooling). */
  embedding: () => Promise<ServerProcess>;
  /** With --reranking (rank pooling). */
  rerank: () => Promise<ServerProcess>;
}

/**
 * A model served by its own llama-server process (`spec.slots` slots of `spec.contextSize` tokens each), and, each
 * started on first use, a second one with --embeddings and a third with --reranking. Requests go over each process's
 * UNIX socket; unloading stops the processes, which returns every byte they held.
 *
 * A process that dies on its own ends the requests it serves with EngineCrashedError and is reported to `onCrash`
 * listeners: the generation process fatally (the model serves nothing more), an embeddings or rerank process not
 * (it is forgotten, and started again by the next request that needs it).
 */
export class LlamaServerModel implements LoadedModel {
  private embedding?: Promise<ServerProcess>;
  private reranking?: Promise<ServerProcess>;
  private unloading?: Promise<void>;
  private readonly crashListeners: Array<(crash: EngineCrash) => void> = [];
  /** The generation process's crash, once it happened. */
  private fatalCrash?: EngineCrash;
  private readonly speculative = { drafted: 0, accepted: 0 };
  /** Whether the template renders a system message after other turns where it occurs (asked once, on first need). */
  private systemInPlace?: Promise<boolean>;
  /** The embedding process, once started. */
  embeddingProcess?: ServerProcess;
  /** The rerank process, once started. */
  rerankProcess?: ServerProcess;
  /** Sessions' requests steered to their slots (id_slot). */
  private readonly placement: SessionPlacement;
  /** The KV cache's usage, read from /slots at scrape time. */
  private readonly kvCache: KvCacheReading;

  constructor(
    readonly spec: LoadSpec,
    /** The generation process (public for tests and diagnostics: pid, socket). */
    readonly server: ServerProcess,
    private readonly header: ModelHeader,
    private readonly side: SideProcesses,
  ) {
    this.placement = new SessionPlacement(server.client);
    this.kvCache = new KvCacheReading(server.client);
    void server.crashed.then((error) => {
      this.fatalCrash = { error, fatal: true };
      this.report(this.fatalCrash);
    });
  }

  onCrash(listener: (crash: EngineCrash) => void): void {
    this.crashListeners.push(listener);
    const crash = this.fatalCrash;
    if (crash) queueMicrotask(() => listener(crash));
  }

  /** Resident memory of the processes; VRAM is not measured (the scheduler keeps its estimate). */
  get memory(): MemoryEstimate {
    const side = (this.embeddingProcess?.rssBytes() ?? 0) + (this.rerankProcess?.rssBytes() ?? 0);
    return { ram: this.server.rssBytes() + side, vram: 0 };
  }

  stats(): ModelStats {
    const kvCache = this.kvCache.value;
    return { speculative: { ...this.speculative }, ...(kvCache && { kvCache }) };
  }

  refreshStats(): Promise<void> {
    return this.kvCache.refresh();
  }

  /**
   * Without format: /v1/chat/completions, where llama.cpp renders the model's template (tools included), parses
   * tool calls and reasoning (`reasoning_content`) in its own way. With a format and no tools: the conversation
   * rendered by /apply-template and generated by /completion under the schema's grammar, because the chat endpoint's
   * format grammar has to re-read the template's generation prompt, which fails for vocabularies that put a space
   * after special tokens (the SPM ones; llama.cpp then answers "Failed to initialize samplers"), and its
   * `json_object` without a schema does not constrain at all. With tools, as in-process, the format is not enforced
   * (the tools' grammar wins).
   *
   * A conversation that might not fit the context (or any, with `shift` false) is measured first and, unless
   * `truncate` is false, loses its oldest turns (context-fit.ts); with `shift` false the reply is bounded by the room
   * the prompt leaves, so it stops there with `length` instead of discarding the oldest context (llama-server runs
   * with --context-shift). Log-probabilities with tools are refused: llama-server does not stream them together.
   * A system message after other turns goes as user text where the template takes none there (system-turns.ts).
   */
  chat(request: ChatRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    const sampling = toSamplingBody(request.sampling, this.spec.contextSize);
    const logprobsTop = request.logprobs?.top;
    return this.generate(signal, request.session, async (abort) => {
      const tools = toToolsBody(request.tools ?? [], request.toolChoice, request.parallelToolCalls);
      if (request.logprobs !== undefined && tools.tools !== undefined) {
        throw new InvalidRequestError("log-probabilities cannot be returned together with tools on the llama-server engine: ask for one or the other");
      }
      const messages = await this.oaiMessages(request.messages);
      const template = { ...tools, ...toThinkingBody(request.thinking) };
      const structured = request.format.type !== "text" && tools.tools === undefined;
      const plan = async (measure: boolean, planSignal: AbortSignal): Promise<StreamPlan> => {
        const fitted: FittedConversation = measure
          ? await fitConversation(messages, this.spec.contextSize, request.truncate !== false, (m) => this.promptLength({ messages: m, ...template }, planSignal))
          : { messages };
        const limit = request.shift === false && fitted.promptTokens !== undefined ? Math.min(Number(sampling.n_predict), this.spec.contextSize - fitted.promptTokens) : undefined;
        const body = { ...sampling, ...(limit !== undefined && { n_predict: limit }) };
        const refit = measure ? {} : { refit: (s: AbortSignal) => plan(true, s) };
        const extra = { ...(logprobsTop !== undefined && { logprobsTop }), ...refit };
        if (structured) {
          const prompt = await this.applyTemplate({ messages: fitted.messages, ...template }, planSignal);
          return { route: "/completion", body: { prompt, ...body, ...toFormatBody(request.format), ...toLogprobsBody(request.logprobs, "completion") }, format: request.format, ...extra };
        }
        return {
          route: "/v1/chat/completions",
          body: { messages: fitted.messages, ...template, ...body, ...toLogprobsBody(request.logprobs, "chat") },
          format: { type: "text" },
          ...(request.parallelToolCalls === false && { singleToolCall: true }),
          ...extra,
        };
      };
      const measure = request.shift === false || mightOverflow({ messages, ...template }, this.spec.contextSize);
      return plan(measure, abort);
    });
  }

  /**
   * Raw: /completion with the prompt as is. Suffix: /infill. Templated: the prompt rendered as one user turn (after the
   * system prompt) by /apply-template with the thinking switches, or by the request's own template, tokenized so that
   * `context` tokens can go in front and the done event can return them; generated by /completion. llama-server does
   * not parse reasoning there, so the output is split by its markers here (thinking-split.ts), the markers sent as
   * `preserved_tokens` so that special-token markers are written out too; a formatted (grammar-bound) completion is
   * not split.
   */
  complete(request: CompletionRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    const sampling = toSamplingBody(request.sampling, this.spec.contextSize);
    const format = toFormatBody(request.format);
    const logprobs = toLogprobsBody(request.logprobs, "completion");
    const extra = request.logprobs !== undefined ? { logprobsTop: request.logprobs.top } : {};
    if (request.suffix !== undefined && request.suffix !== "") {
      const body = { input_prefix: request.prompt, input_suffix: request.suffix, prompt: "", ...sampling, ...format, ...logprobs };
      return this.generate(signal, request.session, async () => ({ route: "/infill", body, format: request.format, ...extra }));
    }
    if (request.raw) {
      return this.generate(signal, request.session, async () => ({ route: "/completion", body: { prompt: request.prompt, ...sampling, ...format, ...logprobs }, format: request.format, ...extra }));
    }
    return this.generate(signal, request.session, async (abort): Promise<StreamPlan> => {
      const text =
        request.template !== undefined
          ? renderPromptTemplate(request.template, { Prompt: request.prompt, ...(request.system !== undefined && { System: request.system }) })
          : await this.applyTemplate({ messages: promptMessages(request), ...toThinkingBody(request.thinking) }, abort);
      const context = request.context ?? [];
      const tokens = await this.tokenIds(this.client, text, context.length === 0, abort);
      const prompt = [...context, ...tokens];
      const split = request.format.type === "text";
      const body = { prompt, return_tokens: true, ...(split && { preserved_tokens: THINKING_MARKERS.flat() }), ...sampling, ...format, ...logprobs };
      return { route: "/completion", body, format: request.format, promptTokens: prompt, ...(split && { splitThinking: text }), ...extra };
    });
  }

  /** Embeddings from the second process; inputs may be texts or token ids (passed through, ids checked). */
  async embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    if (request.inputs.length === 0) return { embeddings: [], promptTokens: 0 };
    for (const input of request.inputs) if (typeof input !== "string") this.checkIds(input);
    const server = await this.sideProcess("embedding");
    // Check lengths first: llama-server embeds a whole input in one batch of the context's size, or fails.
    const inputs: (string | number[])[] = [];
    let promptTokens = 0;
    for (const input of request.inputs) {
      const tokens = typeof input === "string" ? await this.tokenIds(server.client, input, true, signal) : [...input];
      if (tokens.length > this.spec.contextSize && !request.truncate) {
        throw new ContextOverflowError(`input of ${tokens.length} tokens exceeds the context length of ${this.spec.contextSize}`);
      }
      const kept = tokens.length > this.spec.contextSize ? tokens.slice(0, this.spec.contextSize) : undefined;
      inputs.push(kept ?? (typeof input === "string" ? input : [...input]));
      promptTokens += kept?.length ?? tokens.length;
    }
    const answer = await server.client.post<{ data?: { index: number; embedding: number[] }[] }>("/v1/embeddings", { input: inputs, encoding_format: "float" }, signal);
    const data = [...(answer.data ?? [])].sort((a, b) => a.index - b.index);
    if (data.length !== inputs.length) throw new InternalError(`llama-server returned ${data.length} embeddings for ${inputs.length} inputs`);
    return { embeddings: data.map((d) => normalise(d.embedding, request.dimensions)), promptTokens };
  }

  /**
   * Scores from the third process (--reranking), for models whose header declares rank pooling: llama-server would
   * score any other model too, with meaningless numbers. Its results come sorted by score; they go back in input order.
   */
  async rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    if (!this.header.rankPooling) throw new CapabilityError(this.header.name, "rerank");
    if (request.documents.length === 0) return { scores: [], promptTokens: 0 };
    const server = await this.sideProcess("rerank");
    const answer = await server.client.post<{ results?: unknown[]; usage?: { prompt_tokens?: number } }>(
      "/v1/rerank",
      { query: request.query, documents: request.documents, top_n: request.documents.length },
      signal,
    );
    const scores: (number | undefined)[] = request.documents.map(() => undefined);
    for (const result of answer.results ?? []) {
      if (isRecord(result) && typeof result.index === "number" && typeof result.relevance_score === "number") scores[result.index] = result.relevance_score;
    }
    if (scores.some((s) => s === undefined)) throw new InternalError(`llama-server did not score every one of the ${request.documents.length} documents`);
    return { scores: scores as number[], promptTokens: answer.usage?.prompt_tokens ?? 0 };
  }

  /**
   * The prompt `chat` would read for this conversation, counted by llama-server itself: the same body (messages,
   * tools and tool choice, thinking switches) rendered by the model's template and tokenized as the chat endpoint
   * does (start tokens added, special tokens parsed), by /v1/chat/completions/input_tokens. The whole conversation is
   * counted: a chat of one longer than the context would lose its oldest turns first (`truncate`).
   */
  async countTokens(request: ChatRequest, signal: AbortSignal): Promise<number> {
    const tools = toToolsBody(request.tools ?? [], request.toolChoice, request.parallelToolCalls);
    const messages = await this.oaiMessages(request.messages);
    return this.promptLength({ messages, ...tools, ...toThinkingBody(request.thinking) }, signal);
  }

  /** /tokenize with pieces; a piece that is not UTF-8 on its own (part of a character) comes as bytes and reads as U+FFFD. */
  async tokenize(request: TokenizeRequest, signal: AbortSignal): Promise<Token[]> {
    const body = { content: request.text, add_special: request.addSpecial, parse_special: request.parseSpecial, with_pieces: true };
    const { tokens } = await this.client.post<{ tokens: { id: number; piece: string | number[] }[] }>("/tokenize", body, signal);
    return tokens.map(({ id, piece }) => ({ id, piece: typeof piece === "string" ? piece : Buffer.from(piece).toString("utf8") }));
  }

  /** /detokenize, after checking the ids against the vocabulary (llama-server fails on an unknown id with an internal error). */
  async detokenize(tokens: readonly number[], signal: AbortSignal): Promise<string> {
    this.checkIds(tokens);
    if (tokens.length === 0) return "";
    return (await this.client.post<{ content: string }>("/detokenize", { tokens }, signal)).content;
  }

  unload(): Promise<void> {
    this.unloading ??= (async () => {
      const [embedding, reranking] = await Promise.all([this.embedding?.catch(() => undefined), this.reranking?.catch(() => undefined)]);
      await Promise.all([this.server.stop(), embedding?.stop(), reranking?.stop()]);
    })();
    return this.unloading;
  }

  private get client(): ServerClient {
    return this.server.client;
  }

  /** The embedding or rerank process, started on first use (a failed start is retried by the next request). */
  private sideProcess(kind: "embedding" | "rerank"): Promise<ServerProcess> {
    if (this.unloading) throw new InternalError("the model is being unloaded");
    const field = kind === "embedding" ? "embedding" : "reranking";
    const started = (this[field] ??= this.side[kind]().then((process) => {
      if (kind === "embedding") this.embeddingProcess = process;
      else this.rerankProcess = process;
      void process.crashed.then((error) => this.sideCrashed(kind, process, started, error));
      return process;
    }));
    return started.catch((error: unknown) => {
      this[field] = undefined;
      throw error;
    });
  }

  /** A side process died: forgotten (the next request starts another), its socket file removed, and reported. */
  private sideCrashed(kind: "embedding" | "rerank", process: ServerProcess, started: Promise<ServerProcess>, error: EngineCrashedError): void {
    if (kind === "embedding" && this.embedding === started) {
      this.embedding = undefined;
      this.embeddingProcess = undefined;
    } else if (kind === "rerank" && this.reranking === started) {
      this.reranking = undefined;
      this.rerankProcess = undefined;
    }
    void process.stop();
    this.report({ error, fatal: false });
  }

  private report(crash: EngineCrash): void {
    for (const listener of this.crashListeners) listener(crash);
  }

  /** Fails with InvalidRequestError on an id that is not a token of the vocabulary. */
  private checkIds(ids: readonly number[]): void {
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || (this.header.vocabSize > 0 && id >= this.header.vocabSize));
    if (bad !== undefined) throw new InvalidRequestError(`token id ${bad} is not in the model's vocabulary (ids 0 to ${this.header.vocabSize - 1})`);
  }

  /**
   * Runs a plan; a session's request names the slot that served the session last, when it is free (its `id_slot`,
   * SessionPlacement), so that its cache holds the conversation's prefix.
   */
  private generate(signal: AbortSignal, session: string | undefined, plan: (signal: AbortSignal) => Promise<StreamPlan>): AsyncIterable<GenerationEvent> {
    const onTimings = (timings: Timings): void => {
      this.speculative.drafted += timings.draft_n ?? 0;
      this.speculative.accepted += timings.draft_n_accepted ?? 0;
    };
    if (session === undefined) return runGeneration(this.client, plan, signal, onTimings);
    let placement: Placement | undefined;
    let ended = false;
    const placed = async (planSignal: AbortSignal): Promise<StreamPlan> => {
      // Placed while the plan is made (both ask llama-server); a placement that comes after the end is let go at once.
      const where = this.placement.place(session, planSignal).then((found) => {
        placement = found;
        if (ended) found.release();
        return found;
      });
      const [planned, { slot }] = await Promise.all([plan(planSignal), where]);
      return slot === undefined ? planned : { ...planned, body: { ...planned.body, id_slot: slot } };
    };
    const release = (): void => {
      ended = true;
      placement?.release();
    };
    return releasing(runGeneration(this.client, placed, signal, onTimings), release);
  }

  /** A conversation (with its tools and template switches) rendered by the model's chat template, ready for the assistant's turn. */
  private async applyTemplate(body: { messages: readonly OaiMessage[] } & Record<string, unknown>, signal: AbortSignal): Promise<string> {
    return (await this.client.post<{ prompt: string }>("/apply-template", body, signal)).prompt;
  }

  /**
   * Tokens of the prompt a chat body makes, as llama-server counts them: its chat parameters parsed, the template
   * rendered and the prompt tokenized as /v1/chat/completions does (start tokens added, special tokens parsed).
   */
  private async promptLength(body: { messages: readonly OaiMessage[] } & Record<string, unknown>, signal: AbortSignal): Promise<number> {
    const answer = await this.client.post<{ input_tokens?: unknown }>("/v1/chat/completions/input_tokens", body, signal);
    if (typeof answer.input_tokens !== "number") throw new InternalError("llama-server did not count the prompt's tokens");
    return answer.input_tokens;
  }

  /** Domain messages as llama-server takes them; later system messages as user text where the template takes none. */
  private async oaiMessages(messages: readonly Message[]): Promise<OaiMessage[]> {
    if (!hasLaterSystem(messages) || (await this.rendersSystemInPlace())) return toOaiMessages(messages);
    return toOaiMessages(systemAsUserTurns(messages));
  }

  /**
   * Whether the template renders a later system message where it occurs: SYSTEM_PROBE through /apply-template, once.
   * A template that fails on it (llama-server answers with an error) does not; a failure to reach the process is not
   * remembered (the next request asks again).
   */
  private rendersSystemInPlace(): Promise<boolean> {
    this.systemInPlace ??= this.client.post<{ prompt: string }>("/apply-template", { messages: toOaiMessages(SYSTEM_PROBE) }).then(
      (answer) => rendersSystemInPlace(answer.prompt),
      (error: unknown) => {
        if (error instanceof AppError && error.cause instanceof ServerErrorResponse) return false;
        this.systemInPlace = undefined;
        throw error;
      },
    );
    return this.systemInPlace;
  }

  /** Token ids of `text`, special tokens parsed; with the model's start tokens (BOS) when `addSpecial`. */
  private async tokenIds(client: ServerClient, text: string, addSpecial: boolean, signal: AbortSignal): Promise<number[]> {
    const { tokens } = await client.post<{ tokens: number[] }>("/tokenize", { content: text, add_special: addSpecial, parse_special: true }, signal);
    return tokens;
  }
}

/** The events, then `release` however they end (completed, failed, or left by the consumer). */
async function* releasing<T>(events: AsyncIterable<T>, release: () => void): AsyncGenerator<T> {
  try {
    yield* events;
  } finally {
    release();
  }
}

/** A completion's prompt as one user turn, after its system prompt. */
function promptMessages(request: CompletionRequest): OaiMessage[] {
  return [...(request.system !== undefined && request.system !== "" ? [{ role: "system" as const, content: request.system }] : []), { role: "user", content: request.prompt }];
}
