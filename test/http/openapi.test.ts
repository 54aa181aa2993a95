/**
 * GET /openapi.json: an OpenAPI 3.1 document of every route the server registers, generated from the schemas that
 * validate the requests. Checked against the running server itself: its registered routes (none left out, none
 * invented), its access table (a route the document calls open answers without a key, the others 401), what its
 * validators accept (a body the document's schema rejects gets a 400, one it accepts does not) and the error bodies
 * it sends (they match the documented shape of their protocol). The document's structure is checked here (no
 * OpenAPI validator is a dependency): version, every $ref resolves, every schema compiles as JSON Schema 2020-12,
 * every operation has responses, security names exist, path templates and parameters agree. The engine is the fake
 * one: no request here reaches a model (the model named is absent, so a body that passes validation gets a 404).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { z } from "zod";
import { buildOpenApiDocument, documentedRoutes, undescribedRoutes } from "../../src/api/openapi/document.js";
import { standaloneSchema } from "../../src/api/openapi/json-schema.js";
import { OPERATIONS } from "../../src/api/openapi/operations.js";
import { messageSchema } from "../../src/api/ollama/schemas.js";
import { routeAccess, type RegisteredRoute } from "../../src/auth/route-access.js";
import { version } from "../../src/version.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { startServer, type TestServer } from "../helpers/start-server.js";

type Json = Record<string, any>;

const ADMIN_KEY = "an-admin-key-for-the-openapi-test-0123456789";
/** The document's id for the validator, which resolves the `#/components/…` references against it. */
const DOC_ID = "https://ai-server.test/openapi.json";
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

let server: TestServer;
let doc: Json;
let text: string;
let ajv: Ajv2020;

before(async () => {
  // A key is in force: routes that need one answer 401 without it.
  server = await startServer({ engine: new FakeEngine(), config: { adminKey: ADMIN_KEY } });
  const response = await fetch(`${server.baseUrl}/openapi.json`);
  assert.equal(response.status, 200, "GET /openapi.json needs no key");
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  text = await response.text();
  doc = JSON.parse(text);
  ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  ajv.addSchema(doc, DOC_ID);
});

after(async () => {
  await server.close();
});

/** `[method, path, operation]` for every operation of the document. */
function operations(): Array<[string, string, Json]> {
  return Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).filter(([method]) => METHODS.includes(method)).map(([method, op]) => [method, path, op as Json] as [string, string, Json]),
  );
}

/** The object a `$ref` (`#/components/…`) points at, or the node itself. */
function resolve(node: Json): Json {
  if (typeof node.$ref !== "string") return node;
  return node.$ref.slice(2).split("/").reduce((at: Json | undefined, part: string) => at?.[part], doc) as Json;
}

/** The JSON body schema of an operation's answer with this status (else its default). */
function answerSchema(op: Json, status: number | string): Json | undefined {
  return resolve(op.responses[String(status)] ?? op.responses.default).content?.["application/json"]?.schema;
}

/** A validator for a schema of the document, `$ref`s resolved against it. */
function validatorFor(schema: Json): ValidateFunction {
  const rebased = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', `"${DOC_ID}#/components/`));
  return ajv.compile(rebased);
}

/** Whether a registered route (Fastify's pattern) is this document path: `:x` ↔ `{x}`, a trailing `*` ↔ `{anything}`. */
function matches(route: RegisteredRoute, path: string): boolean {
  const pattern = route.url.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
  return pattern.endsWith("*") ? new RegExp(`^${escape(pattern.slice(0, -1))}\\{[^/{}]+\\}$`).test(path) : pattern === path;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("the document", () => {
  test("is an OpenAPI 3.1 document of this server, built once", async () => {
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.info.title, "ai-server");
    assert.equal(doc.info.version, version);
    assert.deepEqual(doc.servers, [{ url: "/", description: "This server" }]);
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ["apiKey", "bearer"]);
    assert.deepEqual(doc.components.securitySchemes.apiKey, { type: "apiKey", in: "header", name: "x-api-key", description: doc.components.securitySchemes.apiKey.description });
    assert.equal(doc.components.securitySchemes.bearer.scheme, "bearer");
    // Cached: the same bytes again (a rebuilt document would be equal too, but not by a cheap path; see routes.ts).
    assert.equal(await (await fetch(`${server.baseUrl}/openapi.json`)).text(), text);
  });

  test("covers every route the server registers, and only those", () => {
    const registered = server.app.http.registeredRoutes;
    const documented = documentedRoutes(registered);
    // Left out: the CORS preflight, and the HEAD twin Fastify adds to every GET route but GET /api/blobs/:digest
    // (registered after a HEAD route of its own).
    const gets = registered.filter((r) => r.method === "GET").length;
    assert.equal(registered.length - documented.length, gets, "only OPTIONS * and the HEAD twins are left out");
    assert.ok(documented.some((r) => r.method === "HEAD" && r.url === "/api/blobs/:digest"), "a HEAD route of its own is kept");

    const missing = documented.filter((route) => !operations().some(([method, path]) => method === route.method.toLowerCase() && matches(route, path)));
    assert.deepEqual(missing.map((r) => `${r.method} ${r.url}`), [], "registered routes missing from the document");
    const invented = operations().filter(([method, path]) => !documented.some((route) => method === route.method.toLowerCase() && matches(route, path)));
    assert.deepEqual(invented.map(([m, p]) => `${m} ${p}`), [], "operations of routes the server does not register");
    for (const path of ["/v1/models/{model}", "/v1/responses/{response_id}", "/api/jobs/{id}/events", "/api/blobs/{digest}", "/openapi.json"]) assert.ok(doc.paths[path], path);
    for (const path of Object.keys(doc.paths)) assert.doesNotMatch(path, /[:*]/, `${path}: in OpenAPI form`);
  });

  test("describes every registered route (add a new one to src/api/openapi/operations.ts), and no route that is gone", () => {
    const registered = server.app.http.registeredRoutes;
    assert.deepEqual(undescribedRoutes(registered), [], "routes with no entry in OPERATIONS");
    const keys = new Set(documentedRoutes(registered).map((r) => `${r.method} ${r.url}`));
    assert.deepEqual(Object.keys(OPERATIONS).filter((key) => !keys.has(key)), [], "OPERATIONS entries of routes the server does not register");
  });

  test("is sound: every $ref resolves, schemas are JSON Schema 2020-12, operations have responses, names exist", () => {
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === "object") {
        for (const [key, value] of Object.entries(node)) {
          if (key === "$ref" && typeof value === "string") refs.push(value);
          else walk(value);
        }
      }
    };
    walk(doc);
    assert.ok(refs.length > 50, `refs found (${refs.length})`);
    for (const ref of new Set(refs)) {
      assert.match(ref, /^#\//, ref);
      const target = ref.slice(2).split("/").reduce<unknown>((at, part) => (at as Json | undefined)?.[part.replaceAll("~1", "/").replaceAll("~0", "~")], doc);
      assert.ok(target !== undefined, `${ref} resolves`);
    }

    for (const [name, schema] of Object.entries(doc.components.schemas as Json)) {
      assert.equal(ajv.validateSchema(schema), true, `${name}: ${ajv.errorsText(ajv.errors)}`);
      assert.equal(schema.$schema, undefined, `${name}: no $schema inside the document`);
      validatorFor(schema); // compiles, its refs resolved
    }

    const tags = new Set((doc.tags as Json[]).map((t) => t.name));
    const schemes = new Set(Object.keys(doc.components.securitySchemes));
    const ids = new Set<string>();
    for (const [method, path, op] of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.ok(typeof op.operationId === "string" && !ids.has(op.operationId), `${where}: a unique operationId`);
      ids.add(op.operationId);
      assert.ok(op.tags.length === 1 && tags.has(op.tags[0]), `${where}: a declared tag`);
      assert.ok(typeof op.summary === "string" && op.summary.length > 0, `${where}: a summary`);
      const statuses = Object.keys(op.responses);
      assert.ok(statuses.some((s) => /^2\d\d$/.test(s)), `${where}: a success response`);
      assert.ok(statuses.includes("default"), `${where}: a default (error) response`);
      for (const [status, response] of Object.entries(op.responses as Json)) {
        assert.match(status, /^([1-5]\d\d|default)$/, where);
        assert.ok(typeof resolve(response).description === "string" && resolve(response).description.length > 0, `${where} ${status}: a description`);
      }
      assert.ok(Array.isArray(op.security), `${where}: its security stated`);
      for (const requirement of op.security) for (const name of Object.keys(requirement)) assert.ok(schemes.has(name), `${where}: scheme ${name}`);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = ((op.parameters ?? []) as Json[]).filter((p) => p.in === "path").map((p) => p.name).sort();
      assert.deepEqual(declared, templated, `${where}: path parameters`);
      for (const parameter of (op.parameters ?? []) as Json[]) if (parameter.in === "path") assert.equal(parameter.required, true, `${where}: ${parameter.name} required`);
    }
    assert.ok(ids.size >= 40, `operations (${ids.size})`);
  });

  test("tags each route by its protocol", () => {
    const tagOf = (method: string, path: string): string => doc.paths[path][method].tags[0];
    assert.equal(tagOf("post", "/api/chat"), "Ollama");
    assert.equal(tagOf("post", "/v1/chat/completions"), "OpenAI");
    assert.equal(tagOf("post", "/v1/messages"), "Anthropic");
    assert.equal(tagOf("post", "/api/keys"), "admin");
    assert.equal(tagOf("get", "/api/audit"), "admin");
    assert.equal(tagOf("get", "/health"), "server");
    assert.equal(tagOf("get", "/openapi.json"), "server");
  });
});

describe("security", () => {
  test("follows the access table: open routes need nothing, admin routes name the admin role", () => {
    for (const route of documentedRoutes(server.app.http.registeredRoutes)) {
      const entry = operations().find(([method, path]) => method === route.method.toLowerCase() && matches(route, path));
      assert.ok(entry, `${route.method} ${route.url}`);
      const [, , op] = entry;
      const access = routeAccess(route.method, route.url);
      assert.equal(op["x-access"], access, `${route.method} ${route.url}`);
      const roles = access === "admin" || access === "keys" ? ["admin"] : [];
      assert.deepEqual(op.security, access === "open" ? [] : [{ bearer: roles }, { apiKey: roles }], `${route.method} ${route.url}`);
      assert.equal(op.responses["401"] !== undefined, access !== "open", `${route.method} ${route.url}: 401 documented`);
    }
    assert.deepEqual(doc.paths["/openapi.json"].get.security, [], "the document itself is open");
  });

  test("what the document says is what the server does: open routes answer without a key, the others 401 in the documented shape", async () => {
    let checked = 0;
    for (const [method, path, op] of operations()) {
      if (method !== "get" || path.includes("{")) continue;
      const response = await fetch(`${server.baseUrl}${path}`);
      const body = await response.text();
      if (op.security.length === 0) assert.notEqual(response.status, 401, `GET ${path} is documented open`);
      else {
        assert.equal(response.status, 401, `GET ${path} is documented as needing a key`);
        const validate = validatorFor(answerSchema(op, 401)!);
        assert.ok(validate(JSON.parse(body)), `GET ${path}: ${body} matches the documented 401 (${ajv.errorsText(validate.errors)})`);
      }
      checked++;
    }
    assert.ok(checked >= 12, `GET routes checked (${checked})`);
  });
});

/** A body, and whether the document (and so the server) should accept it. */
type Sample = [path: string, body: Json, accepted: boolean];

const SAMPLES: Sample[] = [
  ["/api/chat", { model: "absent", messages: [{ role: "user", content: "hi" }], stream: false, options: { temperature: null, num_ctx: 512 }, think: null }, true],
  ["/api/chat", { model: "absent", messages: [{ role: "USER", content: "hi", images: null }], format: { type: "object" }, keep_alive: "5m" }, true],
  ["/api/chat", { model: "absent", messages: "hi" }, false],
  ["/api/chat", { model: "absent", messages: [{ role: "user", content: "hi" }], top_logprobs: 21 }, false],
  ["/api/chat", { model: "absent", messages: [{ content: "hi" }] }, false],
  ["/api/generate", { model: "absent", prompt: "hi", keep_alive: 0, format: "json", context: [1, 2] }, true],
  ["/api/generate", { model: "absent", prompt: 42 }, false],
  ["/api/embed", { model: "absent", input: ["a", "b"], truncate: null }, true],
  ["/api/embed", { model: "absent", input: 3 }, false],
  ["/api/detokenize", { model: "absent", tokens: [1, 2] }, true],
  ["/api/detokenize", { model: "absent", tokens: [-1] }, false],
  ["/api/detokenize", { model: "absent" }, false],
  ["/api/show", { model: "absent", verbose: null }, true],
  ["/api/show", { model: 5 }, false],
  ["/api/copy", { source: "absent", destination: "other" }, true],
  ["/api/copy", { source: "absent" }, false],
  ["/api/keys", { name: "from-the-openapi-test", scope: "inference", rpm: null, models: ["m"] }, true],
  ["/api/keys", { name: "from-the-openapi-test", scope: "root" }, false],
  ["/api/keys", { name: "from-the-openapi-test", scope: "inference", rpm: 0 }, false],
  ["/v1/chat/completions", { model: "absent", messages: [{ role: "user", content: "hi" }], temperature: null, tools: null, n: 1, stream: false }, true],
  ["/v1/chat/completions", { model: "absent", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }], response_format: { type: "json_object" } }, true],
  ["/v1/chat/completions", { model: "absent", messages: [] }, false],
  ["/v1/chat/completions", { model: "absent", messages: [{ role: "robot", content: "hi" }] }, false],
  ["/v1/chat/completions", { model: "absent", messages: [{ role: "user", content: "hi" }], temperature: 3 }, false],
  ["/v1/chat/completions", { model: "absent", messages: [{ role: "user", content: "hi" }], response_format: { type: "xml" } }, false],
  ["/v1/completions", { model: "absent", prompt: [1, 2, 3], max_tokens: 4 }, true],
  ["/v1/completions", { model: "absent" }, false],
  ["/v1/embeddings", { model: "absent", input: "x", encoding_format: "base64" }, true],
  ["/v1/embeddings", { model: "absent", input: "x", encoding_format: "hex" }, false],
  ["/v1/rerank", { model: "absent", query: "q", documents: ["a", { text: "b" }], top_n: 1 }, true],
  ["/rerank", { model: "absent", query: "q", documents: [] }, false],
  ["/v1/responses", { model: "absent", input: [{ role: "user", content: "hi" }], store: false, temperature: null }, true],
  ["/v1/responses", { model: "absent", input: 5 }, false],
  ["/v1/responses", { model: "absent", input: "hi", truncation: "sometimes" }, false],
  ["/v1/messages", { model: "absent", max_tokens: 16, messages: [{ role: "user", content: "hi" }], temperature: null, thinking: { type: "enabled", budget_tokens: 64 } }, true],
  ["/v1/messages", { model: "absent", messages: [{ role: "user", content: "hi" }] }, false],
  ["/v1/messages", { model: "absent", max_tokens: 16, messages: [{ role: "user", content: "hi" }], temperature: 1.5 }, false],
  ["/v1/messages/count_tokens", { model: "absent", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] }, true],
  ["/v1/messages/count_tokens", { model: "absent", messages: [] }, false],
];

describe("request bodies", () => {
  test("the document's schema accepts what the server accepts and rejects what it refuses; errors have the documented shape", async () => {
    for (const [path, body, accepted] of SAMPLES) {
      const op = doc.paths[path].post;
      const validate = validatorFor(op.requestBody.content["application/json"].schema);
      const what = `POST ${path} ${JSON.stringify(body)}`;
      assert.equal(validate(body), accepted, `${what}: the document ${accepted ? "accepts" : "rejects"} it (${ajv.errorsText(validate.errors)})`);

      const response = await fetch(`${server.baseUrl}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = JSON.parse(await response.text()) as unknown;
      if (accepted) assert.ok(response.status === 404 || response.status === 201, `${what}: the server accepts it (${response.status} ${JSON.stringify(answer)})`);
      else assert.equal(response.status, 400, `${what}: the server refuses it (${JSON.stringify(answer)})`);
      const schema = answerSchema(op, response.status);
      if (response.status >= 400) {
        assert.ok(schema, `${what}: ${response.status} has a documented body`);
        const check = validatorFor(schema);
        assert.ok(check(answer), `${what}: ${JSON.stringify(answer)} has the documented shape (${ajv.errorsText(check.errors)})`);
      }
    }
  });

  test("each protocol's errors are documented in its own shape", () => {
    const errorOf = (path: string, method = "post"): string => answerSchema(doc.paths[path][method], "default")!.$ref;
    assert.equal(errorOf("/api/chat"), "#/components/schemas/OllamaError");
    assert.equal(errorOf("/api/keys"), "#/components/schemas/OllamaError");
    assert.equal(errorOf("/v1/chat/completions"), "#/components/schemas/OpenAIError");
    assert.equal(errorOf("/rerank"), "#/components/schemas/OpenAIError");
    assert.equal(errorOf("/v1/models/{model}", "get"), "#/components/schemas/OpenAIError");
    assert.equal(errorOf("/v1/messages"), "#/components/schemas/AnthropicError");
    assert.equal(errorOf("/v1/messages/count_tokens"), "#/components/schemas/AnthropicError");
    const limited = resolve(doc.paths["/v1/chat/completions"].post.responses["429"]);
    assert.ok(limited.headers["Retry-After"] && limited.headers["retry-after-ms"], "429 with its headers");
    assert.equal(doc.paths["/health"].get.responses["429"], undefined, "probes are not rate limited");
  });

  test("the Responses API's input items and tools are spelled out by their own schemas", () => {
    const input = doc.components.schemas.OpenAIResponsesRequest.properties.input;
    const list = input.anyOf.find((branch: Json) => branch.type === "array");
    assert.deepEqual(list.items.anyOf.map((r: Json) => r.$ref.split("/").pop()), [
      "ResponsesMessageItem",
      "ResponsesFunctionCallItem",
      "ResponsesFunctionCallOutputItem",
      "ResponsesReasoningItem",
      "ResponsesItemReference",
    ]);
    const validate = validatorFor({ $ref: "#/components/schemas/OpenAIResponsesRequest" });
    assert.equal(validate({ model: "m", input: [{ type: "function_call_output", call_id: "c", output: "42" }] }), true);
    assert.equal(validate({ model: "m", input: [{ type: "function_call", name: "f" }] }), false, "a call needs its call_id and arguments");
  });
});

describe("zod → JSON Schema", () => {
  test("the input side: transforms and preprocessing document what a client sends; null is allowed where it counts as absent", () => {
    const role = (standaloneSchema(messageSchema) as Json).properties.role;
    assert.deepEqual(role, { type: "string" }, "role is lower-cased by a transform: any string goes in");
    const json: Json = standaloneSchema(z.object({ a: z.string(), b: z.preprocess((v) => (v === null ? undefined : v), z.string().optional()), c: z.string().optional() }));
    assert.deepEqual(json.properties.a, { type: "string" });
    assert.deepEqual(json.properties.b, { type: ["string", "null"] });
    assert.deepEqual(json.properties.c, { type: "string" }, "a plain optional takes no null");
    assert.deepEqual(json.required, ["a"]);
  });

  test("a part JSON Schema cannot express becomes {} with a description, never an exception", () => {
    const json: Json = standaloneSchema(z.object({ when: z.date(), big: z.bigint(), custom: z.custom<string>((v) => typeof v === "string") }));
    for (const key of ["when", "big", "custom"]) {
      assert.deepEqual(Object.keys(json.properties[key]), ["description"], key);
      assert.match(json.properties[key].description, /cannot be written as JSON Schema/, key);
    }
  });

  test("a route missing from the operations table still appears, with its access and errors, and is reported", () => {
    const routes: RegisteredRoute[] = [
      { method: "GET", url: "/health" },
      { method: "HEAD", url: "/health" },
      { method: "POST", url: "/api/something-new/:name" },
      { method: "GET", url: "/v1/things/*" },
    ];
    assert.deepEqual(undescribedRoutes(routes), ["POST /api/something-new/:name", "GET /v1/things/*"]);
    const built = buildOpenApiDocument(routes);
    assert.deepEqual(Object.keys(built.paths), ["/health", "/api/something-new/{name}", "/v1/things/{path}"]);
    const added = built.paths["/api/something-new/{name}"]!.post!;
    assert.equal(added["x-access"], "admin", "unlisted routes need an admin key");
    assert.deepEqual(added.parameters, [{ name: "name", in: "path", required: true, schema: { type: "string" } }]);
    const things = built.paths["/v1/things/{path}"]!.get! as Json;
    assert.deepEqual(things.responses.default, { $ref: "#/components/responses/OpenAIOther" });
    assert.equal((built.components as Json).responses.OpenAIOther.content["application/json"].schema.$ref, "#/components/schemas/OpenAIError");
  });
});
