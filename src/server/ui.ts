import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { RouteNotFoundError } from "../domain/errors.js";

/** Where `npm run build` writes the dashboard (scripts/build-ui.mjs): dist/ui beside src/ and dist/ of this package. */
export const BUILT_UI_DIR = fileURLToPath(new URL("../../dist/ui", import.meta.url));

/**
 * What the dashboard's page may do: its own scripts and styles only (no inline script, nothing from another origin),
 * calls to this server only. A model's reply is rendered through a sanitizer; this policy is the second wall, so
 * that markup that slipped through could still not run a script or send anything elsewhere.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join("; ");

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

/** One file of the built dashboard, read once, with its gzip form and validator. */
interface StaticFile {
  body: Buffer;
  gzipped: Buffer;
  etag: string;
  type: string;
}

/**
 * GET /ui (and /ui/): the dashboard's page; GET /ui/assets/<file>: its script and styles. Files are read from
 * `dir` on first use and kept (a few hundred kilobytes), sent gzipped to clients that accept it, revalidated by
 * ETag. Only plain names directly in the build's folders are served: no path from a request reaches the disk.
 * `dir` "off": no dashboard (404). A missing build answers 503 saying how to build it.
 */
export function uiRoutes(setting: string): FastifyPluginAsync {
  return async (app) => {
    if (setting === "off") return;
    const dir = setting === "" ? BUILT_UI_DIR : path.resolve(setting);
    const cache = new Map<string, Promise<StaticFile | undefined>>();
    const load = (relative: string): Promise<StaticFile | undefined> => {
      let file = cache.get(relative);
      if (!file) {
        file = readStatic(path.join(dir, relative));
        cache.set(relative, file);
        void file.then((found) => found ?? cache.delete(relative)); // a file built later is found then
      }
      return file;
    };
    const page = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const file = await load("index.html");
      if (!file) {
        return reply.status(503).type("text/plain; charset=utf-8").send(`The dashboard is not built (no ${path.join(dir, "index.html")}): run npm run build.\n`);
      }
      return send(request, reply, file);
    };
    app.get("/ui", page);
    app.get("/ui/*", async (request, reply) => {
      const rest = (request.params as { "*": string })["*"];
      if (rest === "") return page(request, reply); // /ui/
      // The dashboard's routes are in the hash: under /ui there are only its files.
      const match = /^assets\/([A-Za-z0-9_-][A-Za-z0-9_.-]*)$/.exec(rest);
      const file = match?.[1] && !match[1].includes("..") ? await load(path.join("assets", match[1])) : undefined;
      if (!file) throw new RouteNotFoundError(`no such file of the dashboard: /ui/${rest}`);
      return send(request, reply, file);
    });
  };
}

async function readStatic(file: string): Promise<StaticFile | undefined> {
  try {
    const body = await readFile(file);
    return {
      body,
      gzipped: gzipSync(body, { level: 9 }),
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
      type: TYPES[path.extname(file)] ?? "application/octet-stream",
    };
  } catch {
    return undefined;
  }
}

function send(request: FastifyRequest, reply: FastifyReply, file: StaticFile): FastifyReply {
  reply
    .header("content-security-policy", CONTENT_SECURITY_POLICY)
    .header("x-content-type-options", "nosniff")
    .header("referrer-policy", "no-referrer")
    .header("cache-control", "no-cache")
    .header("etag", file.etag)
    .header("vary", "accept-encoding")
    .type(file.type);
  if (request.headers["if-none-match"] === file.etag) return reply.status(304).send();
  if (/\bgzip\b/.test(String(request.headers["accept-encoding"] ?? ""))) return reply.header("content-encoding", "gzip").send(file.gzipped);
  return reply.send(file.body);
}
