import type { ChatRequest, CompletionRequest } from "../../domain/chat.js";
import type { EmbedRequest, EmbedResult, RerankRequest, RerankResult, Token, TokenizeRequest } from "../../domain/embedding.js";
import { InvalidRequestError } from "../../domain/errors.js";
import type { GenerationEvent } from "../../domain/generation.js";
import type { LoadedModel, LoadSpec, MemoryEstimate, ModelStats } from "../engine.js";
import { renderPromptTemplate } from "../prompt-template.js";
import type { UpstreamContext } from "./failover.js";
import type { HealthChecks } from "./health.js";
import { chatBody, completionAsChat, completionBody } from "./request-body.js";
import { countTokensUpstream, detokenizeUpstream, embedUpstream, rerankUpstream, tokenizeUpstream } from "./side-routes.js";
import { streamOnEndpoints } from "./stream-run.js";

/**
 * A model served by remote OpenAI-compatible endpoints. It holds no memory here; its slots are requests in flight to
 * the endpoints (which batch them). Chats go to {url}/chat/completions; a completion with its own template, a raw
 * prompt or a suffix to {url}/completions; a templated completion is a one-turn chat (the remote server applies the
 * model's template). Health checks run while it is loaded; unloading stops them and closes its connections.
 */
export class UpstreamModel implements LoadedModel {
  readonly memory: MemoryEstimate = { ram: 0, vram: 0 };
  private unloaded?: Promise<void>;

  constructor(
    readonly spec: LoadSpec,
    private readonly context: UpstreamContext,
    private readonly health: HealthChecks,
  ) {}

  chat(request: ChatRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    const logprobsTop = request.logprobs?.top;
    return streamOnEndpoints(
      this.context,
      {
        route: "/chat/completions",
        body: (endpoint) => chatBody(request, endpoint.model),
        format: request.format,
        answer: { ...(logprobsTop !== undefined && { logprobsTop }), ...(request.parallelToolCalls === false && { singleToolCall: true }) },
      },
      signal,
    );
  }

  /**
   * `context` (token ids of an earlier answer) is refused: the remote model's tokens are not ours to prepend, and a
   * conversation goes as messages instead.
   */
  complete(request: CompletionRequest, signal: AbortSignal): AsyncIterable<GenerationEvent> {
    if (request.context !== undefined && request.context.length > 0) {
      return failing(new InvalidRequestError("context (token ids of an earlier answer) cannot be sent to an upstream model: send the conversation as messages (/api/chat)"));
    }
    const raw = request.raw || request.template !== undefined || (request.suffix !== undefined && request.suffix !== "");
    if (!raw) return this.chat(completionAsChat(request), signal);
    const prompt =
      request.template !== undefined && !request.raw
        ? renderPromptTemplate(request.template, { Prompt: request.prompt, ...(request.system !== undefined && { System: request.system }) })
        : request.prompt;
    const logprobsTop = request.logprobs?.top;
    return streamOnEndpoints(
      this.context,
      {
        route: "/completions",
        body: (endpoint) => completionBody(request, prompt, endpoint.model),
        format: request.format,
        answer: logprobsTop !== undefined ? { logprobsTop } : {},
      },
      signal,
    );
  }

  embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    return embedUpstream(this.context, request, signal);
  }

  rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    return rerankUpstream(this.context, request, signal);
  }

  countTokens(request: ChatRequest, signal: AbortSignal): Promise<number> {
    return countTokensUpstream(this.context, request, signal);
  }

  tokenize(request: TokenizeRequest, signal: AbortSignal): Promise<Token[]> {
    return tokenizeUpstream(this.context, request, signal);
  }

  detokenize(tokens: readonly number[], signal: AbortSignal): Promise<string> {
    return detokenizeUpstream(this.context, tokens, signal);
  }

  stats(): ModelStats {
    return { speculative: { drafted: 0, accepted: 0 }, upstream: this.context.pool.status() };
  }

  unload(): Promise<void> {
    this.unloaded ??= (async () => {
      await this.health.stop();
      await this.context.client.close();
    })();
    return this.unloaded;
  }
}

/** A stream that fails at its first read, as the engines' streams do (not when it is made). */
async function* failing(error: Error): AsyncGenerator<GenerationEvent> {
  throw error;
}
