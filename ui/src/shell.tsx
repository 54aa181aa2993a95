import type { ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { AdminPage } from "./pages/admin/index.js";
import { ChatPage } from "./pages/chat/index.js";
import { ModelsPage } from "./pages/models/index.js";
import { RunningPage } from "./pages/running/index.js";
import { href, useRoute } from "./router.js";
import { useSession } from "./session.js";

/** What a page gets: the route's segments after the page's own (`#/models/llama3` → ["llama3"]). */
export interface PageProps {
  route: string[];
}

interface Page {
  path: string;
  title: string;
  component: ComponentType<PageProps>;
  adminOnly?: boolean;
}

const PAGES: Page[] = [
  { path: "models", title: "Models", component: ModelsPage },
  { path: "running", title: "Running", component: RunningPage },
  { path: "chat", title: "Chat", component: ChatPage },
  { path: "admin", title: "Admin", component: AdminPage, adminOnly: true },
];

type Theme = "auto" | "light" | "dark";
const THEMES: Theme[] = ["auto", "light", "dark"];

/** Light, dark or the system's, remembered in localStorage (a preference, nothing secret). */
function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => (THEMES.find((t) => t === localStorage.getItem("ai-server.theme")) ?? "auto"));
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("ai-server.theme", theme);
  }, [theme]);
  return [theme, () => setTheme(THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length] ?? "auto")];
}

/** The navigation and the page the route names; admin pages exist only for an admin key. */
export function Shell() {
  const { session, signOut } = useSession();
  const route = useRoute();
  const [theme, nextTheme] = useTheme();
  const pages = PAGES.filter((p) => !p.adminOnly || session.scope === "admin");
  const page = pages.find((p) => p.path === route[0]) ?? pages[0];
  const refused = route[0] !== undefined && page?.path !== route[0] && PAGES.some((p) => p.path === route[0]);
  useEffect(() => {
    document.title = `${page?.title ?? "Dashboard"} · ai-server`;
  }, [page?.title]);
  if (!page) return null;
  const Component = page.component;
  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href={href("models")}>ai-server</a>
        <nav aria-label="Pages">
          {pages.map((p) => (
            <a href={href(p.path)} data-testid={`nav-${p.path}`} aria-current={p === page ? "page" : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
        <div class="who">
          <button type="button" class="quiet" onClick={nextTheme} title="Colour theme" aria-label={`Colour theme: ${theme}`}>
            {theme === "dark" ? "☾" : theme === "light" ? "☀" : "◐"}
          </button>
          {session.key_id !== null && (
            <>
              <span class="muted" data-testid="signed-in-as">{session.name} ({session.scope})</span>
              <button type="button" class="quiet" onClick={signOut} data-testid="sign-out">Sign out</button>
            </>
          )}
        </div>
      </header>
      <main class="page">
        {refused && <p class="error" role="alert">That page needs an admin key.</p>}
        <Component route={page.path === route[0] ? route.slice(1) : []} />
      </main>
    </div>
  );
}
