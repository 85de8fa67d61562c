/**
 * The client's message types: the events and actions wsctl itself defines, and the typed
 * form of the hook (`useWebSocket<Events, Actions>(url)`) where `Events` and `Actions` come
 * from `wsctl types` (the stack's catalogue). Without type arguments every name and payload
 * is accepted, as in the runbook's client.
 */

/** The data of the `forbidden` event: the gateway refused a subscribe (or a client broadcast)
 * because the stack's `[topics]` rules do not allow the topic for this user. */
export interface Forbidden {
  code: 'forbidden';
  /** `subscribe`, `broadcast` or `resume`. */
  action: string;
  topic: string;
  message: string;
}

/** API Gateway's own error frame: a route's target failed or timed out. */
export interface GatewayError {
  message: string;
  connectionId: string;
  requestId: string;
}

/** Events the gateway and the hook send whatever the catalogue says, to their data. */
export interface BuiltInEvents {
  /** The socket opened (data undefined). */
  connect: undefined;
  disconnect: { code: number; reason: string };
  forbidden: Forbidden;
  gateway_error: GatewayError;
  pong: { timestamp: string };
  subscribed: { topic: string };
  unsubscribed: { topic: string };
  error: { code: string; message: string; [key: string]: unknown };
  echo: unknown;
  broadcast_report: { delivered: number; gone: number; failed: number; [key: string]: unknown };
  resumed: { streams: Record<string, { replayed?: number; head?: number; gap?: boolean; forbidden?: boolean }>; incomplete?: boolean };
  gap: { stream: string; after: number; head: number };
}

/** Actions the gateway answers whatever the catalogue says, to their fields. */
export interface BuiltInActions {
  ping: Record<string, never>;
  subscribe: { topic: string };
  unsubscribe: { topic: string };
  broadcast: { topic?: string; type?: string; data?: unknown; [key: string]: unknown };
  resume: { streams?: Record<string, number> };
}

/** Any name, any payload: the hook without type arguments. */
export type Untyped = { [name: string]: any };

type Known<M, B> = (keyof M | keyof B) & string;

/** The data an `on` handler gets for `K`: the catalogue's type first, then wsctl's own. */
export type EventData<E, K> = K extends keyof E ? E[K] : K extends keyof BuiltInEvents ? BuiltInEvents[K] : never;

/** The fields an action carries besides `action`. */
export type ActionData<A, K> = K extends keyof A ? A[K] : K extends keyof BuiltInActions ? BuiltInActions[K] : never;

/** `data` is optional when every field of the action is. */
type DataArg<T> = {} extends T ? [data?: T] : [data: T];

/** What `request` takes: the action, its data (optional when every field is), options. A
 * union of argument lists, one per action, so that `request<Answer>(...)` still checks them. */
export type RequestArgs<A> = {
  [K in Known<A, BuiltInActions>]: {} extends ActionData<A, K>
    ? [action: K, data?: ActionData<A, K>, options?: RequestOptions]
    : [action: K, data: ActionData<A, K>, options?: RequestOptions];
}[Known<A, BuiltInActions>];

export interface RequestOptions {
  /** Default 29 s, API Gateway's longest integration timeout. */
  timeoutMs?: number;
}

export type Handler<T = any> = (data: T) => void;

export interface UseWebSocket<E extends object = Untyped, A extends object = Untyped> {
  isConnected: boolean;
  /** Opens the connection (a no-op while one is open or opening). Stable across renders. */
  connect: () => void;
  /** Closes the connection and stops reconnecting until `connect` is called. */
  disconnect: () => void;
  /** Calls `handler(data)` for each message `{"type": eventName, "data": ...}`; also the
   * lifecycle events `connect` and `disconnect`, and `forbidden` (a {@link Forbidden}) when
   * the stack's topic rules refuse a subscribe or a broadcast. */
  on: <K extends Known<E, BuiltInEvents>>(eventName: K, handler: Handler<EventData<E, K>>) => void;
  /** Removes one handler, or every handler of `eventName`. */
  off: <K extends Known<E, BuiltInEvents>>(eventName: K, handler?: Handler<EventData<E, K>>) => void;
  /** Sends `{"action": action, ...data}`. Returns false when it could be neither sent nor
   * queued. */
  send: <K extends Known<A, BuiltInActions>>(action: K, ...data: DataArg<ActionData<A, K>>) => boolean;
  /** Sends `{"action": action, ...data, "requestId": ID}` to a two-way route and resolves
   * with its answer: the first message whose `requestId` (at its top level, or in its
   * `data`) is `ID` (your backend copies it from the message it got). Rejects when the
   * message cannot be sent now, when the connection closes first, or after `timeoutMs`
   * (default 29 s, API Gateway's longest integration timeout). The answer is also dispatched
   * to `on` handlers as any message is. */
  request: <T = any>(...args: RequestArgs<A>) => Promise<T>;
  /** Subscribes to a topic, now and again after every reconnect. The gateway answers
   * `subscribed` (`{topic}`), or `forbidden` when the topic rules refuse it; a refused topic
   * is not asked for again. */
  subscribe: (topic: string) => void;
  /** Unsubscribes, and stops resubscribing. */
  unsubscribe: (topic: string) => void;
}
