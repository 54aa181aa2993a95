import { useState } from "preact/hooks";

/**
 * The message box: Enter sends, Shift+Enter starts a new line, Escape stops a reply; Send, and Stop while a reply
 * streams. `onSend` answers whether the message went (the box is emptied then).
 */
export function Composer({ streaming, canSend, onSend, onStop }: { streaming: boolean; canSend: boolean; onSend: (text: string) => boolean; onStop: () => void }) {
  const [text, setText] = useState("");
  const send = (): void => {
    if (streaming || !canSend || text.trim() === "") return;
    if (onSend(text)) setText("");
  };
  return (
    <form
      class="chat-composer"
      onSubmit={(event) => {
        event.preventDefault();
        send();
      }}
    >
      <textarea
        class="grow"
        rows={2}
        aria-label="Message"
        placeholder="Message — Enter to send, Shift+Enter for a new line"
        data-testid="chat-input"
        value={text}
        onInput={(event) => setText((event.currentTarget as HTMLTextAreaElement).value)}
        onKeyDown={(event) => {
          if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            send();
          } else if (event.key === "Escape" && streaming) {
            onStop();
          }
        }}
      />
      <div class="chat-composer-buttons">
        {streaming && (
          <button type="button" class="danger" onClick={onStop} data-testid="chat-stop">
            Stop
          </button>
        )}
        <button type="submit" class="primary" disabled={streaming || !canSend || text.trim() === ""} data-testid="chat-send">
          Send
        </button>
      </div>
    </form>
  );
}
