import type { ChatModelFunctions } from "node-llama-cpp";
import type { ChatRequest } from "../../domain/chat.js";
import { InvalidRequestError } from "../../domain/errors.js";
import { toFunctions } from "./chat-history.js";

/** How a request's tools reach node-llama-cpp. */
export interface ToolPlan {
  /** The functions the model may call (absent: none; the model answers in text). */
  callable?: ChatModelFunctions;
  /** Functions only documented in the prompt, never called (tool choice `none`). */
  described?: ChatModelFunctions;
  /** The reply must start with a call of one of `callable`. */
  force: boolean;
  /** Most calls in one reply (absent: as many as the model makes). */
  maxCalls?: number;
}

/**
 * The request's tools and tool choice as node-llama-cpp options: `auto` offers every tool; `none` documents them but
 * offers none, so calls are never parsed (llama.cpp does the same); `required` offers every tool and makes the reply
 * start with a call; a named function offers only that tool, and makes the reply a call of it. `parallelToolCalls`
 * false allows one call per reply. Throws InvalidRequestError for a choice the tools cannot meet.
 */
export function planTools(request: ChatRequest): ToolPlan {
  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? { type: "auto" };
  const maxCalls = request.parallelToolCalls === false ? 1 : undefined;
  const limit = maxCalls === undefined ? {} : { maxCalls };
  switch (choice.type) {
    case "auto":
      return tools.length > 0 ? { callable: toFunctions(tools), force: false, ...limit } : { force: false };
    case "none":
      return tools.length > 0 ? { described: toFunctions(tools), force: false } : { force: false };
    case "required":
      if (tools.length === 0) throw new InvalidRequestError('tool choice "required" needs at least one tool');
      return { callable: toFunctions(tools), force: true, ...limit };
    case "function": {
      const tool = tools.find((t) => t.name === choice.name);
      if (!tool) {
        const names = tools.map((t) => JSON.stringify(t.name)).join(", ");
        throw new InvalidRequestError(`tool choice names the function "${choice.name}", which is not among the tools (${names === "" ? "none given" : names})`);
      }
      return { callable: toFunctions([tool]), force: true, ...limit };
    }
    default:
      choice satisfies never;
      throw new InvalidRequestError("unknown tool choice");
  }
}
