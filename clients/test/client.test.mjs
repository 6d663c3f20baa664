// Node tests of a generated client against a real server (started by pytest):
//   CLIENT_JS=/path/client.js WS_URL=ws://127.0.0.1:PORT/ node --test clients/test/client.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";

const { connect, ActionCallError, SCHEMA_HASH } = await import(process.env.CLIENT_JS);
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

test("a message over 32 KB is refused before it is sent, naming the limit", async () => {
  const client = open();
  try {
    // 17,000 two-byte characters: under 32 KB in characters, over it in UTF-8 bytes.
    for (const text of ["x".repeat(40 * 1024), "é".repeat(17_000)]) {
      await assert.rejects(client.call.zooEcho({ text }), (error) => {
        assert.ok(error instanceof ActionCallError);
        assert.equal(error.code, "payload_too_large");
        assert.equal(error.details.limit, 32768);
        assert.ok(error.details.size > 32768);
        assert.match(error.message, /32768 bytes/);
        assert.equal(error.action, "zoo.echo");
        return true;
      });
    }
    // Just under the limit it goes out: the server answers (invalid_input: text is too long).
    await assert.rejects(client.call.zooEcho({ text: "x".repeat(30 * 1024) }), { code: "invalid_input" });
    assert.equal(client.connectionState, "open");
    assert.deepEqual(await client.call.zooEcho({ text: "still" }), { text: "still", count: 1 });
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

// Streams. A hang must fail the test, not the suite: each has a deadline.
const STREAM_TEST = { timeout: 15_000 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function collect(iterable) {
  const out = [];
  for await (const value of iterable) out.push(value);
  return out;
}

// Whether the server's zoo.count generator tagged so has run its finally, polled for a while.
async function finishedOnServer(client, tag) {
  const deadline = Date.now() + 5_000;
  while (!(await client.call.zooFinished({ tag }))) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

test("a stream yields its typed chunks in order, and each loop is one call", STREAM_TEST, async () => {
  const client = open();
  try {
    const tokens = await collect(client.stream.zooCount({ upto: 5 }));
    assert.deepEqual(tokens, [0, 1, 2, 3, 4].map((index) => ({ index, text: `t${index}` })));
    const letters = client.stream.zooLetters();
    assert.deepEqual(await collect(letters), ["a", "b", "c"]);
    assert.deepEqual(await collect(letters), ["a", "b", "c"]);
    assert.deepEqual(await collect(client.requestStream("zoo.count", { upto: 0 })), []);
  } finally {
    client.close();
  }
});

test("on the wire: chunks carry the id and seq 0, 1, 2..., then a null result", STREAM_TEST, async () => {
  const socket = new WebSocket(url);
  const frames = [];
  socket.on("message", (raw) => frames.push(JSON.parse(String(raw))));
  await new Promise((resolve) => socket.once("open", resolve));
  try {
    socket.send(JSON.stringify({ action: "zoo.count", id: "s1", data: { upto: 3 } }));
    while (!frames.some((frame) => frame.type !== "chunk")) await sleep(10);
    assert.deepEqual(frames, [
      ...[0, 1, 2].map((seq) => ({
        type: "chunk", id: "s1", action: "zoo.count", seq, data: { index: seq, text: `t${seq}` },
      })),
      { type: "result", id: "s1", action: "zoo.count", data: null },
    ]);
    // Cancelling a finished stream is answered, under the cancel's own action: clients ignore it.
    socket.send(JSON.stringify({ action: "$cancel", id: "s1" }));
    while (frames.length < 5) await sleep(10);
    assert.equal(frames[4].type, "error");
    assert.equal(frames[4].id, "s1");
    assert.equal(frames[4].action, "$cancel");
    assert.equal(frames[4].error.code, "bad_request");
  } finally {
    socket.close();
  }
});

test("a stream that fails mid-way throws its typed error after the chunks before it", STREAM_TEST, async () => {
  const client = open();
  try {
    const seen = [];
    await assert.rejects(
      async () => {
        for await (const token of client.stream.zooCount({ upto: 5, fail_at: 2 })) seen.push(token.index);
      },
      (error) => {
        assert.ok(error instanceof ActionCallError);
        assert.equal(error.code, "zoo_failed");
        assert.deepEqual(error.details, { index: 2 });
        assert.equal(error.action, "zoo.count");
        return true;
      },
    );
    assert.deepEqual(seen, [0, 1]);
  } finally {
    client.close();
  }
});

test("leaving the loop early cancels the stream on the server, quietly", STREAM_TEST, async () => {
  const client = open();
  try {
    const seen = [];
    for await (const token of client.stream.zooCount({ upto: 10_000, delay: 0.01, tag: "break" })) {
      seen.push(token.index);
      if (token.index === 1) break;
    }
    assert.deepEqual(seen, [0, 1]);
    assert.ok(await finishedOnServer(client, "break"), "the generator's finally never ran");
    // The server's `cancelled` frame for that id came to a client that no longer tracks it.
    assert.deepEqual(await client.call.zooEcho({ text: "after" }), { text: "after", count: 1 });
  } finally {
    client.close();
  }
});

test("aborting the signal cancels the stream and throws the signal's reason", STREAM_TEST, async () => {
  const client = open();
  try {
    const controller = new AbortController();
    const seen = [];
    const input = { upto: 10_000, delay: 0.01, tag: "abort" };
    await assert.rejects(
      async () => {
        for await (const token of client.stream.zooCount(input, { signal: controller.signal })) {
          seen.push(token.index);
          if (token.index === 1) setTimeout(() => controller.abort(), 0); // while the loop waits
        }
      },
      (error) => error === controller.signal.reason && error.name === "AbortError",
    );
    assert.ok(seen.length >= 2 && seen.length < 100, `read ${seen.length} chunks`);
    assert.ok(await finishedOnServer(client, "abort"), "the generator's finally never ran");
    // An aborted signal sends nothing and throws at once, whatever the reason.
    const reason = new Error("stopped before it started");
    await assert.rejects(
      collect(client.stream.zooCount({ upto: 3, tag: "never" }, { signal: AbortSignal.abort(reason) })),
      (error) => error === reason,
    );
    assert.equal(await client.call.zooFinished({ tag: "never" }), false);
  } finally {
    client.close();
  }
});

test("a stream silent for longer than its timeout is cancelled with timeout", STREAM_TEST, async () => {
  const client = open();
  try {
    // The timeout is per frame: five chunks 50 ms apart fit in a 200 ms timeout.
    const tokens = await collect(client.stream.zooCount({ upto: 5, delay: 0.05 }, { timeoutMs: 200 }));
    assert.equal(tokens.length, 5);
    const slow = client.stream.zooCount({ upto: 3, delay: 1, tag: "slow" }, { timeoutMs: 100 });
    await assert.rejects(collect(slow), { code: "timeout", action: "zoo.count" });
    assert.ok(await finishedOnServer(client, "slow"), "the generator's finally never ran");
  } finally {
    client.close();
  }
});

test("chunks a slow reader leaves beyond maxBuffered end the stream with buffer_full", STREAM_TEST, async () => {
  const client = open();
  try {
    const iterator = client.stream.zooCount({ upto: 50 }, { maxBuffered: 5 })[Symbol.asyncIterator]();
    await sleep(300); // the call is out, nobody reads
    const seen = [];
    await assert.rejects(async () => {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) seen.push(next.value.index);
    }, { code: "buffer_full" });
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  } finally {
    client.close();
  }
});

test("a connection dropped mid-stream ends the loop with connection_lost, never a hang", STREAM_TEST, async () => {
  const sockets = [];
  class Recorded extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  const client = open({ WebSocket: Recorded });
  try {
    const seen = [];
    await assert.rejects(
      async () => {
        for await (const token of client.stream.zooCount({ upto: 10_000, delay: 0.01 })) {
          seen.push(token.index);
          if (token.index === 1) sockets[0].terminate(); // the network drops: no close frame
        }
      },
      (error) => error instanceof ActionCallError && error.code === "connection_lost",
    );
    assert.ok(seen.length >= 2);
    // The client reconnects as after any drop.
    assert.deepEqual(await collect(client.stream.zooLetters()), ["a", "b", "c"]);
    // close() ends a running stream with `closed`.
    const running = collect(client.stream.zooCount({ upto: 10_000, delay: 0.01 }));
    await sleep(50);
    client.close();
    await assert.rejects(running, { code: "closed" });
  } finally {
    client.close();
  }
});

test("a chunk out of sequence ends the stream with protocol_error and cancels it", STREAM_TEST, async () => {
  // A server that breaks the protocol: the test's own, since the real one cannot be made to.
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => server.once("listening", resolve));
  const received = [];
  server.on("connection", (socket) =>
    socket.on("message", (raw) => {
      const request = JSON.parse(String(raw));
      received.push(request);
      if (request.action !== "zoo.count") return;
      for (const seq of [0, 2]) {
        const data = { index: seq, text: `t${seq}` };
        socket.send(JSON.stringify({ type: "chunk", id: request.id, action: request.action, seq, data }));
      }
    }),
  );
  // No sessions: this server knows no $hello.
  const client = connect(`ws://127.0.0.1:${server.address().port}/`, { WebSocket, sessions: false });
  try {
    const seen = [];
    await assert.rejects(async () => {
      for await (const token of client.stream.zooCount({ upto: 3 })) seen.push(token.index);
    }, { code: "protocol_error" });
    assert.deepEqual(seen, [0]);
    while (received.length < 2) await sleep(10);
    assert.deepEqual(received[1], { action: "$cancel", id: received[0].id });
  } finally {
    client.close();
    server.close();
  }
});

/** A server of the test's own that answers $hello as `answer(request)` says, and records it. */
async function helloServer(answer, onOpen = () => undefined) {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => server.once("listening", resolve));
  const hellos = [];
  server.on("connection", (socket) => {
    socket.on("message", (raw) => {
      const request = JSON.parse(String(raw));
      if (request.action !== "$hello") return;
      hellos.push(request.data);
      socket.send(JSON.stringify({ id: request.id, action: "$hello", ...answer(request, hellos.length) }));
      onOpen(socket, hellos.length);
    });
  });
  return { server, hellos, url: `ws://127.0.0.1:${server.address().port}/` };
}

const tick = (topic, seq, value) => JSON.stringify({ type: "event", event: "tick", topic, seq, data: { n: value } });

test("the session: $hello first, then client.session; the schema hash goes with it", async () => {
  const client = open();
  try {
    await waitForState(client, "open");
    assert.equal(client.session.resumed, false);
    assert.equal(client.session.schemaOk, true); // the real server, generated from the same registry
    assert.ok(client.session.token.length >= 22);
  } finally {
    client.close();
  }
});

test("topic events reach the app once each and in seq order; replays are dropped", async () => {
  const { server, url } = await helloServer(
    () => ({ type: "result", data: { session: "s1", resumed: false, replayed: 0, lost: [], schema_ok: null } }),
    (socket) => {
      for (const [seq, n] of [[1, 1], [3, 3], [2, 2], [2, 2], [1, 1], [4, 4]]) socket.send(tick("a", seq, n));
      socket.send(JSON.stringify({ type: "event", event: "tick", data: { n: 99 } })); // no topic: as is
    },
  );
  const client = connect(url, { WebSocket });
  const seen = [];
  client.on("tick", (data) => seen.push(data.n));
  try {
    while (seen.length < 5) await sleep(10);
    await sleep(50);
    assert.deepEqual(seen, [1, 2, 3, 4, 99]);
  } finally {
    client.close();
    server.close();
  }
});

test("a gap that never fills is skipped after gapTimeoutMs", async () => {
  const { server, url } = await helloServer(
    () => ({ type: "result", data: { session: "s1", resumed: false, replayed: 0, lost: [], schema_ok: null } }),
    (socket) => {
      for (const seq of [1, 3, 4]) socket.send(tick("a", seq, seq));
    },
  );
  const client = connect(url, { WebSocket, gapTimeoutMs: 100 });
  const seen = [];
  client.on("tick", (data) => seen.push(data.n));
  try {
    while (seen.length < 3) await sleep(10);
    assert.deepEqual(seen, [1, 3, 4]);
  } finally {
    client.close();
    server.close();
  }
});

test("after a drop the client resends $hello with its token and last seqs, then its queued calls", async () => {
  const { server, hellos, url } = await helloServer(
    (request, count) => ({
      type: "result",
      data: { session: "tok", resumed: count > 1, replayed: 0, lost: count > 1 ? ["b"] : [], schema_ok: false },
    }),
    (socket, count) => {
      if (count === 1) {
        socket.send(tick("a", 7, 7));
        socket.send(tick("b", 2, 2));
        setTimeout(() => socket.terminate(), 50);
      }
    },
  );
  const mismatches = [];
  const sessions = [];
  const client = connect(url, {
    WebSocket,
    baseDelayMs: 10,
    maxDelayMs: 20,
    onSchemaMismatch: (info) => mismatches.push(info),
    onSession: (info) => sessions.push(info),
  });
  try {
    while (sessions.length < 2) await sleep(10);
    assert.deepEqual(hellos[0], { session: null, since: {}, schema: SCHEMA_HASH });
    assert.equal(hellos[1].session, "tok");
    assert.deepEqual(hellos[1].since, { a: 7, b: 2 });
    assert.deepEqual(sessions.map((s) => s.resumed), [false, true]);
    assert.equal(mismatches.length, 1); // once, not on every reconnect
  } finally {
    client.close();
    server.close();
  }
});

test("an older server answers $hello with unknown_action: the client goes on without a session", async () => {
  const { server, hellos, url } = await helloServer((request, count) =>
    count === 1
      ? { type: "error", error: { code: "unknown_action", message: "unknown action '$hello'", details: null } }
      : { type: "result", data: { session: "new", resumed: false, replayed: 0, lost: [], schema_ok: null } },
  );
  const client = connect(url, { WebSocket });
  try {
    await waitForState(client, "open");
    assert.equal(client.session, null); // no session: the calls go out anyway
  } finally {
    client.close();
    server.close();
  }
  assert.equal(hellos.length, 1);
});

test("a token refused as another principal's is dropped for a new session", async () => {
  const result = (session) => ({
    type: "result",
    data: { session, resumed: false, replayed: 0, lost: [], schema_ok: null },
  });
  const { server, hellos, url } = await helloServer(
    (request, count) =>
      count === 2
        ? { type: "error", error: { code: "unauthorized", message: "another principal", details: null } }
        : result(count === 1 ? "tok" : "new"),
    (socket, count) => {
      if (count === 1) setTimeout(() => socket.terminate(), 20);
    },
  );
  const client = connect(url, { WebSocket, baseDelayMs: 10, maxDelayMs: 20 });
  try {
    while (hellos.length < 3 || client.session?.token !== "new") await sleep(10);
    assert.deepEqual(
      hellos.map((hello) => hello.session),
      [null, "tok", null],
    );
  } finally {
    client.close();
    server.close();
  }
});

test("a $hello the server failed (internal_error) is sent again", async () => {
  const { server, hellos, url } = await helloServer((request, count) =>
    count === 1
      ? { type: "error", error: { code: "internal_error", message: "internal error", details: null } }
      : { type: "result", data: { session: "tok", resumed: false, replayed: 0, lost: [], schema_ok: null } },
  );
  const client = connect(url, { WebSocket, baseDelayMs: 10 });
  try {
    await waitForState(client, "open");
    assert.equal(hellos.length, 2);
    assert.equal(client.session.token, "tok");
  } finally {
    client.close();
    server.close();
  }
});
