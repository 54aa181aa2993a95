import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { decompress as zstdDecompress } from "fzstd";
import { parseModelName } from "../../src/domain/model-name.js";
import type { FuzzRoute } from "./fuzz-routes.js";

/**
 * What the server must answer to a fuzzed request. `reject`: a 4xx (exactly `status` when given), never a 2xx.
 * `maybe`: the request may be valid by chance (the schema accepts it), so a 2xx is fine as well as a 4xx. Never a
 * 5xx, never a dropped connection.
 */
export type Expectation = { kind: "reject"; status?: number } | { kind: "maybe" };

export const reject = (status?: number): Expectation => ({ kind: "reject", ...(status !== undefined && { status }) });
export const maybe: Expectation = { kind: "maybe" };

const DECODE: Record<string, (data: Buffer) => Buffer> = {
  gzip: gunzipSync,
  "x-gzip": gunzipSync,
  deflate: inflateSync,
  br: brotliDecompressSync,
  zstd: (data) => Buffer.from(zstdDecompress(data)),
};

/**
 * The answer a JSON body route owes a body, worked out the way the server's documented rules say, independently of
 * its code: a Content-Encoding it does not know or data that does not decode is a 400; more decoded bytes than the
 * body limit a 413; text that is not JSON (after a UTF-8 decoding that replaces bad bytes, and a BOM dropped), that
 * holds `__proto__` or `constructor.prototype` keys, or that is not an object is a 400; a body the route's schema
 * refuses is a 400. What is left may be valid.
 */
export function judgeBody(route: FuzzRoute, body: Buffer | undefined, headers: Record<string, string>, bodyLimit: number): Expectation {
  let data = body ?? Buffer.alloc(0);
  const encoding = (headers["content-encoding"] ?? "").trim().toLowerCase();
  if (encoding !== "" && encoding !== "identity") {
    const decode = DECODE[encoding];
    if (decode === undefined) return reject(400);
    try {
      data = decode(data);
    } catch {
      return reject(400);
    }
  }
  if (data.length > bodyLimit) return reject(413);
  const parsed = parseJsonLikeTheServer(data.toString("utf8"));
  if (!parsed.ok) return reject(400);
  const value = parsed.value;
  if (value === null || typeof value !== "object" || Array.isArray(value)) return reject(400);
  if (route.schema !== undefined && !route.schema.safeParse(value).success) return reject(400);
  return maybe;
}

/** JSON.parse after dropping a BOM, refusing prototype-poisoning keys anywhere (as Fastify's parser does). */
export function parseJsonLikeTheServer(text: string): { ok: true; value: unknown } | { ok: false } {
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return { ok: false };
  }
  // Only text that spells one of the keys (or escapes a character) can hold one.
  if (!/__proto__|constructor|\\u/i.test(text)) return { ok: true, value };
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object") continue;
    if (Object.hasOwn(node, "__proto__")) return { ok: false };
    const ctor = (node as Record<string, unknown>).constructor;
    if (Object.hasOwn(node, "constructor") && ctor !== null && typeof ctor === "object" && Object.hasOwn(ctor, "prototype")) return { ok: false };
    for (const child of Object.values(node)) stack.push(child);
  }
  return { ok: true, value };
}

/** Whether `name` is a well-formed model name (then only its absence makes a request naming it fail). */
export function isWellFormedName(name: string): boolean {
  try {
    parseModelName(name);
    return true;
  } catch {
    return false;
  }
}
