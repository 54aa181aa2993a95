import { open, type FileHandle } from "node:fs/promises";
import { InvalidModelFileError } from "../domain/errors.js";
import { tensorByteSize } from "./ggml-types.js";

/** A GGUF metadata value. 64-bit integers are numbers when safe, bigints otherwise. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensor {
  name: string;
  /** Dimensions, innermost first (ggml order). */
  dims: number[];
  /** ggml type id. */
  type: number;
  /** Byte offset from the start of the data section. */
  offset: bigint;
  elements: bigint;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  /** Arrays longer than `maxArrayItems` are not kept: only their length is, here. */
  arrayLengths: Map<string, number>;
  tensors: GgufTensor[];
  /** Absolute offset of the tensor data section. */
  dataOffset: bigint;
  fileSize: number;
}

export interface ReadGgufOptions {
  /** Arrays with more items than this are skipped (their length is recorded). Default 64. */
  maxArrayItems?: number;
  /**
   * Bytes actually present at the start of the file, when the rest is a hole (a header fetched ahead of the
   * download, in a file of the full size): reading past them throws GgufHeaderIncompleteError.
   */
  available?: number;
}

/** The header reaches past the bytes that are present (ReadGgufOptions.available): fetch at least `needed`. */
export class GgufHeaderIncompleteError extends Error {
  constructor(readonly needed: number) {
    super(`the GGUF header needs at least ${needed} bytes`);
    this.name = "GgufHeaderIncompleteError";
  }
}

const MAGIC = 0x46554747; // "GGUF" little-endian
const MAX_TENSORS = 1_000_000;
const MAX_KV = 1_000_000;
const MAX_DIMS = 8;

/**
 * Reads and validates a GGUF file's header without trusting it: every count and length is checked against the
 * bytes that remain in the file before anything is allocated or looped over, and every tensor's data must lie
 * inside the file. So a corrupt, truncated or hostile header fails fast with InvalidModelFileError (and a reason)
 * instead of hanging or exhausting memory, which is what the engine does with such files.
 */
export async function readGguf(path: string, options: ReadGgufOptions = {}): Promise<GgufFile> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    return await parse(new Reader(handle, size, options.available ?? size), options.maxArrayItems ?? 64);
  } finally {
    await handle.close();
  }
}

async function parse(r: Reader, maxArrayItems: number): Promise<GgufFile> {
  if (r.size < 24) throw bad(`file is ${r.size} bytes, too small for a GGUF header`);
  if ((await r.u32()) !== MAGIC) throw bad("not a GGUF file (bad magic)");
  const version = await r.u32();
  if (version < 2 || version > 3) throw bad(`unsupported GGUF version ${version}`);
  const tensorCount = await r.count(MAX_TENSORS, "tensor count", 8 + 4 + 4 + 8);
  const kvCount = await r.count(MAX_KV, "metadata count", 8 + 4 + 1);

  const metadata = new Map<string, GgufValue>();
  const arrayLengths = new Map<string, number>();
  for (let i = 0; i < kvCount; i++) {
    const key = await r.string();
    const type = await r.u32();
    if (type === ARRAY) {
      const itemType = await r.u32();
      const length = await r.count(Number.MAX_SAFE_INTEGER, `array "${key}" length`, minSize(itemType));
      if (length > maxArrayItems) {
        arrayLengths.set(key, length);
        await r.skipArray(itemType, length);
      } else {
        metadata.set(key, await r.array(itemType, length, 1));
      }
    } else {
      metadata.set(key, await r.value(type, 0));
    }
  }

  const tensors: GgufTensor[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = await r.string();
    const nDims = await r.u32();
    if (nDims < 1 || nDims > MAX_DIMS) throw bad(`tensor "${name}" has ${nDims} dimensions`);
    const dims: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const dim = await r.u64();
      if (dim < 1n || dim > 1n << 40n) throw bad(`tensor "${name}" has an implausible dimension ${dim}`);
      dims.push(Number(dim));
      elements *= dim;
    }
    const type = await r.u32();
    const offset = await r.u64();
    tensors.push({ name, dims, type, offset, elements });
  }

  const alignment = metadata.get("general.alignment") ?? 32;
  if (typeof alignment !== "number" || alignment < 1 || alignment > 1 << 20) throw bad("bad general.alignment");
  const align = BigInt(alignment);
  const dataOffset = ((BigInt(r.position) + align - 1n) / align) * align;
  const fileSize = BigInt(r.size);
  for (const t of tensors) {
    const bytes = tensorByteSize(t.type, t.elements) ?? 0n;
    const end = dataOffset + t.offset + bytes;
    if (end > fileSize) {
      throw bad(`file is truncated: tensor "${t.name}" ends at byte ${end}, but the file has ${fileSize} bytes`);
    }
  }
  return { version, metadata, arrayLengths, tensors, dataOffset, fileSize: r.size };
}

function bad(reason: string): InvalidModelFileError {
  return new InvalidModelFileError(`invalid GGUF file: ${reason}`);
}

// GGUF value types
const U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12;
const FIXED_SIZES: Record<number, number> = { [U8]: 1, [I8]: 1, [U16]: 2, [I16]: 2, [U32]: 4, [I32]: 4, [F32]: 4, [BOOL]: 1, [U64]: 8, [I64]: 8, [F64]: 8 };

/** The fewest bytes one item of this type can take (strings carry an 8-byte length, arrays 12 bytes of header). */
function minSize(type: number): number {
  if (type === STRING) return 8;
  if (type === ARRAY) return 12;
  const size = FIXED_SIZES[type];
  if (size === undefined) throw bad(`unknown metadata value type ${type}`);
  return size;
}

/** Sequential reader over a file handle with a read-ahead buffer; never reads past the file's end. */
class Reader {
  position = 0;
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;

  constructor(private readonly handle: FileHandle, readonly size: number, private readonly available: number) {}

  private async take(n: number): Promise<Buffer> {
    if (this.position + n > this.size) throw bad(`file is truncated: header needs byte ${this.position + n}, file has ${this.size}`);
    if (this.position + n > this.available) throw new GgufHeaderIncompleteError(this.position + n);
    const offsetInBuffer = this.position - this.bufferStart;
    if (offsetInBuffer < 0 || offsetInBuffer + n > this.buffer.length) {
      const length = Math.min(Math.max(n, 1 << 20), this.available - this.position);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await this.handle.read(buffer, 0, length, this.position);
      if (bytesRead < n) throw bad("file is truncated");
      this.buffer = buffer.subarray(0, bytesRead);
      this.bufferStart = this.position;
    }
    const start = this.position - this.bufferStart;
    this.position += n;
    return this.buffer.subarray(start, start + n);
  }

  private get remaining(): number {
    return this.size - this.position;
  }

  async u32(): Promise<number> {
    return (await this.take(4)).readUInt32LE(0);
  }

  async u64(): Promise<bigint> {
    return (await this.take(8)).readBigUInt64LE(0);
  }

  /** A u64 count whose items take at least `itemSize` bytes each: rejects counts the rest of the file cannot hold. */
  async count(max: number, what: string, itemSize: number): Promise<number> {
    const value = await this.u64();
    if (value > BigInt(max) || value * BigInt(itemSize) > BigInt(this.remaining)) {
      throw bad(`${what} ${value} is impossible for a file of ${this.size} bytes`);
    }
    return Number(value);
  }

  async string(): Promise<string> {
    const length = await this.count(Number.MAX_SAFE_INTEGER, "string length", 1);
    return (await this.take(length)).toString("utf8");
  }

  async value(type: number, depth: number): Promise<GgufValue> {
    switch (type) {
      case U8: return (await this.take(1)).readUInt8(0);
      case I8: return (await this.take(1)).readInt8(0);
      case U16: return (await this.take(2)).readUInt16LE(0);
      case I16: return (await this.take(2)).readInt16LE(0);
      case U32: return (await this.take(4)).readUInt32LE(0);
      case I32: return (await this.take(4)).readInt32LE(0);
      case F32: return (await this.take(4)).readFloatLE(0);
      case F64: return (await this.take(8)).readDoubleLE(0);
      case BOOL: return (await this.take(1)).readUInt8(0) !== 0;
      case U64: return safe((await this.take(8)).readBigUInt64LE(0));
      case I64: return safe((await this.take(8)).readBigInt64LE(0));
      case STRING: return this.string();
      case ARRAY: {
        if (depth >= 4) throw bad("arrays nested too deeply");
        const itemType = await this.u32();
        const length = await this.count(Number.MAX_SAFE_INTEGER, "array length", minSize(itemType));
        return this.array(itemType, length, depth + 1);
      }
      default: throw bad(`unknown metadata value type ${type}`);
    }
  }

  async array(itemType: number, length: number, depth: number): Promise<GgufValue[]> {
    const items: GgufValue[] = [];
    for (let i = 0; i < length; i++) items.push(await this.value(itemType, depth));
    return items;
  }

  async skipArray(itemType: number, length: number): Promise<void> {
    const fixed = FIXED_SIZES[itemType];
    if (fixed !== undefined) {
      await this.skip(fixed * length);
      return;
    }
    if (itemType !== STRING) throw bad("nested arrays too large to read");
    for (let i = 0; i < length; i++) {
      const n = await this.count(Number.MAX_SAFE_INTEGER, "string length", 1);
      await this.skip(n);
    }
  }

  private async skip(n: number): Promise<void> {
    if (this.position + n > this.size) throw bad("file is truncated");
    if (this.position + n <= this.bufferStart + this.buffer.length) {
      this.position += n;
      return;
    }
    this.position += n;
    this.buffer = Buffer.alloc(0);
    this.bufferStart = this.position;
  }
}

function safe(value: bigint): number | bigint {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value;
}
