/**
 * POST /v1/chat/completions end to end with REAL inference on the scripted fixture models (each engine: node-llama-cpp
 * in process, and llama.cpp's llama-server in its own process; on the CPU), driven by the official `openai` client.
 * The scripted models answer fixed texts, so the assertions are exact. Thinking and parallel tool
 * calls are checked on llama-server, whose parsers the fixtures are written for.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import {
  JSON_REPLY,
  JSON_REPLY_SCHEMA,
  PARALLEL_TOOL_ANSWER,
  PARALLEL_TOOL_CALLS,
  SCRIPTED_REPLY,
  splitReply,
  THINKING_ANSWER,
  THINKING_REASONING,
  TOOL_ANSWER,
  TOOL_CALL,
} from "../fixtures/models.js";
import { type TestServer, startEngineServer } from "../helpers/start-server.js";
import { createFixtureModels } from "../helpers/fixture-models.js";

type Message = OpenAI.ChatCompletionMessageParam;
const hi: Message[] = [{ role: "user", content: "Hi" }];
const weather: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: TOOL_CALL.name,
    description: "Current weather in a city",
    parameters: { type: "object", required: ["city"], properties: { city: { type: "string", description: "City name" } } },
  },
};
const time: OpenAI.ChatCompletionTool = {
  type: "function",
  function: { name: "get_time", description: "Current time in a city", parameters: { type: "object", required: ["city"], properties: { city: { type: "string" } } } },
};

function functionCalls(message: OpenAI.ChatCompletionMessage | undefined): Array<{ id: string; name: string; arguments: unknown }> {
  return (message?.tool_calls ?? []).map((call) => {
    assert.equal(call.type, "function");
    return { id: call.id, name: call.function.name, arguments: JSON.parse(call.function.arguments) as unknown };
  });
}

for (const engine of ["llama-cpp", "llama-server"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    let openai: OpenAI;
    before(async () => {
      server = await startEngineServer(engine, { numParallel: 2 });
      openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
      await createFixtureModels(server.baseUrl, engine);
    });
    after(() => server?.close());

    test("create: the exact reply, with OpenAI's fields and usage", async () => {
      const before = Math.floor(Date.now() / 1000);
      const completion = await openai.chat.completions.create({ model: "scripted", messages: hi });
      assert.match(completion.id, /^chatcmpl-[A-Za-z0-9]+$/);
      assert.equal(completion.object, "chat.completion");
      assert.equal(completion.model, "scripted");
      assert.ok(completion.created >= before && completion.created <= Date.now() / 1000 + 1);
      assert.match(completion.system_fingerprint ?? "", /^fp_[0-9a-f]{10}$/);
      assert.equal(completion.choices.length, 1);
      const [choice] = completion.choices;
      assert.deepEqual(choice?.message, { role: "assistant", content: SCRIPTED_REPLY, refusal: null });
      assert.equal(choice?.finish_reason, "stop");
      assert.equal(choice?.logprobs, null);
      const usage = completion.usage;
      assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0);
      assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
      assert.equal(usage.completion_tokens_details?.reasoning_tokens, 0);
      assert.ok((usage.prompt_tokens_details?.cached_tokens ?? -1) >= 0);
    });

    test("stream: deltas join to the reply; role first; a finish chunk; the usage chunk; the SDK's accumulator agrees", async () => {
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      const stream = await openai.chat.completions.create({ model: "scripted", messages: hi, stream: true, stream_options: { include_usage: true } });
      for await (const chunk of stream) chunks.push(chunk);
      assert.ok(chunks.length > 4, "streamed in several chunks");
      assert.deepEqual(chunks[0]?.choices[0]?.delta, { role: "assistant", content: "" });
      assert.ok(chunks.slice(1).every((c) => c.choices.every((choice) => choice.delta.role === undefined)), "role only in the first chunk");
      assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), SCRIPTED_REPLY);
      const finish = chunks.at(-2);
      assert.deepEqual(finish?.choices[0]?.delta, {});
      assert.equal(finish?.choices[0]?.finish_reason, "stop");
      const usage = chunks.at(-1);
      assert.deepEqual(usage?.choices, []);
      assert.ok((usage?.usage?.completion_tokens ?? 0) > 0);
      assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
      assert.equal(new Set(chunks.map((c) => `${c.id} ${c.created}`)).size, 1, "one id and created for the stream");

      const final = await openai.chat.completions.stream({ model: "scripted", messages: hi }).finalChatCompletion();
      assert.equal(final.choices[0]?.message.content, SCRIPTED_REPLY);
      assert.equal(final.choices[0]?.finish_reason, "stop");
    });

    test("stop strings end the reply before them; max_tokens and max_completion_tokens end it with length", async () => {
      const stopped = await openai.chat.completions.create({ model: "scripted", messages: hi, stop: ["scripted"] });
      assert.equal(stopped.choices[0]?.message.content, "Hello! I am a ");
      assert.equal(stopped.choices[0]?.finish_reason, "stop");
      for (const limit of [{ max_tokens: 3 }, { max_completion_tokens: 3 }]) {
        const short = await openai.chat.completions.create({ model: "scripted", messages: hi, ...limit });
        assert.equal(short.choices[0]?.message.content, "Hello! I", JSON.stringify(limit));
        assert.equal(short.choices[0]?.finish_reason, "length");
        assert.equal(short.usage?.completion_tokens, 3);
      }
    });

    test("n: two choices, each the whole reply, whole or streamed (decoded together where the engine batches)", async () => {
      const batched = async (): Promise<number | undefined> => {
        const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<{ name: string; batches?: { multi_sequence: number } }> };
        return ps.models.find((m) => m.name === "scripted:latest")?.batches?.multi_sequence;
      };
      await openai.chat.completions.create({ model: "scripted", messages: hi, max_tokens: 1 }); // loaded, so counted from here
      const before = await batched();
      const whole = await openai.chat.completions.create({ model: "scripted", messages: hi, n: 2 });
      const after = await batched();
      if (before !== undefined && after !== undefined) assert.ok(after > before, `the two choices shared decode steps (${before} → ${after})`);
      if (engine === "llama-cpp") assert.ok(before !== undefined && after !== undefined, "the in-process engine counts its batches");
      assert.deepEqual(
        whole.choices.map((c) => [c.index, c.message.content, c.finish_reason]),
        [
          [0, SCRIPTED_REPLY, "stop"],
          [1, SCRIPTED_REPLY, "stop"],
        ],
      );
      const streamed = await openai.chat.completions.stream({ model: "scripted", messages: hi, n: 2 }).finalChatCompletion();
      assert.deepEqual(
        streamed.choices.map((c) => [c.index, c.message.content]),
        [
          [0, SCRIPTED_REPLY],
          [1, SCRIPTED_REPLY],
        ],
      );
    });

    test("response_format: json_schema and json_object answer valid JSON", async () => {
      const schema = await openai.chat.completions.create({
        model: "json",
        messages: [{ role: "user", content: "Give JSON" }],
        response_format: { type: "json_schema", json_schema: { name: "person", schema: JSON_REPLY_SCHEMA as unknown as Record<string, unknown>, strict: true } },
      });
      assert.deepEqual(JSON.parse(schema.choices[0]?.message.content ?? ""), JSON.parse(JSON_REPLY));
      const object = await openai.chat.completions.create({ model: "json", messages: [{ role: "user", content: "Give JSON" }], response_format: { type: "json_object" } });
      assert.deepEqual(JSON.parse(object.choices[0]?.message.content ?? ""), JSON.parse(JSON_REPLY));
    });

    test("tools: auto, required and a named function call the tool; none does not; the result round trip answers", async () => {
      const ask: Message[] = [{ role: "user", content: "Weather in Paris?" }];
      for (const tool_choice of ["auto", "required", { type: "function", function: { name: TOOL_CALL.name } }] as const) {
        // The fixture is scripted to call get_weather; a named choice must pick it out of two tools.
        const tools = typeof tool_choice === "object" ? [time, weather] : [weather];
        const completion: OpenAI.ChatCompletion = await openai.chat.completions.create({ model: "tool", messages: ask, tools, tool_choice });
        const choice = completion.choices[0];
        assert.equal(choice?.finish_reason, "tool_calls", JSON.stringify(tool_choice));
        assert.equal(choice?.message.content, null);
        const calls = functionCalls(choice?.message);
        assert.deepEqual(calls.map(({ name, arguments: args }) => ({ name, args })), [{ name: TOOL_CALL.name, args: TOOL_CALL.params }], JSON.stringify(tool_choice));
        assert.ok((calls[0]?.id ?? "") !== "", "each call has an id");
      }
      const none = await openai.chat.completions.create({ model: "tool", messages: ask, tools: [weather], tool_choice: "none", max_tokens: 60 });
      assert.equal(none.choices[0]?.message.tool_calls, undefined, "tool_choice none: no call");
      assert.notEqual(none.choices[0]?.finish_reason, "tool_calls");

      const first = await openai.chat.completions.create({ model: "tool", messages: ask, tools: [weather] });
      const assistant = first.choices[0]?.message;
      assert.ok(assistant?.tool_calls?.[0]);
      const followUp: Message[] = [...ask, assistant, { role: "tool", tool_call_id: assistant.tool_calls[0].id, content: "22C and sunny" }];
      const answer = await openai.chat.completions.create({ model: "tool", messages: followUp, tools: [weather] });
      assert.equal(answer.choices[0]?.message.content, TOOL_ANSWER);
      assert.equal(answer.choices[0]?.finish_reason, "stop");
    });

    test("tools streamed: the SDK accumulates the call deltas", async () => {
      const stream = openai.chat.completions.stream({ model: "tool", messages: [{ role: "user", content: "Weather in Paris?" }], tools: [weather] });
      const final = await stream.finalChatCompletion();
      assert.equal(final.choices[0]?.finish_reason, "tool_calls");
      assert.deepEqual(
        functionCalls(final.choices[0]?.message).map(({ name, arguments: args }) => ({ name, args })),
        [{ name: TOOL_CALL.name, args: TOOL_CALL.params }],
      );
    });

    test("logprobs: each token with its log-probability and the top alternatives, whole and per streamed chunk", async () => {
      const completion = await openai.chat.completions.create({ model: "scripted", messages: hi, logprobs: true, top_logprobs: 2 });
      const content = completion.choices[0]?.logprobs?.content ?? [];
      assert.equal(content.map((entry) => entry.token).join(""), SCRIPTED_REPLY);
      assert.equal(content.length, splitReply(SCRIPTED_REPLY).length, "one entry per generated token of the reply");
      for (const entry of content) {
        assert.ok(entry.logprob <= 0 && entry.logprob > -0.01, `the scripted token is all but certain: ${entry.logprob}`);
        assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, "utf8")]);
        assert.equal(entry.top_logprobs.length, 2);
        assert.equal(entry.top_logprobs[0]?.token, entry.token, "the chosen token is the most likely");
        assert.ok((entry.top_logprobs[1]?.logprob ?? 0) < entry.logprob);
      }

      const stream = await openai.chat.completions.create({ model: "scripted", messages: hi, logprobs: true, stream: true });
      let text = "";
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        const delta = choice?.delta.content ?? "";
        if (delta === "") continue;
        text += delta;
        assert.equal((choice?.logprobs?.content ?? []).map((entry) => entry.token).join(""), delta, "a chunk's logprobs cover its text");
      }
      assert.equal(text, SCRIPTED_REPLY);
    });

    if (engine !== "llama-server") return;

    test("parallel tool calls: both calls in one reply, both results fed back", async () => {
      const ask: Message[] = [{ role: "user", content: "Weather and time in Paris?" }];
      const completion = await openai.chat.completions.create({ model: "parallel", messages: ask, tools: [weather, time], parallel_tool_calls: true });
      const message = completion.choices[0]?.message;
      const calls = functionCalls(message);
      assert.deepEqual(calls.map(({ name, arguments: args }) => ({ name, arguments: args })), PARALLEL_TOOL_CALLS);
      assert.equal(new Set(calls.map((c) => c.id)).size, 2, "distinct ids");
      assert.ok(message);
      const results: Message[] = calls.map((call, i) => ({ role: "tool", tool_call_id: call.id, content: i === 0 ? "sunny" : "noon" }));
      const answer = await openai.chat.completions.create({ model: "parallel", messages: [...ask, message, ...results], tools: [weather, time] });
      assert.equal(answer.choices[0]?.message.content, PARALLEL_TOOL_ANSWER);
    });

    test("thinking: the reasoning apart from the answer, whole and streamed; reasoning_effort none turns it off", async () => {
      const completion = await openai.chat.completions.create({ model: "thinking", messages: hi });
      const message = completion.choices[0]?.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string; reasoning?: string };
      assert.equal(message.content, THINKING_ANSWER);
      assert.equal(message.reasoning_content, THINKING_REASONING);
      assert.equal(message.reasoning, THINKING_REASONING);
      assert.ok((completion.usage?.completion_tokens_details?.reasoning_tokens ?? 0) > 0);

      let reasoning = "";
      let answer = "";
      const stream = await openai.chat.completions.create({ model: "thinking", messages: hi, stream: true, reasoning_effort: "medium" });
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string; reasoning?: string } | undefined;
        assert.equal(delta?.reasoning, delta?.reasoning_content, "both names carry the same reasoning");
        reasoning += delta?.reasoning_content ?? "";
        answer += delta?.content ?? "";
      }
      assert.equal(reasoning.trim(), THINKING_REASONING);
      assert.equal(answer.trim(), THINKING_ANSWER);

      const off = await openai.chat.completions.create({ model: "thinking", messages: hi, reasoning_effort: "none" } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      const offMessage = off.choices[0]?.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
      assert.equal(offMessage.content, THINKING_ANSWER);
      assert.equal(offMessage.reasoning_content, undefined);
    });
  });
}
