// Node tests of the generated client's sessions against the real feed app (started by pytest,
// tests/test_codegen_typescript_sessions.py), through a WebSocket relay of the test's own that
// loses, delays and cuts what a real server cannot be made to on demand:
//   CLIENT_JS=/path/client.js WS_URL=ws://127.0.0.1:PORT/ node --test clients/test/sessions.test.mjs
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";

const { connect } = await import(process.env.CLIENT_JS);
const upstream = process.env.WS_URL;
const GAP_TIMEOUT_MS = 100;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check, what) {
  for (let i = 0; i < 1000; i++) {
    if (check()) return;
    await sleep(10);
  }
  throw new Error(`never: ${what}`);
}

/**
 * A relay on 127.0.0.1 to the real server: each client connection gets its own upstream socket
 * (same query string), and every server frame goes through `fromServer(n, frame, client)`, n
 * counting connections from 1. While `refusing`, upgrades are refused (503): the client is offline.
 */
class Relay {
  constructor(fromServer) {
    this.fromServer = fromServer;
    this.connections = 0;
    this.refusing = false;
    this.hellos = []; // the data of every $hello the client sent
    this.server = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      verifyClient: (info, accept) => (this.refusing ? accept(false, 503) : accept(true)),
    });
    this.server.on("connection", (client, request) => this.relay(client, request));
  }

  async listening() {
    await new Promise((resolve) => this.server.once("listening", resolve));
    return `ws://127.0.0.1:${this.server.address().port}/`;
  }

  relay(client, request) {
    const n = ++this.connections;
    const target = new URL(upstream);
    target.search = new URL(request.url, "ws://relay").search;
    const server = new WebSocket(target);
    const early = [];
    server.on("open", () => early.splice(0).forEach((frame) => server.send(frame)));
    server.on("message", (raw) => this.fromServer(n, String(raw), client));
    client.on("message", (raw) => {
      const frame = String(raw);
      const message = JSON.parse(frame);
      if (message.action === "$hello") this.hellos.push(message.data);
      if (server.readyState === WebSocket.OPEN) server.send(frame);
      else early.push(frame);
    });
    client.on("close", () => server.terminate());
    server.on("close", () => client.terminate());
  }

  close() {
    for (const client of this.server.clients) client.terminate();
    this.server.close();
  }
}

/** Cut `client` abruptly, once everything sent to it has been read (its pong answers our ping). */
function cutOnceRead(client) {
  client.once("pong", () => client.terminate());
  client.ping();
}

const topicSeq = (frame, topic) => {
  const parsed = JSON.parse(frame);
  return parsed.type === "event" && parsed.topic === topic ? parsed.seq : null;
};

/**
 * Alice holds event 3 of a fresh topic ahead of a lost 2 when her connection is cut; she comes back
 * after `offlineMs`, and the server's answer to her resume (the replay of 2 and 3, then the
 * `$hello` result) reaches her `slowResumeMs` late. Each is many gap timeouts long: the gap must
 * wait for the replay, not skip 2.
 */
async function gapThroughDrop(name, { offlineMs, slowResumeMs }) {
  const topic = `${name}-${randomUUID()}`; // its seqs start at 1 on a server serving many runs
  const relay = new Relay((n, frame, client) => {
    const seq = topicSeq(frame, topic);
    if (n === 1) {
      if (seq === 2) return; // lost in flight
      client.send(frame);
      if (seq === 3) {
        relay.refusing = offlineMs > 0;
        setTimeout(() => (relay.refusing = false), offlineMs);
        cutOnceRead(client);
      }
    } else {
      setTimeout(() => client.readyState === WebSocket.OPEN && client.send(frame), slowResumeMs);
    }
  });
  const relayUrl = await relay.listening();
  const sessions = [];
  const seen = [];
  const options = { WebSocket, baseDelayMs: 20, maxDelayMs: 100, gapTimeoutMs: GAP_TIMEOUT_MS };
  const alice = connect(relayUrl, { ...options, query: { who: "alice" }, onSession: (info) => sessions.push(info) });
  const bob = connect(upstream, { ...options, query: { who: "bob" } });
  alice.on("feed.item", (item) => seen.push(item.n));
  try {
    await alice.call.feedJoin({ topic });
    for (const n of [1, 2, 3]) await bob.call.feedPost({ topic, n });
    await until(() => sessions.length === 2, "the resume's $hello was answered");
    await sleep(3 * GAP_TIMEOUT_MS); // room for a skip or a duplicate to show up, were it made
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(relay.hellos[1].since, { [topic]: 1 }); // 3 waited: the resume asks from 1
    assert.equal(sessions[1].resumed, true);
    assert.equal(sessions[1].replayed, 2);
  } finally {
    alice.close();
    bob.close();
    relay.close();
  }
}

test("a gap waits while the client is offline, then the replay fills it", () =>
  gapThroughDrop("offline", { offlineMs: 8 * GAP_TIMEOUT_MS, slowResumeMs: 0 }));

test("a gap waits while the resume's $hello is unanswered, then the replay fills it", () =>
  gapThroughDrop("slow-resume", { offlineMs: 0, slowResumeMs: 8 * GAP_TIMEOUT_MS }));
