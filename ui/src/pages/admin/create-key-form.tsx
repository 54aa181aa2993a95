import { useState } from "preact/hooks";
import { api } from "../../api.js";
import type { CreatedKey, NewKeyRequest } from "./types.js";

interface Props {
  /** The server is open: this key turns keys on. */
  firstKey: boolean;
  onCreated: (key: CreatedKey) => void;
}

interface Fields {
  name: string;
  scope: "inference" | "admin";
  models: string;
  rpm: string;
  tpm: string;
  maxParallel: string;
  expires: string;
}

const EMPTY: Fields = { name: "", scope: "inference", models: "", rpm: "", tpm: "", maxParallel: "", expires: "" };

/** The form for POST /api/keys: name, scope, models (a comma list; empty = every model), limits, expiry. */
export function CreateKeyForm({ firstKey, onCreated }: Props) {
  const [fields, setFields] = useState<Fields>(() => ({ ...EMPTY, scope: firstKey ? "admin" : "inference" }));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof Fields>(name: K, value: Fields[K]): void => setFields((old) => ({ ...old, [name]: value }));

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setError(null);
    let body: NewKeyRequest;
    try {
      body = toRequest(fields);
    } catch (invalid) {
      setError(invalid instanceof Error ? invalid.message : String(invalid));
      return;
    }
    setBusy(true);
    try {
      const created = await api<CreatedKey>("POST", "/api/keys", body);
      setFields({ ...EMPTY });
      onCreated(created);
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card admin-key-form" onSubmit={(e) => void submit(e)} aria-labelledby="admin-key-form-title">
      <h3 id="admin-key-form-title">New key</h3>
      <div class="admin-fields">
        <label>
          Name
          <input data-testid="admin-key-name" value={fields.name} onInput={(e) => set("name", e.currentTarget.value)} required maxLength={200} autocomplete="off" />
        </label>
        <label>
          Scope
          <select data-testid="admin-key-scope" value={fields.scope} onChange={(e) => set("scope", e.currentTarget.value === "admin" ? "admin" : "inference")}>
            <option value="inference">inference (use models)</option>
            <option value="admin">admin (everything)</option>
          </select>
        </label>
        <label class="admin-field-wide">
          <span>Models <span class="muted">(comma-separated; empty: every model)</span></span>
          <input data-testid="admin-key-models" value={fields.models} onInput={(e) => set("models", e.currentTarget.value)} placeholder="qwen3, llama3.2:3b" autocomplete="off" />
        </label>
        <label>
          Requests per minute
          <input data-testid="admin-key-rpm" type="number" min={1} step={1} value={fields.rpm} onInput={(e) => set("rpm", e.currentTarget.value)} placeholder="no limit" />
        </label>
        <label>
          Tokens per minute
          <input data-testid="admin-key-tpm" type="number" min={1} step={1} value={fields.tpm} onInput={(e) => set("tpm", e.currentTarget.value)} placeholder="no limit" />
        </label>
        <label>
          Requests at once
          <input data-testid="admin-key-max-parallel" type="number" min={1} step={1} value={fields.maxParallel} onInput={(e) => set("maxParallel", e.currentTarget.value)} placeholder="no limit" />
        </label>
        <label>
          <span>Expires <span class="muted">(30d, 12h, 2026-01-31)</span></span>
          <input data-testid="admin-key-expires" value={fields.expires} onInput={(e) => set("expires", e.currentTarget.value)} placeholder="never" autocomplete="off" />
        </label>
      </div>
      {firstKey && fields.scope !== "admin" && (
        <p class="error" role="alert">
          This first key turns keys on, and an inference key cannot manage keys: this dashboard would then need an admin key made with
          <code> ai-server keys create --scope admin</code> on the server's machine.
        </p>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <div class="row">
        <button type="submit" class="primary" data-testid="admin-key-create" disabled={busy}>
          {busy ? "Creating…" : "Create key"}
        </button>
      </div>
    </form>
  );
}

/** The form's text → POST /api/keys's body; throws with a readable message for a bad number. */
function toRequest(fields: Fields): NewKeyRequest {
  const models = fields.models.split(",").map((m) => m.trim()).filter((m) => m !== "");
  const count = (label: string, text: string): number | undefined => {
    if (text.trim() === "") return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${label}: a whole number of 1 or more, or empty for no limit`);
    return value;
  };
  const rpm = count("Requests per minute", fields.rpm);
  const tpm = count("Tokens per minute", fields.tpm);
  const maxParallel = count("Requests at once", fields.maxParallel);
  const expires = fields.expires.trim();
  return {
    name: fields.name.trim(),
    scope: fields.scope,
    ...(models.length > 0 && { models }),
    ...(rpm !== undefined && { rpm }),
    ...(tpm !== undefined && { tpm }),
    ...(maxParallel !== undefined && { max_parallel: maxParallel }),
    ...(expires !== "" && { expires }),
  };
}
