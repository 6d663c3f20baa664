// mangum-ws client runtime (wire protocol v1). The generator appends it to every client.ts,
// after the app's types: no imports, no runtime dependencies, browsers and Node alike.

/** The WebSocket API this client needs: the browser's, or a constructor such as `ws`'s. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface ClientOptions {
  /** A WebSocket constructor; defaults to the global one (browsers, Node >= 22). */
  WebSocket?: WebSocketConstructor;
  /** Added to the URL's query string, e.g. `{ token }`: what $connect sees. */
  query?: Record<string, string>;
  /** Offered subprotocols, e.g. `["chat.v1", "bearer.<token>"]`. */
  protocols?: string[];
  /** Per-call timeout in ms (default 10 000); each call may override it. */
  timeoutMs?: number;
  /** Reconnect after an unexpected close (default true). */
  reconnect?: boolean;
  /** Backoff: a random delay up to min(maxDelayMs, baseDelayMs * 2^attempt). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many reconnect attempts in a row (default: never). */
  maxAttempts?: number;
  /** Calls held while (re)connecting; beyond this they fail with `queue_full` (default 100). */
  maxQueue?: number;
  /** Keep-alive frame interval in ms, under API Gateway's 10-minute idle limit (default 5 min). */
  keepAliveMs?: number;
  /**
   * Resume the session on every (re)connect with `$hello` (default true): the server moves the
   * topic subscriptions and state to the new connection and replays the missed topic events.
   */
  sessions?: boolean;
  /** The registry's schema hash (the generated client passes it); `$hello` compares it. */
  schemaHash?: string | null;
  /** Called when the server's schema differs from this client's (default: a console warning). */
  onSchemaMismatch?: (info: SessionInfo) => void;
  /** Called after every `$hello`: `lost` names the topics whose missed events are gone. */
  onSession?: (info: SessionInfo) => void;
  /** How long, in ms of an open connection whose `$hello` is answered, an event that arrived
   * ahead of a missing seq waits for it (default 5 000). */
  gapTimeoutMs?: number;
}

/** The answer to the last `$hello`. */
export interface SessionInfo {
  /** The session token: kept by the client and sent again after every reconnect. */
  token: string;
  /** True when the server took back an earlier session (its subscriptions and state). */
  resumed: boolean;
  /** How many missed topic events the server sent again. */
  replayed: number;
  /** Topics whose missed events are past what the server keeps: refetch their state. */
  lost: string[];
  /** false: this client was generated from another schema than the server's; null: unknown. */
  schemaOk: boolean | null;
}

type SessionOption = "sessions" | "schemaHash" | "onSchemaMismatch" | "onSession" | "gapTimeoutMs";

interface TopicEvent {
  event: string;
  data: unknown;
}

export interface CallOptions {
  timeoutMs?: number;
}

export interface StreamOptions {
  /** Aborting sends `$cancel`; the loop then throws `signal.reason`, as `fetch` does. */
  signal?: AbortSignal;
  /** The longest wait for the stream's next frame, in ms (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Chunks held for a slow reader; one more cancels the stream with `buffer_full` (default 10 000). */
  maxBuffered?: number;
}

/** A typed error: the server's error frame, or a client-side failure (`timeout`, ...). */
export class ActionCallError extends Error {
  /** A protocol ErrorCode (`unauthorized`, `forbidden`, ...), a client-side one, or the app's. */
  readonly code: ErrorCode | (string & {});
  readonly details: unknown;
  readonly action: string | null;
  constructor(code: ErrorCode | (string & {}), message: string, details: unknown = null, action: string | null = null) {
    super(message);
    this.name = "ActionCallError";
    this.code = code;
    this.details = details;
    this.action = action;
  }
}

interface Pending {
  resolve: (data: unknown) => void;
  reject: (error: ActionCallError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  timeoutMs: number;
  frame: string;
  action: string;
  /** Streams only: each chunk frame, in arrival order. */
  chunk?: (seq: unknown, data: unknown) => void;
}

const OPEN = 1;
const HELLO_RETRIES = 3;

/**
 * API Gateway closes a connection on any frame over 32 KB, and browsers send each message as
 * one frame: a bigger call is refused here, with `payload_too_large`, instead of going out.
 */
export const MAX_FRAME_BYTES = 32 * 1024;

function frameBytes(frame: string): number {
  return new TextEncoder().encode(frame).length;
}

export class MangumWSClient<
  A extends { [K in keyof A]: { input: unknown; output: unknown } },
  E,
  S extends { [K in keyof S]: { input: unknown; chunk: unknown } } = Record<never, never>,
> {
  private socket: WebSocketLike | null = null;
  private state: ConnectionState = "connecting";
  private readonly pending = new Map<string, Pending>();
  private queue: string[] = [];
  private readonly listeners = new Map<string, Set<(data: never) => void>>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private nextId = 1;
  private attempt = 0;
  private closedByUser = false;
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private readonly options: Required<Omit<ClientOptions, "WebSocket" | "maxAttempts" | SessionOption>> &
    Pick<ClientOptions, "maxAttempts">;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly sessions: boolean;
  private readonly schemaHash: string | null;
  private readonly onSchemaMismatch: (info: SessionInfo) => void;
  private readonly onSession: ((info: SessionInfo) => void) | undefined;
  private readonly gapTimeoutMs: number;
  private sessionInfo: SessionInfo | null = null;
  /** The id of the `$hello` waiting for its answer on this connection; calls queue meanwhile. */
  private greeting: string | null = null;
  /** The `$hello` whose answer is still wanted: after its timeout too, for the session token. */
  private helloId: string | null = null;
  private greetingTimer: ReturnType<typeof setTimeout> | undefined;
  /** `$hello`s the server failed (internal_error) on this connection: retried a few times. */
  private helloFailures = 0;
  /** Per topic: the last seq handed to the app, and events that came ahead of a missing one. */
  private readonly lastSeq = new Map<string, number>();
  private readonly held = new Map<string, Map<number, TopicEvent>>();
  private readonly gapTimers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly url: string, options: ClientOptions = {}) {
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) throw new Error("no WebSocket: pass one in options.WebSocket (e.g. from 'ws')");
    this.WebSocketImpl = ctor;
    this.options = {
      query: options.query ?? {},
      protocols: options.protocols ?? [],
      timeoutMs: options.timeoutMs ?? 10_000,
      reconnect: options.reconnect ?? true,
      baseDelayMs: options.baseDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 30_000,
      maxAttempts: options.maxAttempts,
      maxQueue: options.maxQueue ?? 100,
      keepAliveMs: options.keepAliveMs ?? 5 * 60_000,
    };
    this.sessions = options.sessions ?? true;
    this.schemaHash = options.schemaHash ?? null;
    this.onSchemaMismatch =
      options.onSchemaMismatch ??
      (() =>
        console.warn(
          "mangum-ws: this client was generated from another schema than the server's; regenerate it",
        ));
    this.onSession = options.onSession;
    this.gapTimeoutMs = options.gapTimeoutMs ?? 5_000;
    this.open();
  }

  /** The session of the last `$hello` (null before the first answer, or with sessions off). */
  get session(): SessionInfo | null {
    return this.sessionInfo;
  }

  /** The current state: connecting, open, reconnecting or closed. */
  get connectionState(): ConnectionState {
    return this.state;
  }

  /** Call an action; resolves with its output, rejects with an ActionCallError. */
  request<K extends keyof A & string>(
    action: K,
    input: A[K]["input"],
    options: CallOptions = {},
  ): Promise<A[K]["output"]> {
    return new Promise<A[K]["output"]>((resolve, reject) => {
      this.track(action, input, options.timeoutMs, { resolve: resolve as (data: unknown) => void, reject });
    });
  }

  /**
   * Call a stream: `for await (const chunk of client.requestStream(action, input, { signal }))`.
   * Each loop over the result is one call. Leaving the loop early, aborting the signal or the
   * timeout sends `$cancel`; an error frame, a timeout or a lost connection is thrown as an
   * ActionCallError once the chunks that arrived before it have been read.
   */
  requestStream<K extends keyof S & string>(
    action: K,
    input: S[K]["input"],
    options: StreamOptions = {},
  ): AsyncIterable<S[K]["chunk"]> {
    return { [Symbol.asyncIterator]: () => this.openStream<S[K]["chunk"]>(action, input, options) };
  }

  /** Subscribe to a server push; returns the function that unsubscribes. */
  on<K extends keyof E & string>(event: K, handler: (data: E[K]) => void): () => void {
    let handlers = this.listeners.get(event);
    if (!handlers) this.listeners.set(event, (handlers = new Set()));
    const stored = handler as (data: never) => void;
    handlers.add(stored);
    return () => {
      handlers.delete(stored);
    };
  }

  /** Be told of every state change; returns the function that stops it. */
  onStateChange(handler: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(handler);
    return () => {
      this.stateListeners.delete(handler);
    };
  }

  /** Close for good: no reconnect; waiting calls fail with `closed`. */
  close(): void {
    this.closedByUser = true;
    clearTimeout(this.retry);
    clearInterval(this.keepAlive);
    clearTimeout(this.greetingTimer);
    for (const timer of this.gapTimers.values()) clearTimeout(timer);
    this.gapTimers.clear();
    this.socket?.close(1000, "client closed");
    this.failAll("closed", "the client was closed");
    this.setState("closed");
  }

  /** Send (or queue) one request and track its answer; returns its id. */
  private track(
    action: string,
    input: unknown,
    timeoutMs: number | undefined,
    handlers: Pick<Pending, "resolve" | "reject" | "chunk">,
  ): string {
    const id = `c${this.nextId++}`;
    const message: { action: string; id: string; data?: unknown } = { action, id };
    if (input !== undefined) message.data = input;
    const entry: Pending = {
      ...handlers,
      frame: JSON.stringify(message),
      action,
      timeoutMs: timeoutMs ?? this.options.timeoutMs,
      timer: undefined,
    };
    const size = frameBytes(entry.frame);
    if (size > MAX_FRAME_BYTES) {
      entry.reject(
        new ActionCallError(
          "payload_too_large",
          `the message is ${size} bytes; API Gateway closes the connection on a frame over ${MAX_FRAME_BYTES} bytes (32 KB)`,
          { limit: MAX_FRAME_BYTES, size },
          action,
        ),
      );
    } else if (this.state === "closed") {
      entry.reject(new ActionCallError("closed", "the client is closed", null, action));
    } else if (this.socket !== null && this.socket.readyState === OPEN && this.greeting === null) {
      this.pending.set(id, entry);
      this.arm(id, entry);
      this.socket.send(entry.frame);
    } else if (this.queue.length < this.options.maxQueue) {
      this.pending.set(id, entry);
      this.arm(id, entry);
      this.queue.push(entry.frame);
    } else {
      entry.reject(new ActionCallError("queue_full", "too many calls waiting for the connection", null, action));
    }
    return id;
  }

  /** (Re)start the wait for a request's next frame. */
  private arm(id: string, entry: Pending): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      this.drop(id);
      entry.reject(
        new ActionCallError("timeout", `no answer to ${entry.action} within ${entry.timeoutMs} ms`, null, entry.action),
      );
    }, entry.timeoutMs);
  }

  /** Stop tracking a request: a queued one is never sent; a stream already sent is cancelled. */
  private drop(id: string): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    const queued = this.queue.indexOf(entry.frame);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
    } else if (entry.chunk && this.socket !== null && this.socket.readyState === OPEN) {
      // Frames the server still sends for this id are ignored: nothing tracks it any more.
      this.socket.send(JSON.stringify({ action: "$cancel", id }));
    }
  }

  private openStream<T>(action: string, input: unknown, options: StreamOptions): AsyncIterator<T> {
    const { signal } = options;
    const maxBuffered = options.maxBuffered ?? 10_000;
    const chunks: T[] = [];
    let head = 0;
    let expected = 0;
    // Once set, the stream is over: the chunks still buffered are read, then this is thrown.
    let end: { error: unknown } | "done" | null = null;
    let wake: (() => void) | null = null;
    let id = "";
    const finish = (outcome: { error: unknown } | "done"): void => {
      if (end !== null) return;
      end = outcome;
      signal?.removeEventListener("abort", onAbort);
      wake?.();
    };
    const fail = (code: string, message: string): void => {
      this.drop(id);
      finish({ error: new ActionCallError(code, message, null, action) });
    };
    const onAbort = (): void => {
      this.drop(id);
      chunks.length = head = 0;
      finish({ error: signal?.reason });
    };
    if (signal?.aborted) {
      finish({ error: signal.reason });
    } else {
      signal?.addEventListener("abort", onAbort);
      id = this.track(action, input, options.timeoutMs, {
        resolve: () => finish("done"),
        reject: (error) => finish({ error }),
        chunk: (seq, data) => {
          if (seq !== expected) {
            fail("protocol_error", `chunk ${String(seq)} of ${action} arrived where ${expected} was due`);
          } else if (chunks.length - head >= maxBuffered) {
            fail("buffer_full", `more than ${maxBuffered} chunks of ${action} were waiting to be read`);
          } else {
            expected += 1;
            chunks.push(data as T);
            wake?.();
          }
        },
      });
    }
    const done = (): IteratorResult<T> => ({ value: undefined, done: true });
    return {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          if (head < chunks.length) {
            const value = chunks[head++] as T;
            if (head === chunks.length) chunks.length = head = 0;
            return { value, done: false };
          }
          if (end === "done") return done();
          if (end !== null) {
            const { error } = end;
            end = "done";
            throw error;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        // The loop was left early: the server stops the stream, and the iteration ends quietly.
        this.drop(id);
        finish("done");
        end = "done";
        chunks.length = head = 0;
        return done();
      },
    };
  }

  private open(): void {
    const query = new URLSearchParams(this.options.query).toString();
    const url = query ? `${this.url}${this.url.includes("?") ? "&" : "?"}${query}` : this.url;
    const protocols = this.options.protocols.length ? this.options.protocols : undefined;
    const socket = new this.WebSocketImpl(url, protocols);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      clearInterval(this.keepAlive);
      this.keepAlive = setInterval(() => {
        if (socket.readyState === OPEN) socket.send('{"action":"$keepalive"}');
      }, this.options.keepAliveMs);
      if (this.sessions) {
        this.greet(socket);
      } else {
        this.ready(socket);
      }
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onerror = () => undefined; // a close always follows; that is where we act
    socket.onclose = () => {
      clearInterval(this.keepAlive);
      if (this.socket !== socket) return;
      this.socket = null;
      this.greeting = this.helloId = null;
      clearTimeout(this.greetingTimer);
      // Sent but unanswered calls cannot be known to have run: fail them, never resend them.
      for (const [id, entry] of this.pending) {
        if (!this.queue.includes(entry.frame)) {
          clearTimeout(entry.timer);
          this.pending.delete(id);
          entry.reject(new ActionCallError("connection_lost", "the connection closed before the answer", null, entry.action));
        }
      }
      if (this.closedByUser || !this.options.reconnect) {
        this.failAll("closed", "the connection is closed");
        this.setState("closed");
        return;
      }
      if (this.options.maxAttempts !== undefined && this.attempt >= this.options.maxAttempts) {
        this.failAll("closed", "gave up reconnecting");
        this.setState("closed");
        return;
      }
      const ceiling = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** this.attempt);
      this.attempt += 1;
      this.setState("reconnecting");
      this.retry = setTimeout(() => this.open(), Math.random() * ceiling);
    };
  }

  /** The connection is usable: send what waited for it. */
  private ready(socket: WebSocketLike): void {
    this.greeting = null;
    clearTimeout(this.greetingTimer);
    this.setState("open");
    const queued = this.queue;
    this.queue = [];
    for (const frame of queued) socket.send(frame);
  }

  /** `$hello` first on every connection: resume the session from the last seq of each topic. */
  private greet(socket: WebSocketLike, retry = false): void {
    if (!retry) this.helloFailures = 0;
    const id = `h${this.nextId++}`;
    this.greeting = this.helloId = id;
    const data = {
      session: this.sessionInfo?.token ?? null,
      since: Object.fromEntries(this.lastSeq),
      schema: this.schemaHash,
    };
    socket.send(JSON.stringify({ action: "$hello", id, data }));
    clearTimeout(this.greetingTimer);
    // A slow or silent server must not hold the calls forever: they go out, and a late answer
    // still brings the session.
    this.greetingTimer = setTimeout(() => {
      if (this.socket === socket && this.greeting === id) this.ready(socket);
    }, this.options.timeoutMs);
  }

  private greeted(socket: WebSocketLike, frame: { type?: string; data?: unknown; error?: unknown }): void {
    if (frame.type === "result") {
      const answer = (frame.data ?? {}) as {
        session?: string;
        resumed?: boolean;
        replayed?: number;
        lost?: string[];
        schema_ok?: boolean | null;
      };
      const info: SessionInfo = {
        token: answer.session ?? "",
        resumed: answer.resumed ?? false,
        replayed: answer.replayed ?? 0,
        lost: answer.lost ?? [],
        schemaOk: answer.schema_ok ?? null,
      };
      const warned = this.sessionInfo?.schemaOk === false;
      this.sessionInfo = info;
      if (!info.resumed) {
        // A new session: the server numbers nothing for us yet, whatever we saw before.
        for (const topic of [...this.lastSeq.keys()]) this.forgetTopic(topic);
      }
      for (const topic of info.lost) this.forgetTopic(topic);
      if (info.schemaOk === false && !warned) this.onSchemaMismatch(info);
      this.onSession?.(info);
    } else {
      const error = (frame.error ?? {}) as { code?: string };
      if (error.code === "unauthorized" && this.sessionInfo !== null) {
        // The token belongs to another principal (a new login): start a new session.
        this.sessionInfo = null;
        this.greet(socket);
        return;
      }
      if (error.code === "internal_error" && this.helloFailures < HELLO_RETRIES) {
        // The store failed half-way (throttled, say): moving a session again is harmless.
        const ceiling = this.options.baseDelayMs * 2 ** this.helloFailures++;
        this.greeting = `retry${this.nextId}`;
        this.greetingTimer = setTimeout(() => {
          if (this.socket === socket) this.greet(socket, true);
        }, Math.random() * ceiling);
        return;
      }
      // An older server (unknown_action) or a refused hello: go on without a session.
    }
    if (this.greeting !== null) this.ready(socket);
  }

  /** Hand a topic event to the app once, in seq order: duplicates (replays) are dropped, an
   * event ahead of a missing seq waits for it up to gapTimeoutMs. */
  private topicEvent(topic: string, seq: number, event: TopicEvent): void {
    const last = this.lastSeq.get(topic);
    if (last !== undefined && seq <= last) return;
    if (last !== undefined && seq > last + 1) {
      let waiting = this.held.get(topic);
      if (!waiting) this.held.set(topic, (waiting = new Map()));
      waiting.set(seq, event);
      if (!this.gapTimers.has(topic)) this.waitForGap(topic);
      return;
    }
    this.lastSeq.set(topic, seq);
    this.emit(event);
    const waiting = this.held.get(topic);
    for (let next = seq + 1; waiting?.has(next); next++) {
      const held = waiting.get(next) as TopicEvent;
      waiting.delete(next);
      this.lastSeq.set(topic, next);
      this.emit(held);
    }
    if (waiting && waiting.size === 0) {
      this.held.delete(topic);
      clearTimeout(this.gapTimers.get(topic));
      this.gapTimers.delete(topic);
    }
  }

  /** Wait gapTimeoutMs for a topic's missing events, counted only while the connection is open
   * and its `$hello` answered: offline, or while a resume is unanswered, the missing events come
   * with its replay (or the topic is reported lost), so the wait starts again. */
  private waitForGap(topic: string): void {
    this.gapTimers.set(
      topic,
      setTimeout(() => {
        if (this.state === "closed") {
          this.gapTimers.delete(topic); // nothing comes any more; no timer keeps Node running
        } else if (this.state !== "open") {
          this.waitForGap(topic);
        } else {
          this.skipGap(topic);
        }
      }, this.gapTimeoutMs),
    );
  }

  /** The missing events never came: hand over what waited, in order. */
  private skipGap(topic: string): void {
    this.gapTimers.delete(topic);
    const waiting = this.held.get(topic);
    this.held.delete(topic);
    for (const seq of [...(waiting?.keys() ?? [])].sort((a, b) => a - b)) {
      this.lastSeq.set(topic, seq);
      this.emit(waiting?.get(seq) as TopicEvent);
    }
  }

  private forgetTopic(topic: string): void {
    clearTimeout(this.gapTimers.get(topic));
    this.skipGap(topic);
    this.lastSeq.delete(topic);
  }

  private emit(event: TopicEvent): void {
    for (const handler of this.listeners.get(event.event) ?? []) {
      (handler as (data: unknown) => void)(event.data);
    }
  }

  private receive(raw: unknown): void {
    let frame: {
      type?: string;
      id?: string | null;
      event?: string;
      topic?: unknown;
      seq?: unknown;
      data?: unknown;
      error?: unknown;
    };
    try {
      frame = JSON.parse(String(raw));
    } catch {
      return;
    }
    if (frame.type === "event" && typeof frame.event === "string") {
      const event = { event: frame.event, data: frame.data };
      if (typeof frame.topic === "string" && typeof frame.seq === "number") {
        this.topicEvent(frame.topic, frame.seq, event);
      } else {
        this.emit(event);
      }
      return;
    }
    if (typeof frame.id !== "string") return;
    if (frame.id === this.helloId && this.socket !== null) {
      this.helloId = null;
      this.greeted(this.socket, frame);
      return;
    }
    const entry = this.pending.get(frame.id);
    if (!entry) return;
    if (frame.type === "chunk") {
      if (entry.chunk) {
        this.arm(frame.id, entry);
        entry.chunk(frame.seq, frame.data);
      }
      return;
    }
    this.pending.delete(frame.id);
    clearTimeout(entry.timer);
    if (frame.type === "result") {
      entry.resolve(frame.data ?? null);
    } else {
      const error = (frame.error ?? {}) as { code?: string; message?: string; details?: unknown };
      entry.reject(new ActionCallError(error.code ?? "unknown", error.message ?? "", error.details ?? null, entry.action));
    }
  }

  private failAll(code: string, message: string): void {
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      this.pending.delete(id);
      entry.reject(new ActionCallError(code, message, null, entry.action));
    }
    this.queue = [];
  }

  private setState(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    for (const handler of this.stateListeners) handler(state);
  }
}
