/**
 * Renders the small subset of Ollama's Go prompt templates that a plain completion needs:
 * `{{ .System }}`, `{{ .Prompt }}`, `{{ .Response }}` (empty), and `{{ if .X }}…{{ end }}` blocks
 * (`{{ else }}` supported), with `{{-`/`-}}` whitespace trimming. Anything else is left as written.
 */
export function renderPromptTemplate(template: string, values: { System?: string; Prompt?: string }): string {
  const vars: Record<string, string> = { System: values.System ?? "", Prompt: values.Prompt ?? "", Response: "" };
  const trimmed = template.replace(/\s*\{\{-/g, "{{").replace(/-\}\}\s*/g, "}}");
  const render = (text: string): string =>
    text
      .replace(/\{\{\s*if\s+\.(\w+)\s*\}\}((?:(?!\{\{\s*if\b)[\s\S])*?)\{\{\s*end\s*\}\}/g, (_m, name: string, body: string) => {
        const [then, otherwise = ""] = body.split(/\{\{\s*else\s*\}\}/);
        return vars[name] ? (then ?? "") : otherwise;
      })
      .replace(/\{\{\s*\.(System|Prompt|Response)\s*\}\}/g, (_m, name: string) => vars[name] ?? "");
  let previous = "";
  let current = trimmed;
  while (current !== previous) {
    previous = current;
    current = render(current);
  }
  return current;
}

/**
 * Whether `renderPromptTemplate` renders the whole template: false for templates that use more of Go's template
 * language (`range .Messages`, `.Tools`, functions), as the ones of Ollama's library models do. Those are kept for
 * /api/show, and the model's own chat template is used instead.
 */
export function canRenderPromptTemplate(template: string): boolean {
  return !renderPromptTemplate(template, { System: "s", Prompt: "p" }).includes("{{");
}
