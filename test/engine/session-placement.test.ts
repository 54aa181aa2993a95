/**
 * SessionPlacement against a real llama-server (2 slots, the scripted fixture, one thread): which `id_slot` a session's
 * request names, read from the real GET /slots. Requests placed here hold their slot until released, so a second
 * request of the same session, or one more than the slots, is never sent to a busy slot (llama-server would hold it
 * until that slot is free). A process that does not answer /slots (a stand-in: a socket that accepts and never
 * answers; a real llama-server cannot be wedged on demand) leaves the choice to llama-server, within the read's bound.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ServerClient } from "../../src/engine/llama-server/client.js";
import { LlamaServerEngine } from "../../src/engine/llama-server/llama-server-engine.js";
import type { LlamaServerModel } from "../../src/engine/llama-server/loaded-model.js";
import { SessionPlacement } from "../../src/engine/llama-server/session-placement.js";
import { kvCacheOf, readSlots } from "../../src/engine/llama-server/slots.js";
import { ensureFixtures } from "../fixtures/models.js";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";

const never = new AbortController().signal;
let engine: LlamaServerEngine;
let model: LlamaServerModel;

before(async () => {
  engine = new LlamaServerEngine({ binary: buildLlamaServer(), gpu: "off" });
  model = (await engine.load({ modelPath: (await ensureFixtures()).chat, contextSize: 512, slots: 2, threads: 1 })) as LlamaServerModel;
});

after(async () => {
  await model?.unload();
  await engine?.close();
});

test("GET /slots: two idle slots of the context each; nothing held", async () => {
  const slots = await readSlots(model.server.client, never);
  assert.deepEqual(
    slots.map((s) => [s.id, s.contextSize, s.processing]),
    [
      [0, 512, false],
      [1, 512, false],
    ],
  );
  assert.deepEqual(kvCacheOf(slots), { used: 0, size: 1024 });
});

test("a session keeps its slot; its second request while the first runs, and a third session, get what is free or nothing", async () => {
  const placement = new SessionPlacement(model.server.client);
  const a = await placement.place("a", never);
  const b = await placement.place("b", never);
  assert.deepEqual([a.slot, b.slot], [0, 1], "new sessions spread over the free slots");
  b.release();
  const aAgain = await placement.place("a", never);
  assert.equal(aAgain.slot, 1, "a's own slot is held by its running request: the free one is lent");
  const c = await placement.place("c", never);
  assert.equal(c.slot, undefined, "no free slot: llama-server chooses");
  a.release();
  aAgain.release();
  assert.equal((await placement.place("a", never)).slot, 0, "a's slot is still a's (the lent one did not move it)");
  assert.equal((await placement.place(undefined, never)).slot, undefined, "a request without a session is not placed");
});

test("a process that does not answer /slots: not placed, after the read's bound", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-slots-"));
  const socketPath = path.join(dir, "wedged.sock");
  const sockets: net.Socket[] = [];
  const wedged = net.createServer((socket) => void sockets.push(socket)); // accepts, never answers
  await new Promise<void>((resolve) => wedged.listen(socketPath, resolve));
  try {
    const placement = new SessionPlacement(new ServerClient(socketPath, async () => undefined));
    assert.equal((await placement.place("a", never)).slot, undefined);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => wedged.close(resolve));
    await rm(dir, { recursive: true, force: true });
  }
});
