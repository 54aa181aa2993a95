/**
 * Compressed request bodies (Codex CLI sends zstd, other clients gzip): decoded before parsing, the body limit
 * counted on the decoded bytes, corrupt or unknown encodings refused with a 400. Fake engine: no inference needed.
 * The zstd body comes from the real `zstd` tool where it is installed, else from a zstd frame of raw blocks
 * written here (valid zstd, uncompressed).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { after, before, test } from "node:test";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";

let server: FakeServer;

before(async () => {
  server = await startFakeServer({ bodyLimitBytes: 64 * 1024 });
});

after(async () => {
  await server.close();
});

const chat = { model: "chat", messages: [{ role: "user", content: "Hi" }] };

function post(route: string, body: Uint8Array, encoding: string): Promise<Response> {
  return fetch(`${server.baseUrl}${route}`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": encoding }, body });
}

/** zstd-compressed `data`: the zstd tool's output, or a single-segment frame of raw blocks (no compression). */
function zstd(data: Buffer): Buffer {
  try {
    return execFileSync("zstd", ["-q", "-c", "-3"], { input: data });
  } catch {
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0]); // magic, descriptor: single segment, 4-byte content size
    const size = Buffer.alloc(4);
    size.writeUInt32LE(data.length);
    const blocks: Buffer[] = [];
    for (let offset = 0; offset < data.length || blocks.length === 0; offset += 0x1ffff) {
      const part = data.subarray(offset, offset + 0x1ffff);
      const last = offset + 0x1ffff >= data.length ? 1 : 0;
      const blockHeader = (part.length << 3) | last; // block type 0: raw
      blocks.push(Buffer.from([blockHeader & 0xff, (blockHeader >> 8) & 0xff, (blockHeader >> 16) & 0xff]), part);
    }
    return Buffer.concat([header, size, ...blocks]);
  }
}

test("zstd, gzip, deflate and br bodies are decoded and served", async () => {
  const json = Buffer.from(JSON.stringify(chat));
  for (const [encoding, body] of [["zstd", zstd(json)], ["gzip", gzipSync(json)], ["deflate", deflateSync(json)], ["br", brotliCompressSync(json)]] as const) {
    const response = await post("/v1/chat/completions", body, encoding);
    assert.equal(response.status, 200, encoding);
    const answer = (await response.json()) as { choices: { message: { content: string } }[] };
    assert.equal(answer.choices[0]?.message.content, "Hello world", encoding);
  }
  const ollama = await post("/api/chat", gzipSync(Buffer.from(JSON.stringify({ ...chat, stream: false }))), "gzip");
  assert.equal(ollama.status, 200);
});

test("the body limit counts decoded bytes: a small body that inflates past it is a 413", async () => {
  const huge = Buffer.from(JSON.stringify({ ...chat, padding: "x".repeat(1024 * 1024) }));
  const compressed = gzipSync(huge);
  assert.ok(compressed.length < 64 * 1024, "the compressed body is under the limit");
  const response = await post("/v1/chat/completions", compressed, "gzip");
  assert.equal(response.status, 413);
  const zstdResponse = await post("/v1/chat/completions", zstd(huge), "zstd");
  assert.equal(zstdResponse.status, 413);
});

test("an unknown encoding or a corrupt body is a 400 saying so; the server keeps serving", async () => {
  const unknown = await post("/v1/chat/completions", Buffer.from(JSON.stringify(chat)), "compress");
  assert.equal(unknown.status, 400);
  assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /content-encoding "compress" is not supported/);
  const corrupt = await post("/v1/chat/completions", Buffer.from("definitely not gzip"), "gzip");
  assert.equal(corrupt.status, 400);
  assert.match(((await corrupt.json()) as { error: { message: string } }).error.message, /could not be decoded/);
  const corruptZstd = await post("/api/chat", Buffer.from("definitely not zstd"), "zstd");
  assert.equal(corruptZstd.status, 400);
  const fine = await post("/v1/chat/completions", gzipSync(Buffer.from(JSON.stringify(chat))), "gzip");
  assert.equal(fine.status, 200);
});
