/**
 * POST /v1/messages and /v1/messages/count_tokens end to end with REAL inference on the scripted fixture models (each
 * engine: node-llama-cpp in process, and llama.cpp's llama-server in its own process; on the CPU), driven by the
 * official `@anthropic-ai/sdk` client. The scripted models answer fixed texts, so the assertions are exact.
 * Thinking and parallel tool calls are checked on llama-server, whose parsers the fixtures are written for.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import {
  PARALLEL_TOOL_ANSWER,
  PARALLEL_TOOL_CALLS,
  SCRIPTED_REPLY,
  THINKING_ANSWER,
  THINKING_REASONING,
  TOOL_ANSWER,
  TOOL_CALL,
} from "../fixtures/models.js";
import { postJson, startEngineServer, type TestServer } from "../helpers/start-server.js";
import { createFixtureModels } from "../helpers/fixture-models.js";

const hi: Anthropic.MessageParam[] = [{ role: "user", content: "Hi" }];
const weather: Anthropic.Tool = {
  name: TOOL_CALL.name,
  description: "Current weather in a city",
  input_schema: { type: "object", required: ["city"], properties: { city: { type: "string", description: "City name" } } },
};
const time: Anthropic.Tool = {
  name: "get_time",
  description: "Current time in a city",
  input_schema: { type: "object", required: ["city"], properties: { city: { type: "string" } } },
};

function textOf(message: Anthropic.Message): string {
  return message.content.map((block) => (block.type === "text" ? block.text : "")).join("");
}

function toolUses(message: Anthropic.Message): Anthropic.ToolUseBlock[] {
  return message.content.filter((block): block is Anthropic.ToolUseBlock => block.type === "tool_use");
}

/** The whole prompt of a message: the tokens read anew and those reused from the cached prefix. */
function promptTokens(message: Anthropic.Message): number {
  return message.usage.input_tokens + (message.usage.cache_read_input_tokens ?? 0);
}

for (const engine of ["llama-cpp", "llama-server"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    let anthropic: Anthropic;
    before(async () => {
      server = await startEngineServer(engine, { numParallel: 1 });
      anthropic = new Anthropic({ baseURL: server.baseUrl, apiKey: "unused", maxRetries: 0 });
      await createFixtureModels(server.baseUrl, engine);
    });
    after(() => server?.close());

    test("create: the exact reply, Anthropic's fields, usage", async () => {
      const message = await anthropic.messages.create({ model: "scripted", max_tokens: 200, messages: hi });
      assert.match(message.id, /^msg_[A-Za-z0-9]+$/);
      assert.equal(message.type, "message");
      assert.equal(message.role, "assistant");
      assert.equal(message.model, "scripted");
      assert.deepEqual(message.content, [{ type: "text", text: SCRIPTED_REPLY }]);
      assert.equal(message.stop_reason, "end_turn");
      assert.equal(message.stop_sequence, null);
      assert.ok(message.usage.output_tokens > 0);
      assert.ok(message.usage.input_tokens >= 0 && promptTokens(message) > 0);
      assert.equal(message.usage.cache_creation_input_tokens, 0);

      // The same prompt again: its prefix comes from the cache, and the two counts still add up to the whole prompt.
      const again = await anthropic.messages.create({ model: "scripted", max_tokens: 200, messages: hi });
      assert.equal(promptTokens(again), promptTokens(message));
      assert.ok((again.usage.cache_read_input_tokens ?? 0) > 0, "the repeated prompt is read from the cache");
    });

    test("stream: text events join to the reply; finalMessage agrees with create", async () => {
      const stream = anthropic.messages.stream({ model: "scripted", max_tokens: 200, messages: hi });
      const deltas: string[] = [];
      stream.on("text", (delta) => deltas.push(delta));
      const final = await stream.finalMessage();
      assert.ok(deltas.length > 3, "streamed in several deltas");
      assert.equal(deltas.join(""), SCRIPTED_REPLY);
      assert.deepEqual(final.content, [{ type: "text", text: SCRIPTED_REPLY }]);
      assert.equal(final.stop_reason, "end_turn");
      assert.ok(final.usage.output_tokens > 0 && promptTokens(final) > 0);
    });

    test("raw stream: the event order and the fields the SDKs require", async () => {
      const response = await postJson(server.baseUrl, "/v1/messages?beta=true", { model: "scripted", max_tokens: 200, messages: hi, stream: true }, {
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", "anthropic-beta": "an-unknown-beta-2099" },
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/event-stream");
      const events = (await response.text())
        .split("\n\n")
        .filter((block) => block !== "")
        .map((block) => {
          const match = /^event: (\w+)\ndata: (.*)$/.exec(block);
          assert.ok(match, block);
          const data = JSON.parse(match[2] ?? "") as Record<string, unknown> & { type: string };
          assert.equal(data.type, match[1]);
          return data;
        })
        .filter((event) => event.type !== "ping"); // sent while the model loads or reads the prompt
      const names = events.map((event) => event.type);
      assert.deepEqual(names.slice(0, 2), ["message_start", "content_block_start"]);
      assert.deepEqual(names.slice(-3), ["content_block_stop", "message_delta", "message_stop"]);
      assert.ok(names.slice(2, -3).every((name) => name === "content_block_delta"), names.join(", "));
      const start = events[0] as unknown as { message: Anthropic.Message };
      assert.deepEqual([start.message.content, start.message.stop_reason, start.message.role, start.message.model], [[], null, "assistant", "scripted"]);
      assert.deepEqual(events[1], { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
      const text = events
        .slice(2, -3)
        .map((event) => {
          const { index, delta } = event as unknown as { index: number; delta: { type: string; text: string } };
          assert.equal(index, 0);
          assert.equal(delta.type, "text_delta");
          return delta.text;
        })
        .join("");
      assert.equal(text, SCRIPTED_REPLY);
      const delta = events.at(-2) as unknown as { delta: { stop_reason: string; stop_sequence: null }; usage: Anthropic.MessageDeltaUsage };
      assert.deepEqual([delta.delta.stop_reason, delta.delta.stop_sequence], ["end_turn", null]);
      assert.ok(delta.usage.output_tokens > 0 && (delta.usage.input_tokens ?? 0) + (delta.usage.cache_read_input_tokens ?? 0) > 0);
    });

    test("max_tokens ends the reply with max_tokens; stop_sequences end it before the sequence", async () => {
      const short = await anthropic.messages.create({ model: "scripted", max_tokens: 3, messages: hi });
      assert.equal(textOf(short), "Hello! I");
      assert.equal(short.stop_reason, "max_tokens");
      assert.equal(short.usage.output_tokens, 3);

      const stopped = await anthropic.messages.create({ model: "scripted", max_tokens: 200, messages: hi, stop_sequences: ["scripted"] });
      assert.equal(textOf(stopped), "Hello! I am a ");
      // The engines do not report which stop ended a reply: Anthropic's stop_sequence reason cannot be told from end_turn.
      assert.equal(stopped.stop_reason, "end_turn");
      assert.equal(stopped.stop_sequence, null);
    });

    test("tools: auto, any and a named tool call it; none does not; the tool_result round trip answers", async () => {
      const ask: Anthropic.MessageParam[] = [{ role: "user", content: "Weather in Paris?" }];
      for (const tool_choice of [{ type: "auto" }, { type: "any" }, { type: "tool", name: TOOL_CALL.name }] as const) {
        // The fixture is scripted to call get_weather; a named choice must pick it out of two tools.
        const tools = tool_choice.type === "tool" ? [time, weather] : [weather];
        const message = await anthropic.messages.create({ model: "tool", max_tokens: 200, messages: ask, tools, tool_choice });
        assert.equal(message.stop_reason, "tool_use", JSON.stringify(tool_choice));
        const uses = toolUses(message);
        assert.deepEqual(uses.map(({ name, input }) => ({ name, input })), [{ name: TOOL_CALL.name, input: TOOL_CALL.params }], JSON.stringify(tool_choice));
        assert.match(uses[0]?.id ?? "", /^toolu_/);
      }
      const none = await anthropic.messages.create({ model: "tool", max_tokens: 60, messages: ask, tools: [weather], tool_choice: { type: "none" } });
      assert.deepEqual(toolUses(none), [], "tool_choice none: no call");
      assert.notEqual(none.stop_reason, "tool_use");

      const first = await anthropic.messages.create({ model: "tool", max_tokens: 200, messages: ask, tools: [weather] });
      const call = toolUses(first)[0];
      assert.ok(call);
      const followUp: Anthropic.MessageParam[] = [
        ...ask,
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: [{ type: "text", text: "22C and sunny" }] }] },
      ];
      const answer = await anthropic.messages.create({ model: "tool", max_tokens: 200, messages: followUp, tools: [weather] });
      assert.deepEqual(answer.content, [{ type: "text", text: TOOL_ANSWER }]);
      assert.equal(answer.stop_reason, "end_turn");
    });

    test("tools streamed: the SDK accumulates the tool_use block and its input", async () => {
      const stream = anthropic.messages.stream({ model: "tool", max_tokens: 200, messages: [{ role: "user", content: "Weather in Paris?" }], tools: [weather] });
      const final = await stream.finalMessage();
      assert.equal(final.stop_reason, "tool_use");
      assert.deepEqual(toolUses(final).map(({ name, input }) => ({ name, input })), [{ name: TOOL_CALL.name, input: TOOL_CALL.params }]);
    });

    test("count_tokens: the exact prompt size /v1/messages reads for the same request", async () => {
      const requests: Array<Omit<Anthropic.MessageCountTokensParams, "model"> & { model: string }> = [
        { model: "scripted", messages: hi },
        { model: "scripted", system: "Be terse.", messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello." }, { role: "user", content: "Again" }] },
        { model: "tool", messages: [{ role: "user", content: "Weather in Paris?" }], tools: [weather] },
      ];
      for (const request of requests) {
        const counted = await anthropic.messages.countTokens(request);
        const message = await anthropic.messages.create({ ...request, max_tokens: 1 });
        assert.equal(counted.input_tokens, promptTokens(message), JSON.stringify(request));
      }
    });

    test("errors: an unknown model is the SDK's NotFoundError, a refused tool its BadRequestError; unknown betas are accepted", async () => {
      await assert.rejects(anthropic.messages.create({ model: "no-such-model", max_tokens: 10, messages: hi }), Anthropic.NotFoundError);
      await assert.rejects(
        anthropic.messages.create({ model: "scripted", max_tokens: 10, messages: hi, tools: [{ type: "web_search_20250305", name: "web_search" }] }),
        (error: unknown) => error instanceof Anthropic.BadRequestError && error.type === "invalid_request_error" && /web_search_20250305/.test(error.message),
      );
      const beta = await anthropic.beta.messages.create({ model: "scripted", max_tokens: 200, messages: hi, betas: ["an-unknown-beta-2099"] });
      assert.deepEqual(beta.content, [{ type: "text", text: SCRIPTED_REPLY }]);
    });

    if (engine !== "llama-server") return;

    test("parallel tool calls: both tool_use blocks in one message, both results fed back", async () => {
      const ask: Anthropic.MessageParam[] = [{ role: "user", content: "Weather and time in Paris?" }];
      const message = await anthropic.messages.create({ model: "parallel", max_tokens: 200, messages: ask, tools: [weather, time] });
      const uses = toolUses(message);
      assert.deepEqual(uses.map(({ name, input }) => ({ name, arguments: input })), PARALLEL_TOOL_CALLS);
      assert.equal(new Set(uses.map((use) => use.id)).size, 2, "distinct ids");
      const results: Anthropic.ToolResultBlockParam[] = uses.map((use, i) => ({ type: "tool_result", tool_use_id: use.id, content: i === 0 ? "sunny" : "noon" }));
      const answer = await anthropic.messages.create({
        model: "parallel",
        max_tokens: 200,
        messages: [...ask, { role: "assistant", content: message.content }, { role: "user", content: results }],
        tools: [weather, time],
      });
      assert.equal(textOf(answer), PARALLEL_TOOL_ANSWER);
    });

    test("thinking: a thinking block before the text, whole and streamed; disabled turns it off; thinking blocks go back", async () => {
      const message = await anthropic.messages.create({ model: "thinking", max_tokens: 200, messages: hi, thinking: { type: "enabled", budget_tokens: 1024 } });
      assert.deepEqual(message.content, [
        { type: "thinking", thinking: THINKING_REASONING, signature: "" },
        { type: "text", text: THINKING_ANSWER },
      ]);

      const stream = anthropic.messages.stream({ model: "thinking", max_tokens: 200, messages: hi });
      let thinking = "";
      let text = "";
      stream.on("thinking", (delta) => (thinking += delta));
      stream.on("text", (delta) => (text += delta));
      const final = await stream.finalMessage();
      assert.equal(thinking.trim(), THINKING_REASONING);
      assert.equal(text.trim(), THINKING_ANSWER);
      assert.deepEqual(final.content.map((block) => block.type), ["thinking", "text"]);

      const off = await anthropic.messages.create({ model: "thinking", max_tokens: 200, messages: hi, thinking: { type: "disabled" } });
      assert.deepEqual(off.content, [{ type: "text", text: THINKING_ANSWER }]);

      const next = await anthropic.messages.create({
        model: "thinking",
        max_tokens: 200,
        messages: [...hi, { role: "assistant", content: message.content }, { role: "user", content: "Hi again" }],
      });
      assert.equal(textOf(next), THINKING_ANSWER);
    });
  });
}
