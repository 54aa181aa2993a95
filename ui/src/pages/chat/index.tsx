import { useEffect, useRef, useState } from "preact/hooks";
import { href } from "../../router.js";
import type { PageProps } from "../../shell.js";
import { Composer } from "./composer.js";
import { newId, rememberModel, lastModel, useConversations } from "./conversations.js";
import { AssistantMessage, ToolMessage, ToolResultForm, UserMessage } from "./message.js";
import { useCapabilities, useModels, type ModelEntry } from "./models.js";
import { SettingsPanel } from "./settings.js";
import { Sidebar } from "./sidebar.js";
import { useReply } from "./use-reply.js";
import type { ChatMessage } from "./types.js";
import "./chat.css";

/** The model to show for a conversation: its own, else the last picked, else the first listed. */
function pickModel(wanted: string, models: ModelEntry[]): string {
  for (const name of [wanted, lastModel()]) if (name !== "" && models.some((m) => m.name === name)) return name;
  return models[0]?.name ?? wanted;
}

/** Keeps the window scrolled to the end while new text arrives, unless the reader has scrolled up. */
function useFollowEnd(dependency: unknown): void {
  const following = useRef(true);
  useEffect(() => {
    const onScroll = (): void => {
      following.current = innerHeight + scrollY >= document.documentElement.scrollHeight - 120;
    };
    addEventListener("scroll", onScroll, { passive: true });
    return () => removeEventListener("scroll", onScroll);
  }, []);
  useEffect(() => {
    if (following.current) scrollTo({ top: document.documentElement.scrollHeight });
  }, [dependency]);
}

/**
 * The chat playground: pick a model, set a system prompt, sampling, thinking and tools, and chat with streamed
 * replies (stoppable), rendered as sanitized Markdown. Conversations are kept in this browser. `#/chat/<model>`
 * starts a conversation with that model.
 */
export function ChatPage({ route }: PageProps) {
  const conversations = useConversations();
  const { current } = conversations;
  const { models, error: modelsError } = useModels();
  const { streaming, start, stop } = useReply(conversations.update);
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const [sendError, setSendError] = useState<string | null>(null);

  const model = models ? pickModel(current.model, models) : current.model;
  const capabilities = useCapabilities(model);
  const canThink = capabilities.includes("thinking");
  const busy = streaming !== null;
  const streamingHere = streaming?.conversationId === current.id;

  // `#/chat/<model>` (a link from another page): a conversation with that model.
  const routeModel = route[0];
  useEffect(() => {
    if (routeModel === undefined) return;
    rememberModel(routeModel);
    conversations.create(routeModel);
    history.replaceState(null, "", href("chat"));
  }, [routeModel]);

  useEffect(() => setSendError(null), [current.id]);
  useFollowEnd(current.messages);

  const chooseModel = (name: string): void => {
    rememberModel(name);
    conversations.update(current.id, (c) => ({ ...c, model: name }));
  };

  /** Sends the conversation with `added` messages; false (and an alert) when it cannot be sent. */
  const send = (added: ChatMessage[]): boolean => {
    if (model === "") {
      setSendError("Pick a model first.");
      return false;
    }
    try {
      start({ ...current, model }, [...current.messages, ...added], canThink);
      setSendError(null);
      return true;
    } catch (e) {
      setSendError(e instanceof Error ? e.message : String(e));
      return false;
    }
  };

  const last = current.messages.at(-1);
  const pendingCalls = !busy && last?.role === "assistant" && last.toolCalls?.length ? last.toolCalls : null;

  return (
    <div class="chat">
      <h1 class="visually-hidden">Chat</h1>
      <Sidebar
        conversations={conversations.list}
        currentId={current.id}
        open={sidebarOpen}
        onToggle={() => setSidebarOpen((open) => !open)}
        onNew={() => {
          conversations.create();
          setSidebarOpen(false);
        }}
        onSelect={(id) => {
          conversations.select(id);
          setSidebarOpen(false);
        }}
        onDelete={(id) => {
          if (streaming?.conversationId === id) stop();
          conversations.remove(id);
        }}
      />
      <section class="chat-main" aria-label="Chat">
        <div class="chat-toolbar row">
          <label class="chat-model">
            <span>Model</span>
            <select
              data-testid="chat-model-select"
              value={model}
              disabled={!models || models.length === 0}
              onChange={(event) => chooseModel((event.currentTarget as HTMLSelectElement).value)}
            >
              {models === null && <option value={model}>{modelsError ? "(unavailable)" : "Loading…"}</option>}
              {models?.length === 0 && <option value="">No models</option>}
              {models?.map((m) => (
                <option value={m.name}>
                  {m.name}
                  {m.details?.parameter_size ? ` · ${m.details.parameter_size}` : ""}
                  {m.details?.quantization_level ? ` · ${m.details.quantization_level}` : ""}
                </option>
              ))}
            </select>
          </label>
          {canThink && (
            <label class="chat-think" title="Let the model reason before it answers (its reasoning is shown apart)">
              <input
                type="checkbox"
                data-testid="chat-think"
                checked={current.settings.think}
                onChange={(event) => {
                  const think = (event.currentTarget as HTMLInputElement).checked;
                  conversations.update(current.id, (c) => ({ ...c, settings: { ...c.settings, think } }));
                }}
              />
              Think
            </label>
          )}
        </div>
        {modelsError !== null && (
          <p class="error" role="alert">
            The models could not be listed: {modelsError}
          </p>
        )}
        {models?.length === 0 && (
          <p class="muted" data-testid="chat-no-models">
            No models yet: pull one on the <a href={href("models")}>Models</a> page.
          </p>
        )}
        <SettingsPanel key={current.id} settings={current.settings} onChange={(settings) => conversations.update(current.id, (c) => ({ ...c, settings }))} />

        <div class="chat-messages" data-testid="chat-messages">
          {current.messages.length === 0 && <p class="muted chat-empty">Ask something to start the conversation.</p>}
          {current.messages.map((message) =>
            message.role === "user" ? (
              <UserMessage key={message.id} message={message} />
            ) : message.role === "tool" ? (
              <ToolMessage key={message.id} message={message} />
            ) : (
              <AssistantMessage key={message.id} message={message} />
            ),
          )}
          {pendingCalls && last && (
            <ToolResultForm
              key={last.id}
              calls={pendingCalls}
              disabled={busy}
              onSend={(results) => send(results.map((r) => ({ id: newId(), role: "tool", content: r.content, toolName: r.name })))}
            />
          )}
        </div>

        {sendError !== null && (
          <p class="error" role="alert" data-testid="chat-send-error">
            {sendError}
          </p>
        )}
        <Composer
          streaming={streamingHere}
          canSend={!busy && model !== ""}
          onStop={stop}
          onSend={(text) => send([{ id: newId(), role: "user", content: text }])}
        />
      </section>
    </div>
  );
}
