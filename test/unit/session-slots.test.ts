/** SessionSlots: which slot each session was served on last, bounded, and which free slot a session without one gets. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SessionSlots } from "../../src/engine/session-slots.js";

test("a session goes back to its slot while it is free; a new session gets a slot no other session holds", () => {
  const slots = new SessionSlots<number>();
  assert.equal(slots.ownFree("a", [0, 1]), undefined, "unknown session");
  assert.equal(slots.spare([0, 1]), 0);
  slots.served("a", 0);
  assert.equal(slots.ownFree("a", [0, 1]), 0);
  assert.equal(slots.ownFree("a", [1]), undefined, "its slot is busy");
  assert.equal(slots.spare([0, 1]), 1, "slot 0 holds session a's cache");
  slots.served("b", 1);
  assert.equal(slots.holds(0), true);
  assert.equal(slots.holds(1), true);
  assert.ok(slots.has("a") && slots.has("b"));
});

test("with every free slot held, the one whose session was active the longest ago is given up", () => {
  const slots = new SessionSlots<number>();
  slots.served("a", 0);
  slots.served("b", 1);
  slots.served("c", 2);
  slots.served("a", 0); // a is active again: b is now the least recently active
  assert.equal(slots.spare([0, 1, 2]), 1);
  assert.equal(slots.spare([0, 2]), 2, "only among the free ones");
  slots.served("d", 1);
  assert.equal(slots.has("b"), false, "b's cache is gone with its slot");
  assert.equal(slots.ownFree("d", [1]), 1);
  assert.equal(slots.spare([]), undefined, "nothing free");
});

test("a request without a session on a session's slot, or a session moving, forgets what no longer holds", () => {
  const slots = new SessionSlots<number>();
  slots.served("a", 0);
  slots.taken(0);
  assert.equal(slots.has("a"), false);
  assert.equal(slots.holds(0), false);
  slots.served("b", 1);
  slots.served("b", 2); // b moved (its old slot was taken over while it had none)
  assert.equal(slots.holds(1), false);
  assert.equal(slots.ownFree("b", [1, 2]), 2);
});

test("bounded: the least recently active sessions are forgotten first", () => {
  const slots = new SessionSlots<string>(3);
  for (const name of ["a", "b", "c"]) slots.served(name, `slot-${name}`);
  assert.equal(slots.ownFree("a", ["slot-a"]), "slot-a");
  slots.served("a", "slot-a"); // a active again
  slots.served("d", "slot-d");
  assert.equal(slots.has("b"), false, "b was the least recently active");
  assert.equal(slots.holds("slot-b"), false);
  assert.ok(slots.has("a") && slots.has("c") && slots.has("d"));
});
