import type { FastifyReply, FastifyRequest } from "fastify";
import { keysRequired } from "../../auth/authenticate.js";
import type { Services } from "../../services.js";

/** GET /api/whoami: who the request's key is, as the server sees it (what the dashboard shows and may offer). */
export interface WhoAmI {
  /** Whether requests need a key now (AI_SERVER_AUTH, a public address, or a key in force). */
  keys_required: boolean;
  /** The key's id; null for the anonymous client of an open server. */
  key_id: string | null;
  name: string;
  scope: "inference" | "admin";
  /** The models it may see and use; null = every model. */
  models: string[] | null;
}

/** Inference access: with keys required and none (or a bad one) sent, the 401 says so; an open server answers anonymous admin. */
export async function whoAmI(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { principal } = request.requestContext;
  const body: WhoAmI = {
    keys_required: keysRequired(services.config, services.keys),
    key_id: principal.keyId,
    name: principal.name,
    scope: principal.scope,
    models: principal.models ? [...principal.models] : null,
  };
  return reply.send(body);
}
