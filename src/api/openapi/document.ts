import { routeAccess, type RegisteredRoute, type RouteAccess } from "../../auth/route-access.js";
import { isAnthropicRoute, isOpenAiRoute } from "../../server/error-handler.js";
import { version } from "../../version.js";
import { jsonComponentSchemas, parametersOf, PATH_PARAMETER_SCHEMAS, QUERY_SCHEMAS, ref, type ErrorShape } from "./components.js";
import type { JsonSchema } from "./json-schema.js";
import { OPERATIONS, TAGS, type Media, type Operation, type Tag } from "./operations.js";
import { RATE_LIMITED_ACCESS } from "../../limits/rate-limits.js";

/**
 * The OpenAPI 3.1 document of the routes the server registers: one operation per route (Fastify's own HEAD twins of
 * GET routes and the CORS preflight left out), its body and parameters from the schemas the handlers validate
 * with, its security from the access table, its errors in its protocol's shape.
 */

/** The document as JSON. */
export type OpenApiDocument = Record<string, unknown> & { paths: Record<string, Record<string, JsonSchema>> };

/** The security schemes' names. */
export const SECURITY_SCHEMES = { bearer: "bearer", apiKey: "apiKey" } as const;

const MEDIA_TYPES: Record<Exclude<Media, "none">, string> = {
  json: "application/json",
  ndjson: "application/x-ndjson",
  sse: "text/event-stream",
  text: "text/plain",
  html: "text/html",
  binary: "application/octet-stream",
};

const DESCRIPTION = [
  "A self-hosted LLM inference server: Ollama's REST API, OpenAI's API (/v1) and Anthropic's Messages API on the same models, and its own administration routes.",
  "",
  "**Keys.** Send an API key as `Authorization: Bearer <key>` or `x-api-key: <key>`. Keys are required as soon as one is in force (or with AI_SERVER_AUTH=on, or on a non-loopback address); with none, on a loopback address, every route is open. Scopes: `inference` (using and listing models) and `admin` (everything); a key limited to some models sees and uses only those.",
  "",
  "**Bodies.** JSON whatever the Content-Type. `null` counts as absent; fields this server does not know are ignored (a few whose loss would change the answer are refused by name).",
  "",
  "**Errors** take the shape of the route's protocol: Ollama's and this server's own routes `{\"error\": \"…\"}`, OpenAI's `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`, Anthropic's `{\"type\": \"error\", \"error\": {\"type\", \"message\"}}`. Once a stream has begun, an error arrives in the stream.",
].join("\n");

/** Builds the document from the routes as registered (`http.registeredRoutes`). */
export function buildOpenApiDocument(routes: readonly RegisteredRoute[]): OpenApiDocument {
  const paths: OpenApiDocument["paths"] = {};
  const errorResponses = new ErrorResponses();
  for (const route of documentedRoutes(routes)) {
    const operation = OPERATIONS[`${route.method} ${route.url}`] ?? undescribed(route);
    const item = (paths[openApiPath(route.url, operation)] ??= {});
    item[route.method.toLowerCase()] = toOperationObject(route, operation, errorResponses);
  }
  return {
    openapi: "3.1.0",
    info: { title: "ai-server", version, description: DESCRIPTION },
    servers: [{ url: "/", description: "This server" }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    paths,
    components: {
      schemas: jsonComponentSchemas(),
      responses: errorResponses.components,
      securitySchemes: {
        [SECURITY_SCHEMES.bearer]: { type: "http", scheme: "bearer", description: "An API key (`ais_…`) as `Authorization: Bearer <key>`, as OpenAI's SDKs send it." },
        [SECURITY_SCHEMES.apiKey]: { type: "apiKey", in: "header", name: "x-api-key", description: "An API key as `x-api-key: <key>`, as Anthropic's SDKs send it." },
      },
    },
  };
}

/**
 * The routes an operation is written for: every registered one but the CORS preflight (`OPTIONS *`) and the HEAD
 * twin Fastify adds to each GET route (a HEAD route of its own, such as /api/blobs/:digest, stays). A twin is
 * registered right after its GET; a HEAD route registered before the GET of its path keeps Fastify from adding one.
 */
export function documentedRoutes(routes: readonly RegisteredRoute[]): RegisteredRoute[] {
  const getsSoFar = new Set<string>();
  const seen = new Set<string>();
  return routes.filter((route) => {
    const key = `${route.method} ${route.url}`;
    if (route.method === "GET") getsSoFar.add(route.url);
    if (route.method === "OPTIONS" || (route.method === "HEAD" && getsSoFar.has(route.url)) || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Registered routes no entry of OPERATIONS describes (documented only by their access and error shape). */
export function undescribedRoutes(routes: readonly RegisteredRoute[]): string[] {
  return documentedRoutes(routes).map((r) => `${r.method} ${r.url}`).filter((key) => OPERATIONS[key] === undefined);
}

/** Fastify's `/api/jobs/:id` → `/api/jobs/{id}`; a trailing `*` → `{name}` (the operation's wildcard, else `path`). */
export function openApiPath(url: string, operation?: Pick<Operation, "wildcard">): string {
  return url
    .replace(/:([A-Za-z0-9_]+)(\([^)]*\))?/g, "{$1}")
    .replace(/\*$/, `{${operation?.wildcard?.name ?? "path"}}`);
}

function toOperationObject(route: RegisteredRoute, operation: Operation, errorResponses: ErrorResponses): JsonSchema {
  const access = routeAccess(route.method, route.url);
  const errors = errorShapeOf(route.url);
  const parameters = parametersFor(route.url, operation);
  const validated = operation.body !== undefined || parameters.length > 0;
  return {
    tags: [operation.tag],
    summary: operation.summary,
    description: [operation.description, ACCESS_TEXT[access]].filter(Boolean).join("\n\n"),
    operationId: operation.operationId,
    ...(parameters.length > 0 && { parameters }),
    ...(operation.body !== undefined && { requestBody: requestBody(operation.body) }),
    responses: {
      ...Object.fromEntries(operation.answers.map((answer) => [String(answer.status), answerObject(answer.description, answer.media)])),
      ...(validated && { "400": errorResponses.ref(errors, "Invalid") }),
      ...(access !== "open" && { "401": errorResponses.ref(errors, "Unauthorized") }),
      "403": errorResponses.ref(errors, FORBIDDEN[access]),
      ...(RATE_LIMITED_ACCESS.has(access) && { "429": errorResponses.ref(errors, "RateLimited") }),
      default: errorResponses.ref(errors, "Other"),
    },
    security: securityOf(access),
    "x-access": access,
  };
}

/** The error answers, each a component per protocol shape (`OpenAIRateLimited`, …). */
const ERROR_ANSWERS = {
  Invalid: "Invalid request: the message names the offending field",
  Unauthorized: "No API key, or one that is unknown, revoked or expired (when keys are required)",
  ForbiddenOrigin: "An Origin (AI_SERVER_ORIGINS) or Host that is not allowed",
  ForbiddenScope: "The key has the inference scope; or an Origin or Host that is not allowed",
  ForbiddenKeys: "The key has the inference scope or is limited to models; or an Origin or Host that is not allowed",
  RateLimited: "Over a rate limit of the key (or, on an open server, of the client address): requests or tokens per minute, or requests at once",
  Other: "Any other error, with its stable code (docs/errors.md): 404 unknown model or id, 503 busy or shutting down (Retry-After), 504 timeout, 507 not enough memory, …",
} as const;
type ErrorAnswer = keyof typeof ERROR_ANSWERS;

/** Why a 403: every route checks the browser's origin and the Host header; some also the key's scope. */
const FORBIDDEN: Record<RouteAccess, ErrorAnswer> = {
  open: "ForbiddenOrigin",
  metrics: "ForbiddenOrigin",
  inference: "ForbiddenOrigin",
  admin: "ForbiddenScope",
  keys: "ForbiddenKeys",
};

const SHAPE_PREFIX: Record<ErrorShape, string> = { OllamaError: "Ollama", OpenAIError: "OpenAI", AnthropicError: "Anthropic" };

/** The headers of a 429 (and the `x-ratelimit-*` ones on every counted answer of a key with per-minute limits). */
const RATE_LIMIT_HEADERS: Record<string, JsonSchema> = {
  "Retry-After": { description: "Seconds to wait", schema: { type: "integer" } },
  "retry-after-ms": { description: "Milliseconds to wait", schema: { type: "integer" } },
  "x-ratelimit-limit-requests": { description: "Requests per minute (sent with a per-minute limit; the same three with -tokens)", schema: { type: "integer" } },
  "x-ratelimit-remaining-requests": { description: "Requests left in the window", schema: { type: "integer" } },
  "x-ratelimit-reset-requests": { description: "Time until the budget is whole again (`1s`, `6m0s`)", schema: { type: "string" } },
};

/** The error answers the operations use, as components (each written once, referenced by every operation). */
class ErrorResponses {
  readonly components: Record<string, JsonSchema> = {};

  ref(shape: ErrorShape, answer: ErrorAnswer): JsonSchema {
    const name = `${SHAPE_PREFIX[shape]}${answer}`;
    this.components[name] ??= {
      description: ERROR_ANSWERS[answer],
      ...(answer === "RateLimited" && { headers: RATE_LIMIT_HEADERS }),
      content: { "application/json": { schema: ref(shape) } },
    };
    return { $ref: `#/components/responses/${name}` };
  }
}

/** Who may call it, in words. */
const ACCESS_TEXT: Record<RouteAccess, string> = {
  open: "Open: no key needed.",
  metrics: "Needs a key of any scope when keys are required, unless AI_SERVER_METRICS_OPEN=1.",
  inference: "Needs a key of any scope when keys are required; a key limited to some models gets 404 for the others.",
  admin: "Needs an `admin` key when keys are required.",
  keys: "Needs an `admin` key not limited to models when keys are required.",
};

/** An open route needs nothing; the others a key by either scheme, `admin` scope named where it is needed. */
function securityOf(access: RouteAccess): JsonSchema[] {
  if (access === "open") return [];
  const roles = access === "admin" || access === "keys" ? ["admin"] : [];
  return [{ [SECURITY_SCHEMES.bearer]: roles }, { [SECURITY_SCHEMES.apiKey]: roles }];
}

/** The error shape the server's error handler gives this route (the same test on the same URL). */
export function errorShapeOf(url: string): ErrorShape {
  if (isAnthropicRoute(url)) return "AnthropicError";
  if (isOpenAiRoute(url)) return "OpenAIError";
  return "OllamaError";
}

function parametersFor(url: string, operation: Operation): JsonSchema[] {
  const parameters: JsonSchema[] = [];
  if (operation.path !== undefined) parameters.push(...parametersOf(PATH_PARAMETER_SCHEMAS[operation.path], "path"));
  if (operation.wildcard !== undefined) {
    const { name, description } = operation.wildcard;
    parameters.push({ name, in: "path", required: true, description, schema: { type: "string" } });
  }
  if (operation.query !== undefined) parameters.push(...parametersOf(QUERY_SCHEMAS[operation.query], "query"));
  // A parameter no schema describes (an undescribed route): a string.
  for (const name of [...openApiPath(url, operation).matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string)) {
    if (!parameters.some((p) => p.in === "path" && p.name === name)) parameters.push({ name, in: "path", required: true, schema: { type: "string" } });
  }
  return parameters;
}

function requestBody(body: NonNullable<Operation["body"]>): JsonSchema {
  if (body === "binary") {
    return { required: true, description: "The file's bytes, any Content-Type", content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } } };
  }
  return { required: true, content: { "application/json": { schema: ref(body) } } };
}

function answerObject(description: string, media: readonly Media[]): JsonSchema {
  const content = Object.fromEntries(media.filter((m): m is Exclude<Media, "none"> => m !== "none").map((m) => [MEDIA_TYPES[m], {}]));
  return { description, ...(Object.keys(content).length > 0 && { content }) };
}

/** A registered route OPERATIONS does not describe yet: its access and errors are still right. */
function undescribed(route: RegisteredRoute): Operation {
  const shape = errorShapeOf(route.url);
  const tag: Tag = shape === "AnthropicError" ? "Anthropic" : shape === "OpenAIError" ? "OpenAI" : route.url.startsWith("/api/") ? "admin" : "server";
  return {
    tag,
    operationId: `${route.method.toLowerCase()}${route.url.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    summary: `${route.method} ${route.url}`,
    description: "Not described in this document yet.",
    answers: [{ status: 200, description: "Success", media: ["json"] }],
  };
}
