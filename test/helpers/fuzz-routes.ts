import type { z } from "zod";
import { newKeySchema } from "../../src/api/admin/keys.js";
import { countTokensSchema, messagesSchema } from "../../src/api/anthropic/schemas.js";
import {
  chatSchema,
  copySchema,
  createSchema,
  deleteSchema,
  detokenizeSchema,
  embeddingsSchema as ollamaEmbeddingsSchema,
  embedSchema,
  generateSchema,
  jobSchema,
  pullSchema,
  showSchema,
  tokenizeSchema,
} from "../../src/api/ollama/schemas.js";
import { embeddingsSchema } from "../../src/api/openai/embeddings.js";
import { rerankSchema } from "../../src/api/openai/rerank.js";
import { responsesSchema } from "../../src/api/openai/responses-schema.js";
import { chatCompletionSchema, completionSchema } from "../../src/api/openai/schemas.js";

/** The error shape a route answers in: Ollama `{"error": "…"}`, OpenAI `{"error": {"message", …}}`, Anthropic's. */
export type Protocol = "ollama" | "openai" | "anthropic";

/**
 * The protocol of a path, as the API documentation states it: Anthropic's for `/v1/messages` and below, OpenAI's for
 * the rest of `/v1/` and `/rerank`, Ollama's (and the admin routes', which share it) everywhere else.
 */
export function protocolOf(path: string): Protocol {
  const bare = path.split("?")[0] ?? path;
  if (bare === "/v1/messages" || bare.startsWith("/v1/messages/")) return "anthropic";
  if (bare.startsWith("/v1/") || bare === "/rerank") return "openai";
  return "ollama";
}

/** What the fuzzer knows of one registered route. */
export interface FuzzRoute {
  method: string;
  /** The pattern as registered (`/api/jobs/:id`). */
  url: string;
  /** A concrete path for it; a model named in it or in `base` is one of the fake server's. */
  path: string;
  /** The path with its parameter (or the rest of the path) replaced, for odd names. */
  pathWith?: (segment: string) => string;
  /** The schema the handler validates the body with: a body it refuses must get a 400. */
  schema?: z.ZodType;
  /** A body the schema accepts. */
  base?: Record<string, unknown>;
  /** The body fields that name a model (odd names go there). */
  modelFields?: string[];
  /** The body is a raw byte stream (a blob upload), not JSON. */
  raw?: boolean;
  /**
   * Only bodies the schema refuses may be sent: a valid one would change the server under test (a key created turns
   * authentication on).
   */
  onlyInvalid?: boolean;
}

const user = [{ role: "user", content: "Hi" }];
/** A digest no blob has. */
export const ABSENT_DIGEST = `sha256:${"0".repeat(64)}`;

/**
 * Per route: its schema and a valid body. Bodies name the fake server's models (`chat`, `embedder`) so that a request
 * the fuzzer makes valid by chance goes all the way through (the fake engine answers); admin bodies name models that
 * do not exist or fresh names, so that nothing the later checks use is removed.
 */
const KNOWN: Record<string, Omit<FuzzRoute, "method" | "url">> = {
  "GET /": { path: "/" },
  "GET /health": { path: "/health" },
  "GET /ready": { path: "/ready" },
  "GET /metrics": { path: "/metrics" },
  "GET /openapi.json": { path: "/openapi.json" },
  "GET /api/version": { path: "/api/version" },
  "GET /api/tags": { path: "/api/tags" },
  "GET /api/ps": { path: "/api/ps" },
  "GET /api/audit": { path: "/api/audit" },
  "POST /api/show": { path: "/api/show", schema: showSchema, base: { model: "chat" }, modelFields: ["model", "name"] },
  "POST /api/generate": {
    path: "/api/generate",
    schema: generateSchema,
    base: { model: "chat", prompt: "Hi", stream: false, options: { temperature: 0.5, num_predict: 8 } },
    modelFields: ["model", "name"],
  },
  "POST /api/chat": {
    path: "/api/chat",
    schema: chatSchema,
    base: { model: "chat", messages: user, stream: false, options: { num_predict: 8 }, tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }] },
    modelFields: ["model", "name"],
  },
  "POST /api/embed": { path: "/api/embed", schema: embedSchema, base: { model: "embedder", input: ["Hi", "there"] }, modelFields: ["model", "name"] },
  "POST /api/embeddings": { path: "/api/embeddings", schema: ollamaEmbeddingsSchema, base: { model: "embedder", prompt: "Hi" }, modelFields: ["model", "name"] },
  "POST /api/tokenize": { path: "/api/tokenize", schema: tokenizeSchema, base: { model: "chat", content: "Hi there" }, modelFields: ["model", "name"] },
  "POST /api/detokenize": { path: "/api/detokenize", schema: detokenizeSchema, base: { model: "chat", tokens: [1, 2] }, modelFields: ["model", "name"] },
  "POST /api/create": { path: "/api/create", schema: createSchema, base: { model: "fuzz-made", from: "chat", stream: false }, modelFields: ["model", "from"] },
  "POST /api/copy": { path: "/api/copy", schema: copySchema, base: { source: "chat", destination: "fuzz-copy" }, modelFields: ["source", "destination"] },
  "DELETE /api/delete": { path: "/api/delete", schema: deleteSchema, base: { model: "fuzz-absent" }, modelFields: ["model", "name"] },
  "POST /api/pull": { path: "/api/pull", schema: pullSchema, base: { model: "nobody/nothing", stream: false }, modelFields: ["model", "name"] },
  "POST /api/jobs": { path: "/api/jobs", schema: jobSchema, base: { type: "pull", model: "nobody/nothing" }, modelFields: ["model", "name"] },
  "GET /api/jobs": { path: "/api/jobs?state=running" },
  "GET /api/jobs/:id": { path: "/api/jobs/abc123", pathWith: (s) => `/api/jobs/${s}` },
  "GET /api/jobs/:id/events": { path: "/api/jobs/abc123/events", pathWith: (s) => `/api/jobs/${s}/events` },
  "DELETE /api/jobs/:id": { path: "/api/jobs/abc123", pathWith: (s) => `/api/jobs/${s}` },
  "HEAD /api/blobs/:digest": { path: `/api/blobs/${ABSENT_DIGEST}`, pathWith: (s) => `/api/blobs/${s}`, raw: true },
  "POST /api/blobs/:digest": { path: `/api/blobs/${ABSENT_DIGEST}`, pathWith: (s) => `/api/blobs/${s}`, raw: true },
  "GET /api/blobs/:digest": { path: `/api/blobs/${ABSENT_DIGEST}`, pathWith: (s) => `/api/blobs/${s}` },
  "POST /v1/chat/completions": {
    path: "/v1/chat/completions",
    schema: chatCompletionSchema,
    base: { model: "chat", messages: user, max_tokens: 8, tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }] },
    modelFields: ["model"],
  },
  "POST /v1/completions": { path: "/v1/completions", schema: completionSchema, base: { model: "chat", prompt: "Hi", max_tokens: 8 }, modelFields: ["model"] },
  "POST /v1/embeddings": { path: "/v1/embeddings", schema: embeddingsSchema, base: { model: "embedder", input: "Hi" }, modelFields: ["model"] },
  "POST /v1/rerank": { path: "/v1/rerank", schema: rerankSchema, base: { model: "embedder", query: "q", documents: ["a", { text: "b" }] }, modelFields: ["model"] },
  "POST /rerank": { path: "/rerank", schema: rerankSchema, base: { model: "embedder", query: "q", documents: ["a"] }, modelFields: ["model"] },
  "GET /v1/models": { path: "/v1/models" },
  "GET /api/whoami": { path: "/api/whoami" },
  "GET /ui": { path: "/ui" },
  // The dashboard's files are `assets/<name>` (an empty rest is the page itself): odd names go where a file's name is.
  "GET /ui/*": { path: "/ui/assets/app.css", pathWith: (s) => `/ui/assets/${s}` },
  "GET /v1/models/*": { path: "/v1/models/chat", pathWith: (s) => `/v1/models/${s}` },
  "POST /v1/responses": {
    path: "/v1/responses",
    schema: responsesSchema,
    base: { model: "chat", input: [{ role: "user", content: "Hi" }], max_output_tokens: 8, store: false },
    modelFields: ["model"],
  },
  "GET /v1/responses/*": { path: "/v1/responses/resp_none", pathWith: (s) => `/v1/responses/${s}` },
  "DELETE /v1/responses/*": { path: "/v1/responses/resp_none", pathWith: (s) => `/v1/responses/${s}` },
  "POST /v1/messages": {
    path: "/v1/messages",
    schema: messagesSchema,
    base: { model: "chat", max_tokens: 8, messages: user, system: "Be brief." },
    modelFields: ["model"],
  },
  "POST /v1/messages/count_tokens": { path: "/v1/messages/count_tokens", schema: countTokensSchema, base: { model: "chat", messages: user }, modelFields: ["model"] },
  "POST /api/keys": { path: "/api/keys", schema: newKeySchema, base: { name: "fuzz", scope: "inference" }, onlyInvalid: true },
  "GET /api/keys": { path: "/api/keys" },
  "DELETE /api/keys/:id": { path: "/api/keys/nokey", pathWith: (s) => `/api/keys/${s}` },
};

/**
 * The routes to fuzz: every route the server registered (from `registeredRoutes`), but CORS's preflight and the HEAD
 * routes Fastify adds for each GET (fuzzed through their GET). A route this table does not know yet is still fuzzed
 * (its path from the pattern, no schema), and listed in `unknown` so that a test can say so.
 */
export function fuzzRoutes(registered: ReadonlyArray<{ method: string; url: string }>): { routes: FuzzRoute[]; unknown: string[] } {
  const routes: FuzzRoute[] = [];
  const unknown: string[] = [];
  const seen = new Set<string>();
  for (const { method, url } of registered) {
    const key = `${method} ${url}`;
    if (method === "OPTIONS" || seen.has(key)) continue;
    if (method === "HEAD" && KNOWN[key] === undefined) continue;
    seen.add(key);
    const known = KNOWN[key];
    if (known === undefined) unknown.push(key);
    const path = url.replace(/:\w+/g, "x").replace("*", "x");
    routes.push({ method, url, ...(known ?? { path, ...(url.includes(":") || url.includes("*") ? { pathWith: (s: string) => url.replace(/:\w+|\*/, s) } : {}) }) });
  }
  return { routes, unknown };
}
