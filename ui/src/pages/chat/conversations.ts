import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { ChatMessage, ChatSettings, Conversation } from "./types.js";

/*
 * Conversations live in this browser's localStorage (they are the user's own text; the API key never goes there:
 * it stays in sessionStorage, see api.ts). Saved a moment after each change, and at once when the page goes away.
 */

const STORE_ITEM = "ai-server.chat.conversations";
const CURRENT_ITEM = "ai-server.chat.current";
const MODEL_ITEM = "ai-server.chat.model";
const SAVE_DELAY_MS = 400;

/** The model last picked in the playground (a preference, not a secret). */
export function lastModel(): string {
  return localStorage.getItem(MODEL_ITEM) ?? "";
}

/** Remembers `model` as the one to pick next time. */
export function rememberModel(model: string): void {
  localStorage.setItem(MODEL_ITEM, model);
}

/** A locally unique id (crypto.randomUUID needs a secure context, which a dashboard on a LAN address is not). */
export function newId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** A first conversation's settings: the model's own system prompt and sampling, thinking on, no tools. */
export const DEFAULT_SETTINGS: ChatSettings = { system: "", options: {}, think: true, tools: "" };

/** An empty conversation with `model` and a copy of `settings`. */
export function emptyConversation(model: string, settings: ChatSettings = DEFAULT_SETTINGS): Conversation {
  return { id: newId(), title: "New chat", model, settings: { ...settings, options: { ...settings.options } }, messages: [], updated: Date.now() };
}

/** A conversation's title: the start of its first user message. */
export function titleOf(messages: ChatMessage[]): string {
  const first = messages.find((m) => m.role === "user")?.content.trim().replace(/\s+/g, " ") ?? "";
  return first === "" ? "New chat" : first.length > 48 ? `${first.slice(0, 47)}…` : first;
}

function isConversation(value: unknown): value is Conversation {
  if (!value || typeof value !== "object") return false;
  const c = value as Partial<Conversation>;
  return typeof c.id === "string" && typeof c.model === "string" && Array.isArray(c.messages) && !!c.settings && typeof c.settings === "object";
}

/** The stored conversations (a reply cut short by a reload or a closed tab reads as stopped). */
function loadConversations(): Conversation[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(STORE_ITEM) ?? "[]");
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(isConversation).map((c) => ({
      ...c,
      title: typeof c.title === "string" ? c.title : titleOf(c.messages),
      settings: { ...DEFAULT_SETTINGS, ...c.settings, options: { ...c.settings.options } },
      messages: c.messages.map((m) => (m.streaming ? { ...m, streaming: false, stopped: true } : m)),
    }));
  } catch {
    return [];
  }
}

function saveConversations(conversations: Conversation[]): void {
  try {
    localStorage.setItem(STORE_ITEM, JSON.stringify(conversations.map((c) => ({ ...c, messages: c.messages.map(({ streaming, ...m }) => (streaming ? { ...m, stopped: true } : m)) }))));
  } catch {
    // storage full or refused: the conversations stay in this page until it closes
  }
}

/** The conversations, the one shown, and how to change them. */
export interface Conversations {
  list: Conversation[];
  current: Conversation;
  select(id: string): void;
  /** Starts a new conversation with the current one's model and settings (or reuses the current one if empty). */
  create(model?: string): void;
  remove(id: string): void;
  /** Changes conversation `id` (if it still exists); the change is saved shortly after. */
  update(id: string, change: (conversation: Conversation) => Conversation): void;
}

interface State {
  list: Conversation[];
  currentId: string;
}

function initialState(): State {
  const list = loadConversations();
  if (list.length === 0) list.push(emptyConversation(lastModel()));
  const stored = localStorage.getItem(CURRENT_ITEM);
  const currentId = list.some((c) => c.id === stored) ? (stored as string) : (list[0] as Conversation).id;
  return { list, currentId };
}

/** The playground's conversations, kept in localStorage. */
export function useConversations(): Conversations {
  const [state, setState] = useState<State>(initialState);
  const latest = useRef(state);
  latest.current = state;

  useEffect(() => {
    const timer = setTimeout(() => saveConversations(state.list), SAVE_DELAY_MS);
    localStorage.setItem(CURRENT_ITEM, state.currentId);
    return () => clearTimeout(timer);
  }, [state]);
  useEffect(() => {
    const saveNow = (): void => saveConversations(latest.current.list);
    addEventListener("pagehide", saveNow);
    return () => {
      removeEventListener("pagehide", saveNow);
      saveNow();
    };
  }, []);

  const update = useCallback((id: string, change: (conversation: Conversation) => Conversation) => {
    setState((s) => ({ ...s, list: s.list.map((c) => (c.id === id ? change(c) : c)) }));
  }, []);
  const select = useCallback((id: string) => setState((s) => (s.list.some((c) => c.id === id) ? { ...s, currentId: id } : s)), []);
  const create = useCallback((model?: string) => {
    setState((s) => {
      const current = s.list.find((c) => c.id === s.currentId);
      if (current && current.messages.length === 0) {
        return model === undefined ? s : { ...s, list: s.list.map((c) => (c === current ? { ...c, model } : c)) };
      }
      const fresh = emptyConversation(model ?? current?.model ?? lastModel(), current?.settings);
      return { list: [fresh, ...s.list], currentId: fresh.id };
    });
  }, []);
  const remove = useCallback((id: string) => {
    setState((s) => {
      const removed = s.list.find((c) => c.id === id);
      const rest = s.list.filter((c) => c.id !== id);
      if (rest.length === 0) rest.push(emptyConversation(removed?.model ?? lastModel(), removed?.settings));
      const currentId = rest.some((c) => c.id === s.currentId) ? s.currentId : [...rest].sort((a, b) => b.updated - a.updated)[0]!.id;
      return { list: rest, currentId };
    });
  }, []);

  const current = state.list.find((c) => c.id === state.currentId) ?? (state.list[0] as Conversation);
  const list = [...state.list].sort((a, b) => b.updated - a.updated);
  return { list, current, select, create, remove, update };
}
