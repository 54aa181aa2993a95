/** Error bodies by protocol: OpenAI (type by status, the field as `param`, our code) and Anthropic (its types). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidRequestError, ModelNotFoundError, QueueFullError, GenerationError } from "../../src/domain/errors.js";
import { errorBody, isOpenAiRoute } from "../../src/server/error-handler.js";

test("/v1 routes and /rerank answer in OpenAI's shape, the others in Ollama's", () => {
  assert.ok(isOpenAiRoute("/v1/chat/completions"));
  assert.ok(isOpenAiRoute("/rerank"));
  assert.ok(!isOpenAiRoute("/api/chat"));
  assert.deepEqual(errorBody("/api/chat", new InvalidRequestError("model is required")), { error: "model is required" });
});

test("an invalid field is named in param; type follows the status", () => {
  assert.deepEqual(errorBody("/v1/chat/completions", new InvalidRequestError("messages[0].role: Invalid option")), {
    error: { message: "messages[0].role: Invalid option", type: "invalid_request_error", param: "messages[0].role", code: "invalid_request" },
  });
  const missing = errorBody("/v1/models/x", new ModelNotFoundError("x")) as { error: { type: string; param: unknown } };
  assert.equal(missing.error.type, "not_found_error");
  assert.equal(missing.error.param, null);
  const failed = errorBody("/v1/completions", new GenerationError("boom")) as { error: { type: string } };
  assert.equal(failed.error.type, "api_error");
});

test("a full queue tells the SDKs how long to wait, in seconds and in milliseconds", () => {
  const error = new QueueFullError(3);
  assert.equal(error.headers["retry-after"], "3");
  assert.equal(error.headers["retry-after-ms"], "3000");
});

test("/v1/messages routes answer in Anthropic's shape, with its type for each status", () => {
  assert.deepEqual(errorBody("/v1/messages?beta=true", new InvalidRequestError("max_tokens: required")), {
    type: "error",
    error: { type: "invalid_request_error", message: "max_tokens: required" },
  });
  const missing = errorBody("/v1/messages/count_tokens", new ModelNotFoundError("x")) as { error: { type: string } };
  assert.equal(missing.error.type, "not_found_error");
  const busy = errorBody("/v1/messages", new QueueFullError(1)) as { error: { type: string } };
  assert.equal(busy.error.type, "overloaded_error");
  const failed = errorBody("/v1/messages", new GenerationError("boom")) as { error: { type: string } };
  assert.equal(failed.error.type, "api_error");
});
