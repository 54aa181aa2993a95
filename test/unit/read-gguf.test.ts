import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { InvalidModelFileError } from "../../src/domain/errors.js";
import { modelMetadataFrom } from "../../src/gguf/model-metadata.js";
import { readGguf } from "../../src/gguf/read-gguf.js";
import { writeFakeModel } from "../helpers/gguf-files.js";

let dir = "";
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "gguf-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Little-endian byte builder for hand-made GGUF headers. */
class Bytes {
  private parts: Buffer[] = [];
  u32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.parts.push(b);
    return this;
  }
  u64(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(n);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    this.u64(BigInt(Buffer.byteLength(s)));
    this.parts.push(Buffer.from(s));
    return this;
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const MAGIC = 0x46554747;
const STRING = 8;
const ARRAY = 9;
const U32 = 4;

/** A header: magic, version, counts, then `body`; padded with zeros to at least 64 bytes. */
function header(tensors: bigint, kvs: bigint, body: (b: Bytes) => void = () => {}, version = 3): Buffer {
  const b = new Bytes().u32(MAGIC).u32(version).u64(tensors).u64(kvs);
  body(b);
  return b.raw(Buffer.alloc(64)).build();
}

async function file(name: string, bytes: Buffer): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, bytes);
  return p;
}

async function assertInvalid(p: string, reason: RegExp): Promise<void> {
  const started = Date.now();
  await assert.rejects(readGguf(p), (error: unknown) => {
    assert.ok(error instanceof InvalidModelFileError, `expected InvalidModelFileError, got ${String(error)}`);
    assert.match(error.message, reason);
    return true;
  });
  assert.ok(Date.now() - started < 2000, "a bad header must fail fast");
}

test("reads a good file: metadata, tensors, capabilities", async () => {
  const p = path.join(dir, "good.gguf");
  await writeFakeModel(p, { contextLength: 4096, infill: true });
  const gguf = await readGguf(p);
  assert.equal(gguf.version, 3);
  assert.equal(gguf.metadata.get("general.architecture"), "llama");
  assert.equal(gguf.metadata.get("llama.context_length"), 4096);
  assert.equal(gguf.arrayLengths.get("tokenizer.ggml.tokens"), 100, "long arrays are skipped, their length kept");
  assert.equal(gguf.tensors.length, 1);
  assert.deepEqual(gguf.tensors[0]?.dims, [8, 4]);
  const metadata = modelMetadataFrom(gguf);
  assert.equal(metadata.architecture, "llama");
  assert.equal(metadata.contextLength, 4096);
  assert.equal(metadata.quantizationLevel, "F32");
  assert.deepEqual(metadata.capabilities, ["completion", "tools", "insert"]);
});

test("an embedding architecture is embedding-only", async () => {
  const p = path.join(dir, "bert.gguf");
  await writeFakeModel(p, { architecture: "bert" });
  assert.deepEqual(modelMetadataFrom(await readGguf(p)).capabilities, ["embedding"]);
});

test("rejects files that are not GGUF", async () => {
  await assertInvalid(await file("empty.gguf", Buffer.alloc(0)), /too small/);
  await assertInvalid(await file("text.gguf", Buffer.from("this is a text file, not a model at all, honestly")), /bad magic/);
  await assertInvalid(await file("v1.gguf", header(0n, 0n, () => {}, 1)), /unsupported GGUF version 1/);
  await assertInvalid(await file("v9.gguf", header(0n, 0n, () => {}, 9)), /unsupported GGUF version 9/);
});

test("rejects truncated files: in the header, and in the tensor data", async () => {
  const good = path.join(dir, "to-truncate.gguf");
  await writeFakeModel(good);
  const bytes = await readFile(good);
  await assertInvalid(await file("cut-header.gguf", bytes.subarray(0, 200)), /truncated|impossible/);
  const cutData = await file("cut-data.gguf", bytes);
  await truncate(cutData, bytes.length - 16);
  await assertInvalid(cutData, /truncated: tensor "token_embd.weight" ends at byte/);
});

test("rejects huge counts and lengths at once, without allocating", async () => {
  await assertInvalid(await file("tensors.gguf", header(1n << 60n, 0n)), /tensor count \d+ is impossible/);
  await assertInvalid(await file("kvs.gguf", header(0n, 0xffffffffffffffffn)), /metadata count \d+ is impossible/);
  await assertInvalid(await file("kvs-small.gguf", header(0n, 1000n)), /metadata count 1000 is impossible/);
  await assertInvalid(await file("key.gguf", header(0n, 1n, (b) => b.u64(1n << 40n))), /string length \d+ is impossible/);
  await assertInvalid(
    await file("array.gguf", header(0n, 1n, (b) => b.str("big.array").u32(ARRAY).u32(U32).u64(1n << 50n))),
    /array "big.array" length \d+ is impossible/,
  );
  await assertInvalid(
    await file("strings.gguf", header(0n, 1n, (b) => b.str("strs").u32(ARRAY).u32(STRING).u64(1000n))),
    /array "strs" length 1000 is impossible/,
  );
});

test("rejects unknown value types and implausible tensors", async () => {
  await assertInvalid(await file("type.gguf", header(0n, 1n, (b) => b.str("k").u32(99))), /unknown metadata value type 99/);
  const dims = header(1n, 0n, (b) => b.str("t").u32(9));
  await assertInvalid(await file("dims.gguf", dims), /tensor "t" has 9 dimensions/);
  const zero = header(1n, 0n, (b) => b.str("t").u32(1).u64(0n).u32(0).u64(0n));
  await assertInvalid(await file("zero-dim.gguf", zero), /implausible dimension 0/);
  const beyond = header(1n, 0n, (b) => b.str("t").u32(2).u64(1024n).u64(1024n).u32(0).u64(0n));
  await assertInvalid(await file("beyond.gguf", beyond), /truncated: tensor "t"/);
});

test("a header without general.architecture is not a usable model", async () => {
  const p = await file("no-arch.gguf", header(0n, 1n, (b) => b.str("general.name").u32(STRING).str("x")));
  await assert.rejects(async () => modelMetadataFrom(await readGguf(p)), /general.architecture is missing/);
});
