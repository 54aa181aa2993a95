import {
  LlamaText,
  resolveChatWrapper,
  type ChatModelFunctions,
  type ChatWrapper,
  type ChatWrapperGenerateContextStateOptions,
  type ChatWrapperGeneratedContextState,
  type ChatWrapperSettings,
  type LlamaModel,
} from "node-llama-cpp";
import type { ThinkingRequest } from "../../domain/chat.js";
import { InvalidRequestError } from "../../domain/errors.js";

/**
 * The model's chat wrappers (node-llama-cpp's chat templates in code), one per thinking setting, each resolved once:
 * - absent: as node-llama-cpp resolves it for the model (its default);
 * - off: the template's own switch (a Jinja template's `enable_thinking: false`, Qwen's "discourage" thoughts, Gemma 4's
 *   and Seed's settings); the caller also sets a thought budget of 0, which closes a thought the model opens anyway;
 * - on: the template's switch on; where the wrapper would still render a closed thought before the reply, the thought
 *   is opened at the start of the reply instead. (node-llama-cpp's Jinja wrapper renders the reply being generated as
 *   a finished turn, so a Qwen3-style template, which writes an empty think block into every finished turn after the
 *   last question, would otherwise never let the model think; node-llama-cpp resolves real Qwen3 models to its own
 *   Qwen wrapper, where the model opens its thought itself.) The effort maps onto the wrappers that take one (gpt-oss'
 *   Harmony: low/medium/high; Muse: low/medium/high/xhigh); elsewhere it is ignored.
 */
export class ChatWrappers {
  private readonly resolved = new Map<string, ChatWrapper>();

  constructor(private readonly model: LlamaModel) {}

  /** Throws InvalidRequestError when thinking is asked of a template whose reasoning node-llama-cpp cannot tell apart. */
  for(thinking?: ThinkingRequest): ChatWrapper {
    const key = thinking === undefined ? "default" : thinking.enabled ? `on:${thinking.effort ?? ""}` : "off";
    let wrapper = this.resolved.get(key);
    if (!wrapper) {
      wrapper = this.resolve(thinking);
      this.resolved.set(key, wrapper);
    }
    if (thinking?.enabled && !wrapper.settings.segments?.thought) {
      throw new InvalidRequestError(
        "thinking: the llama-cpp engine cannot tell this model's reasoning from its answer (node-llama-cpp knows no thought " +
          "segment in its chat template); AI_SERVER_ENGINE=llama-server serves it",
      );
    }
    return wrapper;
  }

  private resolve(thinking?: ThinkingRequest): ChatWrapper {
    if (thinking === undefined) return resolveChatWrapper(this.model);
    if (!thinking.enabled) {
      return resolveChatWrapper(this.model, {
        customWrapperSettings: { jinjaTemplate: { reasoning: false }, qwen: { thoughts: "discourage" }, gemma4: { reasoning: false }, seed: { thinkingBudget: 0 } },
      });
    }
    const effort = thinking.effort;
    const wrapper = resolveChatWrapper(this.model, {
      customWrapperSettings: {
        jinjaTemplate: { reasoning: true },
        qwen: { thoughts: "auto" },
        gemma4: { reasoning: true },
        ...(effort !== undefined && {
          harmony: { reasoningEffort: effort === "max" ? "high" : effort },
          muse: { reasoningStrength: effort === "max" ? "xhigh" : effort },
        }),
      },
    });
    const thought = wrapper.settings.segments?.thought;
    if (!thought || thought.openOnResponseStart === true || !closesThoughtBeforeReply(wrapper)) return wrapper;
    return withSettings(wrapper, { ...wrapper.settings, segments: { ...wrapper.settings.segments, thought: { ...thought, openOnResponseStart: true } } });
  }
}

/**
 * Whether the wrapper renders a closed (empty) thought before the reply it is about to generate, which leaves the
 * model no room to think: a Jinja template that writes an empty think block into every finished assistant turn.
 */
function closesThoughtBeforeReply(wrapper: ChatWrapper): boolean {
  const suffix = wrapper.settings.segments?.thought?.suffix;
  if (suffix === undefined) return false;
  try {
    const state = wrapper.generateContextState({ chatHistory: [{ type: "user", text: "Hi" }, { type: "model", response: [] }] });
    const end = LlamaText(suffix).toString().trimEnd();
    return end !== "" && state.contextText.toString().trimEnd().endsWith(end);
  } catch {
    return false; // a template that cannot render this; the request itself will say what is wrong
  }
}

/**
 * `base` with other settings. The result inherits from `base`, so `base`'s methods run with the result as `this` and
 * see the new settings (node-llama-cpp's wrappers read `this.settings` while rendering).
 */
export function withSettings(base: ChatWrapper, settings: ChatWrapperSettings): ChatWrapper {
  return Object.assign(Object.create(base) as ChatWrapper, { settings });
}

/**
 * `base` that documents `functions` in the prompt although the chat offers none, so that the model knows the tools
 * and answers in text (node-llama-cpp documents only the functions it may call, and detects calls of those only).
 */
export function describingFunctions(base: ChatWrapper, functions: ChatModelFunctions): ChatWrapper {
  const generateContextState = function (this: ChatWrapper, options: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState {
    return base.generateContextState.call(this, { ...options, availableFunctions: options.availableFunctions ?? functions });
  };
  return Object.assign(Object.create(base) as ChatWrapper, { generateContextState });
}

/**
 * `base` whose reply must start with a function call: each rendered state says the function-call syntax is engaged
 * from the first token, so node-llama-cpp writes the call prefix itself and lets the model choose only among the
 * offered functions' names, then their parameters (its grammars). The thought is not opened first (it would hold
 * the call).
 */
export function callingAFunction(base: ChatWrapper): ChatWrapper {
  const thought = base.settings.segments?.thought;
  const settings: ChatWrapperSettings =
    thought?.openOnResponseStart === true ? { ...base.settings, segments: { ...base.settings.segments, thought: { ...thought, openOnResponseStart: false } } } : base.settings;
  const generateContextState = function (this: ChatWrapper, options: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState {
    const state = base.generateContextState.call(this, options);
    return {
      contextText: state.contextText,
      stopGenerationTriggers: state.stopGenerationTriggers,
      ...(state.ignoreStartText !== undefined && { ignoreStartText: state.ignoreStartText }),
      functionCall: { initiallyEngaged: true, disengageInitiallyEngaged: [] },
    };
  };
  return Object.assign(Object.create(base) as ChatWrapper, { settings, generateContextState });
}
