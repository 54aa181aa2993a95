import { useEffect, useState } from "preact/hooks";

/** The theme's colours a chart draws with, read from the page's CSS variables (styles.css). */
export interface ThemeColors {
  fg: string;
  muted: string;
  border: string;
  accent: string;
}

function readColors(): ThemeColors {
  const style = getComputedStyle(document.documentElement);
  const read = (name: string, fallback: string): string => style.getPropertyValue(name).trim() || fallback;
  return { fg: read("--fg", "#1c1e21"), muted: read("--muted", "#5f6670"), border: read("--border", "#d9dce1"), accent: read("--accent", "#2f6fde") };
}

/**
 * The theme's colours, read again when the theme changes: the shell's `data-theme` on <html>, or the system's
 * light/dark preference (which the "auto" theme follows).
 */
export function useThemeColors(): ThemeColors {
  const [colors, setColors] = useState(readColors);
  useEffect(() => {
    const update = (): void =>
      setColors((old) => {
        const next = readColors();
        return old.fg === next.fg && old.muted === next.muted && old.border === next.border && old.accent === next.accent ? old : next;
      });
    const observer = new MutationObserver(update);
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    const media = matchMedia("(prefers-color-scheme: dark)");
    media.addEventListener("change", update);
    return () => {
      observer.disconnect();
      media.removeEventListener("change", update);
    };
  }, []);
  return colors;
}

/** `#rrggbb` with an alpha channel (for a line's fill); other colour syntaxes come back unchanged. */
export function withAlpha(color: string, alpha: number): string {
  if (!/^#[0-9a-f]{6}$/i.test(color)) return color;
  return `${color}${Math.round(alpha * 255).toString(16).padStart(2, "0")}`;
}
