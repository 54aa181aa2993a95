import type { ModelHandle } from "../scheduler/lease.js";

/**
 * The model as a request of a session sees it: its chats and completions carry the session (the request context's,
 * from AI_SERVER_SESSION_HEADER), so that the engine serves them on the slot whose cache holds the session's
 * prefix. Without a session the model is returned as it is. The adapters build their requests without knowing of it.
 */
export function inSession(model: ModelHandle, session: string | undefined): ModelHandle {
  if (session === undefined) return model;
  return {
    get spec() {
      return model.spec;
    },
    get memory() {
      return model.memory;
    },
    stats: () => model.stats(),
    chat: (request, signal) => model.chat({ ...request, session }, signal),
    complete: (request, signal) => model.complete({ ...request, session }, signal),
    embed: (request, signal) => model.embed(request, signal),
    rerank: (request, signal) => model.rerank(request, signal),
    countTokens: (request, signal) => model.countTokens(request, signal),
    tokenize: (request, signal) => model.tokenize(request, signal),
    detokenize: (tokens, signal) => model.detokenize(tokens, signal),
  };
}
