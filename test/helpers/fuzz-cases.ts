import { brotliCompressSync, constants, deflateSync, gzipSync } from "node:zlib";
import { isWellFormedName, judgeBody, maybe, reject, type Expectation } from "./fuzz-oracle.js";
import type { Random } from "./fuzz-random.js";
import { protocolOf, type FuzzRoute, type Protocol } from "./fuzz-routes.js";

/** How a request's bytes go out. */
export type Delivery =
  /** node:http, the body at once. */
  | "whole"
  /** A raw socket: the body one byte at a time, with pauses. */
  | "trickle"
  /** A raw socket: part of the body, a pause, then the connection closed (no answer can come). */
  | "stall-close"
  /** A raw socket: `raw` written as is (a request node:http would refuse to send). */
  | "raw";

/** One fuzzed request and what the server owes it. */
export interface FuzzCase {
  /** The kind of damage, for the tally and failure messages. */
  kind: string;
  method: string;
  /** Path and query, sent as is. */
  path: string;
  /** Header values may hold bytes 0x80–0xff (sent as latin1, which is all node:http allows). */
  headers: Record<string, string>;
  body?: Buffer;
  expect: Expectation;
  /** Whose error shape an error must have. */
  protocol: Protocol;
  delivery: Delivery;
  /** For `raw`: the whole request as bytes. */
  raw?: Buffer;
  /** The registered route (`METHOD /pattern`) this request is meant for; absent when no route has its method and path. */
  route?: string;
}

/** What the generator needs to know of the server under test. */
export interface FuzzTarget {
  routes: FuzzRoute[];
  /** AI_SERVER_BODY_LIMIT of the server. */
  bodyLimit: number;
}

const JSON_TYPE = { "content-type": "application/json" };

/**
 * Odd model names: path traversal and separators (plain and %-escaped), NUL and control bytes, a lone surrogate,
 * direction and zero-width marks, 10,000 characters, shell and URL syntax. The malformed ones must get a 4xx wherever
 * they go; the few well-formed ones (`CON`, `aux.gguf`) are valid names a create or copy in the run may have used.
 */
export const ODD_NAMES: readonly string[] = [
  "../../etc/passwd",
  "a/../../b",
  "..",
  ".",
  "./chat",
  "chat/..",
  "%2e%2e%2f",
  "%2e%2e/%2e%2e/etc/passwd",
  "..%2f..%2fetc%2fpasswd",
  "chat/../chat",
  "/etc/passwd",
  "\\..\\..\\windows\\win.ini",
  "C:\\Windows\\win.ini",
  "chat:../../x",
  "chat:latest/../..",
  "hf.co/../../x",
  "hf.co/a/b/c/d",
  "https://evil.example/x",
  "file:///etc/passwd",
  "chat\u0000",
  "\u0000",
  "chat\u0000../../x",
  "x".repeat(10_000),
  "a".repeat(97),
  "模型",
  "chät",
  "\u202Echat",
  "chat\u200F",
  "\u200B",
  "\ud800",
  "chat\r\nx-injected: 1",
  "$(id)",
  "`id`",
  "chat;rm -rf /",
  "~root",
  ":",
  "::",
  "a:b:c",
  "-chat",
  "chat:",
  ":latest",
  "sha256:" + "0".repeat(64),
  " ",
  "",
  "a/b/c/d",
  "%00",
  "chat%00",
  "CON",
  "aux.gguf",
];

/** Values of every JSON type (and some numbers JavaScript treats oddly), for fields that expect another. */
const WRONG_VALUES: readonly unknown[] = [
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 53 + 2,
  -(2 ** 31),
  "",
  "x",
  "1",
  "true",
  "null",
  "NaN",
  true,
  false,
  null,
  [],
  [1, "a", null],
  [[]],
  {},
  { a: 1 },
  { type: "function" },
  [{ role: "user" }],
  [{}],
];

/**
 * Bytes that are not UTF-8: a lone continuation byte, a truncated sequence, an overlong `/`, a surrogate, bytes that
 * never occur, and a sequence cut by the end of the body.
 */
const BAD_UTF8: readonly Buffer[] = [
  Buffer.from([0x80]),
  Buffer.from([0xc3, 0x28]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
];

/** Header values with bytes 0x80–0xff (latin1 on the wire: not UTF-8). */
const LATIN1_VALUES = ["\xff\xfe", "caf\xe9", "\xc3\x28", "a\x80b", "\xed\xa0\x80", "\xe2\x82"];

/** How many requests to make: `scale` multiplies every count; `huge: false` leaves out the bodies of megabytes. */
export interface GenerateOptions {
  scale?: number;
  huge?: boolean;
}

/** Every fuzzed request for one server, in a deterministic order for a seed. */
export function generateCases(target: FuzzTarget, random: Random, { scale = 1, huge = true }: GenerateOptions = {}): FuzzCase[] {
  const cases: FuzzCase[] = [];
  const times = (n: number, make: () => FuzzCase | undefined): void => {
    for (let i = 0; i < Math.max(1, Math.round(n * scale)); i++) {
      const made = make();
      if (made) cases.push(made);
    }
  };
  for (const route of target.routes) {
    const body = route.schema !== undefined && route.base !== undefined;
    if (body) {
      times(24, () => malformedJson(route, random, target));
      times(40, () => wrongType(route, random, target));
      if (huge) times(4, () => hugeBody(route, random, target));
      if (huge) times(4, () => hugeArray(route, random, target));
      times(6, () => deepBody(route, random, target));
      times(10, () => badUtf8Body(route, random, target));
      times(8, () => contentTypes(route, random, target));
      times(8, () => contentEncodings(route, random, target));
      times(3, () => slowBody(route, random, target, "trickle"));
      times(2, () => slowBody(route, random, target, "stall-close"));
      for (const field of route.modelFields ?? []) times(12, () => oddModelName(route, field, random, target));
    }
    if (route.raw) times(12, () => blobBody(route, random));
    if (route.pathWith) times(16, () => oddPathSegment(route, random));
    times(10, () => oddQuery(route, random, target));
    times(6, () => otherMethod(route, random, target));
    times(6, () => oddHeaders(route, random, target));
    if (route.base === undefined && !route.raw) times(3, () => unexpectedBody(route, random));
  }
  times(40, () => oddPath(random));
  times(20, () => malformedHttp(random));
  return cases;
}

function withBody(route: FuzzRoute, kind: string, body: Buffer, target: FuzzTarget, headers: Record<string, string> = JSON_TYPE, delivery: Delivery = "whole"): FuzzCase | undefined {
  let expect = judgeBody(route, body, headers, target.bodyLimit);
  if (route.onlyInvalid && expect.kind === "maybe") return undefined;
  // A body cut short by the client gets no answer; one trickled in full is judged as a whole one.
  if (delivery === "stall-close") expect = maybe;
  return { kind, method: route.method, path: route.path, headers, body, expect, protocol: protocolOf(route.path), delivery, route: routeKey(route) };
}

function routeKey(route: FuzzRoute): string {
  return `${route.method} ${route.url}`;
}

function baseText(route: FuzzRoute): string {
  return JSON.stringify(route.base ?? {});
}

/** Truncated, padded, retyped at the top level, poisoned with prototype keys, or not quite JSON. */
function malformedJson(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const text = baseText(route);
  const variants: Array<() => string> = [
    () => text.slice(0, random.int(0, text.length - 1)),
    () => text + random.pick(["x", "}", "]", ",", " {}", text, "\u0000", "\n\n{", "null"]),
    () => {
      const at = random.int(0, text.length - 1);
      return text.slice(0, at) + random.pick(["{", "}", "[", "]", ",", ":", '"', "\\", "'", "\u0000", "\n"]) + text.slice(at + 1);
    },
    () => text.replace(/"/g, "'"),
    () => text.replace(/"(\w+)":/g, "$1:"),
    () => text.replace(/}$/, ",}"),
    () => `// a comment\n${text}`,
    () => text.replace(/:\s*("[^"]*"|\d+|true|false)/, ": NaN"),
    () => text.replace(/:\s*("[^"]*"|\d+|true|false)/, ": undefined"),
    () => random.pick(["", " ", "\n", "[]", "[{}]", `[${text}]`, '"a string"', "123", "-0", "1e999", "true", "false", "null", "{}", "{{}}", '{"a"}', "\uFEFF", `\uFEFF${text}`]),
    () => `{"__proto__": {"polluted": true}, ${text.slice(1)}`,
    () => `{"constructor": {"prototype": {"polluted": true}}, ${text.slice(1)}`,
    () => `{"\\u005f_proto__": {"polluted": true}, ${text.slice(1)}`,
    () => `{"x": {"y": [{"__proto__": {"polluted": true}}]}, ${text.slice(1)}`,
    () => `{"toString": 1, "hasOwnProperty": "x", "valueOf": null, ${text.slice(1)}`,
  ];
  return withBody(route, "malformed-json", Buffer.from(random.pick(variants)()), target);
}

/** Every place a value sits in `value`, as a path of keys. */
function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((item, i) => out.push(...paths(item, [...prefix, i])));
  else if (value !== null && typeof value === "object") for (const [key, item] of Object.entries(value)) out.push(...paths(item, [...prefix, key]));
  return out;
}

function setAt(root: unknown, path: ReadonlyArray<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = (Array.isArray(root) ? [...(root as unknown[])] : { ...(root as object) }) as Record<string | number, unknown>;
  const [head, ...rest] = path as [string | number, ...Array<string | number>];
  copy[head] = setAt(copy[head], rest, value);
  return copy;
}

/** The route's own fields (the schema's keys, nested paths of the valid body) given values of other types. */
function schemaKeys(route: FuzzRoute): string[] {
  const shape = (route.schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

function wrongType(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const bodyPaths = paths(route.base).filter((p) => p.length > 0);
  const choices = [...bodyPaths, ...schemaKeys(route).map((key) => [key])];
  let body: unknown = route.base;
  // One field, sometimes two or three at once.
  for (let i = random.chance(0.2) ? random.int(2, 3) : 1; i > 0; i--) body = setAt(body, random.pick(choices), random.pick(WRONG_VALUES));
  return withBody(route, "wrong-type", Buffer.from(JSON.stringify(body)), target);
}

/** A string field (or an unknown one) padded so that the body is near, at, or past the body limit, or megabytes past. */
function hugeBody(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const stringPaths = paths(route.base).filter((p) => p.length > 0 && typeof valueAt(route.base, p) === "string");
  const field = stringPaths.length > 0 && random.chance(0.7) ? random.pick(stringPaths) : ["padding"];
  const limit = target.bodyLimit;
  const size = random.chance(0.05) ? 8 * 1024 * 1024 : random.pick([limit - random.int(1, 64), limit, limit + 1, limit + random.int(2, 4096), limit * 2]);
  const unit = random.pick(["a", "é", "😀", "\u0000"]);
  const empty = Buffer.byteLength(JSON.stringify(setAt(route.base, field, "")));
  const unitBytes = Buffer.byteLength(JSON.stringify(unit)) - 2;
  const count = Math.max(0, Math.floor((size - empty) / unitBytes));
  const text = JSON.stringify(setAt(route.base, field, unit.repeat(count)));
  // Top the body up with spaces to the exact size asked for (JSON allows them before the closing brace).
  const padded = text.slice(0, -1) + " ".repeat(Math.max(0, size - Buffer.byteLength(text))) + "}";
  return withBody(route, `huge-${size > limit ? "past" : "near"}-limit`, Buffer.from(padded), target);
}

function valueAt(root: unknown, path: ReadonlyArray<string | number>): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<string | number, unknown> | undefined)?.[key], root);
}

/** A list field made very long (up to a hundred thousand items), or an object with very many keys. */
function hugeArray(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const arrays = paths(route.base).filter((p) => p.length > 0 && Array.isArray(valueAt(route.base, p)));
  const n = random.pick([1000, 20_000, 100_000]);
  const marker = '"__huge__"';
  if (arrays.length > 0 && random.chance(0.7)) {
    const field = random.pick(arrays);
    const item = JSON.stringify((valueAt(route.base, field) as unknown[])[0] ?? 1);
    const text = JSON.stringify(setAt(route.base, field, "__huge__")).replace(marker, `[${new Array<string>(n).fill(item).join(",")}]`);
    return withBody(route, "huge-array", Buffer.from(text), target);
  }
  const keys = `{${Array.from({ length: Math.min(n, 20_000) }, (_, i) => `"k${i}":${i}`).join(",")}}`;
  const field = random.pick([["options"], ["metadata"], ["extra"], ["tools"]]);
  return withBody(route, "huge-object", Buffer.from(JSON.stringify(setAt(route.base, field, "__huge__")).replace(marker, keys)), target);
}

/** 10,000 (sometimes 100,000) levels of arrays or objects, at the top or in one of the route's fields. */
function deepBody(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const depth = random.chance(0.15) ? 100_000 : 10_000;
  const deep = random.chance(0.5) ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
  const keys = [...schemaKeys(route), "x"];
  const where = random.int(0, 3);
  let text: string;
  if (where === 0) text = deep;
  else {
    const key = random.pick(keys);
    const base = baseText(route);
    const marker = '"__deep__"';
    const shell = JSON.stringify({ ...route.base, [key]: "__deep__" });
    text = where === 3 ? `${base.slice(0, -1)},"${key}":${deep}}` : shell.replace(marker, deep);
  }
  return withBody(route, "deep", Buffer.from(text), target);
}

/** Bytes that are not UTF-8 inside a string value, outside any string, or in place of the model's name. */
function badUtf8Body(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const text = baseText(route);
  const bad = random.pick(BAD_UTF8);
  const quotes = [...text.matchAll(/"[^"]*"/g)];
  const spot = random.int(0, 2);
  let body: Buffer;
  if (spot === 0 && quotes.length > 0) {
    // Inside a string (keys included).
    const q = random.pick(quotes);
    const at = (q.index ?? 0) + 1;
    body = Buffer.concat([Buffer.from(text.slice(0, at)), bad, Buffer.from(text.slice(at))]);
  } else if (spot === 1) {
    const at = random.int(0, text.length);
    body = Buffer.concat([Buffer.from(text.slice(0, at)), bad, Buffer.from(text.slice(at))]);
  } else {
    body = Buffer.concat([Buffer.from(text), bad]);
  }
  return withBody(route, "bad-utf8", body, target);
}

function contentTypes(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const type = random.pick([
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "application/json; charset=latin1",
    "application/octet-stream",
    "*/*",
    "application/json, text/plain",
    ";;;",
    "application/",
    "\xff/\xfe",
    "application/json; charset=\xff",
    `application/${"x".repeat(8000)}`,
    "image/png",
    "",
  ]);
  const headers: Record<string, string> = type === "" ? {} : { "content-type": type };
  const body = random.chance(0.5) ? Buffer.from(baseText(route)) : Buffer.from("a=1&b=2");
  return withBody(route, "content-type", body, target, headers);
}

/** Encodings the server does not know, known ones over data that is not encoded, and a zip bomb past the limit. */
function contentEncodings(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const text = Buffer.from(baseText(route));
  const variant = random.int(0, 5);
  let encoding: string;
  let body: Buffer;
  if (variant === 0) [encoding, body] = [random.pick(["compress", "gzip, br", "identity, gzip", "x-\xff", "bogus", "chunked", "*"]), text];
  else if (variant === 1) [encoding, body] = [random.pick(["gzip", "deflate", "br", "zstd", "GZIP"]), random.chance(0.5) ? text : random.bytes(random.int(1, 200))];
  else if (variant === 2) [encoding, body] = ["gzip", gzipSync(text).subarray(0, random.int(1, 20))];
  else if (variant === 3) [encoding, body] = random.pick(zipBombs(target.bodyLimit));
  else if (variant === 4) [encoding, body] = ["gzip", gzipSync(Buffer.from(`{"model": ${JSON.stringify(random.pick(WRONG_VALUES))}}`))];
  else [encoding, body] = ["identity", text];
  return withBody(route, "content-encoding", body, target, { ...JSON_TYPE, "content-encoding": encoding });
}

const bombs = new Map<number, Array<[string, Buffer]>>();
/** A few kilobytes that inflate to twice the body limit, in each encoding (made once). */
function zipBombs(limit: number): Array<[string, Buffer]> {
  let made = bombs.get(limit);
  if (made === undefined) {
    const bomb = Buffer.from(JSON.stringify({ model: "chat", padding: "a".repeat(limit * 2) }));
    const brotli = { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } };
    made = [["gzip", gzipSync(bomb)], ["br", brotliCompressSync(bomb, brotli)], ["deflate", deflateSync(bomb)]];
    bombs.set(limit, made);
  }
  return made;
}

/**
 * A body trickled byte by byte (whole or cut short, with a matching Content-Length: answered as if sent at once), or
 * one whose connection closes after part of it and a pause (no answer can come; the server must just let it go).
 */
function slowBody(route: FuzzRoute, random: Random, target: FuzzTarget, delivery: "trickle" | "stall-close"): FuzzCase | undefined {
  const text = baseText(route);
  const body = delivery === "trickle" && random.chance(0.5) ? text.slice(0, random.int(1, text.length - 1)) : text;
  return withBody(route, `slow-${delivery}`, Buffer.from(body), target, JSON_TYPE, delivery);
}

/** A model field given an odd name: refused (400) or not found (404); a well-formed new name may be accepted. */
function oddModelName(route: FuzzRoute, field: string, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const name = random.pick(ODD_NAMES);
  // `name` is the deprecated spelling of `model`, read only when `model` is absent.
  const { model: _model, ...rest } = route.base ?? {};
  const base = field === "name" ? rest : route.base;
  const made = withBody(route, "odd-model-name", Buffer.from(JSON.stringify({ ...base, [field]: name })), target);
  if (made === undefined || made.expect.kind === "reject") return made;
  // A well-formed name may be valid: create and copy may have made a model by that name earlier in the run.
  return { ...made, expect: isWellFormedName(name) ? maybe : reject() };
}

/** The route's path parameter (a job or key id, a digest, a model or response id) given an odd value. */
function oddPathSegment(route: FuzzRoute, random: Random): FuzzCase {
  const name = random.pick(ODD_NAMES);
  const segment = random.pick([
    percentEncoded(name, /[^A-Za-z0-9_.~-]/),
    percentEncoded(name, /[^\x21-\x7e]/),
    "%ZZ",
    "%",
    "%c0%af",
    "%ff%fe",
    "..%2f..%2f",
    "a".repeat(20_000),
  ]);
  const path = route.pathWith!(segment);
  return {
    kind: "odd-path-segment",
    route: routeKey(route),
    method: route.method,
    path,
    headers: route.raw && route.method === "POST" ? { "content-type": "application/octet-stream" } : {},
    ...(route.raw && route.method === "POST" && { body: Buffer.from("not the blob") }),
    expect: reject(),
    protocol: protocolOf(path),
    delivery: "whole",
  };
}

/** `text` as UTF-8 with every byte outside the allowed ones %-escaped (a lone surrogate becomes U+FFFD's bytes). */
function percentEncoded(text: string, escape: RegExp): string {
  return [...Buffer.from(text, "utf8")].map((byte) => (escape.test(String.fromCharCode(byte)) || byte > 0x7e ? `%${byte.toString(16).padStart(2, "0").toUpperCase()}` : String.fromCharCode(byte))).join("");
}

/** Blob uploads: bodies that do not hash to the digest, digests that are not digests, empty and chunked bodies. */
function blobBody(route: FuzzRoute, random: Random): FuzzCase {
  const digest = random.pick([`sha256:${"1".repeat(64)}`, "sha256:xyz", "md5:abc", `sha256-${"2".repeat(64)}`, "sha256:" + "A".repeat(64), "..%2F..%2Fx"]);
  const body = random.pick([Buffer.alloc(0), random.bytes(random.int(1, 4096)), Buffer.from("{}"), random.bytes(200_000)]);
  const path = route.pathWith!(digest);
  const headers: Record<string, string> = random.chance(0.5) ? { "content-type": random.pick(["application/octet-stream", "application/json", "text/plain"]) } : {};
  const delivery: Delivery = route.method === "POST" && random.chance(0.25) ? "stall-close" : "whole";
  return {
    kind: `blob${delivery === "stall-close" ? "-stall-close" : ""}`,
    route: routeKey(route),
    method: route.method,
    path,
    headers,
    ...(route.method === "POST" && { body }),
    expect: delivery === "stall-close" ? maybe : reject(),
    protocol: "ollama",
    delivery,
  };
}

/** Query strings on every route: odd keys, prototype keys, bad escapes, thousands of pairs. */
function oddQuery(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const query = random.pick([
    "a=1",
    "__proto__[x]=1",
    "constructor[prototype][x]=1",
    "model=../../etc/passwd",
    "%ZZ=%ZZ",
    "a=%",
    "=",
    "&&&",
    "a=1&a=2&a=3",
    "a[]=1&a[b]=2",
    "stream=true",
    "beta=true",
    "state=bogus",
    "state=running,,completed",
    "state=",
    `a=${"x".repeat(8000)}`,
    Array.from({ length: 2000 }, (_, i) => `k${i}=${i}`).join("&"),
    "x=\xff\xfe",
    "x=caf%C3%A9",
    "x=%00",
  ]);
  const [pathOnly, existing] = route.path.split("?");
  const path = `${pathOnly}?${existing ? `${existing}&` : ""}${query}`;
  const body = route.base !== undefined ? Buffer.from(baseText(route)) : undefined;
  if (route.onlyInvalid) return undefined;
  const expectation = body !== undefined ? judgeBody(route, body, JSON_TYPE, target.bodyLimit) : maybe;
  return {
    kind: "query",
    route: routeKey(route),
    method: route.method,
    path,
    headers: body !== undefined ? JSON_TYPE : {},
    ...(body !== undefined && { body }),
    ...(route.raw && route.method === "POST" && { body: Buffer.from("not the blob"), headers: {} }),
    expect: route.raw ? reject() : expectation.kind === "reject" ? expectation : maybe,
    protocol: protocolOf(path),
    delivery: "whole",
  };
}

/** The route's path with a method it does not have: GET with a body, DELETE on a POST route, and so on. */
function otherMethod(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  const registered = target.routes.filter((r) => r.url === route.url).map((r) => r.method);
  const others = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].filter((m) => !registered.includes(m) && !(m === "HEAD" && registered.includes("GET")));
  if (others.length === 0) return undefined;
  const method = random.pick(others);
  const withPayload = method !== "HEAD" && random.chance(0.7);
  return {
    kind: "method",
    method,
    path: route.path,
    headers: withPayload ? JSON_TYPE : {},
    ...(withPayload && { body: Buffer.from(baseText(route)) }),
    expect: reject(404),
    protocol: protocolOf(route.path),
    delivery: "whole",
  };
}

/** Header values with bytes that are not UTF-8, odd ids, odd SDK headers; the request itself is the valid one. */
function oddHeaders(route: FuzzRoute, random: Random, target: FuzzTarget): FuzzCase | undefined {
  if (route.onlyInvalid || route.raw) return undefined;
  const name = random.pick(["x-request-id", "user-agent", "anthropic-version", "anthropic-beta", "openai-organization", "accept", "accept-encoding", "x-stainless-os", "cookie", "forwarded", "x-forwarded-for"]);
  const value = random.pick([...LATIN1_VALUES, "x".repeat(8000), "", " ", "../../etc/passwd", "\t", "a\tb", "${jndi:ldap://x}", "%00"]);
  const body = route.base !== undefined ? Buffer.from(baseText(route)) : undefined;
  const headers: Record<string, string> = { [name]: value, ...(body !== undefined && JSON_TYPE) };
  return {
    kind: "header",
    route: routeKey(route),
    method: route.method,
    path: route.path,
    headers,
    ...(body !== undefined && { body }),
    expect: maybe,
    protocol: protocolOf(route.path),
    delivery: "whole",
  };
}

/** A body on a route that reads none (GET /api/tags with JSON, DELETE /api/jobs/:id with garbage): ignored or refused. */
function unexpectedBody(route: FuzzRoute, random: Random): FuzzCase {
  const body = random.pick([Buffer.from('{"model":"chat"}'), Buffer.from("{not json"), random.bytes(random.int(1, 300)), Buffer.from("[]")]);
  const headers: Record<string, string> = random.chance(0.7) ? { "content-type": random.pick(["application/json", "text/plain", "application/octet-stream"]) } : {};
  return { kind: "unexpected-body", route: routeKey(route), method: route.method, path: route.path, headers, body, expect: maybe, protocol: protocolOf(route.path), delivery: "whole" };
}

/** Paths no route has: dot segments, double slashes, encoded slashes and NULs, case changes, very long paths. */
function oddPath(random: Random): FuzzCase {
  const path = random.pick([
    "/api/tags/",
    "//api/tags",
    "/api/./tags",
    "/api/../api/tags",
    "/API/TAGS",
    "/api/tags%00",
    "/api/tags;x",
    "/%ZZ",
    "/%",
    "/api/%2e%2e/%2e%2e/etc/passwd",
    "/api/..%2f..%2fetc%2fpasswd",
    "/v1/..%2f..%2fetc%2fpasswd",
    "/v1/messages/../../etc/passwd",
    "/v1/messages/%2e%2e",
    "/v1/nothing",
    "/v1",
    "/v1/",
    "/rerank/",
    `/${"a/".repeat(3000)}`,
    `/api/${"x".repeat(12_000)}`,
    "/api/blobs/",
    "/api/jobs//events",
    "/\xff\xfe",
    "/caf\xe9",
    "/*",
  ]);
  return { kind: "odd-path", method: random.pick(["GET", "POST", "DELETE"]), path, headers: {}, expect: reject(), protocol: protocolOf(path), delivery: "whole" };
}

/**
 * Requests node:http would not send: control bytes and NULs in header values, bare LF line ends, a bad Content-Length,
 * a Transfer-Encoding it does not know, a huge header, an unknown method, HTTP/0.9. Node's own parser refuses these
 * before any route runs; the server must still answer a 4xx (or close), never crash.
 */
function malformedHttp(random: Random): FuzzCase {
  const json = '{"model":"chat","prompt":"Hi","stream":false}';
  const raw = random.pick([
    `GET /api/tags HTTP/1.1\r\nHost: localhost\r\nx-bad: a\u0000b\r\n\r\n`,
    `GET /api/tags HTTP/1.1\r\nHost: localhost\r\nx-bad: a\u0001\u0007b\r\n\r\n`,
    `GET /api/tags HTTP/1.1\nHost: localhost\n\n`,
    `POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n${json}`,
    `POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n${json}`,
    `POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: bogus\r\n\r\n${json}`,
    `POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz\r\n${json}\r\n0\r\n\r\n`,
    `POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${json}\r\n0\r\n\r\n`,
    `GET /api/tags HTTP/1.1\r\nHost: localhost\r\nx-big: ${"a".repeat(70_000)}\r\n\r\n`,
    `BREW /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n`,
    // HTTP/0.9's request line alone: Node's parser takes it (a GET with no headers), so it may be served.
    `GET /api/tags\r\n\r\n`,
    `GET /api/tags HTTP/9.9\r\nHost: localhost\r\n\r\n`,
    `GET /api/tags HTTP/1.1\r\nHost: localhost\r\nbad header\r\n\r\n`,
    `GET /api/t\u0000ags HTTP/1.1\r\nHost: localhost\r\n\r\n`,
    `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n{}`,
  ]);
  const path = /^[A-Z]+ (\/\S*)/.exec(raw)?.[1] ?? "/";
  const expect = /^GET \S+\r\n\r\n$/.test(raw) ? maybe : reject();
  return { kind: "malformed-http", method: "RAW", path, headers: {}, expect, protocol: protocolOf(path), delivery: "raw", raw: Buffer.from(raw, "latin1") };
}
