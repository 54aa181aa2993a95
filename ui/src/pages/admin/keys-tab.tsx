import { useCallback, useEffect, useState } from "preact/hooks";
import { api, setSessionKey } from "../../api.js";
import { useSession } from "../../session.js";
import { CreateKeyForm } from "./create-key-form.js";
import { KeysTable } from "./keys-table.js";
import { NewKeySecret, type AfterCreate } from "./new-key-secret.js";
import type { ApiKey, CreatedKey } from "./types.js";

interface Props {
  /** The server needs no key now: the key created next is the first. */
  open: boolean;
  onKeysTurnedOn: () => void;
}

/**
 * The keys: the list (GET /api/keys), a form to create one (its secret shown once), revoke with a confirmation.
 *
 * The first key on an open server turns keys on, so this tab would lose access with its next call: when that key is
 * an admin key without a model limit, the tab keeps it as its session key (this browser tab's sessionStorage, as a
 * sign-in would) and goes on; any other first key cannot manage keys, so the tab signs out once its secret was seen.
 */
export function KeysTab({ open, onKeysTurnedOn }: Props) {
  const { session, signOut, reload } = useSession();
  const [keys, setKeys] = useState<ApiKey[] | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<{ key: CreatedKey; after: AfterCreate } | null>(null);

  const load = useCallback(async () => {
    try {
      setKeys((await api<{ keys: ApiKey[] }>("GET", "/api/keys")).keys);
      setError(null);
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    }
  }, []);
  useEffect(() => void load(), [load]);

  const onCreated = (key: CreatedKey): void => {
    let after: AfterCreate = "stay";
    if (open) {
      onKeysTurnedOn();
      if (key.scope === "admin" && key.models === null) {
        setSessionKey(key.key);
        after = "signed-in";
      } else {
        after = "sign-in-needed";
      }
    }
    setCreated({ key, after });
    if (after !== "sign-in-needed") void load();
  };

  const onDone = (): void => {
    const after = created?.after;
    setCreated(null);
    // A new session key: reload so that the whole dashboard asks again who this tab is.
    if (after === "signed-in") void reload();
    else if (after === "sign-in-needed") signOut();
  };

  const onRevoked = (key: ApiKey): void => {
    if (key.id === session.key_id) signOut();
    else void load();
  };

  return (
    <section data-testid="admin-keys" aria-labelledby="admin-keys-title">
      <h2 id="admin-keys-title">API keys</h2>
      {created ? <NewKeySecret created={created.key} after={created.after} onDone={onDone} /> : <CreateKeyForm firstKey={open} onCreated={onCreated} />}
      {error && <p class="error" role="alert">{error}</p>}
      {keys === undefined && !error && <p class="muted">Loading…</p>}
      {keys && <KeysTable keys={keys} ownKeyId={session.key_id} onRevoked={onRevoked} />}
    </section>
  );
}
