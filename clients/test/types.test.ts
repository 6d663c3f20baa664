// Type tests for a generated client (the zoo's): what compiles, and what must not.
// tsc --strict type-checks this beside the generated client.ts; an @ts-expect-error that sees
// no error fails the compilation, so each one proves a wrong payload is refused.
import {
  ActionCallError,
  connect,
  type Client,
  type ErrorCode,
  type EverythingOutput,
  type Tick,
  type Token,
} from "./client";

declare const client: Client;

async function typed(): Promise<void> {
  const out = await client.call.zooEcho({ text: "hi" });
  const text: string = out.text;
  const count: number = out.count; // defaulted on the server: always present in the output
  const listed: Array<"x" | "y"> = await client.call.zooList();
  const nothing: null = await client.call.zooPing();
  const same: { sku: string; quantity: number } = await client.call.zooOther({ sku: "a" });
  const viaRequest = await client.request("zoo.echo", { text: "x", delay: 1 }, { timeoutMs: 50 });
  void [text, count, listed, nothing, same, viaRequest.text];

  const unsubscribe: () => void = client.on("tick", (data: Tick) => void data.n);
  unsubscribe();
  client.on("everything.changed", (data: EverythingOutput) => {
    const kind: "cat" | "dog" = data.pet.kind;
    if (data.pet.kind === "dog") {
      const good: boolean = data.pet.good; // narrowed by the discriminator
      void good;
    }
    const pair: [number, string] = data.pair;
    const when: string = data.when;
    const optional: string | null = data.optional_text;
    void [kind, pair, when, optional, data.aliasedName, data.tree.children[0]?.value];
  });

  await client.call.zooEverything({
    required_text: "r", nullable_required: null, literal: 3, color: "red", union: "u",
    pet: { kind: "dog", good: true }, tree: { value: 1 }, items: [], pair: [1, "a"],
    when: "2026-11-25T00:00:00Z", ident: "12345678-1234-5678-1234-567812345678",
  });

  // @ts-expect-error: text must be a string
  await client.call.zooEcho({ text: 5 });
  // @ts-expect-error: required field missing
  await client.call.zooEcho({});
  // @ts-expect-error: no such action
  await client.call.zooNope();
  // @ts-expect-error: zoo.ping takes no input
  await client.call.zooPing({ x: 1 });
  // @ts-expect-error: unknown event
  client.on("nope", () => undefined);
  // @ts-expect-error: wrong literal
  await client.call.zooEverything({ literal: "c" } as never as { literal: "c" });
  // @ts-expect-error: tuples keep their shape
  const wrongPair: [string, string] = (await client.call.zooEverything(null as never)).pair;
  void wrongPair;
  // @ts-expect-error: the wire name is aliasedName, not aliased
  void (null as never as EverythingOutput).aliased;

  // Streams: typed chunks for `for await`, with a signal and an idle timeout.
  const controller = new AbortController();
  for await (const token of client.stream.zooCount({ upto: 3 }, { signal: controller.signal })) {
    const index: number = token.index;
    const chunk: Token = token;
    void [index, chunk];
  }
  for await (const letter of client.stream.zooLetters({ timeoutMs: 100, maxBuffered: 5 })) {
    const text: string = letter;
    void text;
  }
  const viaRequestStream: AsyncIterable<Token> = client.requestStream("zoo.count", { upto: 1 });
  void viaRequestStream;

  // @ts-expect-error: a chunk is a Token, not a string
  for await (const token of client.stream.zooCount({ upto: 1 })) void (token satisfies string);
  // @ts-expect-error: upto must be a number
  client.stream.zooCount({ upto: "3" });
  // @ts-expect-error: zoo.letters takes no input
  client.stream.zooLetters({ upto: 3 });
  // @ts-expect-error: a stream is not a call: client.call has no method for it
  await client.call.zooCount({ upto: 3 });
  // @ts-expect-error: nor does request() take it
  await client.request("zoo.count", { upto: 3 });
  // @ts-expect-error: a call is not a stream
  client.stream.zooEcho({ text: "hi" });
  // @ts-expect-error: nor does requestStream() take it
  client.requestStream("zoo.echo", { text: "hi" });
  // @ts-expect-error: a stream is iterated, not awaited for a value
  const notAPromise: Promise<unknown> = client.stream.zooLetters();
  void notAPromise;
  // @ts-expect-error: the signal must be an AbortSignal
  client.stream.zooLetters({ signal: true });

  try {
    await client.call.zooFail({ text: "x" });
  } catch (error) {
    if (error instanceof ActionCallError) {
      const code: string = error.code;
      const details: unknown = error.details;
      const guarded: boolean = error.code === "forbidden" || error.code === "unauthorized";
      const known: ErrorCode[] = ["forbidden", "unauthorized", "internal_error"];
      // @ts-expect-error: not a protocol error code
      const misspelt: ErrorCode = "forbiden";
      void [code, details, guarded, known, misspelt];
    }
  }
}

void typed;
void connect;
