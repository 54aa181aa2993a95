import { useState } from "preact/hooks";
import { formatBytes } from "../../format.js";
import { formatAge } from "./format-age.js";
import { href } from "../../router.js";
import type { ModelSummary } from "./types.js";

/** Whether a model matches the filter text (its name or family, case-insensitive). */
function matches(model: ModelSummary, filter: string): boolean {
  const wanted = filter.trim().toLowerCase();
  if (wanted === "") return true;
  const family = model.details?.family ?? "";
  return model.name.toLowerCase().includes(wanted) || family.toLowerCase().includes(wanted);
}

/**
 * The local models in a table (cards on a narrow screen, by CSS alone), filtered by name or family; each name links
 * to the model's details.
 */
export function ModelList({ models, error }: { models: ModelSummary[] | null; error: string | null }) {
  const [filter, setFilter] = useState("");
  const shown = models?.filter((model) => matches(model, filter)) ?? [];
  return (
    <section class="models-list" aria-labelledby="models-list-title">
      <div class="row models-list-head">
        <h2 id="models-list-title" class="grow">
          Local models {models && <span class="muted">({models.length})</span>}
        </h2>
        <label class="row models-filter">
          <span>Filter</span>
          <input
            type="search"
            value={filter}
            onInput={(event) => setFilter(event.currentTarget.value)}
            placeholder="name or family"
            data-testid="models-filter"
          />
        </label>
      </div>
      {error && <p class="error" role="alert">Could not list the models: {error}</p>}
      {models === null && !error && <p class="muted">Loading…</p>}
      {models !== null && (
        <div class="table-scroll">
          <table class="models-table" data-testid="model-list">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Size</th>
                <th scope="col">Parameters</th>
                <th scope="col">Quantization</th>
                <th scope="col">Family</th>
                <th scope="col">Modified</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((model) => (
                <ModelRow key={model.name} model={model} />
              ))}
            </tbody>
          </table>
          {shown.length === 0 && (
            <p class="muted" data-testid="models-empty">
              {models.length === 0 ? "No models yet: pull one above." : "No model matches the filter."}
            </p>
          )}
        </div>
      )}
    </section>
  );
}

function ModelRow({ model }: { model: ModelSummary }) {
  const details = model.details ?? {};
  return (
    <tr data-testid="models-row" data-model={model.name}>
      <td data-label="Name" class="models-name">
        <a href={href("models", model.name)} data-testid="models-row-link">{model.name}</a>
      </td>
      <td data-label="Size">{formatBytes(model.size)}</td>
      <td data-label="Parameters">{details.parameter_size || "–"}</td>
      <td data-label="Quantization">{details.quantization_level || "–"}</td>
      <td data-label="Family">{details.family || "–"}</td>
      <td data-label="Modified">
        <time dateTime={model.modified_at} title={model.modified_at}>{formatAge(model.modified_at)}</time>
      </td>
    </tr>
  );
}
