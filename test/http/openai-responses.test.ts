/**
 * POST /v1/responses end to end with REAL inference on the scripted fixture models (each engine: node-llama-cpp in
 * process, and llama.cpp's llama-server in its own process; on the CPU), driven by the official `openai` client:
 * exact text whole and streamed, the output token limit, a function-tool round trip continued by
 * previous_response_id, structured output, and (on llama-server, whose parsers the thinking and parallel-call
 * fixtures are written for) reasoning items and two calls in one reply. The event-level protocol is proven on the
 * fake engine in openai-responses-protocol.test.ts.
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
  THINKING_ANSWER,
  THINKING_REASONING,
  TOOL_ANSWER,
  TOOL_CALL,
} from "../fixtures/models.js";
import { postJson, type TestServer, startEngineServer } from "../helpers/start-server.js";
import { createFixtureModels } from "../helpers/fixture-models.js";

const weather: OpenAI.Responses.FunctionTool = {
  type: "function",
  name: TOOL_CALL.name,
  description: "Current weather in a city",
  parameters: { type: "object", required: ["city"], properties: { city: { type: "string", description: "City name" } } },
  strict: true,
};
const time: OpenAI.Responses.FunctionTool = {
  type: "function",
  name: "get_time",
  description: "Current time in a city",
  parameters: { type: "object", required: ["city"], properties: { city: { type: "string" } } },
  strict: true,
};

function functionCalls(response: OpenAI.Responses.Response): OpenAI.Responses.ResponseFunctionToolCall[] {
  return response.output.filter((item): item is OpenAI.Responses.ResponseFunctionToolCall => item.type === "function_call");
}

for (const engine of ["llama-cpp", "llama-server"] as const) {
  describe(`engine ${engine}`, () => {
    let server: TestServer;
    let openai: OpenAI;
    before(async () => {
      server = await startEngineServer(engine);
      openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
      await createFixtureModels(server.baseUrl, engine);
    });
    after(() => server?.close());

    test("create: the exact reply as one message, its usage, and the SDK's output_text", async () => {
      const response = await openai.responses.create({ model: "scripted", input: "Hi", instructions: "Be brief." });
      assert.equal(response.object, "response");
      assert.equal(response.status, "completed");
      assert.equal(response.output_text, SCRIPTED_REPLY);
      assert.equal(response.output.length, 1);
      const message = response.output[0];
      assert.ok(message?.type === "message");
      assert.deepEqual(message.content, [{ type: "output_text", text: SCRIPTED_REPLY, annotations: [], logprobs: [] }]);
      const usage = response.usage;
      assert.ok(usage && usage.input_tokens > 0 && usage.output_tokens > 0);
      assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
      assert.equal(usage.output_tokens_details.reasoning_tokens, 0);
      assert.ok(usage.input_tokens_details.cached_tokens >= 0);
    });

    test("stream: the text deltas join to the reply, and the SDK's final response holds it", async () => {
      const stream = openai.responses.stream({ model: "scripted", input: "Hi" });
      const deltas: string[] = [];
      stream.on("response.output_text.delta", (event) => deltas.push(event.delta));
      const final = await stream.finalResponse();
      assert.ok(deltas.length > 2, "streamed in several deltas");
      assert.equal(deltas.join(""), SCRIPTED_REPLY);
      assert.equal(final.output_text, SCRIPTED_REPLY);
      assert.equal(final.status, "completed");
      assert.ok((final.usage?.output_tokens ?? 0) > 0);
    });

    test("logprobs: each token of the text with its log-probability and the top alternatives, whole and streamed", async () => {
      const response = await openai.responses.create({ model: "scripted", input: "Hi", top_logprobs: 2, include: ["message.output_text.logprobs"] });
      const part = response.output[0]?.type === "message" ? response.output[0].content[0] : undefined;
      assert.ok(part?.type === "output_text");
      const logprobs = part.logprobs ?? [];
      assert.equal(logprobs.map((entry) => entry.token).join(""), SCRIPTED_REPLY);
      for (const entry of logprobs) {
        assert.ok(entry.logprob <= 0 && entry.logprob > -0.01, `the scripted token is all but certain: ${entry.logprob}`);
        assert.equal(entry.top_logprobs.length, 2);
        assert.equal(entry.top_logprobs[0]?.token, entry.token);
      }
      const stream = openai.responses.stream({ model: "scripted", input: "Hi", top_logprobs: 1 });
      const deltas: Array<[string, string]> = [];
      stream.on("response.output_text.delta", (event) => deltas.push([event.delta, event.logprobs.map((entry) => entry.token).join("")]));
      await stream.finalResponse();
      assert.equal(deltas.map(([delta]) => delta).join(""), SCRIPTED_REPLY);
      for (const [delta, tokens] of deltas) assert.equal(tokens, delta, "a delta's logprobs cover its text");
    });

    test("max_output_tokens: the reply cut there, the response incomplete", async () => {
      const response = await openai.responses.create({ model: "scripted", input: "Hi", max_output_tokens: 3 });
      assert.equal(response.output_text, "Hello! I");
      assert.equal(response.status, "incomplete");
      assert.deepEqual(response.incomplete_details, { reason: "max_output_tokens" });
      assert.equal(response.usage?.output_tokens, 3);
    });

    test("structured output: text.format json_schema answers JSON that matches", async () => {
      const response = await openai.responses.create({
        model: "json",
        input: "Give JSON",
        text: { format: { type: "json_schema", name: "person", schema: JSON_REPLY_SCHEMA as unknown as Record<string, unknown>, strict: true } },
      });
      assert.deepEqual(JSON.parse(response.output_text), JSON.parse(JSON_REPLY));
    });

    test("a function-tool round trip: the call, its output sent back on previous_response_id, the answer", async () => {
      const first = await openai.responses.create({ model: "tool", input: "Weather in Paris?", tools: [weather] });
      assert.equal(first.status, "completed");
      const calls = functionCalls(first);
      assert.deepEqual(
        calls.map((call) => [call.name, JSON.parse(call.arguments) as unknown, call.status]),
        [[TOOL_CALL.name, TOOL_CALL.params, "completed"]],
      );
      const call = calls[0];
      assert.ok(call && call.call_id !== "");
      const answer = await openai.responses.create({
        model: "tool",
        previous_response_id: first.id,
        input: [{ type: "function_call_output", call_id: call.call_id, output: "22C and sunny" }],
        tools: [weather],
      });
      assert.equal(answer.output_text, TOOL_ANSWER);
      assert.equal(functionCalls(answer).length, 0);

      const streamed = await openai.responses.stream({ model: "tool", input: "Weather in Paris?", tools: [weather], tool_choice: { type: "function", name: TOOL_CALL.name } }).finalResponse();
      assert.deepEqual(
        functionCalls(streamed).map((c) => [c.name, JSON.parse(c.arguments) as unknown, c.status]),
        [[TOOL_CALL.name, TOOL_CALL.params, "completed"]],
        "the stream's accumulated call",
      );
    });

    if (engine !== "llama-server") return;

    test("reasoning: a reasoning item with its summary before the message, whole and streamed; effort none turns it off", async () => {
      const response = await openai.responses.create({ model: "thinking", input: "Hi" });
      assert.deepEqual(
        response.output.map((item) => item.type),
        ["reasoning", "message"],
      );
      const reasoning = response.output[0];
      assert.ok(reasoning?.type === "reasoning");
      assert.match(reasoning.id, /^rs_/);
      assert.deepEqual(
        reasoning.summary.map((part) => [part.type, part.text.trim()]),
        [["summary_text", THINKING_REASONING]],
      );
      assert.equal(response.output_text.trim(), THINKING_ANSWER);
      assert.ok((response.usage?.output_tokens_details.reasoning_tokens ?? 0) > 0);

      const raw = await postJson(server.baseUrl, "/v1/responses", { model: "thinking", input: "Hi", stream: true, reasoning: { effort: "medium" } });
      const events = (await raw.text())
        .split("\n\n")
        .filter((block) => block !== "")
        .map((block) => JSON.parse(block.slice(block.indexOf("\ndata: ") + "\ndata: ".length)) as { type: string; delta?: string });
      const kinds = events.map((e) => e.type).filter((type, i, all) => !type.endsWith(".delta") || all[i - 1] !== type);
      assert.deepEqual(kinds, [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
      ]);
      const text = (type: string): string =>
        events
          .filter((e) => e.type === type)
          .map((e) => e.delta ?? "")
          .join("");
      assert.equal(text("response.reasoning_summary_text.delta").trim(), THINKING_REASONING);
      assert.equal(text("response.output_text.delta").trim(), THINKING_ANSWER);

      const streamed = await openai.responses.stream({ model: "thinking", input: "Hi" }).finalResponse();
      const summary = streamed.output[0]?.type === "reasoning" ? streamed.output[0].summary[0]?.text : undefined;
      assert.equal(summary?.trim(), THINKING_REASONING, "the SDK accumulates the summary");

      const off = await openai.responses.create({ model: "thinking", input: "Hi", reasoning: { effort: "none" } });
      assert.deepEqual(
        off.output.map((item) => item.type),
        ["message"],
      );
      assert.equal(off.output_text.trim(), THINKING_ANSWER);

      const next = await openai.responses.create({ model: "thinking", previous_response_id: response.id, input: "Again" });
      assert.equal(next.output_text.trim(), THINKING_ANSWER, "a conversation holding a reasoning item goes on");
    });

    test("parallel function calls: both calls in one response, both outputs sent back", async () => {
      const first = await openai.responses.create({ model: "parallel", input: "Weather and time in Paris?", tools: [weather, time], parallel_tool_calls: true });
      const calls = functionCalls(first);
      assert.deepEqual(
        calls.map((call) => ({ name: call.name, arguments: JSON.parse(call.arguments) as unknown })),
        PARALLEL_TOOL_CALLS,
      );
      assert.equal(new Set(calls.map((call) => call.call_id)).size, 2, "distinct call ids");
      const answer = await openai.responses.create({
        model: "parallel",
        previous_response_id: first.id,
        input: calls.map((call, i) => ({ type: "function_call_output" as const, call_id: call.call_id, output: i === 0 ? "sunny" : "noon" })),
        tools: [weather, time],
      });
      assert.equal(answer.output_text, PARALLEL_TOOL_ANSWER);
    });
  });
}
