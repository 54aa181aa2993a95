import { formatNumber } from "../../format.js";
import type { AuditEntry } from "./types.js";

/** The audit rows, newest first: when, who, what, the outcome, tokens and time; content when the server kept it. */
export function AuditTable({ entries }: { entries: AuditEntry[] }) {
  return (
    <div class="table-scroll">
      <table class="admin-table admin-audit-table">
        <thead>
          <tr>
            <th>Time</th>
            <th>Key</th>
            <th>Request</th>
            <th>Model</th>
            <th>Status</th>
            <th>Tokens</th>
            <th>Duration</th>
            <th>Change</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <AuditRow key={entry.id} entry={entry} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AuditRow({ entry }: { entry: AuditEntry }) {
  const failed = entry.status >= 400;
  const content = entry.request_body !== null || entry.output !== null;
  return (
    <tr data-testid="admin-audit-row" data-status={entry.status} data-route={entry.route} data-action={entry.action ?? ""}>
      <td title={entry.time} class="admin-nowrap">
        {new Date(entry.time).toLocaleString()}
      </td>
      <td>
        {entry.key_name ?? <span class="muted">no key</span>}
        <div class="muted admin-small">{entry.client_address}</div>
      </td>
      <td>
        <span class="mono">
          {entry.method} {entry.route}
        </span>
        <div class="muted admin-small mono" title="x-request-id">
          {entry.request_id}
        </div>
        {content && (
          <details class="admin-content">
            <summary>Content{entry.content_truncated ? " (cut)" : ""}</summary>
            {entry.request_body !== null && <pre>{entry.request_body}</pre>}
            {entry.output?.map((output) => <pre>{output}</pre>)}
          </details>
        )}
      </td>
      <td>{entry.model ?? <span class="muted">–</span>}</td>
      <td class={failed ? "error" : "ok"} data-testid="admin-audit-status">
        {entry.status}
        {entry.aborted && <div class="muted admin-small">cut short</div>}
      </td>
      <td class="admin-nowrap">
        {entry.prompt_tokens + entry.completion_tokens === 0 ? (
          <span class="muted">–</span>
        ) : (
          <span title={`${entry.prompt_tokens} prompt (${entry.cached_tokens} cached), ${entry.completion_tokens} generated`}>
            {formatNumber(entry.prompt_tokens)} → {formatNumber(entry.completion_tokens)}
          </span>
        )}
      </td>
      <td class="admin-nowrap">{entry.duration_ms < 1000 ? `${formatNumber(entry.duration_ms)} ms` : `${formatNumber(entry.duration_ms / 1000, 1)} s`}</td>
      <td>
        {entry.action ?? <span class="muted">–</span>}
        {entry.target !== null && <div class="muted admin-small mono">{entry.target}</div>}
      </td>
    </tr>
  );
}
