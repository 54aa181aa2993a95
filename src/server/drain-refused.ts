import type { FastifyReply, FastifyRequest } from "fastify";

/** How much more than the body limit a refused body may still send, to be read and thrown away. */
const DRAIN_BEYOND_LIMIT = 64 * 1024 * 1024;
/** How long a refused body may take to drain before its connection is closed anyway. */
const DRAIN_MS = 30_000;

/**
 * A body refused for its size before it was all read (413 on its Content-Length) is read to its end and thrown away
 * after the answer, and the connection kept, instead of being closed at once: closing a connection with unread bytes
 * makes the kernel reset it (a TCP RST), and a client still writing its body (node:http, undici, Python's requests)
 * then reports a reset or a broken pipe, never the 413. Only bodies that announce their length, up to 64 MiB past the
 * limit (or the limit again, if larger), and for 30 s at most; a larger or chunked one closes the connection as before.
 */
export function drainRefusedBody(request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw;
  const length = Number(raw.headers["content-length"]);
  const limit = request.routeOptions.bodyLimit ?? 0;
  if (raw.complete || !Number.isFinite(length) || length > limit + Math.max(limit, DRAIN_BEYOND_LIMIT)) return;
  // Fastify asks for the connection to close after a refused body; draining it makes that unnecessary.
  reply.removeHeader("connection");
  reply.raw.once("finish", () => {
    const giveUp = setTimeout(() => raw.socket?.destroy(), DRAIN_MS).unref();
    raw.once("end", () => clearTimeout(giveUp));
    raw.once("close", () => clearTimeout(giveUp));
    raw.unpipe();
    raw.resume();
  });
}
