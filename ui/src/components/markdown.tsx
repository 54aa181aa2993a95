import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { Marked } from "marked";
import { useMemo } from "preact/hooks";
import "./markdown.css";

/*
 * Model output as Markdown, safely: marked turns the text into HTML in which any HTML the model wrote is escaped
 * (shown as the characters it is, never as markup), code blocks are highlighted by highlight.js, and DOMPurify then
 * keeps only an allowlist of Markdown's own elements, with links to http(s) and mailto alone, opened in a new tab
 * without an opener. Only that sanitizer's output is ever set as HTML.
 */

for (const [name, language] of Object.entries({ bash, c, diff, go, javascript, json, python, rust, sql, typescript, xml, yaml })) {
  hljs.registerLanguage(name, language);
}
hljs.registerAliases(["sh", "shell", "zsh", "console"], { languageName: "bash" });
hljs.registerAliases(["html", "svg"], { languageName: "xml" });
hljs.registerAliases(["cpp", "c++", "cc", "hpp"], { languageName: "c" });

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text as HTML text: no character of it can start markup or leave an attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);
}

/** A fenced block's code, highlighted when its language is one of those registered, escaped otherwise. */
function highlightedCode(code: string, info: string | undefined): string {
  const language = (info ?? "").trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  const known = language !== "" && hljs.getLanguage(language) !== undefined;
  const body = known ? hljs.highlight(code, { language, ignoreIllegals: true }).value : escapeHtml(code);
  return `<pre><code class="hljs${known ? ` language-${escapeHtml(language)}` : ""}">${body}</code></pre>\n`;
}

const markdown = new Marked({
  async: false,
  gfm: true,
  breaks: false,
  renderer: {
    // HTML written by the model is shown as text.
    html: ({ text, block }) => (block ? `<p class="md-raw">${escapeHtml(text)}</p>\n` : escapeHtml(text)),
    code: ({ text, lang }) => highlightedCode(text, lang),
    // An image would load a URL the model chose (a tracker, or blocked by the page's policy): a link instead.
    image: ({ href, text }) => `<a href="${escapeHtml(href)}">${escapeHtml(text === "" ? href : text)}</a>`,
  },
});

/** What the Markdown of a reply may become: its own elements, highlight.js' spans, task-list checkboxes. */
const ALLOWED_TAGS = [
  "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "input", "li", "ol", "p", "pre",
  "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
];
const ALLOWED_ATTR = ["href", "title", "class", "start", "align", "type", "checked", "disabled", "target", "rel"];

const purify = DOMPurify(window);
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node instanceof HTMLAnchorElement) {
    if (node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    } else {
      node.removeAttribute("target");
    }
  } else if (node instanceof HTMLInputElement) {
    node.setAttribute("type", "checkbox");
    node.setAttribute("disabled", "");
  }
});

/** Markdown text → sanitized HTML (a string only DOMPurify has produced). */
export function renderMarkdown(text: string): string {
  const html = (markdown.parse(text) as string).trim();
  return purify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    FORBID_TAGS: ["style", "form", "iframe", "object", "embed", "script", "img", "svg", "math"],
    ALLOW_DATA_ATTR: false,
    ALLOW_UNKNOWN_PROTOCOLS: false,
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  });
}

/** Renders `text` (a model's reply, complete or still streaming) as sanitized, highlighted Markdown. */
export function Markdown({ text, class: className, testId }: { text: string; class?: string; testId?: string }) {
  const html = useMemo(() => renderMarkdown(text), [text]);
  return <div class={className ? `markdown ${className}` : "markdown"} data-testid={testId} dangerouslySetInnerHTML={{ __html: html }} />;
}
