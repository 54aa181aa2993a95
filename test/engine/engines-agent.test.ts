/**
 * What coding agents need from both engines (llama-server, and node-llama-cpp in process), with real inference on
 * scripted fixtures, one thread per model:
 * - countTokens: exactly the prompt a chat of the same request reads (its usage's promptTokens), tools, tool choice,
 *   thinking switches and formats included;
 * - a thinking budget cuts the reasoning short, and the answer follows;
 * - a system message in the middle of a conversation reaches the model, where the template renders it in place and
 *   as user text where the template fails on it or drops it;
 * - the prefix cache across an agent session: turn N reads only what is new (counts, not timings).
 * Models written here (other templates, thinking tags as single tokens) go to a temp dir, removed at the end.
 */
import assert from "node:assert/strict";
import { mkdtemp, open, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import type { ChatRequest, Message, ToolCall, ToolDefinition } from "../../src/domain/chat.js";
import { InvalidRequestError } from "../../src/domain/errors.js";
import type { GenerationEvent, Usage } from "../../src/domain/generation.js";
import type { Engine, LoadedModel, LoadSpec } from "../../src/engine/engine.js";
import { LlamaCppEngine } from "../../src/engine/llama-cpp/llama-cpp-engine.js";
import { LlamaServerEngine } from "../../src/engine/llama-server/llama-server-engine.js";
import type { LlamaServerModel } from "../../src/engine/llama-server/loaded-model.js";
import { readGguf } from "../../src/gguf/read-gguf.js";
import {
  CHATML_TEMPLATE,
  ensureFixtures,
  QWEN3_TEMPLATE,
  THINKING_ANSWER,
  THINKING_REASONING,
  TOOL_CALL,
  writeScriptedModel,
  type FixturePaths,
} from "../fixtures/models.js";
import { readGgufLayout } from "../fixtures/split-gguf.js";
import { chatRequest, collect } from "../helpers/engine-events.js";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";

const never = new AbortController().signal;
const KINDS = ["llama-server", "llama-cpp"] as const;
type Kind = (typeof KINDS)[number];

const weather: ToolDefinition = {
  name: TOOL_CALL.name,
  description: "Weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const time: ToolDefinition = { name: "get_time", description: "The time now" };

function done(events: GenerationEvent[]): Extract<GenerationEvent, { type: "done" }> {
  const last = events.at(-1);
  assert.ok(last?.type === "done", "the stream ends with done");
  return last;
}
const thoughts = (events: GenerationEvent[]): string => events.map((e) => (e.type === "thinking" ? e.text : "")).join("");
const calls = (events: GenerationEvent[]): ToolCall[] => events.flatMap((e) => (e.type === "tool_call" ? [e.call] : []));

/** A chat's text, tool calls, reasoning and usage. */
async function run(model: LoadedModel, request: ChatRequest): Promise<{ text: string; calls: ToolCall[]; thinking: string; usage: Usage }> {
  const { text, events } = await collect(model.chat(request, never));
  return { text, calls: calls(events), thinking: thoughts(events), usage: done(events).usage };
}

// ---------------------------------------------------------------------------------------------
// Models written for these tests
// ---------------------------------------------------------------------------------------------

/** Every message in its turn, the role in brackets: not ChatML, so node-llama-cpp renders it with the template itself. */
const turn = "{{'<|im_start|>[' + message['role'] + ']\\n' + message['content'] + '<|im_end|>' + '\\n'}}";
const generationPrompt = "{% if add_generation_prompt %}{{ '<|im_start|>[assistant]\\n' }}{% endif %}";
/** Templates that take a system message after other turns, and templates that do not. */
const TEMPLATES = {
  /** ChatML: every message where it occurs (node-llama-cpp renders it with its own ChatML wrapper). */
  chatml: CHATML_TEMPLATE,
  /** Every message where it occurs. */
  every: `{% for message in messages %}${turn}{% endfor %}${generationPrompt}`,
  /** Fails on a system message that is not first. */
  strict:
    "{% for message in messages %}{% if message['role'] == 'system' and not loop.first %}{{ raise_exception('System messages are only allowed first') }}{% endif %}" +
    `${turn}{% endfor %}${generationPrompt}`,
  /** A system message only first, then user and assistant strictly alternating (as Mistral's and Gemma's templates). */
  alternate:
    "{% if messages[0]['role'] == 'system' %}{% set rest = messages[1:] %}{% set message = messages[0] %}" +
    turn +
    "{% else %}{% set rest = messages %}{% endif %}{% for message in rest %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
    `${turn}{% endfor %}${generationPrompt}`,
  /** Every system message's text at the top (as DeepSeek-R1's template): a later one would move there. */
  hoist:
    "{% set ns = namespace(system='') %}{% for message in messages %}{% if message['role'] == 'system' %}" +
    "{% set ns.system = ns.system + message['content'] + '\\n' %}{% endif %}{% endfor %}{{ '<|im_start|>[system]\\n' + ns.system + '<|im_end|>\\n' }}" +
    `{% for message in messages %}{% if message['role'] != 'system' %}${turn}{% endif %}{% endfor %}${generationPrompt}`,
  /** Renders the first system message, then only user and assistant messages: a later system message is lost. */
  drop:
    `{% for message in messages %}{% if loop.first or message['role'] == 'user' or message['role'] == 'assistant' %}${turn}{% endif %}{% endfor %}` +
    generationPrompt,
} as const;
type TemplateName = keyof typeof TEMPLATES;
/** The reminder models answer REMINDED once the marker (a word only the reminder holds) is in the context. */
const MARKER = "zq";
const REMINDER = `Reminder ${MARKER}: keep it short.`;
const UNREMINDED = "I am fine.";
const REMINDED = "Reminder seen!";

/** The thinking model with `<think>` and `</think>` single tokens, as Qwen3's: llama.cpp's budget sampler matches tags by tokens. */
const THINK_PIECES = ["<think>", "\nThe", " user", " greets", " me;", " I", " will", " greet", " back.\n", "</think>", "\n\n", "Hello", " there,", " friend!"];

let dir: string;
let fixtures: FixturePaths;
const written: { reminder: Record<TemplateName, string>; thinkTags: string } = { reminder: {} as Record<TemplateName, string>, thinkTags: "" };

before(async () => {
  fixtures = await ensureFixtures();
  dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-agent-"));
  for (const name of Object.keys(TEMPLATES) as TemplateName[]) {
    written.reminder[name] = path.join(dir, `reminder-${name}.gguf`);
    await writeScriptedModel(written.reminder[name], {
      reply: UNREMINDED,
      afterMarker: { marker: MARKER, reply: REMINDED },
      chatTemplate: TEMPLATES[name],
      name: `reminder-${name}`,
    });
  }
  written.thinkTags = path.join(dir, "think-tags.gguf");
  await writeScriptedModel(written.thinkTags, {
    reply: THINK_PIECES.join(""),
    pieces: THINK_PIECES,
    chatTemplate: QWEN3_TEMPLATE,
    architecture: "qwen3",
    addSpacePrefix: false,
    name: "think-tags",
  });
  await markUserDefined(written.thinkTags, ["<think>", "</think>"]);
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * Gives vocabulary pieces the USER_DEFINED token type (as Qwen3's `<think>` and `</think>`): the tokenizer then reads
 * them from text as single tokens. The token types are an i32 array in the header, patched in place.
 */
async function markUserDefined(file: string, pieces: string[]): Promise<void> {
  const USER_DEFINED = 4;
  const tokens = (await readGguf(file, { maxArrayItems: 1_000_000 })).metadata.get("tokenizer.ggml.tokens");
  assert.ok(Array.isArray(tokens));
  let offset = 24; // magic, version, tensor count, key-value count
  for (const entry of (await readGgufLayout(file)).keyValues) {
    if (entry.key === "tokenizer.ggml.token_type") {
      const values = offset + 8 + Buffer.byteLength(entry.key) + 4 + 4 + 8; // key, value type, item type, count
      const handle = await open(file, "r+");
      try {
        for (const piece of pieces) {
          const id = tokens.indexOf(piece);
          assert.ok(id >= 0, `${piece} is in the vocabulary`);
          const value = Buffer.alloc(4);
          value.writeInt32LE(USER_DEFINED);
          await handle.write(value, 0, 4, values + 4 * id);
        }
      } finally {
        await handle.close();
      }
      return;
    }
    offset += entry.bytes.length;
  }
  assert.fail("no token types in the header");
}

// ---------------------------------------------------------------------------------------------
// Both engines
// ---------------------------------------------------------------------------------------------

function makeEngine(kind: Kind): Engine {
  return kind === "llama-server" ? new LlamaServerEngine({ binary: buildLlamaServer(), gpu: "off" }) : new LlamaCppEngine({ gpu: "off" });
}

for (const kind of KINDS) {
  describe(kind, () => {
    let engine: Engine;
    before(() => {
      engine = makeEngine(kind);
    });
    after(async () => {
      await engine?.close();
    });

    /** Loads a model for one test and unloads it after, whatever happens. */
    async function withModel<T>(modelPath: string, use: (model: LoadedModel) => Promise<T>, spec: Partial<LoadSpec> = {}): Promise<T> {
      const model = await engine.load({ modelPath, contextSize: 4096, slots: 1, threads: 1, ...spec });
      try {
        return await use(model);
      } finally {
        await model.unload();
      }
    }
    /** The tool-call fixture of this engine: llama.cpp parses Qwen's calls; node-llama-cpp its own ChatML syntax. */
    const toolFixture = (): string => (kind === "llama-server" ? fixtures.qwenToolCall : fixtures.toolCall);

    test("countTokens is the prompt a chat of the same request reads: tools, tool choice, conversations, formats", async () => {
      const conversation: Message[] = [
        { role: "system", content: "Be brief." },
        { role: "user", content: "What is the weather in Paris?" },
        { role: "assistant", content: "", toolCalls: [{ id: "c1", name: TOOL_CALL.name, arguments: { city: "Paris" } }] },
        { role: "tool", content: '{"sky": "sunny"}', toolCallId: "c1" },
        { role: "system", content: "Reminder: answer in one sentence." },
        { role: "user", content: "And in London?" },
      ];
      const variants: [string, Partial<ChatRequest>][] = [
        ["plain", {}],
        ["tools", { tools: [weather, time] }],
        ["tool choice none", { tools: [weather, time], toolChoice: { type: "none" } }],
        ["tool choice required", { tools: [weather, time], toolChoice: { type: "required" } }],
        ["a named function", { tools: [weather, time], toolChoice: { type: "function", name: "get_time" } }],
        ["a conversation with a tool result and a reminder", { messages: conversation }],
        ["the same with tools", { messages: conversation, tools: [weather, time] }],
        ["JSON", { format: { type: "json" } }],
        ["thinking off", { thinking: { enabled: false } }],
      ];
      const thinkingVariants: [string, Partial<ChatRequest>][] = [
        ["thinking on", { thinking: { enabled: true } }],
        ["thinking on with tools", { thinking: { enabled: true }, tools: [weather] }],
      ];
      for (const [fixture, extra] of [
        [fixtures.chat, []],
        [toolFixture(), []],
        [fixtures.thinking, thinkingVariants],
      ] as const) {
        await withModel(fixture, async (model) => {
          for (const [label, overrides] of [...variants, ...extra]) {
            const request = chatRequest({ ...overrides, sampling: { temperature: 0, maxTokens: 3 } });
            const counted = await model.countTokens(request, never);
            const { usage } = await run(model, request);
            assert.equal(counted, usage.promptTokens, `${path.basename(fixture)}, ${label}: counted ${counted}, the chat read ${usage.promptTokens}`);
          }
          const bare = await model.countTokens(chatRequest(), never);
          const withTools = await model.countTokens(chatRequest({ tools: [weather, time] }), never);
          if (fixture !== fixtures.chat || kind === "llama-cpp") assert.ok(withTools > bare + 20, `the tools are counted: ${withTools} vs ${bare}`);
        });
      }
    });

    test("countTokens of the plain ChatML prompt is its exact token count; a conversation longer than the context is counted whole", async () => {
      await withModel(
        fixtures.chat,
        async (model) => {
          const rendered = await model.tokenize({ text: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", addSpecial: true, parseSpecial: true }, never);
          assert.equal(await model.countTokens(chatRequest(), never), rendered.length);
          const long = chatRequest({ messages: [{ role: "user", content: "hi ".repeat(600) }] });
          const counted = await model.countTokens(long, never);
          assert.ok(counted > 512, `counted ${counted} tokens, more than the context of 512 holds`);
          assert.equal(await model.countTokens({ ...long, truncate: false }, never), counted, "counted, not refused, with truncation off");
          await assert.rejects(model.countTokens(chatRequest({ tools: [weather], toolChoice: { type: "function", name: "nope" } }), never), InvalidRequestError);
        },
        { contextSize: 512 },
      );
    });

    test("a thinking budget cuts the reasoning short at that many tokens, and the answer follows", async () => {
      await withModel(written.thinkTags, async (model) => {
        const ask = async (budgetTokens?: number) =>
          run(model, chatRequest({ thinking: { enabled: true, ...(budgetTokens !== undefined && { budgetTokens }) } }));
        const whole = await ask();
        assert.equal(whole.thinking, THINKING_REASONING);
        assert.equal(whole.text, THINKING_ANSWER);
        const one = await ask(1);
        const three = await ask(3);
        assert.equal(one.thinking, "The", "one token of reasoning");
        assert.equal(three.thinking, "The user greets", "three tokens of reasoning");
        for (const cut of [one, three]) {
          assert.equal(cut.text, THINKING_ANSWER, "the answer follows the cut reasoning");
          assert.ok((cut.usage.reasoningTokens ?? 0) < (whole.usage.reasoningTokens ?? 0), JSON.stringify(cut.usage));
          assert.ok(cut.usage.completionTokens < whole.usage.completionTokens);
        }
        assert.equal((await ask(1000)).thinking, THINKING_REASONING, "a budget larger than the reasoning changes nothing");
        // A budget of 0: llama.cpp closes the thought as soon as it opens; node-llama-cpp checks the budget after each
        // token, so one token of reasoning gets through (thinking off has none).
        const zero = await ask(0);
        assert.equal(zero.thinking, kind === "llama-server" ? "" : "The");
        assert.equal(zero.text, THINKING_ANSWER);
      });
    });

    for (const name of Object.keys(TEMPLATES) as TemplateName[]) {
      test(`a system message in the middle of the conversation reaches the model (${name} template)`, async () => {
        await withModel(written.reminder[name], async (model) => {
          const before: Message[] = [
            { role: "system", content: "Be brief." },
            { role: "user", content: "hi" },
            { role: "assistant", content: UNREMINDED },
          ];
          const reminder: Message = { role: "system", content: REMINDER };
          const plain = await run(model, chatRequest({ messages: [...before, { role: "user", content: "again" }] }));
          assert.equal(plain.text, UNREMINDED, "without the reminder");
          for (const messages of [
            [...before, reminder, { role: "user", content: "again" }],
            [...before, reminder],
            [before[0]!, { role: "system", content: `Second ${MARKER}` }, { role: "user", content: "hi" }],
          ] as Message[][]) {
            const reminded = await run(model, chatRequest({ messages }));
            assert.equal(reminded.text, REMINDED, `the reminder reached the model: ${JSON.stringify(messages.map((m) => m.role))}`);
            assert.equal(await model.countTokens(chatRequest({ messages }), never), reminded.usage.promptTokens);
          }
          if (kind === "llama-server") await checkLlamaServerRendering(model as LlamaServerModel, name, [...before, reminder, { role: "user", content: "again" }]);
        });
      });
    }

    /**
     * Where llama-server put the reminder (the prompt it counts is that of the expected text), and what llama.cpp does
     * with it by itself: the strict templates fail (HTTP error), the dropping one loses it, the hoisting one moves it
     * to the top (where it would change the start of the prompt, and so the whole cache, at every new reminder).
     */
    async function checkLlamaServerRendering(model: LlamaServerModel, name: TemplateName, messages: Message[]): Promise<void> {
      const inPlace = name === "chatml" || name === "every";
      const role = (r: string): string => (name === "chatml" ? r : `[${r}]`);
      const text =
        `<|im_start|>${role("system")}\nBe brief.${name === "hoist" ? "\n" : ""}<|im_end|>\n<|im_start|>${role("user")}\nhi<|im_end|>\n` +
        `<|im_start|>${role("assistant")}\n${UNREMINDED}<|im_end|>\n` +
        (inPlace
          ? `<|im_start|>${role("system")}\n${REMINDER}<|im_end|>\n<|im_start|>${role("user")}\nagain<|im_end|>\n`
          : `<|im_start|>${role("user")}\n${REMINDER}\n\nagain<|im_end|>\n`) +
        `<|im_start|>${role("assistant")}\n`;
      const expected = (await model.tokenize({ text, addSpecial: true, parseSpecial: true }, never)).length;
      assert.equal(await model.countTokens(chatRequest({ messages }), never), expected, `rendered as ${JSON.stringify(text)}`);
      const raw = { messages: messages.map((m) => ({ role: m.role, content: m.content })) };
      if (name === "strict" || name === "alternate") {
        await assert.rejects(model.server.client.post("/apply-template", raw, never), "llama.cpp alone fails on the template's error");
      } else {
        const { prompt } = await model.server.client.post<{ prompt: string }>("/apply-template", raw, never);
        assert.equal(prompt.includes(REMINDER), name !== "drop", "llama.cpp alone keeps the reminder where the template renders it");
      }
    }

    /**
     * An agent session of `turns` turns: each sends the whole conversation so far (tools included) and gives the reply
     * back verbatim (text, calls with their ids, reasoning); the conversation then grows by a further tool call and its
     * result, a system reminder and the next user message. `between` runs before each turn after the first (another
     * client's request). Returns each turn's usage, checked against countTokens.
     */
    async function agentSession(model: LoadedModel, turns: number, options: { tools?: ToolDefinition[]; between?: () => Promise<void> } = {}): Promise<Usage[]> {
      const tools = options.tools ?? [weather];
      const messages: Message[] = [
        { role: "system", content: "You are a coding agent. Use the tools to answer. ".repeat(4) },
        { role: "user", content: "What is the weather in Paris?" },
      ];
      const usages: Usage[] = [];
      for (let n = 1; n <= turns; n++) {
        if (n > 1) await options.between?.();
        const request = chatRequest({ messages: [...messages], tools });
        const counted = await model.countTokens(request, never);
        const reply = await run(model, request);
        assert.equal(counted, reply.usage.promptTokens, `turn ${n}: countTokens is the prompt the turn read`);
        usages.push(reply.usage);
        messages.push({
          role: "assistant",
          content: reply.text,
          ...(reply.calls.length > 0 && { toolCalls: reply.calls }),
          ...(reply.thinking !== "" && { thinking: reply.thinking }),
        });
        const id = `call_${n}`;
        messages.push(
          { role: "assistant", content: "", toolCalls: [{ id, name: TOOL_CALL.name, arguments: { city: `London ${n}` } }] },
          { role: "tool", content: `{"sky": "cloudy", "turn": ${n}}`, toolCallId: id },
          { role: "system", content: `Reminder ${n}: keep answers short.` },
          { role: "user", content: `Turn ${n + 1}: and the weather in London?` },
        );
      }
      return usages;
    }

    /** Turn N (N > 1) reuses the whole prompt of turn N - 1 and at most its reply: it reads only what is new. */
    function assertReuse(t: TestContext, usages: Usage[], label: string): void {
      t.diagnostic(`${label}: ${usages.map((u, i) => `turn ${i + 1} prompt ${u.promptTokens} cached ${u.cachedTokens ?? 0}`).join("; ")}`);
      usages.forEach((usage, i) => {
        const previous = usages[i - 1];
        if (!previous) return assert.equal(usage.cachedTokens ?? 0, 0, `${label}: a fresh model has nothing cached`);
        const cached = usage.cachedTokens ?? 0;
        assert.ok(usage.promptTokens > previous.promptTokens + 20, `${label}: the conversation grows`);
        assert.ok(cached >= previous.promptTokens, `${label}, turn ${i + 1}: cached ${cached}, the previous prompt was ${previous.promptTokens}`);
        assert.ok(cached <= previous.promptTokens + previous.completionTokens, `${label}, turn ${i + 1}: cached ${cached} of the previous prompt and reply`);
      });
    }

    test("an agent session of 10 turns reads only what is new at each turn (tool calls, results, reminders)", async (t) => {
      await withModel(toolFixture(), async (model) => {
        assertReuse(t, await agentSession(model, 10), "one slot");
      });
    });

    test("with two slots, the session keeps its cache while another client's requests run between its turns", async (t) => {
      await withModel(
        toolFixture(),
        async (model) => {
          // Another conversation (e.g. an agent's title or summary request), whose long reply leaves a cache longer
          // than the session's early turns: it must not push the session out of its sequence.
          const between = async (): Promise<void> => {
            const messages: Message[] = [
              { role: "system", content: "Write a title." },
              { role: "user", content: "Tell me a story about weather" },
            ];
            await run(model, chatRequest({ messages, sampling: { temperature: 0, maxTokens: 600 } }));
          };
          assertReuse(t, await agentSession(model, 6, { between }), "two slots, a side request between turns");
        },
        { slots: 2 },
      );
    });

    test("a thinking model's session reuses every earlier prompt; its reasoning, given back, is not re-rendered by the template", async (t) => {
      await withModel(fixtures.thinking, async (model) => {
        const usages = await agentSession(model, 5);
        assertReuse(t, usages, "thinking");
        for (const [i, usage] of usages.entries()) {
          const previous = usages[i - 1];
          // Qwen3's template (llama-server) and node-llama-cpp's Qwen wrapper drop the reasoning of turns before the
          // last user message: the earlier reply renders without it, so the cache serves up to the reply's start.
          if (previous) assert.equal(usage.cachedTokens, previous.promptTokens, `turn ${i + 1}`);
        }
      });
    });

    if (kind === "llama-server") {
      test("what breaks reuse and is not ours: Qwen3's template drops a tool loop's reasoning once a new user message comes", async () => {
        await withModel(fixtures.thinking, async (model) => {
          const question: Message[] = [{ role: "user", content: "What is the weather in Paris?" }];
          const loop: Message[] = [
            ...question,
            { role: "assistant", content: "", thinking: "I should call the tool.", toolCalls: [{ id: "c1", name: TOOL_CALL.name, arguments: { city: "Paris" } }] },
            { role: "tool", content: '{"sky": "sunny"}', toolCallId: "c1" },
          ];
          const inLoop = await run(model, chatRequest({ messages: loop, tools: [weather] }));
          const next = [...loop, { role: "assistant" as const, content: inLoop.text, thinking: inLoop.thinking }, { role: "user" as const, content: "And London?" }];
          const after = await run(model, chatRequest({ messages: next, tools: [weather] }));
          const questionOnly = await model.countTokens(chatRequest({ messages: question, tools: [weather] }), never);
          // Within the loop the call's reasoning is rendered; after the next question it is not, so the prompt is
          // shorter although it grew by two messages, and the cache serves only up to the first question.
          assert.ok(after.usage.promptTokens < inLoop.usage.promptTokens + 5, JSON.stringify([inLoop.usage, after.usage]));
          assert.ok((after.usage.cachedTokens ?? 0) <= questionOnly + 1, `cached ${after.usage.cachedTokens}, the question's prompt is ${questionOnly}`);
          assert.ok((after.usage.cachedTokens ?? 0) >= questionOnly - 5);
        });
      });
    }
  });
}
