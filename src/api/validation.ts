import { z } from "zod";
import { InvalidRequestError } from "../domain/errors.js";

/** Request validation shared by every protocol adapter: zod schemas in, InvalidRequestError naming the field out. */

/** An optional field; JSON `null` counts as absent. */
export function optional<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => (value === null ? undefined : value), schema.optional());
}

/**
 * Validates a parsed JSON body. Throws InvalidRequestError naming every offending field, e.g.
 * `options.temperature: Invalid input: expected number, received string`.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (body === undefined || body === null || body === "") throw new InvalidRequestError("missing request body");
  if (typeof body !== "object" || Array.isArray(body)) throw new InvalidRequestError("request body must be a JSON object");
  const result = schema.safeParse(body);
  if (!result.success) throw new InvalidRequestError(describeIssues(result.error.issues));
  return result.data;
}

export function describeIssues(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[] = []): string {
  return issues.map((issue) => `${fieldPath([...prefix, ...issue.path])}: ${issue.message}`).join("; ");
}

/** ["messages", 0, "role"] → "messages[0].role". */
function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "body";
  return path.reduce<string>((out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), "");
}
