import { useCallback, useEffect, useRef, useState } from 'react';

import { StreamOrder, stampOf } from './streams.js';
import type { Handler, Untyped, UseWebSocket } from './types.js';

/** A token for `$connect`, or a function returning one (called before every connection). */
export type TokenSource = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);

export interface UseWebSocketOptions {
  /** Sent on every connection, where `tokenIn` says (browsers cannot set headers on a
   * WebSocket). A function is called again before each reconnect, so it can refresh. */
  token?: TokenSource;
  /** Where the token travels: `'query'` (default; `?token=...`, which access logs and browser
   * history keep) or `'protocol'`: `new WebSocket(url, ['wsctl', token])`, read by the handler
   * from `Sec-WebSocket-Protocol` (wsctl's `[auth] token_source = "protocol"` or `"either"`). */
  tokenIn?: 'query' | 'protocol';
  /** The query parameter carrying the token. Default `token`. */
  tokenParam?: string;
  /** Reconnect after an unexpected close. Default true. */
  reconnect?: boolean;
  /** Full-jitter exponential backoff: the n-th retry waits a random time in
   * [0, min(maxDelayMs, baseDelayMs * 2^n)). Defaults 1000 and 30000. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Send `{"action":"ping"}` this often while connected, so that API Gateway's 10-minute
   * idle timeout never closes the connection. Default 5 minutes; 0 turns it off. */
  keepaliveMs?: number;
  /** Replace the connection after this long, before API Gateway's 2-hour limit cuts it: the
   * new socket opens (and resubscribes) before the old one closes. Default 1 h 55 min; 0 off. */
  maxConnectionMs?: number;
  /** Messages `send` keeps while disconnected, sent on the next connection; the oldest is
   * dropped when full. Default 0: `send` refuses while disconnected. */
  queueSize?: number;
  /** On every reconnect, ask the stack for what was missed on each stream heard so far
   * (`{"action":"resume"}`; a stack with `[history]`). Default true. */
  resume?: boolean;
  /** How long a message ahead of its stream's next position waits for those before it.
   * Default 2000 ms. */
  reorderWindowMs?: number;
  /** Log connection events to the console. Default false: no console output at all. */
  debug?: boolean;
  /** The WebSocket implementation (tests, non-browser runtimes). Default the global one. */
  WebSocketImpl?: typeof WebSocket;
}

/** The subprotocol offered ahead of the token with `tokenIn: 'protocol'`. */
export const SUBPROTOCOL = 'wsctl';

const DEFAULTS = {
  tokenParam: 'token',
  tokenIn: 'query' as 'query' | 'protocol',
  reconnect: true,
  baseDelayMs: 1000,
  maxDelayMs: 30000,
  keepaliveMs: 5 * 60 * 1000,
  maxConnectionMs: (2 * 60 - 5) * 60 * 1000,
  queueSize: 0,
  debug: false,
  resume: true,
  reorderWindowMs: 2000,
};

const OPEN = 1;
const CONNECTING = 0;

/** `url` with `param=token` added to its query string. */
export function withToken(url: string, param: string, token: string): string {
  const hash = url.indexOf('#');
  const base = hash >= 0 ? url.slice(0, hash) : url;
  const sep = base.includes('?') ? '&' : '?';
  return `${base}${sep}${encodeURIComponent(param)}=${encodeURIComponent(token)}`;
}

/** The n-th (from 0) reconnect delay: full jitter over an exponential ceiling. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * Math.pow(2, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * The runbook's `useWebSocket(url)`, same return shape, fixed: callbacks are stable (so
 * `useEffect(..., [connect, on, off])` opens one socket), `disconnect()` stops reconnecting,
 * idle connections are kept alive and replaced before the 2-hour limit, reconnects use
 * full-jitter backoff and resubscribe topics, and nothing is logged unless `debug` is set.
 */
export function useWebSocket<E extends object = Untyped, A extends object = Untyped>(
  url: string,
  options: UseWebSocketOptions = {},
): UseWebSocket<E, A> {
  const [isConnected, setIsConnected] = useState(false);
  const opts = useRef(options);
  opts.current = options;
  const urlRef = useRef(url);
  urlRef.current = url;

  // Everything the connection needs lives in one mutable object: the callbacks below never
  // change identity, whatever the render.
  const state = useRef({
    ws: null as WebSocket | null,
    wanted: false,
    mounted: true,
    openPending: false,
    attempt: 0,
    generation: 0,
    handlers: new Map<string, Handler[]>(),
    topics: new Set<string>(),
    /** `request` calls waiting for their answer, by requestId. */
    requests: new Map<string, { resolve: (v: any) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>(),
    /** Positions per stream, for exactly-once, in-order delivery and resume. */
    order: null as StreamOrder | null,
    /** Whether a connection was open before: the next one resumes. */
    wasOpen: false,
    queue: [] as string[],
    retryTimer: null as ReturnType<typeof setTimeout> | null,
    keepaliveTimer: null as ReturnType<typeof setInterval> | null,
    renewTimer: null as ReturnType<typeof setTimeout> | null,
  });

  const setting = <K extends keyof typeof DEFAULTS>(key: K): (typeof DEFAULTS)[K] =>
    (opts.current[key] ?? DEFAULTS[key]) as (typeof DEFAULTS)[K];

  const log = useCallback((...args: unknown[]) => {
    if (opts.current.debug) console.log('[useWebSocket]', ...args);
  }, []);

  const emit = useCallback((eventName: string, data?: unknown) => {
    for (const handler of [...(state.current.handlers.get(eventName) ?? [])]) {
      try {
        handler(data);
      } catch (e) {
        if (opts.current.debug) console.error('[useWebSocket] handler for', eventName, 'threw', e);
      }
    }
  }, []);

  /** Rejects every `request` still waiting. */
  const failRequests = useCallback((why: string) => {
    const s = state.current;
    for (const [, r] of s.requests) {
      clearTimeout(r.timer);
      r.reject(new Error(why));
    }
    s.requests.clear();
  }, []);

  const clearTimers = useCallback(() => {
    const s = state.current;
    if (s.retryTimer) clearTimeout(s.retryTimer);
    if (s.keepaliveTimer) clearInterval(s.keepaliveTimer);
    if (s.renewTimer) clearTimeout(s.renewTimer);
    s.retryTimer = s.keepaliveTimer = s.renewTimer = null;
  }, []);

  // Declared before use through a ref so that open/scheduleRetry can call each other.
  const openRef = useRef<(replacing?: WebSocket) => void>(() => {});

  const scheduleRetry = useCallback(() => {
    const s = state.current;
    if (!s.wanted || !s.mounted || !setting('reconnect') || s.retryTimer) return;
    const delay = backoffDelay(s.attempt, setting('baseDelayMs'), setting('maxDelayMs'));
    s.attempt += 1;
    log(`reconnecting in ${delay} ms (attempt ${s.attempt})`);
    s.retryTimer = setTimeout(() => {
      s.retryTimer = null;
      openRef.current();
    }, delay);
  }, [log]);

  openRef.current = (replacing?: WebSocket) => {
    const s = state.current;
    if (!s.wanted || !s.mounted) return;
    const generation = ++s.generation;
    const Impl = opts.current.WebSocketImpl ?? WebSocket;
    const start = async () => {
      let target = urlRef.current;
      let protocols: string[] | undefined;
      const source = opts.current.token;
      if (source !== undefined && source !== null) {
        const token = typeof source === 'function' ? await source() : source;
        if (token && setting('tokenIn') === 'protocol') protocols = [SUBPROTOCOL, token];
        else if (token) target = withToken(target, setting('tokenParam'), token);
      }
      // disconnect() or a newer attempt while the token was being fetched.
      if (!s.wanted || !s.mounted || generation !== s.generation) return;
      const ws = protocols ? new Impl(target, protocols) : new Impl(target);
      if (!replacing) s.ws = ws;
      ws.onopen = () => {
        if (generation !== s.generation || !s.wanted || !s.mounted) {
          // disconnect(), a newer attempt or a URL change came first.
          ws.onclose = null;
          ws.close(1000, 'superseded');
          return;
        }
        if (replacing) {
          // The planned replacement is up: retire the old socket without a reconnect.
          s.ws = ws;
          replacing.onclose = null;
          replacing.onmessage = null;
          replacing.close(1000, 'replaced');
        }
        log('connected');
        s.attempt = 0;
        for (const topic of s.topics) ws.send(JSON.stringify({ action: 'subscribe', topic }));
        // Back after a drop (or a planned replacement): ask for what was missed.
        const positions = s.order?.positions() ?? {};
        if (s.wasOpen && setting('resume') && Object.keys(positions).length > 0) {
          ws.send(JSON.stringify({ action: 'resume', streams: positions }));
        }
        s.wasOpen = true;
        const queued = s.queue.splice(0);
        for (const message of queued) ws.send(message);
        clearTimers();
        const keepalive = setting('keepaliveMs');
        if (keepalive > 0) {
          s.keepaliveTimer = setInterval(() => {
            if (s.ws === ws && ws.readyState === OPEN) ws.send(JSON.stringify({ action: 'ping' }));
          }, keepalive);
        }
        const renew = setting('maxConnectionMs');
        if (renew > 0) {
          s.renewTimer = setTimeout(() => {
            s.renewTimer = null;
            log('replacing the connection before the 2-hour limit');
            openRef.current(ws);
          }, renew);
        }
        setIsConnected(true);
        if (!replacing) emit('connect');
      };
      ws.onmessage = (event: MessageEvent) => {
        if (s.ws !== ws) return;
        let message: any;
        try {
          message = JSON.parse(typeof event.data === 'string' ? event.data : String(event.data));
        } catch {
          log('ignored a message that is not JSON');
          return;
        }
        if (!message || typeof message !== 'object') return;
        const replyTo = typeof message.requestId === 'string' ? message.requestId : message.data?.requestId;
        const waiting = typeof replyTo === 'string' ? s.requests.get(replyTo) : undefined;
        if (waiting) {
          s.requests.delete(replyTo);
          clearTimeout(waiting.timer);
          waiting.resolve(message);
        }
        // API Gateway's own error frames ({"message": "Internal server error", "connectionId",
        // "requestId"}: a route's target failed or timed out) have no type.
        if (typeof message.type !== 'string') {
          if (typeof message.message === 'string' && typeof message.connectionId === 'string') emit('gateway_error', message);
          return;
        }
        const data = message.data;
        const stamp = stampOf(message);
        if (stamp) {
          s.order ??= new StreamOrder((m) => emit(m.type, m.data), setting('reorderWindowMs'));
          s.order.accept(message, stamp);
          return;
        }
        if (message.type === 'gap' && typeof data?.stream === 'string' && typeof data?.head === 'number') {
          s.order?.gap(data.stream, data.head);
        }
        emit(message.type, data);
        if (message.type === 'error' && data?.code === 'forbidden') {
          // A refused topic is refused for good: not asked for again on reconnect.
          if (data.action === 'subscribe' && typeof data.topic === 'string') s.topics.delete(data.topic);
          emit('forbidden', data);
        }
      };
      ws.onerror = () => log('socket error');
      ws.onclose = (event: CloseEvent) => {
        if (s.ws !== ws) return;
        s.ws = null;
        if (s.keepaliveTimer) clearInterval(s.keepaliveTimer);
        if (s.renewTimer) clearTimeout(s.renewTimer);
        s.keepaliveTimer = s.renewTimer = null;
        log(`closed (${event.code})`);
        failRequests('the connection closed before the answer');
        setIsConnected(false);
        emit('disconnect', { code: event.code, reason: event.reason });
        scheduleRetry();
      };
    };
    start().catch((e) => {
      log('could not connect:', e);
      if (generation === s.generation) scheduleRetry();
    });
  };

  const connect = useCallback(() => {
    const s = state.current;
    s.wanted = true;
    if (s.ws && (s.ws.readyState === OPEN || s.ws.readyState === CONNECTING)) return;
    if (s.retryTimer || s.openPending) return; // an open is already on its way
    // Opened a microtask later: React's StrictMode mounts, unmounts and mounts again in one
    // go, and a socket opened (then closed) by the first mount would be a wasted handshake.
    s.openPending = true;
    queueMicrotask(() => {
      s.openPending = false;
      if (s.wanted && s.mounted && !s.ws) openRef.current();
    });
  }, []);

  const disconnect = useCallback(() => {
    const s = state.current;
    s.wanted = false;
    s.generation += 1;
    clearTimers();
    const ws = s.ws;
    s.ws = null;
    failRequests('disconnected');
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(1000, 'disconnect');
      emit('disconnect', { code: 1000, reason: 'disconnect' });
    }
    if (s.mounted) setIsConnected(false);
  }, [clearTimers, emit, failRequests]);

  const on = useCallback((eventName: string, handler: Handler) => {
    const handlers = state.current.handlers;
    handlers.set(eventName, [...(handlers.get(eventName) ?? []), handler]);
  }, []);

  const off = useCallback((eventName: string, handler?: Handler) => {
    const handlers = state.current.handlers;
    if (!handler) {
      handlers.delete(eventName);
      return;
    }
    const rest = (handlers.get(eventName) ?? []).filter((h) => h !== handler);
    if (rest.length > 0) handlers.set(eventName, rest);
    else handlers.delete(eventName);
  }, []);

  const sendRaw = useCallback((message: string): boolean => {
    const s = state.current;
    if (s.ws && s.ws.readyState === OPEN) {
      s.ws.send(message);
      return true;
    }
    const size = setting('queueSize');
    if (size <= 0) {
      log('not connected: message not sent');
      return false;
    }
    s.queue.push(message);
    while (s.queue.length > size) s.queue.shift();
    return true;
  }, [log]);

  const send = useCallback(
    (action: string, data: Record<string, unknown> = {}) => sendRaw(JSON.stringify({ action, ...data })),
    [sendRaw],
  );

  const request = useCallback(
    <T = any,>(action: string, data: Record<string, unknown> = {}, options: { timeoutMs?: number } = {}): Promise<T> => {
      const s = state.current;
      const requestId =
        typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function'
          ? crypto.randomUUID()
          : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
      return new Promise<T>((resolve, reject) => {
        if (!s.ws || s.ws.readyState !== OPEN) {
          reject(new Error('not connected'));
          return;
        }
        const timeoutMs = options.timeoutMs ?? 29000;
        const timer = setTimeout(() => {
          s.requests.delete(requestId);
          reject(new Error(`no answer to ${action} within ${timeoutMs} ms`));
        }, timeoutMs);
        s.requests.set(requestId, { resolve, reject, timer });
        s.ws.send(JSON.stringify({ action, ...data, requestId }));
      });
    },
    [],
  );

  const subscribe = useCallback((topic: string) => {
    const s = state.current;
    if (s.topics.has(topic)) return;
    s.topics.add(topic);
    // Sent now if connected; otherwise every open subscribes to all topics.
    if (s.ws && s.ws.readyState === OPEN) s.ws.send(JSON.stringify({ action: 'subscribe', topic }));
  }, []);

  const unsubscribe = useCallback((topic: string) => {
    const s = state.current;
    if (!s.topics.delete(topic)) return;
    if (s.ws && s.ws.readyState === OPEN) s.ws.send(JSON.stringify({ action: 'unsubscribe', topic }));
  }, []);

  // A changed URL moves an open connection to it.
  const firstUrl = useRef(true);
  useEffect(() => {
    if (firstUrl.current) {
      firstUrl.current = false;
      return;
    }
    const s = state.current;
    if (s.wanted && s.ws) {
      const old = s.ws;
      s.ws = null;
      old.onclose = null;
      old.onmessage = null;
      old.close(1000, 'url changed');
      clearTimers();
      openRef.current();
    }
  }, [url, clearTimers]);

  // Unmount: close, stop every timer, never reconnect.
  useEffect(() => {
    const s = state.current;
    s.mounted = true;
    return () => {
      disconnect();
      s.order?.stop();
      s.mounted = false;
    };
  }, [disconnect]);

  // The catalogue's types are checked where the app calls; underneath, names are strings.
  return { isConnected, connect, disconnect, on, off, send, request, subscribe, unsubscribe } as unknown as UseWebSocket<E, A>;
}
