import { createReadStream } from "node:fs";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Services } from "../../services.js";
import { BlobNotFoundError, RequestCancelledError } from "../../domain/errors.js";
import { byteRange } from "../byte-range.js";
import { clientSignal } from "../../server/abort.js";
import { parseDigest } from "../../store/blob-store.js";
import { parseBody } from "./schemas.js";

/** The path parameter of /api/blobs/{digest} (its form is checked by parseDigest). */
export const paramsSchema = z.object({ digest: z.string() });

/**
 * Makes every request body in this scope a raw stream, whatever its content type, and exempt from the JSON body
 * limit (blobs are model weights: gigabytes).
 */
export function streamRawBodies(scope: FastifyInstance): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("*", (_request, _payload, done) => done(null));
}

/** HEAD /api/blobs/:digest: 200 when the blob is stored, 404 when not. */
export async function blobExists(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const digest = parseDigest(parseBody(paramsSchema, request.params).digest);
  return reply.status((await services.store.blobs.has(digest)) ? 200 : 404).send();
}

/** POST /api/blobs/:digest: stores the raw body if it hashes to `digest` (201), else 400; 200 if already stored. */
export async function uploadBlob(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const digest = parseDigest(parseBody(paramsSchema, request.params).digest);
  if (await services.store.blobs.has(digest)) {
    request.raw.resume();
    return reply.status(200).send();
  }
  const signal = clientSignal(reply);
  try {
    await services.store.blobs.write(request.raw, digest, signal);
  } catch (error) {
    throw signal.aborted ? new RequestCancelledError() : error;
  }
  return reply.status(201).send();
}

/**
 * GET /api/blobs/:digest (ours; admin: the blobs are whole model weights): the blob's bytes, for a replica that lacks
 * a model's weights to fetch them from one that has them. Its Content-Length, a strong ETag (the digest, quoted) and
 * `x-content-digest: sha256:<hex>`; one `Range` (with `If-Range`) for resuming a transfer (206, or 416 past the
 * end); 404 when absent, 400 for a malformed digest (so no path leaves the blob store).
 */
export async function downloadBlob(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const digest = parseDigest(parseBody(paramsSchema, request.params).digest);
  const { blobs } = services.store;
  const size = await blobs.sizeOf(digest);
  if (size === undefined) throw new BlobNotFoundError(digest);
  const etag = `"${digest}"`;
  reply.header("etag", etag).header("x-content-digest", digest).header("accept-ranges", "bytes").type("application/octet-stream");
  const range = byteRange(header(request.headers.range), header(request.headers["if-range"]), etag, size);
  if (range.kind === "unsatisfiable") return reply.status(416).header("content-range", `bytes */${size}`).send();
  if (range.kind === "whole") return reply.header("content-length", size).send(createReadStream(blobs.pathOf(digest)));
  const { start, end } = range;
  return reply
    .status(206)
    .header("content-range", `bytes ${start}-${end}/${size}`)
    .header("content-length", end - start + 1)
    .send(createReadStream(blobs.pathOf(digest), { start, end }));
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
