import type { FastifyInstance } from "fastify";

/**
 * What a route needs, in one table. `open`: nothing. `metrics`: a key of any scope, unless AI_SERVER_METRICS_OPEN.
 * `inference`: a key of any scope. `admin`: an admin key. `keys`: an admin key not limited to models (a key limited
 * to some models could otherwise make one without that limit; these bodies' `name` is a key's, not a model's).
 */
export type RouteAccess = "open" | "metrics" | "inference" | "admin" | "keys";

/**
 * Every route by `METHOD url` as Fastify registers it. HEAD falls back to GET (Fastify answers HEAD for every GET).
 * A route missing here needs an admin key (the safe default), and test/auth/route-access.test.ts fails until it is
 * added. Unloading a model by `keep_alive: 0` on generate or chat is an inference call, as in Ollama's API (its
 * `stop` command does just that).
 */
export const ROUTE_ACCESS: Readonly<Record<string, RouteAccess>> = {
  // What load balancers and probes call; CORS preflights carry no credentials by design.
  "GET /": "open",
  "GET /health": "open",
  "GET /ready": "open",
  // The API's description: the same for every deployment of a version (no models, keys or settings in it).
  "GET /openapi.json": "open",
  "OPTIONS *": "open",
  // The dashboard's static files: the page asks for a key itself (kept in the browser session) before any API call.
  "GET /ui": "open",
  "GET /ui/*": "open",
  "GET /metrics": "metrics",
  // Ollama: using and listing models.
  "GET /api/version": "inference",
  // Who the key is (the dashboard asks before showing anything).
  "GET /api/whoami": "inference",
  "GET /api/tags": "inference",
  "POST /api/show": "inference",
  "GET /api/ps": "inference",
  "POST /api/generate": "inference",
  "POST /api/chat": "inference",
  "POST /api/embed": "inference",
  "POST /api/embeddings": "inference",
  "POST /api/tokenize": "inference",
  "POST /api/detokenize": "inference",
  // OpenAI and Anthropic: every /v1 route.
  "POST /v1/chat/completions": "inference",
  "POST /v1/completions": "inference",
  "POST /v1/embeddings": "inference",
  "POST /v1/rerank": "inference",
  "POST /rerank": "inference",
  "GET /v1/models": "inference",
  "GET /v1/models/*": "inference",
  "POST /v1/responses": "inference",
  "GET /v1/responses/*": "inference",
  "DELETE /v1/responses/*": "inference",
  "POST /v1/messages": "inference",
  "POST /v1/messages/count_tokens": "inference",
  // Changing what the server holds.
  "POST /api/create": "admin",
  "POST /api/copy": "admin",
  "DELETE /api/delete": "admin",
  "POST /api/pull": "admin",
  "HEAD /api/blobs/:digest": "admin",
  "POST /api/blobs/:digest": "admin",
  // Whole model weights, for a replica fetching what it lacks from its peers.
  "GET /api/blobs/:digest": "admin",
  "POST /api/jobs": "admin",
  "GET /api/jobs": "admin",
  "GET /api/jobs/:id": "admin",
  "GET /api/jobs/:id/events": "admin",
  "DELETE /api/jobs/:id": "admin",
  "GET /api/audit": "admin",
  "POST /api/keys": "keys",
  "GET /api/keys": "keys",
  "DELETE /api/keys/:id": "keys",
};

/** The access a route needs; `url` is its pattern (`/api/jobs/:id`). Not in the table: admin. */
export function routeAccess(method: string, url: string): RouteAccess {
  return classified(method, url) ?? "admin";
}

/** The route's entry in ROUTE_ACCESS (HEAD falling back to GET), if any. */
export function classified(method: string, url: string): RouteAccess | undefined {
  return ROUTE_ACCESS[`${method} ${url}`] ?? (method === "HEAD" ? ROUTE_ACCESS[`GET ${url}`] : undefined);
}

/** One route of the server, as registered. */
export interface RegisteredRoute {
  method: string;
  url: string;
}

declare module "fastify" {
  interface FastifyInstance {
    /** Every route registered after recordRoutes ran, HEAD routes included (for checking ROUTE_ACCESS covers them). */
    registeredRoutes: RegisteredRoute[];
  }
}

/** Records every route as it is registered (call it before any route is), in `http.registeredRoutes`. */
export function recordRoutes(http: FastifyInstance): void {
  const routes: RegisteredRoute[] = [];
  http.decorate("registeredRoutes", routes);
  http.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
}
