import { useCallback, useEffect, useState } from "preact/hooks";
import { api } from "../../api.js";
import { AuditFilterForm, auditQuery, NO_FILTERS, type AuditFilters } from "./audit-filters.js";
import { AuditTable } from "./audit-table.js";
import type { AuditEntry, AuditPage } from "./types.js";

const PAGE_SIZE = 50;

/**
 * The audit log (GET /api/audit): one row per request, newest first, filtered; "Older" fetches the next page by its
 * cursor (keyset paging, so rows that arrive meanwhile do not shift it).
 */
export function AuditTab() {
  const [filters, setFilters] = useState<AuditFilters>(NO_FILTERS);
  const [entries, setEntries] = useState<AuditEntry[] | undefined>(undefined);
  const [cursor, setCursor] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async (applied: AuditFilters, after: string | null) => {
    setBusy(true);
    setError(null);
    try {
      const query = auditQuery(applied);
      query.set("limit", String(PAGE_SIZE));
      if (after !== null) query.set("cursor", after);
      const page = await api<AuditPage>("GET", `/api/audit?${query.toString()}`);
      setEntries((old) => (after === null ? page.entries : [...(old ?? []), ...page.entries]));
      setCursor(page.next_cursor);
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  }, []);

  useEffect(() => void load(filters, null), [filters, load]);

  const seenRoutes = [...new Set((entries ?? []).map((e) => e.route))];
  return (
    <section data-testid="admin-audit" aria-labelledby="admin-audit-title">
      <div class="row">
        <h2 id="admin-audit-title" class="grow">
          Audit log
        </h2>
        <button type="button" data-testid="admin-audit-refresh" onClick={() => void load(filters, null)} disabled={busy}>
          Refresh
        </button>
      </div>
      <AuditFilterForm applied={filters} seenRoutes={seenRoutes} onApply={(next) => setFilters({ ...next })} />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {entries === undefined && busy && <p class="muted">Loading…</p>}
      {entries !== undefined && entries.length === 0 && (
        <p class="muted" data-testid="admin-audit-empty">
          No request matches.
        </p>
      )}
      {entries !== undefined && entries.length > 0 && <AuditTable entries={entries} />}
      {cursor !== null && (
        <div class="row admin-more">
          <button type="button" data-testid="admin-audit-older" onClick={() => void load(filters, cursor)} disabled={busy}>
            {busy ? "Loading…" : "Older"}
          </button>
        </div>
      )}
    </section>
  );
}
