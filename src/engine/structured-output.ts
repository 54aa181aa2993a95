import { Ajv } from "ajv";
import type { OutputFormat } from "../domain/chat.js";
import { StructuredOutputError } from "../domain/errors.js";

const ajv = new Ajv({ strict: false, allErrors: true });

/**
 * Checks generated text against the requested format. Grammars constrain the shape but not everything a schema
 * says (e.g. the JSON grammar lets an integer carry an exponent, so "1.5e0" can slip into an integer field), so
 * output is validated before it is returned. Throws StructuredOutputError with the reason.
 */
export function validateStructuredOutput(format: OutputFormat, text: string): void {
  if (format.type === "text") return;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new StructuredOutputError(`model output is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (format.type === "json") return;
  const validate = ajv.compile(format.schema);
  if (!validate(value)) {
    throw new StructuredOutputError(`model output does not match the JSON schema: ${ajv.errorsText(validate.errors)}`);
  }
}
