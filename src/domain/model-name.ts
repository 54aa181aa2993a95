import { InvalidModelNameError } from "./errors.js";

/**
 * A parsed model name. Grammar (Ollama's): `[host/][namespace/]model[:tag]`.
 * - host: letters, digits, `.`, `-`, optionally `:port`; only recognised when three parts are given
 * - namespace, model: a letter or digit, then letters, digits, `_`, `.`, `-` (at most 96 characters, as Hugging Face
 *   repository names)
 * - tag: a letter, digit or `_`, then letters, digits, `_`, `.`, `-` (at most 128: a tag may be a file name); defaults
 *   to `latest`
 * No part may be `.` or `..`, so a name can never address a path outside the store.
 */
export interface ModelName {
  host?: string;
  namespace?: string;
  model: string;
  tag: string;
}

const PART = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,95}$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$/;
const HOST = /^[a-zA-Z0-9][a-zA-Z0-9.-]{0,252}(:[0-9]{1,5})?$/;

export function parseModelName(input: string): ModelName {
  const raw = input.trim();
  const fail = (why: string): never => {
    throw new InvalidModelNameError(`invalid model name "${input}": ${why}`);
  };
  if (raw === "") fail("it is empty");
  if (raw.length > 500) fail("it is too long");

  let rest = raw;
  let tag = "latest";
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", lastSlash + 1);
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`bad tag "${tag}"`);
  }
  const parts = rest.split("/");
  if (parts.length > 3) fail("too many '/' separated parts");
  const model = parts.pop() ?? "";
  const namespace = parts.pop();
  const host = parts.pop();
  if (!PART.test(model) || isDots(model)) fail(`bad model part "${model}"`);
  if (namespace !== undefined && (!PART.test(namespace) || isDots(namespace))) fail(`bad namespace "${namespace}"`);
  if (host !== undefined && (!HOST.test(host) || isDots(host))) fail(`bad host "${host}"`);
  return { ...(host !== undefined && { host }), ...(namespace !== undefined && { namespace }), model, tag };
}

function isDots(part: string): boolean {
  return /^\.+$/.test(part);
}

/** The display form: default parts (`library` namespace) are dropped, the tag is always shown. */
export function formatModelName(name: ModelName): string {
  const prefix = [name.host, name.namespace === "library" && !name.host ? undefined : name.namespace]
    .filter((p): p is string => p !== undefined)
    .join("/");
  return `${prefix ? prefix + "/" : ""}${name.model}:${name.tag}`;
}

/** Parse then format: the one spelling under which a model is stored. */
export function normalizeModelName(input: string): string {
  return formatModelName(parseModelName(input));
}
