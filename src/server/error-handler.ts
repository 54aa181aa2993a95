import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { AppError, InvalidRequestError, PayloadTooLargeError, RouteNotFoundError, toAppError } from "../domain/errors.js";

/**
 * The one place where errors become HTTP responses. Fastify's own errors (bad JSON, body too large, …) are first
 * turned into catalog errors; the protocol of the route decides the body shape:
 * Ollama `{"error": "…"}`, OpenAI `{"error": {"message", "type", "param", "code"}}`.
 */
export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const appError = fromFastify(error);
  if (appError.status >= 500) request.log.error({ err: error }, appError.message);
  else request.log.info({ code: appError.code }, appError.message);
  void reply.status(appError.status).headers(appError.headers).send(errorBody(request.url, appError));
}

export function handleNotFound(request: FastifyRequest, reply: FastifyReply): void {
  handleError(new RouteNotFoundError(`${request.method} ${request.url.split("?")[0]} not found`), request, reply);
}

export function errorBody(url: string, error: AppError): unknown {
  if (url.startsWith("/v1/")) {
    const type = error.status === 404 ? "not_found_error" : error.status < 500 ? "invalid_request_error" : "api_error";
    return { error: { message: error.message, type, param: null, code: error.code } };
  }
  return { error: error.message };
}

function fromFastify(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (isFastifyError(error)) {
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new PayloadTooLargeError("request body is too large");
    if (error.code === "FST_ERR_CTP_EMPTY_JSON_BODY") return new InvalidRequestError("missing request body");
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return new InvalidRequestError(error.message);
    }
  }
  return toAppError(error);
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && "code" in error && typeof error.code === "string" && error.code.startsWith("FST_");
}
