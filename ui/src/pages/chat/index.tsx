import type { PageProps } from "../../shell.js";

/** The chat page. */
export function ChatPage(_props: PageProps) {
  return <h1>Chat</h1>;
}
