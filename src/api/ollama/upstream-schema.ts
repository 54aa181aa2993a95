import { z } from "zod";
import { refusedSecretName } from "../../config/upstream-secret.js";
import { parseDuration } from "../../domain/duration.js";
import { DEFAULT_UPSTREAM_CAPABILITIES, type UpstreamCapability, type UpstreamConfig } from "../../domain/upstream.js";
import { optional } from "../validation.js";

/**
 * `upstream` on POST /api/create (our extension): a model served by remote OpenAI-compatible endpoints. Strict: an
 * unknown field is refused by name (a typo would otherwise silently drop, say, a key's variable), and so are URLs that
 * carry credentials (they would show in /api/show: the key goes in a variable named by `api_key_env`) and variables
 * of this server's own settings.
 */

const CAPABILITIES = ["completion", "tools", "insert", "embedding", "vision", "thinking", "rerank"] as const satisfies readonly UpstreamCapability[];

const positiveInt = (max: number) =>
  z
    .number({ error: "expected a positive integer" })
    .int("expected a positive integer")
    .min(1, "expected a positive integer")
    .max(max, `must be at most ${max}`);

/** A duration as keep_alive takes it ("30s", "2m", or seconds), positive, in milliseconds. */
const timeout = z.union([z.string(), z.number()], { error: 'expected a duration ("30s", "2m") or seconds' }).transform((value, ctx) => {
  try {
    const ms = parseDuration(value);
    if (ms > 0) return ms;
  } catch {
    // reported below
  }
  ctx.addIssue({ code: "custom", message: 'expected a positive duration ("30s", "2m") or seconds' });
  return z.NEVER;
});

const endpointSchema = z.strictObject({
  url: z.string({ error: "expected an http:// or https:// URL" }).superRefine((value, ctx) => {
    const problem = urlProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  }),
  model: z.string({ error: "expected the model's name on that endpoint" }).trim().min(1, "expected the model's name on that endpoint"),
  api_key_env: optional(
    z.string({ error: "expected an environment variable name" }).superRefine((value, ctx) => {
      const refused = refusedSecretName(value);
      if (refused !== undefined) ctx.addIssue({ code: "custom", message: refused });
    }),
  ),
  weight: optional(positiveInt(1000)),
});

export const upstreamSchema = z.strictObject({
  endpoints: z.array(endpointSchema, { error: "expected an array of endpoints" }).min(1, "at least one endpoint is required").max(64, "at most 64 endpoints"),
  capabilities: optional(z.array(z.enum(CAPABILITIES, { error: `expected one of ${CAPABILITIES.join(", ")}` }))),
  max_parallel: optional(positiveInt(4096)),
  context_length: optional(z.number({ error: "expected a number of tokens" }).int("expected a number of tokens").min(0, "expected a number of tokens")),
  connect_timeout: optional(timeout),
  first_byte_timeout: optional(timeout),
});
export type UpstreamBody = z.output<typeof upstreamSchema>;

/** Why `value` cannot be an endpoint's base URL, or undefined. */
function urlProblem(value: string): string | undefined {
  if (!/^https?:\/\//i.test(value) || !URL.canParse(value)) return "expected an http:// or https:// URL";
  const url = new URL(value);
  if (url.username !== "" || url.password !== "") return "must not carry credentials (they would be shown): name the variable holding the key in api_key_env";
  if (url.search !== "" || url.hash !== "") return "must not have a query or a fragment: the base of the OpenAI routes, e.g. http://host:8000/v1";
  return undefined;
}

/** The validated wire object → the domain's configuration (base URLs without a trailing slash, weights defaulted). */
export function toUpstreamConfig(body: UpstreamBody): UpstreamConfig {
  return {
    endpoints: body.endpoints.map((endpoint) => ({
      url: endpoint.url.replace(/\/+$/, ""),
      model: endpoint.model,
      ...(endpoint.api_key_env !== undefined && { apiKeyEnv: endpoint.api_key_env }),
      weight: endpoint.weight ?? 1,
    })),
    capabilities: [...new Set(body.capabilities ?? DEFAULT_UPSTREAM_CAPABILITIES)],
    ...(body.max_parallel !== undefined && { maxParallel: body.max_parallel }),
    ...(body.context_length !== undefined && body.context_length > 0 && { contextLength: body.context_length }),
    ...(body.connect_timeout !== undefined && { connectTimeoutMs: body.connect_timeout }),
    ...(body.first_byte_timeout !== undefined && { firstByteTimeoutMs: body.first_byte_timeout }),
  };
}
