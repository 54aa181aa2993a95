/**
 * Request ids in the log: every line logged for a request (Fastify's own, and the errors of a generation that
 * fails, streamed or not) carries `reqId`, the id sent back in `x-request-id`. The server's log lines are read
 * from its logger's stream (replaced before it listens); the engine is the fake one, failing on purpose.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import pino from "pino";
import { InternalError } from "../../src/domain/errors.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";

interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  err?: { message: string };
}

const engine = new FakeEngine();
const lines: LogLine[] = [];
let server: TestServer;

before(async () => {
  server = await startServer({
    engine,
    config: { logLevel: "info" },
    beforeListen: (app) => {
      // Request loggers are children of the server's: they write to the stream their parent holds.
      (app.http.log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) };
    },
  });
  const file = path.join(server.home, "chat.gguf");
  await writeFakeModel(file);
  await createModel(server.baseUrl, "chat", file);
});

after(() => server?.close());

test("a generation's error is logged with the request's id, streamed or not; so is every line of the request", async () => {
  engine.script = { failAfter: { events: 1, error: new InternalError("the engine failed mid-stream") } };
  try {
    const streamed = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }] }, { headers: { "content-type": "application/json", "x-request-id": "trace-stream-1" } });
    assert.match(await streamed.text(), /the engine failed mid-stream/);
    const whole = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: [{ role: "user", content: "Hi" }] }, { headers: { "content-type": "application/json", "x-request-id": "trace-whole-2" } });
    assert.equal(whole.status, 500);
    assert.equal(whole.headers.get("x-request-id"), "trace-whole-2");
  } finally {
    engine.script = {};
  }
  for (const id of ["trace-stream-1", "trace-whole-2"]) {
    const own = lines.filter((line) => line.reqId === id);
    const error = own.find((line) => line.level === 50);
    assert.equal(error?.err?.message, "the engine failed mid-stream", `${id}: the error, logged with its request id`);
    assert.ok(own.some((line) => line.msg === "incoming request") && own.some((line) => line.msg === "request completed"), `${id}: Fastify's lines too`);
  }
  const unlabelled = lines.filter((line) => line.err !== undefined && line.reqId === undefined);
  assert.deepEqual(unlabelled, [], "no error of a request is logged without its id");
});
