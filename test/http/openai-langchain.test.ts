/**
 * LangChain's ChatOpenAI (through the openai SDK) pointed at /v1, as a black box, with REAL inference on the scripted
 * fixtures on the default product engine (llama.cpp's llama-server, on the CPU): invoke, stream (LangChain asks for
 * usage on every stream), bindTools with a full round trip, withStructuredOutput (JSON schema, its default here, and
 * JSON mode), and n.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AIMessage, HumanMessage, ToolMessage, type AIMessageChunk } from "@langchain/core/messages";
import { ChatOpenAI } from "@langchain/openai";
import { ensureFixtures, JSON_REPLY, JSON_REPLY_SCHEMA, SCRIPTED_REPLY, TOOL_ANSWER, TOOL_CALL } from "../fixtures/models.js";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";
import { createModel, startServer, type TestServer } from "../helpers/start-server.js";

let server: TestServer;
before(async () => {
  const fixtures = await ensureFixtures();
  server = await startServer({ config: { gpu: "off", threads: 1, contextLength: 1024, numParallel: 2, engine: "llama-server", llamaServer: buildLlamaServer() } });
  assert.equal(server.app.services.engine, "llama-server");
  await createModel(server.baseUrl, "scripted", fixtures.chat);
  await createModel(server.baseUrl, "json", fixtures.json);
  await createModel(server.baseUrl, "tool", fixtures.qwenToolCall);
});
after(() => server?.close());

function chatModel(model: string, fields: Partial<ConstructorParameters<typeof ChatOpenAI>[0]> = {}): ChatOpenAI {
  return new ChatOpenAI({ model, apiKey: "unused", configuration: { baseURL: `${server.baseUrl}/v1` }, maxRetries: 0, ...fields });
}

const weatherTool = {
  type: "function" as const,
  function: {
    name: TOOL_CALL.name,
    description: "Current weather in a city",
    parameters: { type: "object", required: ["city"], properties: { city: { type: "string", description: "City name" } } },
  },
};

test("ChatOpenAI.invoke: the exact reply, with usage metadata", async () => {
  const reply = await chatModel("scripted", { temperature: 0 }).invoke("Hi");
  assert.equal(reply.content, SCRIPTED_REPLY);
  assert.ok((reply.usage_metadata?.output_tokens ?? 0) > 0);
  assert.equal(reply.response_metadata.finish_reason, "stop");
});

test("ChatOpenAI.stream: chunks join to the reply; the usage arrives; stop sequences work", async () => {
  let text = "";
  let final: AIMessageChunk | undefined;
  for await (const chunk of await chatModel("scripted").stream("Hi")) {
    text += typeof chunk.content === "string" ? chunk.content : "";
    final = final ? final.concat(chunk) : chunk;
  }
  assert.equal(text, SCRIPTED_REPLY);
  assert.ok((final?.usage_metadata?.output_tokens ?? 0) > 0, "include_usage's chunk reached LangChain");

  const stopped = await chatModel("scripted").invoke("Hi", { stop: ["scripted"] });
  assert.equal(stopped.content, "Hello! I am a ");
});

test("ChatOpenAI.bindTools: a tool call with parsed args, then the answer from the tool result", async () => {
  const model = chatModel("tool").bindTools([weatherTool]);
  const question = new HumanMessage("Weather in Paris?");
  const call = await model.invoke([question]);
  assert.equal(call.tool_calls?.length, 1);
  const toolCall = call.tool_calls?.[0];
  assert.equal(toolCall?.name, TOOL_CALL.name);
  assert.deepEqual(toolCall?.args, TOOL_CALL.params);
  assert.ok(toolCall?.id);
  const answer = await model.invoke([question, new AIMessage({ content: "", tool_calls: call.tool_calls ?? [] }), new ToolMessage({ content: "sunny", tool_call_id: toolCall.id })]);
  assert.equal(answer.content, TOOL_ANSWER);

  let streamed: AIMessageChunk | undefined;
  for await (const chunk of await chatModel("tool").bindTools([weatherTool], { tool_choice: "required" }).stream([question])) streamed = streamed ? streamed.concat(chunk) : chunk;
  assert.deepEqual(
    streamed?.tool_calls?.map((c) => [c.name, c.args]),
    [[TOOL_CALL.name, TOOL_CALL.params]],
    "streamed tool-call deltas are accumulated",
  );
});

test("ChatOpenAI.withStructuredOutput: JSON schema (the default) and JSON mode", async () => {
  const schema = { title: "person", ...JSON_REPLY_SCHEMA } as unknown as Record<string, unknown>;
  const expected = JSON.parse(JSON_REPLY) as unknown;
  assert.deepEqual(await chatModel("json").withStructuredOutput(schema).invoke("Give JSON"), expected);
  assert.deepEqual(await chatModel("json").withStructuredOutput(schema, { method: "jsonMode" }).invoke("Give JSON"), expected);
});

test("ChatOpenAI with n: every generation", async () => {
  const result = await chatModel("scripted", { n: 2 }).generate([[new HumanMessage("Hi")]]);
  assert.deepEqual(
    result.generations[0]?.map((g) => g.text),
    [SCRIPTED_REPLY, SCRIPTED_REPLY],
  );
});
