import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Services } from "../../services.js";
import { RequestCancelledError } from "../../domain/errors.js";
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
