import { Transform, type Readable, type TransformCallback } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import type { FastifyInstance } from "fastify";
import { Decompress } from "fzstd";
import { InvalidRequestError } from "../domain/errors.js";

/** The request body encodings the server reads (Codex CLI sends zstd; other clients gzip). */
const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  "x-gzip": createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
  zstd: () => new ZstdDecoder(),
};

/**
 * Decodes request bodies sent with `Content-Encoding` (gzip, deflate, br, zstd) before they are parsed. The body
 * limit counts the decoded bytes, so a small compressed body that would inflate past AI_SERVER_BODY_LIMIT is
 * refused with 413 like an uncompressed one. An unknown encoding, or data that does not decode, is a 400.
 */
export function decodeRequestBodies(http: FastifyInstance): void {
  http.addHook("preParsing", async (request, _reply, payload) => {
    const encoding = String(request.headers["content-encoding"] ?? "").trim().toLowerCase();
    if (encoding === "" || encoding === "identity") return payload;
    const decoder = DECODERS[encoding];
    if (!decoder) throw new InvalidRequestError(`content-encoding "${encoding}" is not supported (gzip, deflate, br or zstd)`);
    return decoded(payload, decoder());
  });
}

/**
 * `payload` through `decoder`. Fastify compares Content-Length with `receivedEncodedLength` (the bytes that came
 * over the wire), and the body limit with what the returned stream yields (the decoded bytes).
 */
function decoded(payload: Readable, decoder: Transform): Readable {
  let received = 0;
  payload.on("data", (chunk: Buffer) => (received += chunk.length));
  payload.on("error", (error) => decoder.destroy(error));
  // A body that fails to decode is read to its end (not the socket destroyed), so the client gets its 400.
  decoder.on("error", () => {
    payload.unpipe(decoder);
    payload.resume();
  });
  const out = payload.pipe(decoder);
  Object.defineProperty(out, "receivedEncodedLength", { get: () => received });
  // A corrupt body becomes a 400 naming the encoding, not a 500.
  const fail = out.destroy.bind(out);
  out.destroy = (error?: Error) => fail(error && !(error instanceof InvalidRequestError) ? new InvalidRequestError(`request body could not be decoded: ${error.message}`) : error);
  return out;
}

/** zstd frames (fzstd, pure JavaScript: Node 20's zlib has no zstd) as a stream. */
class ZstdDecoder extends Transform {
  private readonly zstd = new Decompress((data) => this.push(Buffer.from(data)));

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.zstd.push(chunk);
      done();
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)));
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.zstd.push(new Uint8Array(0), true);
      done();
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
