import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, fetch } from "undici";
import { ensureFixtures } from "../fixtures/models.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";
import { startServeProcess } from "../helpers/serve-process.js";
import { createModel, postJson } from "../helpers/start-server.js";

// Graceful shutdown. In process, on the fake engine (its tokens come on a schedule, so a request is surely running
// when the shutdown begins): what the clients of running, new and late requests see. Then the real `ai-server
// serve` on a real tiny model: SIGTERM while a stream runs, the stream ends whole, the process exits 0.

/** Closes the app the way main.ts does on SIGTERM (not the test helper's close, which drops every connection). */
async function shutDown(server: FakeServer): Promise<void> {
  await server.app.close();
  await rm(server.home, { recursive: true, force: true });
}

/** One HTTP/1.1 response read off a raw socket: status, headers, body (chunked bodies decoded). */
interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits everything a socket received (pipelined responses, in order) into responses. */
function parseResponses(raw: string): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const headEnd = rest.indexOf("\r\n\r\n");
    assert.ok(headEnd >= 0, `an incomplete response head: ${JSON.stringify(rest.slice(0, 200))}`);
    const [statusLine = "", ...headerLines] = rest.slice(0, headEnd).split("\r\n");
    const headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
    rest = rest.slice(headEnd + 4);
    let body = "";
    if (headers["transfer-encoding"] === "chunked") {
      for (;;) {
        const lineEnd = rest.indexOf("\r\n");
        const size = parseInt(rest.slice(0, lineEnd), 16);
        assert.ok(Number.isFinite(size), "a chunked body cut short");
        body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
        rest = rest.slice(lineEnd + 2 + size + 2);
        if (size === 0) break;
      }
    } else {
      const length = Number(headers["content-length"] ?? 0);
      body = rest.slice(0, length);
      rest = rest.slice(length);
    }
    responses.push({ status: Number(statusLine.split(" ")[1]), headers, body });
  }
  return responses;
}

function request(method: string, route: string, body?: unknown): string {
  const payload = body === undefined ? "" : JSON.stringify(body);
  return `${method} ${route} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`;
}

test("a stream running when the shutdown begins ends whole; a request after it on its connection gets 503; new connections are refused", async () => {
  const server = await startFakeServer({ shutdownTimeoutMs: "10m" });
  const tokens = Array.from({ length: 20 }, (_, i) => ` t${i}`);
  server.engine.script = { tokens, delayMs: 20 };
  const { port } = new URL(server.baseUrl);
  const socket = net.connect(Number(port), "127.0.0.1");
  let received = "";
  const ended = new Promise<void>((resolve) => socket.on("end", resolve).on("close", resolve));
  const firstChunk = new Promise<void>((resolve) => socket.once("data", () => resolve()));
  socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
  socket.write(request("POST", "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }] }));
  await firstChunk;

  const closing = server.app.close();
  assert.equal(server.app.http.shutdown.closing, true);
  // A request on the busy connection, after the shutdown began.
  socket.write(request("GET", "/api/tags"));
  // The listener closes: a new connection is refused.
  while (server.app.http.server.listening) await sleep(5);
  await assert.rejects(fetch(`${server.baseUrl}/api/version`, { dispatcher: new Agent() }));

  await ended;
  await closing;
  const [chat, tags, ...more] = parseResponses(received);
  assert.equal(more.length, 0);
  assert.equal(chat?.status, 200);
  const lines = (chat?.body ?? "").trim().split("\n").map((line) => JSON.parse(line) as { message?: { content: string }; done: boolean; error?: string });
  assert.equal(lines.map((line) => line.message?.content ?? "").join(""), tokens.join(""), "every token arrived");
  assert.equal(lines.at(-1)?.done, true, "the stream ended normally");
  assert.equal(lines.some((line) => line.error !== undefined), false);
  assert.equal(tags?.status, 503);
  assert.equal(tags?.headers.connection, "close");
  assert.deepEqual(JSON.parse(tags?.body ?? "{}"), { error: "the server is shutting down" });
  await rm(server.home, { recursive: true, force: true });
});

test("requests still running at the end of the grace period are stopped with an error, never a normal end", async () => {
  const server = await startFakeServer({ shutdownTimeoutMs: "200ms", numParallel: 1 });
  server.engine.script = { tokens: ["x"], endless: true, delayMs: 10 };
  const ollama = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }] });
  const ollamaReader = ollama.body!.getReader();
  await ollamaReader.read(); // the first line: it runs and holds the only slot
  // Waits for the slot: still running (queued) when the grace period ends.
  const queued = postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: [{ role: "user", content: "Hi" }] });
  while (server.app.services.scheduler.requests().every((r) => r.waiting === 0)) await sleep(5);

  const closing = shutDown(server);
  let text = "";
  const decoder = new TextDecoder();
  for (let chunk = await ollamaReader.read(); !chunk.done; chunk = await ollamaReader.read()) text += decoder.decode(chunk.value, { stream: true });
  const lines = text.trim().split("\n").map((line) => JSON.parse(line) as { done?: boolean; error?: string });
  assert.deepEqual(lines.at(-1), { error: "the server is shutting down" }, "the stream ends with the error in-band");
  assert.equal(lines.some((line) => line.done === true), false, "no line says done");

  const refused = await queued;
  assert.equal(refused.status, 503);
  const body = (await refused.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, "server_shutting_down");
  await closing;
  assert.ok(server.engine.aborts >= 1, "the generation was stopped");
});

test("ai-server serve on SIGTERM lets a running stream finish whole, refuses new requests and exits 0", async () => {
  const fixtures = await ensureFixtures();
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-shutdown-"));
  // The llama-server engine: a bias on the end token (below) is refused by the in-process one.
  const engine = { AI_SERVER_ENGINE: "llama-server", AI_SERVER_LLAMA_SERVER: buildLlamaServer() };
  const server = await startServeProcess({ AI_SERVER_HOME: home, ...engine, AI_SERVER_GPU: "off", AI_SERVER_THREADS: "1", AI_SERVER_CONTEXT_LENGTH: "2048" });
  try {
    await createModel(server.baseUrl, "tiny", fixtures.tiny);
    const maxTokens = 1500;
    // The random model never ends on its own (its end token banned): exactly max_tokens tokens, well after SIGTERM.
    const response = await postJson(server.baseUrl, "/v1/chat/completions", {
      model: "tiny",
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: maxTokens,
      logit_bias: { "4": -100 },
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(response.status, 200);
    const id = response.headers.get("x-request-id");
    const reader = response.body!.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);

    server.child.kill("SIGTERM");
    await server.waitForLog(/SIGTERM received, shutting down/);
    const late = await fetch(`${server.baseUrl}/api/version`, { dispatcher: new Agent() }).then((r) => r.status, (error: Error) => error.message);
    assert.notEqual(late, 200, "a new request during the shutdown is refused (503, or the connection refused)");

    const decoder = new TextDecoder();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += decoder.decode(chunk.value, { stream: true });
    const events = text.split("\n\n").filter(Boolean).map((event) => event.replace(/^data: /, ""));
    assert.equal(events.at(-1), "[DONE]", "the stream ended normally");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event) as { choices: Array<{ finish_reason: string | null }>; usage?: { completion_tokens: number } });
    assert.equal(chunks.some((chunk) => "error" in chunk), false);
    assert.equal(chunks.flatMap((chunk) => chunk.choices).at(-1)?.finish_reason, "length");
    assert.equal(chunks.at(-1)?.usage?.completion_tokens, maxTokens, "every token was generated and sent");

    assert.deepEqual(await server.exited, { code: 0, signal: null });
    // The response was still running when the signal arrived: it completed after the shutdown began.
    const signalled = server.logs.findIndex((line) => /SIGTERM received/.test(String(line.msg)));
    const completed = server.logs.findIndex((line) => line.reqId === id && line.msg === "request completed");
    assert.ok(completed > signalled, `the request completed after SIGTERM (log lines ${completed} > ${signalled})`);
    assert.ok(server.logs.some((line) => line.msg === "stopped"));
  } finally {
    await server.kill();
    await rm(home, { recursive: true, force: true });
  }
});

test("a second signal during the shutdown exits at once", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-shutdown-"));
  const server = await startServeProcess({ AI_SERVER_HOME: home, AI_SERVER_ENGINE: "llama-cpp", AI_SERVER_GPU: "off" });
  try {
    // An upload whose body never ends: a request in progress that the 30 s grace period would wait for.
    const upload = http.request(`${server.baseUrl}/api/blobs/sha256:${"0".repeat(64)}`, { method: "POST", headers: { "content-length": "1000000" } });
    upload.on("error", () => undefined);
    upload.write("x".repeat(10));
    await server.waitForLog(/incoming request/);
    server.child.kill("SIGTERM");
    await server.waitForLog(/SIGTERM received, shutting down/);
    server.child.kill("SIGINT");
    assert.deepEqual(await server.exited, { code: 130, signal: null }, "128 + SIGINT, without waiting for the upload");
    assert.ok(server.logs.some((line) => /SIGINT received while shutting down: exiting at once/.test(String(line.msg))));
    upload.destroy();
  } finally {
    await server.kill();
    await rm(home, { recursive: true, force: true });
  }
});
