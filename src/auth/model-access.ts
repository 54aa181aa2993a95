import { normalizeModelName } from "../domain/model-name.js";
import type { Principal } from "./principal.js";

/** How names are looked up: the model store's `get` (normalising, case-insensitive, configured aliases resolved). */
export interface ModelLookup {
  get(name: string): { name: string } | undefined;
}

/**
 * Whether `principal` may see and use the model `name`. A key limited to some models reaches a model named in its
 * list however the request spells it (`qwen` is `qwen:latest`, case aside), and through a configured alias of it; a
 * name in its list that is itself an alias reaches the alias's model too. A name that cannot parse is reached by
 * nobody limited.
 */
export function mayUseModel(principal: Principal, name: string, models: ModelLookup): boolean {
  if (principal.models === undefined) return true;
  const requested = comparable(name);
  if (requested === undefined) return false;
  const allowed = allowedNames(principal.models, models);
  if (allowed.has(requested)) return true;
  const record = models.get(name);
  return record !== undefined && allowed.has(record.name.toLowerCase());
}

/** The entries of a list (models, running models) that `principal` may see, by each entry's model name. */
export function visibleTo<T>(principal: Principal, entries: readonly T[], nameOf: (entry: T) => string, models: ModelLookup): T[] {
  if (principal.models === undefined) return [...entries];
  return entries.filter((entry) => mayUseModel(principal, nameOf(entry), models));
}

/** The model names a request body names in its fields (`model`, Ollama's `name`, copy's `source`/`destination`, create's `from`). */
export function namedModels(body: unknown): string[] {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return [];
  const fields = body as Record<string, unknown>;
  return ["model", "name", "source", "destination", "from"].map((field) => fields[field]).filter((value): value is string => typeof value === "string" && value !== "");
}

function allowedNames(list: readonly string[], models: ModelLookup): Set<string> {
  const allowed = new Set<string>();
  for (const name of list) {
    allowed.add(name.toLowerCase());
    const target = safeGet(models, name);
    if (target !== undefined) allowed.add(target.name.toLowerCase());
  }
  return allowed;
}

function comparable(name: string): string | undefined {
  try {
    return normalizeModelName(name).toLowerCase();
  } catch {
    return undefined;
  }
}

function safeGet(models: ModelLookup, name: string): { name: string } | undefined {
  try {
    return models.get(name);
  } catch {
    return undefined;
  }
}
