/** The access table covers every route the server registers; a route missing from it needs an admin key. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { classified, routeAccess, ROUTE_ACCESS } from "../../src/auth/route-access.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startServer, type TestServer } from "../helpers/start-server.js";

let server: TestServer;

before(async () => {
  server = await startServer({ engine: new FakeEngine() });
});

after(async () => {
  await server.close();
});

test("every registered route, HEAD routes included, is classified in ROUTE_ACCESS", () => {
  const routes = server.app.http.registeredRoutes;
  assert.ok(routes.length > 30, `the routes were recorded (${routes.length})`);
  const unclassified = routes.filter((route) => classified(route.method, route.url) === undefined).map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(unclassified, [], `add these to ROUTE_ACCESS in src/auth/route-access.ts: ${unclassified.join(", ")}`);
});

test("the recorder sees the routes of every plugin: Ollama, OpenAI, admin, metrics, CORS preflight, Fastify's HEAD", () => {
  const seen = new Set(server.app.http.registeredRoutes.map((r) => `${r.method} ${r.url}`));
  for (const route of ["POST /api/generate", "POST /v1/chat/completions", "POST /api/keys", "DELETE /api/keys/:id", "GET /metrics", "OPTIONS *", "HEAD /api/tags"]) {
    assert.ok(seen.has(route), route);
  }
});

test("a route missing from the table needs an admin key; HEAD follows GET unless listed", () => {
  assert.equal(routeAccess("POST", "/api/something-new"), "admin");
  assert.equal(routeAccess("GET", "/v1/something-new"), "admin");
  assert.equal(routeAccess("HEAD", "/api/tags"), "inference");
  assert.equal(routeAccess("HEAD", "/api/blobs/:digest"), "admin");
  assert.equal(routeAccess("GET", "/health"), "open");
  assert.equal(routeAccess("GET", "/metrics"), "metrics");
  assert.equal(routeAccess("DELETE", "/api/keys/:id"), "keys");
});

test("the scopes follow the issue: inference for using and listing models, admin for changing what the server holds", () => {
  const inference = Object.entries(ROUTE_ACCESS).filter(([, access]) => access === "inference").map(([route]) => route);
  for (const route of inference) assert.match(route, /^(GET|POST|DELETE) (\/v1\/|\/rerank$|\/api\/(version|tags|show|ps|generate|chat|embed|embeddings|tokenize|detokenize|whoami)$)/, route);
  for (const route of ["POST /api/pull", "POST /api/create", "DELETE /api/delete", "POST /api/copy", "GET /api/jobs", "POST /api/blobs/:digest", "GET /api/audit"]) {
    assert.equal(ROUTE_ACCESS[route], "admin", route);
  }
});
