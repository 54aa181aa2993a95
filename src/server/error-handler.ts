import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { AppError, InvalidRequestError, PayloadTooLargeError, RequestCancelledError, RouteNotFoundError, toAppError } from "../domain/errors.js";
import { drainRefusedBody } from "./drain-refused.js";

/**
 * The one place where errors become HTTP responses. Fastify's own errors (bad JSON, body too large, …) are first
 * turned into catalog errors; the protocol of the route decides the body shape:
 * Ollama `{"error": "…"}`, OpenAI `{"error": {"message", "type", "param", "code"}}`.
 */
export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const appError = fromFastify(error);
  if (appError.status >= 500) request.log.error({ err: error }, appError.message);
  else request.log.info({ code: appError.code }, appError.message);
  if (appError instanceof PayloadTooLargeError) drainRefusedBody(request, reply);
  void reply.status(appError.status).headers(appError.headers).send(errorBody(request.url, appError));
}

export function handleNotFound(request: FastifyRequest, reply: FastifyReply): void {
  handleError(new RouteNotFoundError(`${request.method} ${request.url.split("?")[0]} not found`), request, reply);
}

export function errorBody(url: string, error: AppError): unknown {
  if (isAnthropicRoute(url)) return anthropicErrorBody(error);
  if (isOpenAiRoute(url)) return openaiErrorBody(error);
  return { error: error.message };
}

/** Anthropic's Messages API: `/v1/messages` and `/v1/messages/count_tokens` (Claude Code adds `?beta=true`). */
export function isAnthropicRoute(url: string): boolean {
  return url === "/v1/messages" || url.startsWith("/v1/messages/") || url.startsWith("/v1/messages?");
}

/** Anthropic's error object; `type` follows the status as Anthropic names it (its SDKs branch on it). */
export function anthropicErrorBody(error: AppError): { type: "error"; error: { type: string; message: string } } {
  return { type: "error", error: { type: anthropicErrorType(error.status), message: error.message } };
}

function anthropicErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 503 || status === 529) return "overloaded_error";
  if (status < 500) return "invalid_request_error";
  return "api_error";
}

/** The routes that answer errors in OpenAI's shape: `/v1/*`, and `/rerank` (llama-server's and vLLM's alias). */
export function isOpenAiRoute(url: string): boolean {
  return url.startsWith("/v1/") || url === "/rerank" || url.startsWith("/rerank?");
}

/**
 * OpenAI's error object. `type` follows the status as OpenAI's own API names it; `param` is the field an
 * InvalidRequestError names at the start of its message (`messages[0].role: …`), else null; `code` is our stable code.
 */
export function openaiErrorBody(error: AppError): { error: { message: string; type: string; param: string | null; code: string } } {
  return { error: { message: error.message, type: openaiErrorType(error.status), param: paramOf(error), code: error.code } };
}

function openaiErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status < 500) return "invalid_request_error";
  return "api_error";
}

function paramOf(error: AppError): string | null {
  if (!(error instanceof InvalidRequestError)) return null;
  const field = /^([A-Za-z_][\w.[\]]*): /.exec(error.message);
  return field?.[1] ?? null;
}

function fromFastify(error: unknown): AppError {
  if (error instanceof AppError) return error;
  // The client closed the connection while its body was being read: nobody is left to answer, and no server fault.
  if (isClientAbort(error)) return new RequestCancelledError();
  if (isFastifyError(error)) {
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new PayloadTooLargeError("request body is too large");
    if (error.code === "FST_ERR_CTP_EMPTY_JSON_BODY") return new InvalidRequestError("missing request body");
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return new InvalidRequestError(error.message);
    }
  }
  return toAppError(error);
}

/** Node's error for a request whose connection closed before its body ended (`aborted`, ECONNRESET). */
function isClientAbort(error: unknown): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === "ECONNRESET" && error.message === "aborted";
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && "code" in error && typeof error.code === "string" && error.code.startsWith("FST_");
}
