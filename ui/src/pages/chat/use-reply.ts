import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { newId, titleOf, type Conversations } from "./conversations.js";
import { chatBody, streamChat, withChunk } from "./stream.js";
import type { ChatMessage, Conversation } from "./types.js";

/** The reply being streamed, if any: one at a time. */
export interface Streaming {
  conversationId: string;
  messageId: string;
}

/**
 * Streams assistant replies into conversations: POST /api/chat with `stream: true`, each line folded into the reply,
 * the page updated at most once per animation frame (so the Markdown is re-rendered at most that often). `stop`
 * aborts the request, and the server stops generating when its client goes away. Leaving the page stops it too.
 */
export function useReply(update: Conversations["update"]): {
  streaming: Streaming | null;
  /** Sends `messages` (the conversation's, with the new ones) and streams the reply; throws, before sending anything, when the settings are invalid. */
  start: (conversation: Conversation, messages: ChatMessage[], canThink: boolean) => void;
  stop: () => void;
} {
  const [streaming, setStreaming] = useState<Streaming | null>(null);
  const controller = useRef<AbortController | null>(null);
  useEffect(() => () => controller.current?.abort(), []);

  const start = useCallback(
    (conversation: Conversation, messages: ChatMessage[], canThink: boolean) => {
      if (controller.current) return;
      const body = chatBody(conversation.model, conversation.settings, messages, canThink);
      let reply: ChatMessage = { id: newId(), role: "assistant", content: "", model: conversation.model, streaming: true };
      update(conversation.id, (c) => ({ ...c, model: conversation.model, messages: [...messages, reply], title: titleOf(messages), updated: Date.now() }));
      const abort = new AbortController();
      controller.current = abort;
      setStreaming({ conversationId: conversation.id, messageId: reply.id });

      let frame = 0;
      const flush = (): void => {
        frame = 0;
        const snapshot = reply;
        update(conversation.id, (c) => ({ ...c, messages: c.messages.map((m) => (m.id === snapshot.id ? snapshot : m)) }));
      };
      const onChunk = (chunk: Parameters<typeof withChunk>[1]): void => {
        reply = withChunk(reply, chunk);
        if (frame === 0) frame = requestAnimationFrame(flush);
      };
      void streamChat(body, abort.signal, onChunk)
        .then(() => {
          if (!reply.stats && reply.error === undefined) reply = { ...reply, error: "The reply ended before it was done." };
        })
        .catch((error: unknown) => {
          if (abort.signal.aborted) reply = { ...reply, stopped: true };
          else reply = { ...reply, error: error instanceof Error ? error.message : String(error) };
        })
        .finally(() => {
          if (frame !== 0) cancelAnimationFrame(frame);
          reply = { ...reply, streaming: false };
          flush();
          controller.current = null;
          setStreaming(null);
        });
    },
    [update],
  );
  const stop = useCallback(() => controller.current?.abort(), []);
  return { streaming, start, stop };
}
