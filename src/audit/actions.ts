import { normalizeModelName } from "../domain/model-name.js";

/**
 * What an audited request did, read from its route, method, outcome and fields: THE table of admin changes, and the
 * model a request names. One place, so that a new admin route gets its action here and nowhere else.
 */

/** What an action's target is read from. */
export interface ActionSource {
  /** The route's parameters (`:id`, `:digest`). */
  params: unknown;
  /** The parsed request body. */
  body: unknown;
  /** The parsed response body: only for the routes marked `fromResponse` (a new key's id is only known there). */
  response?: unknown;
}

interface ActionRule {
  action: string;
  target(source: ActionSource): string | undefined;
  /** The target is in the response body, so the audit hook keeps this route's JSON answer. */
  fromResponse?: true;
}

/** Longest model name or target kept (they come from clients). */
const MAX_NAME = 256;

/**
 * The admin changes by `METHOD route`. A row gets its action only when the request succeeded (status below 400);
 * a streamed create or pull that fails after its first line reports the failure in-band and still counts as made.
 */
export const ACTIONS: Readonly<Record<string, ActionRule>> = {
  "POST /api/keys": { action: "key.create", target: ({ response }) => field(response, "id"), fromResponse: true },
  "DELETE /api/keys/:id": { action: "key.revoke", target: ({ params }) => field(params, "id") },
  "POST /api/create": { action: "model.create", target: ({ body }) => modelField(body, "model", "name") },
  "POST /api/copy": { action: "model.copy", target: ({ body }) => modelField(body, "destination") },
  "DELETE /api/delete": { action: "model.delete", target: ({ body }) => modelField(body, "model", "name") },
  "POST /api/pull": { action: "model.pull", target: ({ body }) => modelField(body, "model", "name") },
  "POST /api/jobs": { action: "model.pull", target: ({ body }) => modelField(body, "model", "name") },
  "DELETE /api/jobs/:id": { action: "job.cancel", target: ({ params }) => field(params, "id") },
  "POST /api/blobs/:digest": { action: "blob.upload", target: ({ params }) => field(params, "digest") },
};

/** Every action name, for validating the `action` filter. */
export const ACTION_NAMES: ReadonlySet<string> = new Set(Object.values(ACTIONS).map((rule) => rule.action));

/** The admin change a finished request made, with its target; undefined when it made none (or failed). */
export function actionOf(method: string, route: string, status: number, source: ActionSource): { action: string; target: string | null } | undefined {
  const rule = ACTIONS[`${method} ${route}`];
  if (rule === undefined || status >= 400) return undefined;
  return { action: rule.action, target: rule.target(source) ?? null };
}

/** Whether the route's action reads its target from the response body. */
export function targetFromResponse(method: string, route: string): boolean {
  return ACTIONS[`${method} ${route}`]?.fromResponse === true;
}

/** Routes whose body has a `name` that is not a model's (a key's name). */
const NO_MODEL_IN_BODY: ReadonlySet<string> = new Set(["/api/keys", "/api/keys/:id"]);

/**
 * The model a request body names (`model`, Ollama's `name`, copy's `source`), normalised as the store spells it
 * (`qwen` → `qwen:latest`); a name that does not parse (a pull's URL) is kept as sent, cut at 256 characters.
 */
export function modelNamed(route: string, body: unknown): string | undefined {
  if (NO_MODEL_IN_BODY.has(route)) return undefined;
  return modelField(body, "model", "name", "source");
}

/** A model name the way the audit log keeps them, for entries and for the `model` filter alike. */
export function auditModelName(name: string): string {
  try {
    return normalizeModelName(name);
  } catch {
    return name.slice(0, MAX_NAME);
  }
}

function modelField(body: unknown, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = field(body, name);
    if (value !== undefined) return auditModelName(value);
  }
  return undefined;
}

function field(object: unknown, name: string): string | undefined {
  if (typeof object !== "object" || object === null || Array.isArray(object)) return undefined;
  const value = (object as Record<string, unknown>)[name];
  return typeof value === "string" && value !== "" ? value.slice(0, MAX_NAME) : undefined;
}
