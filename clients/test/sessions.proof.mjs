// The generated client through drops: joins a topic, then collects every event until the
// last one arrives (started by tests/test_sessions_proof.py).
//   CLIENT_JS=/path/client.js WS_URL=ws://... EVENTS=1000 node clients/test/sessions.proof.mjs
// Prints "joined" once subscribed, then one JSON line: what the app saw, in order.
import WebSocket from "ws";

const { connect } = await import(process.env.CLIENT_JS);
const total = Number(process.env.EVENTS);
const deadline = Number(process.env.DEADLINE_MS ?? 180_000);

const seen = [];
const sessions = [];
let states = 0;
const client = connect(process.env.WS_URL, {
  WebSocket,
  baseDelayMs: 20,
  maxDelayMs: 200,
  timeoutMs: 5_000,
  query: { who: "node" },
  onSession: (info) => sessions.push(info),
});
client.onStateChange(() => (states += 1));

let finish;
const finished = new Promise((resolve) => (finish = resolve));
client.on("feed.item", (item) => {
  seen.push(item.n);
  if (item.n === total) finish();
});
const timer = setTimeout(finish, deadline);
process.on("SIGTERM", finish); // the test gave up waiting: report what arrived

for (;;) {
  try {
    await client.call.feedJoin({ topic: "feed" });
    break;
  } catch {
    // connection_lost or a timeout while the proxy cut us: join again (it is idempotent)
  }
}
console.log("joined");
await finished;
clearTimeout(timer);
const resumed = sessions.filter((info) => info.resumed).length;
console.log(
  JSON.stringify({ seen, resumed, sessions, states, state: client.connectionState, token: client.session?.token ?? null }),
);
client.close();
