import { useState } from "preact/hooks";
import { Markdown } from "../../components/markdown.js";
import { formatNumber } from "../../format.js";
import type { ChatMessage, ReplyStats, ToolCall } from "./types.js";

/** "42 tokens · 118.3 tok/s" from a reply's final line (tok/s = eval_count / eval_duration in seconds). */
function statsText(stats: ReplyStats): string {
  const seconds = stats.evalNanoseconds / 1e9;
  const parts = [`${formatNumber(stats.tokens)} tokens`];
  if (seconds > 0) parts.push(`${formatNumber(stats.tokens / seconds, 1)} tok/s`);
  if (stats.promptTokens !== undefined) parts.push(`prompt ${formatNumber(stats.promptTokens)} tokens`);
  if (stats.doneReason === "length") parts.push("cut at the length limit");
  return parts.join(" · ");
}

function argumentsText(args: unknown): string {
  if (typeof args === "string") return args;
  return JSON.stringify(args, null, 2) ?? "";
}

/** A tool call as such: the function's name and its JSON arguments (both as text). */
function ToolCallView({ call }: { call: ToolCall }) {
  return (
    <div class="chat-tool-call" data-testid="chat-tool-call">
      <div class="chat-tool-call-head">
        <span class="muted">Tool call</span> <code data-testid="chat-tool-call-name">{call.function.name}</code>
      </div>
      <pre data-testid="chat-tool-call-arguments">{argumentsText(call.function.arguments)}</pre>
    </div>
  );
}

/** One assistant reply: its reasoning apart (collapsible), the answer as Markdown, tool calls, stats or error. */
export function AssistantMessage({ message }: { message: ChatMessage }) {
  const waiting = message.streaming && message.content === "" && !message.thinking && !message.toolCalls?.length;
  return (
    <article class="chat-message chat-assistant" data-testid="chat-message-assistant" aria-busy={message.streaming ? "true" : "false"}>
      <div class="chat-role muted">{message.model ?? "assistant"}</div>
      {message.thinking !== undefined && message.thinking !== "" && (
        <details class="chat-thinking" data-testid="chat-thinking" open>
          <summary>{message.streaming && message.content === "" ? "Thinking…" : "Thinking"}</summary>
          <div class="chat-thinking-text">{message.thinking}</div>
        </details>
      )}
      {message.content !== "" && <Markdown text={message.content} class="chat-answer" testId="chat-answer" />}
      {message.toolCalls?.map((call) => <ToolCallView call={call} />)}
      {waiting && <div class="chat-waiting muted" aria-label="Waiting for the reply">…</div>}
      {message.error !== undefined && (
        <p class="error chat-error" role="alert" data-testid="chat-error">
          {message.error}
        </p>
      )}
      {message.stopped && <p class="muted chat-stopped" data-testid="chat-stopped">Stopped.</p>}
      {message.stats && (
        <p class="muted chat-stats" data-testid="chat-stats">
          {statsText(message.stats)}
        </p>
      )}
    </article>
  );
}

/** A user's message, as the plain text it is. */
export function UserMessage({ message }: { message: ChatMessage }) {
  return (
    <article class="chat-message chat-user" data-testid="chat-message-user">
      <div class="chat-user-text">{message.content}</div>
    </article>
  );
}

/** A tool result sent back to the model. */
export function ToolMessage({ message }: { message: ChatMessage }) {
  return (
    <article class="chat-message chat-tool" data-testid="chat-message-tool">
      <div class="chat-role muted">
        Result of <code>{message.toolName ?? "tool"}</code>
      </div>
      <pre>{message.content}</pre>
    </article>
  );
}

/** Under a reply that called tools: one result field per call, sent back as `tool` messages to continue. */
export function ToolResultForm({ calls, disabled, onSend }: { calls: ToolCall[]; disabled: boolean; onSend: (results: Array<{ name: string; content: string }>) => void }) {
  const [results, setResults] = useState<string[]>(() => calls.map(() => ""));
  return (
    <form
      class="chat-tool-results card"
      onSubmit={(event) => {
        event.preventDefault();
        onSend(calls.map((call, i) => ({ name: call.function.name, content: results[i] ?? "" })));
      }}
    >
      {calls.map((call, i) => (
        <label class="chat-field">
          <span>
            Result of <code>{call.function.name}</code>
          </span>
          <textarea
            rows={2}
            data-testid="chat-tool-result"
            placeholder='e.g. {"forecast": "sunny"}'
            value={results[i] ?? ""}
            onInput={(event) => {
              const value = (event.currentTarget as HTMLTextAreaElement).value;
              setResults((r) => r.map((old, j) => (j === i ? value : old)));
            }}
          />
        </label>
      ))}
      <div class="row">
        <button type="submit" class="primary" disabled={disabled} data-testid="chat-tool-result-send">
          Send {calls.length === 1 ? "result" : "results"}
        </button>
      </div>
    </form>
  );
}
