import { InvalidRequestError } from "../domain/errors.js";

/**
 * A tool call's arguments as a client sends them back: a JSON object (Ollama's habit) or a JSON string (OpenAI's);
 * absent or blank = no arguments. Anything that is not an object is a 400 naming `field`.
 */
export function parseToolArguments(args: unknown, field: string): Record<string, unknown> {
  let parsed: unknown = args ?? {};
  if (typeof args === "string") {
    try {
      parsed = args.trim() === "" ? {} : JSON.parse(args);
    } catch {
      throw new InvalidRequestError(`${field}: not valid JSON`);
    }
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InvalidRequestError(`${field}: expected a JSON object`);
  return parsed as Record<string, unknown>;
}
