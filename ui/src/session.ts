import { createContext } from "preact";
import { useContext } from "preact/hooks";

/** Who the dashboard is signed in as: GET /api/whoami's answer. */
export interface Session {
  keys_required: boolean;
  key_id: string | null;
  name: string;
  scope: "inference" | "admin";
  models: string[] | null;
}

/** The session and how to change it, for every page. */
export interface SessionContext {
  session: Session;
  /** Forgets the key (this tab's sessionStorage) and shows the sign-in again. */
  signOut: () => void;
  /**
   * Keeps `key` as this tab's key (sessionStorage only) and asks the server again who the tab is, without reloading
   * the page: the pages stay as they are, with the new session. A refused key shows the sign-in.
   */
  signIn: (key: string) => Promise<void>;
  /** Asks the server again who this tab is (GET /api/whoami), e.g. after keys were turned on or changed. */
  reload: () => Promise<void>;
}

export const SessionContext = createContext<SessionContext | null>(null);

/** The signed-in session; only inside the shell (the pages). */
export function useSession(): SessionContext {
  const context = useContext(SessionContext);
  if (!context) throw new Error("useSession outside the signed-in shell");
  return context;
}
