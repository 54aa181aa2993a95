import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api.js";
import { href, navigate } from "../../router.js";

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Copy (another name for the same model, POST /api/copy) and delete (DELETE /api/delete, after a confirmation in the
 * page). Both need an admin key; the details page shows a note instead for other sessions.
 */
export function ModelActions({ name }: { name: string }) {
  return (
    <section class="card models-actions" aria-labelledby="models-actions-title">
      <h2 id="models-actions-title">Manage</h2>
      <CopyForm name={name} />
      <DeleteButton name={name} />
    </section>
  );
}

function CopyForm({ name }: { name: string }) {
  const [destination, setDestination] = useState("");
  const [busy, setBusy] = useState(false);
  const [copied, setCopied] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const target = destination.trim();
    if (target === "" || busy) return;
    setBusy(true);
    setError(null);
    setCopied(null);
    try {
      await api("POST", "/api/copy", { source: name, destination: target });
      setCopied(target);
      setDestination("");
    } catch (failure) {
      setError(message(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="row models-copy" onSubmit={submit}>
      <label for="models-copy-name">Copy as</label>
      <input
        id="models-copy-name"
        class="grow"
        value={destination}
        onInput={(event) => setDestination(event.currentTarget.value)}
        placeholder="new-name:tag"
        autocomplete="off"
        spellcheck={false}
        data-testid="models-copy-name"
      />
      <button type="submit" disabled={busy || destination.trim() === ""} data-testid="models-copy-button">Copy</button>
      {copied && (
        <p class="ok models-full" role="status" data-testid="models-copy-done">
          Copied to <a href={href("models", copied)}>{copied}</a>.
        </p>
      )}
      {error && <p class="error models-full" role="alert" data-testid="models-copy-error">{error}</p>}
    </form>
  );
}

function DeleteButton({ name }: { name: string }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const keep = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (confirming) keep.current?.focus();
  }, [confirming]);

  const remove = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await api("DELETE", "/api/delete", { model: name });
      navigate("models");
    } catch (failure) {
      setError(message(failure));
      setBusy(false);
    }
  };

  return (
    <div class="models-delete">
      {!confirming ? (
        <button type="button" class="danger" onClick={() => setConfirming(true)} data-testid="models-delete">Delete…</button>
      ) : (
        <div class="models-confirm" role="group" aria-labelledby="models-confirm-text">
          <p id="models-confirm-text">
            Delete <strong>{name}</strong>? Its weights are removed unless another name uses them.
          </p>
          <div class="row">
            <button type="button" class="danger" onClick={() => void remove()} disabled={busy} data-testid="models-delete-confirm">
              {busy ? "Deleting…" : "Delete"}
            </button>
            <button type="button" ref={keep} onClick={() => setConfirming(false)} disabled={busy} data-testid="models-delete-cancel">Keep it</button>
          </div>
        </div>
      )}
      {error && <p class="error" role="alert" data-testid="models-delete-error">{error}</p>}
    </div>
  );
}
