import { AppError, ContextOverflowError, GenerationError, InvalidRequestError, ModelLoadError } from "../../domain/errors.js";

/** node-llama-cpp throws plain Errors; this is where they become catalog errors. */
export function fromLlamaError(error: unknown, phase: "load" | "generate"): AppError {
  if (error instanceof AppError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/context size|too long|exceeds the context|no space left in the context/i.test(message)) {
    return new ContextOverflowError(`input does not fit in the context window: ${message}`, { cause: error });
  }
  if (/grammar|json schema|GbnfJson/i.test(message)) return new InvalidRequestError(`unsupported format or tool schema: ${message}`, { cause: error });
  if (phase === "load") return new ModelLoadError(`failed to load model: ${message}`, { cause: error });
  return new GenerationError(`generation failed: ${message}`, { cause: error });
}
