import { useState } from "preact/hooks";

/** The audit log's filters as the form holds them (empty: not filtered). */
export interface AuditFilters {
  key: string;
  route: string;
  status: string;
  action: string;
  /** A span back from now ("15m", "1h", …), "custom" (since/until below), or "" for all time. */
  period: string;
  /** datetime-local values, for the custom period. */
  since: string;
  until: string;
}

export const NO_FILTERS: AuditFilters = { key: "", route: "", status: "", action: "", period: "", since: "", until: "" };

const PERIODS = [
  { value: "", label: "All time" },
  { value: "15m", label: "Last 15 minutes" },
  { value: "1h", label: "Last hour" },
  { value: "24h", label: "Last 24 hours" },
  { value: "7d", label: "Last 7 days" },
  { value: "custom", label: "From… to…" },
];

/** The admin changes the log names (src/audit/actions.ts); `*` is any of them. */
const ACTIONS = ["*", "key.create", "key.revoke", "model.create", "model.copy", "model.delete", "model.pull", "job.cancel", "blob.upload"];

/** Routes people look for most; the list also offers the routes seen on the pages shown. */
const COMMON_ROUTES = ["/api/chat", "/api/generate", "/api/embed", "/v1/chat/completions", "/v1/responses", "/v1/messages", "/api/pull", "/api/keys", "/api/keys/:id"];

/**
 * GET /api/audit's query string for the filters (docs/api.md "Audit log"): key (id or name), route (the pattern, e.g.
 * `/api/jobs/:id`), status (`404` or `4xx`), action, since/until (a span back from now, or RFC 3339).
 */
export function auditQuery(filters: AuditFilters): URLSearchParams {
  const query = new URLSearchParams();
  const add = (name: string, value: string): void => {
    if (value.trim() !== "") query.set(name, value.trim());
  };
  add("key", filters.key);
  add("route", filters.route);
  add("status", filters.status);
  add("action", filters.action);
  if (filters.period === "custom") {
    if (filters.since !== "") add("since", new Date(filters.since).toISOString());
    if (filters.until !== "") add("until", new Date(filters.until).toISOString());
  } else {
    add("since", filters.period);
  }
  return query;
}

interface Props {
  applied: AuditFilters;
  /** Routes seen in the entries shown, offered in the route field. */
  seenRoutes: string[];
  onApply: (filters: AuditFilters) => void;
}

/** The filter form; applies on submit (and on Clear). */
export function AuditFilterForm({ applied, seenRoutes, onApply }: Props) {
  const [filters, setFilters] = useState(applied);
  const set = (name: keyof AuditFilters, value: string): void => setFilters((old) => ({ ...old, [name]: value }));
  const routes = [...new Set([...COMMON_ROUTES, ...seenRoutes])].sort();
  return (
    <form
      class="card admin-audit-filters"
      onSubmit={(event) => {
        event.preventDefault();
        onApply(filters);
      }}
      aria-label="Audit log filters"
    >
      <div class="admin-fields">
        <label>
          <span>Key <span class="muted">(name or id)</span></span>
          <input data-testid="admin-audit-filter-key" value={filters.key} onInput={(e) => set("key", e.currentTarget.value)} autocomplete="off" />
        </label>
        <label>
          Route
          <input
            data-testid="admin-audit-filter-route"
            list="admin-audit-routes"
            value={filters.route}
            onInput={(e) => set("route", e.currentTarget.value)}
            placeholder="/api/chat"
            autocomplete="off"
          />
          <datalist id="admin-audit-routes">
            {routes.map((route) => (
              <option value={route} />
            ))}
          </datalist>
        </label>
        <label>
          <span>Status <span class="muted">(404, 4xx)</span></span>
          <input data-testid="admin-audit-filter-status" value={filters.status} onInput={(e) => set("status", e.currentTarget.value)} pattern="[1-5]([0-9][0-9]|xx|XX)" autocomplete="off" />
        </label>
        <label>
          Admin change
          <select data-testid="admin-audit-filter-action" value={filters.action} onChange={(e) => set("action", e.currentTarget.value)}>
            <option value="">Any request</option>
            {ACTIONS.map((action) => (
              <option value={action}>{action === "*" ? "any change" : action}</option>
            ))}
          </select>
        </label>
        <label>
          Period
          <select data-testid="admin-audit-filter-period" value={filters.period} onChange={(e) => set("period", e.currentTarget.value)}>
            {PERIODS.map((period) => (
              <option value={period.value}>{period.label}</option>
            ))}
          </select>
        </label>
        {filters.period === "custom" && (
          <>
            <label>
              From
              <input type="datetime-local" value={filters.since} onInput={(e) => set("since", e.currentTarget.value)} />
            </label>
            <label>
              To
              <input type="datetime-local" value={filters.until} onInput={(e) => set("until", e.currentTarget.value)} />
            </label>
          </>
        )}
      </div>
      <div class="row">
        <button type="submit" class="primary" data-testid="admin-audit-apply">
          Apply
        </button>
        <button
          type="button"
          data-testid="admin-audit-clear"
          onClick={() => {
            setFilters(NO_FILTERS);
            onApply(NO_FILTERS);
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}
