import type { Conversation } from "./types.js";

/**
 * The conversations kept in this browser: a new one, switch, delete. A column beside the chat on a wide screen; on a
 * phone-width one it folds into a button above the chat (`open`).
 */
export function Sidebar(props: {
  conversations: Conversation[];
  currentId: string;
  open: boolean;
  onToggle: () => void;
  onNew: () => void;
  onSelect: (id: string) => void;
  onDelete: (id: string) => void;
}) {
  const { conversations, currentId, open } = props;
  return (
    <aside class={open ? "chat-sidebar chat-sidebar-open" : "chat-sidebar"} aria-label="Conversations">
      <div class="chat-sidebar-bar">
        <button type="button" class="chat-sidebar-toggle" aria-expanded={open} aria-controls="chat-conversations" onClick={props.onToggle} data-testid="chat-sidebar-toggle">
          Conversations ({conversations.length})
        </button>
        <button type="button" class="primary" onClick={props.onNew} data-testid="chat-new">
          New chat
        </button>
      </div>
      <ul class="chat-conversations" id="chat-conversations" data-testid="chat-conversations">
        {conversations.map((conversation) => (
          <li key={conversation.id} class={conversation.id === currentId ? "chat-conversation chat-conversation-current" : "chat-conversation"}>
            <button
              type="button"
              class="quiet chat-conversation-open"
              aria-current={conversation.id === currentId ? "true" : undefined}
              onClick={() => props.onSelect(conversation.id)}
              data-testid="chat-conversation"
              title={conversation.title}
            >
              <span class="chat-conversation-title">{conversation.title}</span>
              <span class="muted chat-conversation-model">{conversation.model || "no model"}</span>
            </button>
            <button type="button" class="quiet chat-conversation-delete" aria-label={`Delete “${conversation.title}”`} title="Delete" onClick={() => props.onDelete(conversation.id)} data-testid="chat-delete">
              ×
            </button>
          </li>
        ))}
      </ul>
    </aside>
  );
}
