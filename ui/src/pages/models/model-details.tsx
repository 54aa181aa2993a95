import { useEffect, useState } from "preact/hooks";
import { api } from "../../api.js";
import { formatAge } from "./format-age.js";
import { href } from "../../router.js";
import { ModelActions } from "./model-actions.js";
import { ModelInfoTable } from "./model-info-table.js";
import type { ShowResponse } from "./types.js";

/**
 * One model's details from POST /api/show: its summary, capabilities, template, parameters, system prompt, license
 * and GGUF metadata, all shown as text (a template or a name can hold anything); copy and delete for an admin key.
 */
export function ModelDetailsView({ name, admin }: { name: string; admin: boolean }) {
  const [shown, setShown] = useState<ShowResponse | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    setShown(null);
    setError(null);
    api<ShowResponse>("POST", "/api/show", { model: name }, controller.signal)
      .then((body) => setShown(body))
      .catch((failure: unknown) => {
        if (!controller.signal.aborted) setError(failure instanceof Error ? failure.message : String(failure));
      });
    return () => controller.abort();
  }, [name]);

  return (
    <div class="models-details" data-testid="models-details">
      <p>
        <a href={href("models")} data-testid="models-back">← All models</a>
      </p>
      <h1 class="models-title">{name}</h1>
      {error && <p class="error" role="alert" data-testid="models-details-error">{error}</p>}
      {!shown && !error && <p class="muted">Loading…</p>}
      {shown && <ShownModel shown={shown} />}
      {shown &&
        (admin ? (
          <ModelActions name={name} />
        ) : (
          <p class="muted" data-testid="models-admin-note">Copying and deleting models need an admin key; this session's key is for inference only.</p>
        ))}
    </div>
  );
}

function ShownModel({ shown }: { shown: ShowResponse }) {
  const details = shown.details ?? {};
  return (
    <>
      <dl class="models-facts card">
        <dt>Family</dt>
        <dd>{details.family || "–"}</dd>
        <dt>Parameters</dt>
        <dd>{details.parameter_size || "–"}</dd>
        <dt>Quantization</dt>
        <dd>{details.quantization_level || "–"}</dd>
        <dt>Format</dt>
        <dd>{details.format || "–"}</dd>
        {shown.modified_at && (
          <>
            <dt>Modified</dt>
            <dd><time dateTime={shown.modified_at} title={shown.modified_at}>{formatAge(shown.modified_at)}</time></dd>
          </>
        )}
        <dt>Capabilities</dt>
        <dd data-testid="models-details-capabilities">
          {(shown.capabilities ?? []).length === 0 ? "–" : (shown.capabilities ?? []).map((capability) => <span class="models-badge">{capability}</span>)}
        </dd>
      </dl>
      <TextBlock title="Template" text={shown.template} empty="No chat template: prompts are sent as they are." testId="models-details-template" />
      <TextBlock title="Parameters" text={shown.parameters} empty="None set: the server's defaults apply." testId="models-details-parameters" />
      {shown.system && <TextBlock title="System prompt" text={shown.system} testId="models-details-system" />}
      {shown.license && (
        <details class="models-license">
          <summary>License</summary>
          <pre data-testid="models-details-license">{shown.license}</pre>
        </details>
      )}
      {shown.model_info && <ModelInfoTable info={shown.model_info} />}
    </>
  );
}

function TextBlock({ title, text, empty, testId }: { title: string; text: string | undefined; empty?: string; testId: string }) {
  return (
    <section>
      <h2>{title}</h2>
      {text ? <pre class="models-text" data-testid={testId}>{text}</pre> : <p class="muted" data-testid={testId}>{empty}</p>}
    </section>
  );
}
