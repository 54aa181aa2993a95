import { parseTools } from "./stream.js";
import type { ChatSettings, SamplingOptions } from "./types.js";

interface OptionField {
  key: keyof SamplingOptions;
  label: string;
  /** What an empty field means. */
  placeholder: string;
  step: string;
  min?: string;
}

const OPTION_FIELDS: OptionField[] = [
  { key: "temperature", label: "Temperature", placeholder: "0.8", step: "0.05", min: "0" },
  { key: "top_p", label: "Top P", placeholder: "0.9", step: "0.05", min: "0" },
  { key: "top_k", label: "Top K", placeholder: "40", step: "1", min: "0" },
  { key: "seed", label: "Seed", placeholder: "random", step: "1" },
  { key: "num_predict", label: "Max tokens (num_predict)", placeholder: "up to the context", step: "1" },
  { key: "num_ctx", label: "Context (num_ctx)", placeholder: "server default", step: "1", min: "0" },
];

/** An example for the tools field: the function the scripted models of the tests call. */
const EXAMPLE_TOOLS = JSON.stringify(
  [
    {
      type: "function",
      function: {
        name: "get_weather",
        description: "The current weather in a city",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      },
    },
  ],
  null,
  2,
);

function toolsProblem(text: string): string | null {
  try {
    parseTools(text);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * A conversation's settings, folded away by default: system prompt, sampling options (empty = the model's or the
 * server's default) and the tools offered to the model as JSON. Re-mount it (a `key`) when another conversation shows.
 */
export function SettingsPanel({ settings, onChange }: { settings: ChatSettings; onChange: (settings: ChatSettings) => void }) {
  const setOption = (key: keyof SamplingOptions, text: string): void => {
    const options = { ...settings.options };
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value)) delete options[key];
    else options[key] = value;
    onChange({ ...settings, options });
  };
  const problem = toolsProblem(settings.tools);
  const toolCount = problem === null ? (parseTools(settings.tools)?.length ?? 0) : 0;
  const summary = [settings.system.trim() !== "" && "system prompt", Object.keys(settings.options).length > 0 && "sampling", toolCount > 0 && `${toolCount} tool${toolCount === 1 ? "" : "s"}`]
    .filter(Boolean)
    .join(", ");
  return (
    <details class="chat-settings card" data-testid="chat-settings">
      <summary data-testid="chat-settings-toggle">
        Settings{summary !== "" && <span class="muted"> ({summary})</span>}
      </summary>
      <label class="chat-field">
        <span>System prompt</span>
        <textarea
          rows={3}
          data-testid="chat-system"
          placeholder="The model's own system prompt when empty"
          value={settings.system}
          onInput={(event) => onChange({ ...settings, system: (event.currentTarget as HTMLTextAreaElement).value })}
        />
      </label>
      <fieldset class="chat-options">
        <legend>Sampling</legend>
        {OPTION_FIELDS.map((field) => (
          <label class="chat-field">
            <span>{field.label}</span>
            <input
              type="number"
              inputMode="decimal"
              step={field.step}
              min={field.min}
              placeholder={field.placeholder}
              data-testid={`chat-option-${field.key}`}
              defaultValue={settings.options[field.key]?.toString() ?? ""}
              onInput={(event) => setOption(field.key, (event.currentTarget as HTMLInputElement).value)}
            />
          </label>
        ))}
      </fieldset>
      <label class="chat-field">
        <span>
          Tools (JSON) <span class="muted">— Ollama's <code>tools</code> list, sent with each message</span>
        </span>
        <textarea
          rows={4}
          class="mono"
          spellcheck={false}
          data-testid="chat-tools"
          placeholder='[{"type": "function", "function": {"name": …, "parameters": {…}}}]'
          value={settings.tools}
          onInput={(event) => onChange({ ...settings, tools: (event.currentTarget as HTMLTextAreaElement).value })}
        />
      </label>
      <div class="row">
        {problem !== null && <span class="error grow">{problem}</span>}
        {settings.tools.trim() === "" && (
          <button type="button" class="quiet" onClick={() => onChange({ ...settings, tools: EXAMPLE_TOOLS })}>
            Insert an example tool
          </button>
        )}
      </div>
    </details>
  );
}
