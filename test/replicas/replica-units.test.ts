/** The pure parts of weights on every replica: the Range a blob download honours, and the peers setting. */
import assert from "node:assert/strict";
import os from "node:os";
import { test } from "node:test";
import { byteRange } from "../../src/api/byte-range.js";
import { loadConfig } from "../../src/config/load.js";

const etag = '"sha256:abc"';

test("one byte range of a blob: open-ended, bounded, a suffix; past the end is 416; anything else the whole blob", () => {
  assert.deepEqual(byteRange(undefined, undefined, etag, 100), { kind: "whole" });
  assert.deepEqual(byteRange("bytes=10-", undefined, etag, 100), { kind: "part", start: 10, end: 99 });
  assert.deepEqual(byteRange("bytes=10-19", undefined, etag, 100), { kind: "part", start: 10, end: 19 });
  assert.deepEqual(byteRange("bytes=90-500", undefined, etag, 100), { kind: "part", start: 90, end: 99 }, "an end past the blob is its end");
  assert.deepEqual(byteRange("bytes=-5", undefined, etag, 100), { kind: "part", start: 95, end: 99 });
  assert.deepEqual(byteRange("bytes=-500", undefined, etag, 100), { kind: "part", start: 0, end: 99 });
  assert.deepEqual(byteRange("bytes=100-", undefined, etag, 100), { kind: "unsatisfiable" });
  assert.deepEqual(byteRange("bytes=-0", undefined, etag, 100), { kind: "unsatisfiable" });
  assert.deepEqual(byteRange("bytes=0-", undefined, etag, 0), { kind: "unsatisfiable" });
  assert.deepEqual(byteRange("bytes=0-4,10-14", undefined, etag, 100), { kind: "whole" }, "several ranges: the whole blob");
  assert.deepEqual(byteRange("bytes=20-10", undefined, etag, 100), { kind: "whole" }, "an invalid range is ignored");
  assert.deepEqual(byteRange("items=0-4", undefined, etag, 100), { kind: "whole" });
  assert.deepEqual(byteRange("bytes=10-", etag, etag, 100), { kind: "part", start: 10, end: 99 }, "If-Range naming this blob");
  assert.deepEqual(byteRange("bytes=10-", '"sha256:other"', etag, 100), { kind: "whole" }, "If-Range naming another");
});

test("AI_SERVER_PEERS: base URLs, trimmed, without a trailing slash; anything else is refused at start", () => {
  const home = os.tmpdir();
  assert.deepEqual(loadConfig({ AI_SERVER_PEERS: " http://a:11434/ , https://b.example/ai/,," }, { home }).peers, ["http://a:11434", "https://b.example/ai"]);
  assert.deepEqual(loadConfig({}, { home }).peers, []);
  for (const bad of ["a:11434", "ftp://a", "http://user:secret@a:11434"]) {
    assert.throws(() => loadConfig({ AI_SERVER_PEERS: bad }, { home }), /AI_SERVER_PEERS.*expected http/, bad);
  }
});
