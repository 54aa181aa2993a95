import { useEffect, useState } from "preact/hooks";

/**
 * Hash routes (`#/models`, `#/models/<name>`, `#/chat`, …): the server serves one page at /ui, and a route survives a
 * reload. A route is its path's segments, decoded.
 */
export function currentRoute(): string[] {
  const path = location.hash.replace(/^#\/?/, "");
  return path === "" ? [] : path.split("/").map((part) => decodeURIComponent(part));
}

/** The link to a route's segments (each encoded, so a model name with `/` or `:` stays one segment). */
export function href(...segments: string[]): string {
  return `#/${segments.map((s) => encodeURIComponent(s)).join("/")}`;
}

export function navigate(...segments: string[]): void {
  location.hash = href(...segments);
}

/** The current route, updated when the hash changes. */
export function useRoute(): string[] {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = (): void => setRoute(currentRoute());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}
