import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { parseExpiry } from "../../auth/expiry.js";
import type { ApiKeyRecord, NewKey } from "../../auth/key-store.js";
import type { Services } from "../../services.js";
import { optional, parseBody } from "../validation.js";
import type { WireCreatedKey, WireKey } from "./wire.js";

export type { WireCreatedKey, WireKey } from "./wire.js";

/** The keys routes (admin scope, not limited to models): POST /api/keys, GET /api/keys, DELETE /api/keys/{id}. */

/** POST /api/keys: `expires` is a span from now ("30d", "12h", "1w") or a date ("2026-01-31"). */
export const newKeySchema = z.object({
  name: z.string(),
  scope: z.enum(["inference", "admin"]),
  models: optional(z.array(z.string())),
  rpm: optional(z.number().int().min(1)),
  tpm: optional(z.number().int().min(1)),
  max_parallel: optional(z.number().int().min(1)),
  expires: optional(z.string()),
});

/** DELETE /api/keys/{id}: the path parameter. */
export const keyIdSchema = z.object({ id: z.string().min(1).max(128) });

/** The wire body of POST /api/keys → the store's NewKey. */
export function toNewKey(body: z.output<typeof newKeySchema>, now: Date): NewKey {
  return {
    name: body.name,
    scope: body.scope,
    ...(body.models !== undefined && { models: body.models }),
    limits: {
      ...(body.rpm !== undefined && { rpm: body.rpm }),
      ...(body.tpm !== undefined && { tpm: body.tpm }),
      ...(body.max_parallel !== undefined && { maxParallel: body.max_parallel }),
    },
    ...(body.expires !== undefined && { expiresAt: parseExpiry(body.expires, now) }),
  };
}

export function toWireKey(record: ApiKeyRecord, now: Date): WireKey {
  const expired = record.expiresAt !== undefined && record.expiresAt <= now;
  return {
    id: record.id,
    name: record.name,
    scope: record.scope,
    models: record.models === undefined ? null : [...record.models],
    rpm: record.limits.rpm ?? null,
    tpm: record.limits.tpm ?? null,
    max_parallel: record.limits.maxParallel ?? null,
    created_at: record.createdAt.toISOString(),
    expires_at: record.expiresAt?.toISOString() ?? null,
    revoked_at: record.revokedAt?.toISOString() ?? null,
    last_used_at: record.lastUsedAt?.toISOString() ?? null,
    status: record.revokedAt !== undefined ? "revoked" : expired ? "expired" : "active",
    from_setting: record.fromSetting,
  };
}

/** POST /api/keys: 201 with the new key (the only time it is shown) and its record. */
export async function createKey(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const now = new Date();
  const { key, record } = await services.keys.create(toNewKey(parseBody(newKeySchema, request.body), now));
  return reply.status(201).send({ ...toWireKey(record, now), key } satisfies WireCreatedKey);
}

/** GET /api/keys: every key, revoked and expired ones included, oldest first; never a secret. */
export async function listKeys(services: Services, _request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const now = new Date();
  return reply.send({ keys: services.keys.list().map((record) => toWireKey(record, now)) });
}

/** DELETE /api/keys/{id}: revokes the key at once; 200 with its record (404 for an unknown id). */
export async function revokeKey(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { id } = parseBody(keyIdSchema, request.params);
  return reply.send(toWireKey(await services.keys.revoke(id), new Date()));
}
