import { useState } from "preact/hooks";

/** A metadata value as text: strings as they are, other values as JSON; null marks a long array the server left out. */
function valueText(value: unknown): string {
  if (value === null) return "(long array, not shown)";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** The GGUF metadata (`model_info`) as a scrollable key/value table, filterable by key. */
export function ModelInfoTable({ info }: { info: Record<string, unknown> }) {
  const [filter, setFilter] = useState("");
  const wanted = filter.trim().toLowerCase();
  const entries = Object.entries(info)
    .filter(([key]) => wanted === "" || key.toLowerCase().includes(wanted))
    .sort(([a], [b]) => a.localeCompare(b));
  return (
    <section aria-labelledby="models-info-title">
      <div class="row">
        <h2 id="models-info-title" class="grow">Metadata</h2>
        <label class="row">
          <span>Key</span>
          <input type="search" value={filter} onInput={(event) => setFilter(event.currentTarget.value)} placeholder="filter keys" data-testid="models-info-filter" />
        </label>
      </div>
      <div class="models-info-scroll" role="region" tabIndex={0} aria-label="Metadata table">
        <table class="models-info" data-testid="models-details-info">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {entries.map(([key, value]) => (
              <tr key={key}>
                <td class="mono">{key}</td>
                <td class="mono models-info-value">{valueText(value)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {entries.length === 0 && <p class="muted">No key matches.</p>}
      </div>
    </section>
  );
}
