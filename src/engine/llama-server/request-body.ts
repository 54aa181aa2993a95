import type { LogprobsRequest, Message, OutputFormat, SamplingOptions, ThinkingRequest, ToolChoice, ToolDefinition } from "../../domain/chat.js";
import { InvalidRequestError } from "../../domain/errors.js";

/** A message as llama-server's OpenAI-compatible endpoints take it. */
export type OaiMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string; tool_calls?: OaiToolCall[]; reasoning_content?: string }
  | { role: "tool"; content: string; tool_call_id: string; name?: string };

interface OaiToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/**
 * Domain messages → OpenAI messages. Tool calls get ids when they have none, and a tool result without an id
 * answers the earliest unanswered call of its tool name (else the earliest unanswered call), as the in-process
 * engine matches them; one that answers no call keeps its turn with a made-up id.
 */
export function toOaiMessages(messages: readonly Message[]): OaiMessage[] {
  const out: OaiMessage[] = [];
  let open: { id: string; name: string }[] = [];
  messages.forEach((message, index) => {
    switch (message.role) {
      case "system":
      case "user":
        out.push({ role: message.role, content: message.content });
        open = [];
        break;
      case "assistant": {
        const calls = (message.toolCalls ?? []).map((call, i): OaiToolCall => ({
          id: call.id ?? `call_${index}_${i}`,
          type: "function",
          function: { name: call.name, arguments: JSON.stringify(call.arguments) },
        }));
        out.push({
          role: "assistant",
          content: message.content,
          ...(calls.length > 0 && { tool_calls: calls }),
          ...(message.thinking !== undefined && message.thinking !== "" && { reasoning_content: message.thinking }),
        });
        open = calls.map((c) => ({ id: c.id, name: c.function.name }));
        break;
      }
      case "tool": {
        const at =
          [open.findIndex((c) => c.id === message.toolCallId), open.findIndex((c) => c.name === message.toolName), open.length > 0 ? 0 : -1].find(
            (i) => i !== -1,
          ) ?? -1;
        const call = at === -1 ? undefined : open.splice(at, 1)[0];
        const name = message.toolName ?? call?.name;
        out.push({ role: "tool", content: message.content, tool_call_id: message.toolCallId ?? call?.id ?? `call_${index}`, ...(name !== undefined && { name }) });
        break;
      }
      default:
        message satisfies never;
    }
  });
  return out;
}

export function toOaiTools(tools: readonly ToolDefinition[]): unknown[] {
  return tools.map((tool) => ({
    type: "function",
    function: {
      name: tool.name,
      ...(tool.description !== undefined && { description: tool.description }),
      parameters: tool.parameters ?? { type: "object", properties: {} },
    },
  }));
}

/**
 * Domain sampling → llama-server's sampling fields. Unset values keep Ollama's defaults as the in-process engine
 * does (temperature 0.8, top_k 40, top_p 0.9, min_p 0, no repetition penalty), not llama-server's; the number of
 * tokens is always bounded by `limit` so a model that never ends cannot run for ever.
 */
export function toSamplingBody(sampling: SamplingOptions, limit: number): Record<string, unknown> {
  const maxTokens = sampling.maxTokens !== undefined && sampling.maxTokens >= 0 ? Math.min(sampling.maxTokens, limit) : limit;
  const stop = (sampling.stop ?? []).filter((s) => s !== "");
  return {
    temperature: sampling.temperature ?? 0.8,
    top_k: sampling.topK ?? 40,
    top_p: sampling.topP ?? 0.9,
    min_p: sampling.minP ?? 0,
    ...(sampling.seed !== undefined && sampling.seed >= 0 && { seed: sampling.seed }),
    n_predict: maxTokens,
    ...(stop.length > 0 && { stop }),
    repeat_penalty: sampling.repeatPenalty ?? 1,
    ...(sampling.repeatLastN !== undefined && sampling.repeatLastN > 0 && { repeat_last_n: sampling.repeatLastN }),
    presence_penalty: sampling.presencePenalty ?? 0,
    frequency_penalty: sampling.frequencyPenalty ?? 0,
    ...(sampling.logitBias !== undefined && sampling.logitBias.length > 0 && { logit_bias: sampling.logitBias.map(([id, bias]) => [id, bias]) }),
  };
}

/** The tools part of a chat body: which tools are sent, and how the model must use them. */
export interface ToolsBody {
  tools?: unknown[];
  tool_choice?: "auto" | "none" | "required";
  parallel_tool_calls?: boolean;
}

/**
 * Domain tools and tool choice → llama-server's fields. llama-server takes `tool_choice` as a string only, so a named
 * function is enforced by sending that tool alone with `required` (its grammar then allows only calls of it); a name
 * that is not among the tools is refused. Without tools nothing is sent (a choice alone means nothing).
 */
export function toToolsBody(tools: readonly ToolDefinition[], choice: ToolChoice | undefined, parallel: boolean | undefined): ToolsBody {
  if (choice?.type === "function" && !tools.some((tool) => tool.name === choice.name)) {
    throw new InvalidRequestError(`tool_choice names the function "${choice.name}", which is not among the tools`);
  }
  if (tools.length === 0) return {};
  const sent = choice?.type === "function" ? tools.filter((tool) => tool.name === choice.name) : tools;
  return {
    tools: toOaiTools(sent),
    ...(choice !== undefined && { tool_choice: choice.type === "function" ? "required" : choice.type }),
    ...(parallel !== undefined && { parallel_tool_calls: parallel }),
  };
}

/**
 * Thinking → the template's switches: off is `enable_thinking: false` (the template variable Qwen-style templates
 * read) and `reasoning_effort: "none"` (what llama.cpp's own parser setup reads); on is `enable_thinking: true` and
 * the effort, when one is asked. Absent: nothing, so the model's template decides.
 *
 * A budget is `reasoning_budget_tokens`: llama.cpp's reasoning-budget sampler counts the tokens after the template's
 * thinking start tag and, when the budget is spent, forces its end tag, after which the model answers. It needs the
 * tags from llama.cpp's parser setup for the template (Qwen3's `<think>`/`</think>`, DeepSeek's, gpt-oss' channels…),
 * matched as tokens; a template without them, or the /completion path (a formatted chat), is not bounded.
 */
export function toThinkingBody(thinking: ThinkingRequest | undefined): Record<string, unknown> {
  if (thinking === undefined) return {};
  if (!thinking.enabled) return { chat_template_kwargs: { enable_thinking: false }, reasoning_effort: "none" };
  const budget = thinking.budgetTokens;
  return {
    chat_template_kwargs: { enable_thinking: true },
    ...(thinking.effort !== undefined && { reasoning_effort: thinking.effort }),
    ...(budget !== undefined && budget >= 0 && { reasoning_budget_tokens: Math.floor(budget) }),
  };
}

/**
 * Log-probabilities → llama-server's fields: `logprobs` + `top_logprobs` on /v1/chat/completions, `n_probs` on
 * /completion and /infill. At least one candidate is always asked for, since llama-server reports none (not even the
 * chosen token's) with zero; the extra one is dropped again when `top` is 0 (see toTokenLogprobs).
 */
export function toLogprobsBody(logprobs: LogprobsRequest | undefined, route: "chat" | "completion"): Record<string, unknown> {
  if (logprobs === undefined) return {};
  const n = Math.max(1, Math.floor(logprobs.top));
  return route === "chat" ? { logprobs: true, top_logprobs: n } : { n_probs: n };
}

/**
 * The grammar constraint of a format for /completion and /infill: `json` is any JSON object (as llama.cpp's
 * json.gbnf and the in-process engine), `json_schema` the schema; text none.
 */
export function toFormatBody(format: OutputFormat): Record<string, unknown> {
  if (format.type === "json") return { json_schema: { type: "object" } };
  if (format.type === "json_schema") return { json_schema: format.schema };
  return {};
}
