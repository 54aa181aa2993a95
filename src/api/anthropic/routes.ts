import type { FastifyPluginAsync } from "fastify";
import type { Services } from "../../services.js";
import { acceptJsonWhateverTheContentType, bindHandlers } from "../route-kit.js";
import { countTokens, createMessage } from "./messages.js";

/**
 * Anthropic's Messages API: `/v1/messages` and `/v1/messages/count_tokens` (Claude Code adds `?beta=true`; any
 * `anthropic-version` and `anthropic-beta` header, and any key in `x-api-key` or `Authorization`, is accepted).
 * Errors thrown by handlers reach the server's one error handler, which answers in Anthropic's shape
 * `{"type": "error", "error": {"type", "message"}}` on these routes.
 */
export function anthropicRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    acceptJsonWhateverTheContentType(app);
    const on = bindHandlers(services);
    app.post("/v1/messages", on(createMessage));
    app.post("/v1/messages/count_tokens", on(countTokens));
  };
}
