import { render } from "preact";
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError, setSessionKey } from "./api.js";
import { preloadPage, Shell } from "./shell.js";
import { SignIn } from "./sign-in.js";
import { SessionContext, type Session } from "./session.js";
import "./styles.css";

type State = { kind: "loading" } | { kind: "signed-in"; session: Session } | { kind: "sign-in"; reason?: string } | { kind: "failed"; error: string };

/**
 * The dashboard: asks the server who this tab is (GET /api/whoami), then shows the sign-in or the pages. Asking
 * again (a new key, keys turned on) keeps the pages on screen until the answer changes what is shown.
 */
function App() {
  const [state, setState] = useState<State>({ kind: "loading" });
  const load = useCallback(async (reason?: string) => {
    try {
      setState({ kind: "signed-in", session: await api<Session>("GET", "/api/whoami") });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) setState({ kind: "sign-in", ...(reason !== undefined && { reason }) });
      else setState({ kind: "failed", error: error instanceof Error ? error.message : String(error) });
    }
  }, []);
  useEffect(() => void load(), [load]);
  const signOut = useCallback(() => {
    setSessionKey(null);
    void load();
  }, [load]);
  const signIn = useCallback(
    (key: string) => {
      setSessionKey(key);
      return load("that key was refused");
    },
    [load],
  );
  const reload = useCallback(() => load(), [load]);
  const session = state.kind === "signed-in" ? state.session : undefined;
  const context = useMemo(() => session && { session, signOut, signIn, reload }, [session, signOut, signIn, reload]);

  switch (state.kind) {
    case "loading":
      return <p class="centered muted">Loading…</p>;
    case "failed":
      return <p class="centered error" role="alert">The server did not answer: {state.error}</p>;
    case "sign-in":
      return <SignIn onSignedIn={() => load("that key was refused")} />;
    case "signed-in":
      return (
        <SessionContext.Provider value={context ?? null}>
          <Shell />
        </SessionContext.Provider>
      );
  }
}

preloadPage();
render(<App />, document.getElementById("app") as HTMLElement);
