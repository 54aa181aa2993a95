import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api.js";
import { formatNumber } from "../../format.js";
import type { ApiKey } from "./types.js";
import { formatWhen } from "./when.js";

interface Props {
  keys: ApiKey[];
  /** The key this tab is signed in with (null on an open server). */
  ownKeyId: string | null;
  onRevoked: (key: ApiKey) => void;
}

/** Every key, revoked and expired ones included, newest first, with their limits; Revoke asks in the row first. */
export function KeysTable({ keys, ownKeyId, onRevoked }: Props) {
  if (keys.length === 0) return <p class="muted">No key yet.</p>;
  const newestFirst = [...keys].reverse();
  return (
    <div class="table-scroll">
      <table class="admin-table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Id</th>
            <th>Scope</th>
            <th>Models</th>
            <th>Limits</th>
            <th>Created</th>
            <th>Expires</th>
            <th>Last used</th>
            <th>Status</th>
            <th>
              <span class="admin-visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {newestFirst.map((key) => (
            <KeyRow key={key.id} apiKey={key} own={key.id === ownKeyId} onRevoked={onRevoked} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function KeyRow({ apiKey: key, own, onRevoked }: { apiKey: ApiKey; own: boolean; onRevoked: (key: ApiKey) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
  }, [confirming]);

  const revoke = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      const revoked = await api<ApiKey>("DELETE", `/api/keys/${encodeURIComponent(key.id)}`);
      setConfirming(false);
      onRevoked(revoked);
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <tr data-testid="admin-key-row" data-key-id={key.id} class={key.status === "revoked" ? "admin-row-revoked" : undefined}>
      <td>
        {key.name}
        {own && <span class="muted"> (this tab)</span>}
        {key.from_setting && <span class="muted" title="AI_SERVER_ADMIN_KEY"> (setting)</span>}
      </td>
      <td class="mono">{key.id}</td>
      <td>{key.scope}</td>
      <td>{key.models === null ? <span class="muted">all</span> : key.models.join(", ")}</td>
      <td class="admin-limits">{limitsText(key)}</td>
      <td title={key.created_at}>{formatWhen(key.created_at)}</td>
      <td title={key.expires_at ?? undefined}>{key.expires_at === null ? <span class="muted">never</span> : formatWhen(key.expires_at)}</td>
      <td title={key.last_used_at ?? undefined}>{key.last_used_at === null ? <span class="muted">never</span> : formatWhen(key.last_used_at)}</td>
      <td data-testid="admin-key-status" class={key.status === "active" ? "ok" : "muted"}>
        {key.status}
      </td>
      <td class="admin-actions">
        {key.status !== "revoked" && !confirming && (
          <button type="button" class="danger" data-testid="admin-key-revoke" onClick={() => setConfirming(true)}>
            Revoke
          </button>
        )}
        {confirming && (
          <div class="admin-confirm" role="group" aria-label={`Revoke ${key.name}?`}>
            <span>
              Revoke “{key.name}”? Clients using it are refused at once{own ? ", this tab included" : ""}.
            </span>
            <div class="row">
              <button type="button" class="danger" data-testid="admin-key-revoke-confirm" ref={confirmButton} onClick={() => void revoke()} disabled={busy}>
                Revoke
              </button>
              <button type="button" data-testid="admin-key-revoke-cancel" onClick={() => setConfirming(false)} disabled={busy}>
                Cancel
              </button>
            </div>
          </div>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </td>
    </tr>
  );
}

function limitsText(key: ApiKey): string {
  const parts = [
    key.rpm !== null && `${formatNumber(key.rpm)} req/min`,
    key.tpm !== null && `${formatNumber(key.tpm)} tokens/min`,
    key.max_parallel !== null && `${formatNumber(key.max_parallel)} at once`,
  ].filter((part): part is string => typeof part === "string");
  return parts.length === 0 ? "none" : parts.join(", ");
}
