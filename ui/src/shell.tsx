import type { ComponentType } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { currentRoute, href, useRoute } from "./router.js";
import { useSession } from "./session.js";

/** What a page gets: the route's segments after the page's own (`#/models/llama3` → ["llama3"]). */
export interface PageProps {
  route: string[];
}

/**
 * One page of the dashboard. Its module is loaded when it is first opened (a chunk of its own: the chat page's
 * Markdown renderer, sanitizer and highlighter are not part of the first load of any other page).
 */
interface Page {
  path: string;
  title: string;
  load: () => Promise<ComponentType<PageProps>>;
  adminOnly?: boolean;
}

const PAGES: Page[] = [
  { path: "models", title: "Models", load: () => import("./pages/models/index.js").then((m) => m.ModelsPage) },
  { path: "running", title: "Running", load: () => import("./pages/running/index.js").then((m) => m.RunningPage) },
  { path: "chat", title: "Chat", load: () => import("./pages/chat/index.js").then((m) => m.ChatPage) },
  { path: "admin", title: "Admin", load: () => import("./pages/admin/index.js").then((m) => m.AdminPage), adminOnly: true },
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

/** Page modules loaded so far, so that going back to a page shows it at once. */
const loadedPages = new Map<string, ComponentType<PageProps>>();

/**
 * Starts loading the module of the page that the address names (the first page when it names none), so that it
 * arrives while the server is still asked who this tab is. A failure is left to the shell, which loads it again.
 */
export function preloadPage(): void {
  const path = currentRoute()[0];
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0];
  page?.load().then(
    (component) => void loadedPages.set(page.path, component),
    () => undefined,
  );
}

type PageModule = { component: ComponentType<PageProps> } | { error: string } | undefined;

/** The page's component once its module has arrived (undefined until then), or why it could not be loaded. */
function usePageModule(page: Page | undefined): PageModule {
  const known = page && loadedPages.get(page.path);
  const [state, setState] = useState<{ path: string; module: PageModule } | undefined>(undefined);
  useEffect(() => {
    // Shown already; otherwise load it even if it arrived since the render (the preload): the state must change.
    if (!page || known) return;
    let current = true;
    page.load().then(
      (component) => {
        loadedPages.set(page.path, component);
        if (current) setState({ path: page.path, module: { component } });
      },
      (error: unknown) => current && setState({ path: page.path, module: { error: error instanceof Error ? error.message : String(error) } }),
    );
    return () => {
      current = false;
    };
  }, [page]);
  if (known) return { component: known };
  return state?.path === page?.path ? state?.module : undefined;
}

/**
 * The page's own heading: an h1 at the top of its markup (`<main><div class="x-page"><h1>`), not one deeper inside,
 * such as a heading in a chat reply's Markdown.
 */
function pageHeading(main: HTMLElement): HTMLElement | null {
  return main.querySelector(":scope > h1, :scope > * > h1");
}

/** Focuses `target` as a reading position (not a control): reachable by script, not by Tab. */
function focusHeading(target: HTMLElement): void {
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus();
}

/**
 * After a navigation (not the first page shown), moves the keyboard focus to the page's heading, so that a keyboard
 * or screen reader user starts reading at the new page instead of staying on the link. A page whose heading comes
 * later (a module still loading, details still being fetched) has the main area focused until the heading appears.
 */
function useFocusOnNavigation(routeKey: string, main: { current: HTMLElement | null }): void {
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const container = main.current;
    if (!container) return;
    const found = pageHeading(container);
    if (found) {
      focusHeading(found);
      return;
    }
    container.focus();
    const observer = new MutationObserver(() => {
      const appeared = pageHeading(container);
      if (!appeared) return;
      observer.disconnect();
      if (document.activeElement === container) focusHeading(appeared);
    });
    observer.observe(container, { childList: true, subtree: true });
    const giveUp = setTimeout(() => observer.disconnect(), 10_000);
    return () => {
      observer.disconnect();
      clearTimeout(giveUp);
    };
  }, [routeKey]);
}

/** The navigation and the page the route names; admin pages exist only for an admin key. */
export function Shell() {
  const { session, signOut } = useSession();
  const route = useRoute();
  const [theme, nextTheme] = useTheme();
  const main = useRef<HTMLElement>(null);
  const pages = PAGES.filter((p) => !p.adminOnly || session.scope === "admin");
  const page = pages.find((p) => p.path === route[0]) ?? pages[0];
  const refused = route[0] !== undefined && page?.path !== route[0] && PAGES.some((p) => p.path === route[0]);
  const loaded = usePageModule(page);
  useFocusOnNavigation(route.join("/"), main);
  useEffect(() => {
    document.title = `${page?.title ?? "Dashboard"} · ai-server`;
  }, [page?.title]);
  if (!page) return null;
  const skipToContent = (event: Event): void => {
    event.preventDefault();
    const target = main.current && (pageHeading(main.current) ?? main.current);
    if (target) focusHeading(target);
  };
  return (
    <div class="shell">
      <a class="skip-link" href={href(...route)} onClick={skipToContent} data-testid="skip-to-content">
        Skip to content
      </a>
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
          <button type="button" class="quiet" onClick={nextTheme} title="Colour theme" aria-label={`Colour theme: ${theme}`} data-testid="theme-toggle">
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
      <main class="page" id="content" tabIndex={-1} ref={main}>
        {refused && <p class="error" role="alert">That page needs an admin key.</p>}
        {loaded === undefined ? (
          <p class="muted" role="status" data-testid="page-loading">Loading…</p>
        ) : "error" in loaded ? (
          <p class="error" role="alert">
            The {page.title} page could not be loaded ({loaded.error}). Reload to try again.
          </p>
        ) : (
          <loaded.component route={page.path === route[0] ? route.slice(1) : []} />
        )}
      </main>
    </div>
  );
}
