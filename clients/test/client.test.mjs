// Node tests of a generated client against a real server (started by pytest):
//   CLIENT_JS=/path/client.js WS_URL=ws://127.0.0.1:PORT/ node --test clients/test/client.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket from "ws";

const { connect, ActionCallError } = await import(process.env.CLIENT_JS);
const url = process.env.WS_URL;

function open(options = {}) {
  const client = connect(url, { WebSocket, baseDelayMs: 20, maxDelayMs: 200, ...options });
  return client;
}

function waitForState(client, state) {
  return new Promise((resolve) => {
    if (client.connectionState === state) return resolve();
    const stop = client.onStateChange((now) => {
      if (now === state) {
        stop();
        resolve();
      }
    });
  });
}

test("calls return typed outputs", async () => {
  const client = open();
  try {
    assert.deepEqual(await client.call.zooEcho({ text: "hi" }), { text: "hi", count: 1 });
    assert.deepEqual(await client.call.zooList(), ["x", "y"]);
    assert.equal(await client.call.zooPing(), null);
    assert.deepEqual(await client.request("zoo.other", { sku: "s" }), { sku: "s", quantity: 1 });
  } finally {
    client.close();
  }
});

test("errors reject with code, message and details", async () => {
  const client = open();
  try {
    await assert.rejects(client.call.zooFail({ text: "boom" }), (error) => {
      assert.ok(error instanceof ActionCallError);
      assert.equal(error.code, "zoo_failed");
      assert.equal(error.message, "failed: boom");
      assert.deepEqual(error.details, { text: "boom" });
      assert.equal(error.action, "zoo.fail");
      return true;
    });
    await assert.rejects(client.call.zooEcho({ text: "x".repeat(60) }), (error) => {
      assert.equal(error.code, "invalid_input");
      assert.equal(error.details[0].loc[0], "text");
      return true;
    });
  } finally {
    client.close();
  }
});

test("events reach subscribers until they unsubscribe", async () => {
  const client = open();
  try {
    const seen = [];
    const unsubscribe = client.on("tick", (data) => seen.push(data));
    await client.call.zooTick();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(seen, [{ n: 1 }]);
    unsubscribe();
    await client.call.zooTick();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(seen.length, 1);
  } finally {
    client.close();
  }
});

test("a call that outlives its timeout rejects with timeout", async () => {
  const client = open();
  try {
    await assert.rejects(client.call.zooEcho({ text: "slow", delay: 1 }, { timeoutMs: 100 }), {
      code: "timeout",
    });
    assert.deepEqual(await client.call.zooEcho({ text: "after" }), { text: "after", count: 1 });
  } finally {
    client.close();
  }
});

test("reconnects after the server drops the socket, and flushes queued calls", async () => {
  const client = open();
  const states = [];
  client.onStateChange((state) => states.push(state));
  try {
    await waitForState(client, "open");
    await assert.rejects(client.call.zooDrop(), { code: "connection_lost" });
    // Called while reconnecting: queued, then sent once the socket is open again.
    const queued = [client.call.zooEcho({ text: "q1" }), client.call.zooEcho({ text: "q2" })];
    assert.deepEqual((await Promise.all(queued)).map((out) => out.text), ["q1", "q2"]);
    assert.deepEqual(states, ["open", "reconnecting", "open"]);
  } finally {
    client.close();
  }
});

test("the queue is bounded", async () => {
  const client = open({ maxQueue: 2 });
  try {
    const calls = [1, 2, 3].map((n) => client.call.zooEcho({ text: `n${n}` }));
    await assert.rejects(calls[2], { code: "queue_full" });
    assert.deepEqual((await Promise.all(calls.slice(0, 2))).map((out) => out.text), ["n1", "n2"]);
  } finally {
    client.close();
  }
});

test("query string and subprotocol auth reach the server", async () => {
  const client = open({ query: { token: "t-1" }, protocols: ["chat.v1"] });
  try {
    // ws refuses a handshake whose answer names no subprotocol: being open proves the echo.
    assert.deepEqual(await client.call.zooWhoami(), { token: "t-1" });
  } finally {
    client.close();
  }
});

test("close() fails waiting calls and stops reconnecting", async () => {
  const client = open();
  await waitForState(client, "open");
  const pending = client.call.zooEcho({ text: "late", delay: 1 });
  client.close();
  await assert.rejects(pending, { code: "closed" });
  assert.equal(client.connectionState, "closed");
  await assert.rejects(client.call.zooPing(), { code: "closed" });
});

test("keep-alive frames are sent and never answered", async () => {
  const client = open({ keepAliveMs: 30 });
  try {
    await waitForState(client, "open");
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.deepEqual(await client.call.zooEcho({ text: "alive" }), { text: "alive", count: 1 });
  } finally {
    client.close();
  }
});
