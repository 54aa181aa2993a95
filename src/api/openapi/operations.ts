import type { ComponentName, PATH_PARAMETER_SCHEMAS, QUERY_SCHEMAS } from "./components.js";

/**
 * What the document says of each route, by `METHOD url` as Fastify registers it (the keys of ROUTE_ACCESS). Who may
 * call a route comes from src/auth/route-access.ts, request bodies and parameters from the handlers' own schemas
 * (components.ts), error shapes from the route's protocol (src/server/error-handler.ts); this table adds only the
 * words and what a success looks like. Response bodies are described in words (docs/api.md has them whole): they
 * are built by code, not by schemas.
 */

/** The document's tags: one per protocol, ours apart. */
export const TAGS = {
  Ollama: "Ollama's REST API (and this server's additions to it: tokenize, detokenize)",
  OpenAI: "OpenAI's API under /v1: chat completions, completions, responses, embeddings, models, and reranking",
  Anthropic: "Anthropic's Messages API",
  admin: "This server's administration: background jobs, API keys, the audit log",
  server: "Liveness, readiness, metrics and this document",
} as const;
/** A tag of the document. */
export type Tag = keyof typeof TAGS;

/** How a success is sent: JSON, Ollama's NDJSON stream, server-sent events, plain text, or no body. */
export type Media = "json" | "ndjson" | "sse" | "text" | "html" | "binary" | "none";

/** One answer a client may get besides the errors. */
export interface Answer {
  status: number;
  description: string;
  /** The first is the default; a stream is a second one, chosen by the body's `stream`. */
  media: readonly Media[];
}

/** A route as the document describes it. */
export interface Operation {
  tag: Tag;
  operationId: string;
  summary: string;
  description?: string;
  /** The JSON body's schema, or raw bytes (a blob upload). */
  body?: ComponentName | "binary";
  /** Path parameters checked by a schema. */
  path?: keyof typeof PATH_PARAMETER_SCHEMAS;
  /** The name of the rest-of-the-path parameter of a `…/*` route, and what it holds. */
  wildcard?: { name: string; description: string };
  query?: keyof typeof QUERY_SCHEMAS;
  answers: readonly Answer[];
}

const json = (description: string, status = 200): Answer => ({ status, description, media: ["json"] });
/** Ollama streams NDJSON unless `stream: false`. */
const ndjson = (description: string): Answer => ({ status: 200, description, media: ["ndjson", "json"] });
/** OpenAI and Anthropic answer JSON unless `stream: true`. */
const sse = (description: string): Answer => ({ status: 200, description, media: ["json", "sse"] });
const empty = (description: string, status = 200): Answer => ({ status, description, media: ["none"] });

const MODEL_IDS = "A model's name as requests use it; names hold slashes and a colon (`hf.co/owner/repo:Q4_K_M`), sent as they are.";

/** Every described route. */
export const OPERATIONS: Readonly<Record<string, Operation>> = {
  "GET /": { tag: "server", operationId: "root", summary: "Liveness, as Ollama answers it", answers: [{ status: 200, description: "`Ollama is running`", media: ["text"] }] },
  "GET /health": {
    tag: "server",
    operationId: "health",
    summary: "Readiness with the details",
    description: "Preload progress, the load in progress, the queue, the memory budget and failed loads in their cooldown. Answers from memory, never waiting for a slot.",
    answers: [json('`{"status": "ok", …}`: start-up preloads done'), json('`{"status": "loading", …}`: start-up preloads in progress', 503)],
  },
  "GET /ready": {
    tag: "server",
    operationId: "ready",
    summary: "Readiness for a load balancer or an orchestrator",
    answers: [json('`{"status": "ready"}`'), json('`{"status": "not ready", "reasons": [...]}`: preloads in progress or the store cannot be read', 503)],
  },
  "GET /metrics": {
    tag: "server",
    operationId: "metrics",
    summary: "Prometheus metrics",
    description: "Needs a key of any scope when keys are required, unless AI_SERVER_METRICS_OPEN=1.",
    answers: [{ status: 200, description: "Prometheus text format 0.0.4 (vLLM-style names, labelled by model)", media: ["text"] }],
  },
  "GET /openapi.json": { tag: "server", operationId: "openapi", summary: "This document", answers: [json("The OpenAPI 3.1 document")] },
  "GET /ui": {
    tag: "server",
    operationId: "dashboard",
    summary: "The web dashboard",
    description: "Open: the page asks for a key itself (kept in the browser session) before any API call. 404 with AI_SERVER_UI_DIR=off; 503 when the dashboard is not built.",
    answers: [{ status: 200, description: "The dashboard's page", media: ["html"] }],
  },
  "GET /ui/*": {
    tag: "server",
    operationId: "dashboardAsset",
    summary: "The dashboard's files",
    description: "`assets/app.js`, `assets/app.css`; an empty rest (`/ui/`) is the page. Anything else is a 404.",
    wildcard: { name: "file", description: "`assets/<name>` of the built dashboard" },
    answers: [{ status: 200, description: "The file (gzipped when accepted, revalidated by ETag)", media: ["text"] }],
  },
  "GET /api/whoami": { tag: "admin", operationId: "whoAmI", summary: "Who the request's key is: scope, models, and whether keys are required", answers: [json('`{"keys_required", "key_id", "name", "scope", "models"}`')] },

  "GET /api/version": { tag: "Ollama", operationId: "ollamaVersion", summary: "The Ollama release whose API this server matches", answers: [json('`{"version": "…"}`')] },
  "GET /api/tags": { tag: "Ollama", operationId: "ollamaListModels", summary: "Local models, newest first", answers: [json('`{"models": [...]}`')] },
  "POST /api/show": { tag: "Ollama", operationId: "ollamaShowModel", summary: "A model's details, parameters, template and header metadata", body: "OllamaShowRequest", answers: [json("The model's details")] },
  "GET /api/ps": { tag: "Ollama", operationId: "ollamaListRunning", summary: "Loaded models, with their active and queued requests", answers: [json('`{"models": [...]}`')] },
  "POST /api/generate": {
    tag: "Ollama",
    operationId: "ollamaGenerate",
    summary: "Completion of a prompt",
    description: "No prompt (and no suffix) loads the model, or unloads it with `keep_alive: 0`.",
    body: "OllamaGenerateRequest",
    answers: [ndjson("Chunks as NDJSON, the last with `done: true` and the counts; one JSON object with `stream: false`")],
  },
  "POST /api/chat": {
    tag: "Ollama",
    operationId: "ollamaChat",
    summary: "Chat, with tools and thinking",
    description: "No messages loads the model, or unloads it with `keep_alive: 0`.",
    body: "OllamaChatRequest",
    answers: [ndjson("Chunks as NDJSON, the last with `done: true` and the counts; one JSON object with `stream: false`")],
  },
  "POST /api/embed": { tag: "Ollama", operationId: "ollamaEmbed", summary: "Embeddings of one or more inputs", body: "OllamaEmbedRequest", answers: [json('`{"model", "embeddings": [[…]], …}`')] },
  "POST /api/embeddings": { tag: "Ollama", operationId: "ollamaEmbeddings", summary: "One embedding (the legacy route)", body: "OllamaEmbeddingsRequest", answers: [json('`{"embedding": […]}`')] },
  "POST /api/tokenize": { tag: "Ollama", operationId: "tokenize", summary: "Text → the model's token ids (this server's)", body: "OllamaTokenizeRequest", answers: [json('`{"tokens": [ids]}`, or `{"tokens": [{"id", "piece"}…]}` with `with_pieces`')] },
  "POST /api/detokenize": { tag: "Ollama", operationId: "detokenize", summary: "Token ids → text (this server's)", body: "OllamaDetokenizeRequest", answers: [json('`{"content"}`')] },
  "POST /api/create": {
    tag: "Ollama",
    operationId: "ollamaCreateModel",
    summary: "Create a model from uploaded blobs or another model",
    body: "OllamaCreateRequest",
    answers: [ndjson("Status lines as NDJSON, ending with `success`; the last one alone with `stream: false`")],
  },
  "POST /api/copy": { tag: "Ollama", operationId: "ollamaCopyModel", summary: "Another name for a model", body: "OllamaCopyRequest", answers: [empty("Copied")] },
  "DELETE /api/delete": { tag: "Ollama", operationId: "ollamaDeleteModel", summary: "Remove a model's name (unloading it once its requests finish)", body: "OllamaDeleteRequest", answers: [empty("Deleted")] },
  "POST /api/pull": {
    tag: "Ollama",
    operationId: "ollamaPullModel",
    summary: "Pull a model by name (Hugging Face or an Ollama registry)",
    description: "Runs as a background job (see /api/jobs); disconnecting stops watching, not the pull.",
    body: "OllamaPullRequest",
    answers: [ndjson("Progress lines as NDJSON, ending with `success`; the last one alone with `stream: false`")],
  },
  "HEAD /api/blobs/:digest": {
    tag: "Ollama",
    operationId: "ollamaBlobExists",
    summary: "Whether a blob is stored",
    path: "blobDigest",
    answers: [empty("Stored"), empty("Not stored", 404)],
  },
  "POST /api/blobs/:digest": {
    tag: "Ollama",
    operationId: "ollamaUploadBlob",
    summary: "Upload a model file (streamed, not subject to the body limit)",
    path: "blobDigest",
    body: "binary",
    answers: [empty("Stored", 201), empty("Already stored")],
  },
  "GET /api/blobs/:digest": {
    tag: "admin",
    operationId: "downloadBlob",
    summary: "A stored blob's bytes (whole model weights: how a replica fetches weights it lacks from a peer)",
    description: "Content-Length, a strong ETag and `x-content-digest: sha256:<hex>`; one `Range` (with `If-Range`) resumes a transfer.",
    path: "blobDigest",
    answers: [
      { status: 200, description: "The blob", media: ["binary"] },
      { status: 206, description: "The requested byte range (`Content-Range`)", media: ["binary"] },
      empty("The range starts past the end (`Content-Range: bytes */<size>`)", 416),
    ],
  },

  "POST /api/jobs": {
    tag: "admin",
    operationId: "createJob",
    summary: "Start a pull in the background (or join the one running for that model)",
    body: "JobRequest",
    answers: [json("The job, with `Location: /api/jobs/{id}`", 202)],
  },
  "GET /api/jobs": { tag: "admin", operationId: "listJobs", summary: "Jobs, newest first", query: "jobList", answers: [json('`{"jobs": [...]}`')] },
  "GET /api/jobs/:id": { tag: "admin", operationId: "getJob", summary: "One job", path: "jobId", answers: [json("The job")] },
  "GET /api/jobs/:id/events": {
    tag: "admin",
    operationId: "jobEvents",
    summary: "A job's progress as server-sent events",
    description: "`event: job` with the job at once and on every change; ends after its final state.",
    path: "jobId",
    answers: [{ status: 200, description: "The event stream", media: ["sse"] }],
  },
  "DELETE /api/jobs/:id": { tag: "admin", operationId: "deleteJob", summary: "Cancel a job if it runs, and remove it", path: "jobId", answers: [json("The job as it ended")] },
  "POST /api/keys": {
    tag: "admin",
    operationId: "createKey",
    summary: "Create an API key",
    description: "`expires` is a span from now (`30d`, `12h`, `1w`) or a date. The key itself is in this answer only.",
    body: "KeyRequest",
    answers: [json("The key's record and `key`, shown this once", 201)],
  },
  "GET /api/keys": { tag: "admin", operationId: "listKeys", summary: "Every key (revoked and expired ones included), never a secret", answers: [json('`{"keys": [...]}`')] },
  "DELETE /api/keys/:id": { tag: "admin", operationId: "revokeKey", summary: "Revoke a key at once", path: "keyId", answers: [json("The key's record")] },

  "GET /api/audit": {
    tag: "admin",
    operationId: "listAudit",
    summary: "The audit log, newest first, filtered and paged",
    description: "`since`/`until`: an RFC 3339 time or a span back from now (`1h`, `7d`); `status`: `404` or a class (`4xx`); `cursor`: the `next_cursor` of the previous page. An unknown parameter is a 400.",
    query: "audit",
    answers: [json('`{"entries": [...], "next_cursor": "…" | null}`')],
  },

  "POST /v1/chat/completions": { tag: "OpenAI", operationId: "openaiCreateChatCompletion", summary: "Chat completions", body: "OpenAIChatCompletionRequest", answers: [sse("A chat.completion; chat.completion.chunk events ending with `data: [DONE]` with `stream: true`")] },
  "POST /v1/completions": { tag: "OpenAI", operationId: "openaiCreateCompletion", summary: "Completions (the legacy API)", body: "OpenAICompletionRequest", answers: [sse("A text_completion; chunks ending with `data: [DONE]` with `stream: true`")] },
  "POST /v1/responses": {
    tag: "OpenAI",
    operationId: "openaiCreateResponse",
    summary: "The Responses API (stored unless `store: false`)",
    body: "OpenAIResponsesRequest",
    answers: [sse("A response; its stream events (`response.created` … `response.completed`) with `stream: true`")],
  },
  "GET /v1/responses/*": {
    tag: "OpenAI",
    operationId: "openaiGetResponse",
    summary: "A stored response",
    wildcard: { name: "response_id", description: "The response's id (`resp_…`)" },
    answers: [json("The response as it was answered")],
  },
  "DELETE /v1/responses/*": {
    tag: "OpenAI",
    operationId: "openaiDeleteResponse",
    summary: "Forget a stored response",
    wildcard: { name: "response_id", description: "The response's id (`resp_…`)" },
    answers: [json('`{"id", "object": "response", "deleted": true}`')],
  },
  "POST /v1/embeddings": { tag: "OpenAI", operationId: "openaiCreateEmbeddings", summary: "Embeddings (float or base64)", body: "OpenAIEmbeddingsRequest", answers: [json('`{"object": "list", "data": [...], "model", "usage"}`')] },
  "POST /v1/rerank": { tag: "OpenAI", operationId: "rerank", summary: "Rerank documents by relevance to a query (llama-server's and vLLM's shape)", body: "RerankRequest", answers: [json('`{"results": [{"index", "relevance_score"}…], …}`, most relevant first')] },
  "POST /rerank": { tag: "OpenAI", operationId: "rerankUnversioned", summary: "The same as /v1/rerank", body: "RerankRequest", answers: [json("As /v1/rerank")] },
  "GET /v1/models": { tag: "OpenAI", operationId: "openaiListModels", summary: "Models the key may see, most recently changed first", answers: [json('`{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}…]}`')] },
  "GET /v1/models/*": {
    tag: "OpenAI",
    operationId: "openaiGetModel",
    summary: "One model",
    wildcard: { name: "model", description: MODEL_IDS },
    answers: [json('`{"id", "object": "model", "created", "owned_by"}`')],
  },

  "POST /v1/messages": {
    tag: "Anthropic",
    operationId: "anthropicCreateMessage",
    summary: "Messages",
    description: "Any `anthropic-version` and `anthropic-beta` header is accepted, and a query such as `?beta=true`.",
    body: "AnthropicMessagesRequest",
    answers: [sse("A message; its stream events (`message_start` … `message_stop`, pings while the model is silent) with `stream: true`")],
  },
  "POST /v1/messages/count_tokens": {
    tag: "Anthropic",
    operationId: "anthropicCountTokens",
    summary: "The exact prompt size of a Messages request",
    body: "AnthropicCountTokensRequest",
    answers: [json('`{"input_tokens": N}`')],
  },
};
