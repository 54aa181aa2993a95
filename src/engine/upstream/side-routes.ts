import type { ChatRequest } from "../../domain/chat.js";
import type { EmbedRequest, EmbedResult, RerankRequest, RerankResult, Token, TokenizeRequest } from "../../domain/embedding.js";
import { normalise } from "../vectors.js";
import { rootRouteOf, routeOf, type Endpoint } from "./endpoint-pool.js";
import { callOnEndpoints, type UpstreamContext } from "./failover.js";
import { chatBody } from "./request-body.js";
import { isRecord } from "./stream-answer.js";
import { EndpointFailure } from "./upstream-errors.js";

/**
 * The upstream model's requests that are not generations, each on the first endpoint that offers it: embeddings and
 * rerank at OpenAI-style routes under the base URL; tokenize, detokenize and prompt counting where llama.cpp's
 * llama-server and vLLM put them (each in its own shape, told apart by the endpoint's GET /models), which a plain
 * OpenAI-compatible server lacks (the request then fails with CapabilityError saying so).
 */

/** {url}/embeddings; vectors L2-normalised here (after `dimensions`), as on the local engines. */
export function embedUpstream(context: UpstreamContext, request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
  if (request.inputs.length === 0) return Promise.resolve({ embeddings: [], promptTokens: 0 });
  return callOnEndpoints(
    context,
    "embeddings",
    { path: (e) => routeOf(e, "/embeddings"), body: (e) => ({ model: e.model, input: request.inputs, encoding_format: "float" }) },
    (answer, endpoint) => {
      const data = (isRecord(answer) && Array.isArray(answer.data) ? answer.data : []).filter(isRecord);
      const vectors = [...data].sort((a, b) => Number(a.index ?? 0) - Number(b.index ?? 0)).map((d) => d.embedding);
      if (vectors.length !== request.inputs.length || !vectors.every(isNumbers)) {
        throw malformed(endpoint, `${vectors.length} embeddings for ${request.inputs.length} inputs`);
      }
      return { embeddings: vectors.map((v) => normalise(v, request.dimensions)), promptTokens: usageTokens(answer) };
    },
    signal,
  );
}

/** {url}/rerank (vLLM, llama.cpp with --reranking, ai-server); scores back in input order. */
export function rerankUpstream(context: UpstreamContext, request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
  if (request.documents.length === 0) return Promise.resolve({ scores: [], promptTokens: 0 });
  return callOnEndpoints(
    context,
    "rerank",
    { path: (e) => routeOf(e, "/rerank"), body: (e) => ({ model: e.model, query: request.query, documents: request.documents, top_n: request.documents.length }) },
    (answer, endpoint) => {
      const scores: (number | undefined)[] = request.documents.map(() => undefined);
      for (const result of isRecord(answer) && Array.isArray(answer.results) ? answer.results : []) {
        if (isRecord(result) && typeof result.index === "number" && typeof result.relevance_score === "number") scores[result.index] = result.relevance_score;
      }
      if (scores.some((s) => s === undefined)) throw malformed(endpoint, `not every one of the ${request.documents.length} documents was scored`);
      return { scores: scores as number[], promptTokens: usageTokens(answer) };
    },
    signal,
  );
}

/** The model's tokens of a text: llama.cpp's POST /tokenize (with pieces) or vLLM's (with token strings). */
export function tokenizeUpstream(context: UpstreamContext, request: TokenizeRequest, signal: AbortSignal): Promise<Token[]> {
  return callOnEndpoints(
    context,
    "tokenize",
    { path: (e) => (e.dialect === "openai" ? undefined : rootRouteOf(e, "/tokenize")), body: (e) => tokenizeBody(e, request) },
    (answer, endpoint) => {
      const tokens = isRecord(answer) && Array.isArray(answer.tokens) ? answer.tokens : undefined;
      if (!tokens) throw malformed(endpoint, "no tokens");
      const strings = isRecord(answer) && Array.isArray(answer.token_strs) ? answer.token_strs : [];
      return tokens.map((token, i): Token => {
        if (typeof token === "number") return { id: token, piece: typeof strings[i] === "string" ? strings[i] : "" };
        if (!isRecord(token) || typeof token.id !== "number") throw malformed(endpoint, "a token without an id");
        return { id: token.id, piece: typeof token.piece === "string" ? token.piece : Array.isArray(token.piece) ? Buffer.from(token.piece as number[]).toString("utf8") : "" };
      });
    },
    signal,
  );
}

function tokenizeBody(endpoint: Endpoint, request: TokenizeRequest): unknown {
  if (endpoint.dialect === "llama.cpp") return { content: request.text, add_special: request.addSpecial, parse_special: request.parseSpecial, with_pieces: true };
  return { model: endpoint.model, prompt: request.text, add_special_tokens: request.addSpecial, return_token_strs: true };
}

/** Text of token ids: POST /detokenize (llama.cpp answers `content`, vLLM `prompt`). */
export function detokenizeUpstream(context: UpstreamContext, tokens: readonly number[], signal: AbortSignal): Promise<string> {
  return callOnEndpoints(
    context,
    "detokenize",
    { path: (e) => (e.dialect === "openai" ? undefined : rootRouteOf(e, "/detokenize")), body: (e) => ({ ...(e.dialect === "vllm" && { model: e.model }), tokens }) },
    (answer, endpoint) => {
      const text = isRecord(answer) ? (answer.content ?? answer.prompt) : undefined;
      if (typeof text !== "string") throw malformed(endpoint, "no text");
      return text;
    },
    signal,
  );
}

/**
 * The prompt tokens a chat would read, counted by the endpoint with the model's template and tools: llama.cpp's
 * POST {url}/chat/completions/input_tokens (the chat body itself), or vLLM's POST /tokenize with `messages`.
 */
export function countTokensUpstream(context: UpstreamContext, request: ChatRequest, signal: AbortSignal): Promise<number> {
  return callOnEndpoints(
    context,
    "counting tokens",
    {
      path: (e) => (e.dialect === "llama.cpp" ? routeOf(e, "/chat/completions/input_tokens") : e.dialect === "vllm" ? rootRouteOf(e, "/tokenize") : undefined),
      body: (e) => {
        const { stream: _stream, stream_options: _options, ...body } = chatBody(request, e.model);
        return e.dialect === "vllm" ? { model: e.model, messages: body.messages, ...(body.tools !== undefined && { tools: body.tools }), add_generation_prompt: true } : body;
      },
    },
    (answer, endpoint) => {
      const count = isRecord(answer) ? (answer.input_tokens ?? answer.count) : undefined;
      if (typeof count !== "number") throw malformed(endpoint, "no count");
      return count;
    },
    signal,
  );
}

function usageTokens(answer: unknown): number {
  const usage = isRecord(answer) && isRecord(answer.usage) ? answer.usage : {};
  const tokens = usage.prompt_tokens ?? usage.total_tokens;
  return typeof tokens === "number" ? tokens : 0;
}

function isNumbers(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => typeof v === "number");
}

function malformed(endpoint: Endpoint, what: string): EndpointFailure {
  return new EndpointFailure(`${endpoint.url}: answered something unusable (${what})`, "server_error");
}
