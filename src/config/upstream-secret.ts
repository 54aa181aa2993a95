import { settings } from "./schema.js";

/**
 * The bearer keys of upstream endpoints (`api_key_env` of `POST /api/create`'s `upstream`): the environment
 * variables that hold them, read when a request is sent so that a rotated key applies at once. Since an admin route
 * chooses the variable and the URL it is sent to, a variable this server itself reads for its own secrets can never
 * be named (it would send, say, the admin key or the database password to any URL).
 */

/** Prefixes of variables this server, its libraries or its tools read: ours, Hugging Face's, libpq's (`pg`). */
const RESERVED_PREFIXES = [/^AI_SERVER_/i, /^HF_/i, /^HUGGING_?FACE_/i, /^PG[A-Z]/i];

/** A portable environment variable name. */
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * Why `name` cannot hold an upstream key, or undefined when it can: not a variable name, or a variable of this
 * server's own settings (every setting's variable, and the AI_SERVER_*, HF_*, HUGGING_FACE_* and PG* families).
 */
export function refusedSecretName(name: string): string | undefined {
  if (!VARIABLE_NAME.test(name)) return "expected an environment variable name (letters, digits and underscores, not starting with a digit)";
  const own = Object.values(settings).some((setting) => setting.env.toUpperCase() === name.toUpperCase());
  if (own || RESERVED_PREFIXES.some((prefix) => prefix.test(name))) {
    return `${name} is one of this server's own settings or secrets (AI_SERVER_*, HF_*, HUGGING_FACE_*, PG*), which are never sent to an upstream`;
  }
  return undefined;
}

/** The key in variable `name` now, or undefined when it is unset or empty (or `name` may not be used). */
export function upstreamSecret(name: string): string | undefined {
  if (refusedSecretName(name) !== undefined) return undefined;
  const value = process.env[name];
  return value === undefined || value === "" ? undefined : value;
}
