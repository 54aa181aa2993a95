import { useState } from "preact/hooks";
import { href } from "../../router.js";
import { useSession } from "../../session.js";
import type { PageProps } from "../../shell.js";
import { AuditTab } from "./audit-tab.js";
import { KeysTab } from "./keys-tab.js";
import "./admin.css";

const TABS = [
  { path: "keys", title: "Keys" },
  { path: "audit", title: "Audit log" },
] as const;

/**
 * The Admin page (#/admin/keys, #/admin/audit), which the shell shows to an admin session only: API keys (list,
 * create, revoke) and the audit log. On an open server it says so first: the first key turns keys on.
 */
export function AdminPage({ route }: PageProps) {
  const { session } = useSession();
  /** Set once this page turned keys on (the session, read at sign-in, still says open until the page reloads). */
  const [keysTurnedOn, setKeysTurnedOn] = useState(false);
  const tab = TABS.find((t) => t.path === route[0]) ?? TABS[0];
  const open = !session.keys_required && !keysTurnedOn;
  return (
    <div class="admin-page">
      <h1>Admin</h1>
      {open && (
        <p class="card admin-open" data-testid="admin-open-server">
          <strong>This server is open:</strong> it asks no client for a key. Creating the first key turns keys on, and from then on every
          client needs one. Create an admin key first: this tab then signs in with it.
        </p>
      )}
      <nav class="admin-tabs" aria-label="Admin sections">
        {TABS.map((t) => (
          <a href={href("admin", t.path)} data-testid={`admin-tab-${t.path}`} aria-current={t === tab ? "page" : undefined}>
            {t.title}
          </a>
        ))}
      </nav>
      {tab.path === "keys" ? <KeysTab open={open} onKeysTurnedOn={() => setKeysTurnedOn(true)} /> : <AuditTab />}
    </div>
  );
}
