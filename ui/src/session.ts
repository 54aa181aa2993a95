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

/** The session and how to leave it, for every page. */
export interface SessionContext {
  session: Session;
  /** Forgets the key (this tab's sessionStorage) and shows the sign-in again. */
  signOut: () => void;
}

export const SessionContext = createContext<SessionContext | null>(null);

export function useSession(): SessionContext {
  const context = useContext(SessionContext);
  if (!context) throw new Error("useSession outside the signed-in shell");
  return context;
}
