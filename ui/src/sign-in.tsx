import { useState } from "preact/hooks";
import { api, ApiError, setSessionKey } from "./api.js";

/** Sign-in with an API key: kept in this tab's sessionStorage only, and checked before it is kept. */
export function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setError(null);
    setSessionKey(key.trim());
    try {
      await api("GET", "/api/whoami");
      onSignedIn();
    } catch (failure) {
      setSessionKey(null);
      setError(failure instanceof ApiError ? failure.message : String(failure));
    }
  };
  return (
    <main class="sign-in">
      <form onSubmit={submit} class="card">
        <h1>ai-server</h1>
        <p class="muted">This server needs an API key. It is kept in this browser tab only, until the tab closes.</p>
        <label for="sign-in-key">API key</label>
        <input id="sign-in-key" data-testid="sign-in-key" type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" data-testid="sign-in-button" class="primary">Sign in</button>
      </form>
    </main>
  );
}
