import { act, render, renderHook } from '@testing-library/react';
import { StrictMode, useEffect, useState } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { backoffDelay, useWebSocket, withToken } from '../src/index.js';
import type { UseWebSocketOptions } from '../src/index.js';

/** A WebSocket that records what is done to it; the test drives its events. */
class FakeSocket {
  static instances: FakeSocket[] = [];
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  readyState = 0;
  sent: string[] = [];
  closedWith: number | null = null;
  onopen: ((e: Event) => void) | null = null;
  onclose: ((e: CloseEvent) => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  constructor(
    public url: string,
    public protocols?: string | string[],
  ) {
    FakeSocket.instances.push(this);
  }
  send(data: string) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }
  close(code = 1000) {
    this.closedWith = code;
    this.readyState = 3;
  }
  // Driven by the test:
  open() {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }
  serverClose(code = 1001) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' } as CloseEvent);
  }
  receive(message: unknown) {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
  }
  actions() {
    return this.sent.map((s) => JSON.parse(s).action);
  }
}

const live = () => FakeSocket.instances.filter((s) => s.readyState < 2);
const last = () => FakeSocket.instances[FakeSocket.instances.length - 1];
const Impl = FakeSocket as unknown as typeof WebSocket;
const URL = 'ws://localhost:3002/ws';

function options(extra: UseWebSocketOptions = {}): UseWebSocketOptions {
  return { WebSocketImpl: Impl, ...extra };
}

/** Flushes promises (the token lookup is async) inside act. */
async function settle() {
  await act(async () => {
    await Promise.resolve();
    await Promise.resolve();
  });
}

beforeEach(() => {
  FakeSocket.instances = [];
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('the runbook usage pattern', () => {
  type Hook = (url: string) => { isConnected: boolean; connect: () => void; on: any; off: any };
  function RunbookApp({ onRender, hook }: { onRender: () => void; hook?: Hook }) {
    const use = hook ?? ((u: string) => useWebSocket(u, options()));
    const { isConnected, connect, on, off } = use(URL);
    const [, setTick] = useState(0);
    onRender();
    useEffect(() => {
      connect();
      on('claim_submitted', () => {});
      return () => {
        off('claim_submitted');
      };
    }, [connect, on, off]);
    // Re-render on a timer, as a real app does with its own state.
    useEffect(() => {
      const t = setInterval(() => setTick((n) => n + 1), 10);
      return () => clearInterval(t);
    }, []);
    return <p>{isConnected ? 'connected' : 'disconnected'}</p>;
  }

  it('opens exactly one socket over many renders, in StrictMode too', async () => {
    let renders = 0;
    const view = render(
      <StrictMode>
        <RunbookApp onRender={() => renders++} />
      </StrictMode>,
    );
    await settle();
    act(() => last().open());
    for (let i = 0; i < 60; i++) {
      await act(async () => {
        vi.advanceTimersByTime(10);
      });
    }
    expect(renders).toBeGreaterThan(50);
    // Not even a socket opened and closed by StrictMode's extra mount.
    expect(FakeSocket.instances).toHaveLength(1);
    expect(live()).toHaveLength(1);
    view.unmount();
    expect(live()).toHaveLength(0);
  });

  it('(control) the runbook hook itself opens a socket per render under the same usage', async () => {
    // @ts-expect-error: the runbook's plain-JS hook, kept verbatim for comparison.
    const { useWebSocket: runbookHook } = await import('../../../tests/runbook-react/useWebSocket.js');
    vi.stubGlobal('WebSocket', FakeSocket);
    vi.spyOn(console, 'log').mockImplementation(() => {});
    const view = render(<RunbookApp onRender={() => {}} hook={runbookHook} />);
    for (let i = 0; i < 20; i++) {
      await act(async () => {
        vi.advanceTimersByTime(10);
      });
    }
    expect(live().length).toBeGreaterThan(10);
    view.unmount();
    vi.unstubAllGlobals();
  });

  it('keeps the same callbacks on every render', () => {
    const { result, rerender } = renderHook(({ u }) => useWebSocket(u, options()), {
      initialProps: { u: URL },
    });
    const first = result.current;
    for (let i = 0; i < 5; i++) rerender({ u: URL });
    for (const key of ['connect', 'disconnect', 'on', 'off', 'send', 'subscribe', 'unsubscribe'] as const) {
      expect(result.current[key]).toBe(first[key]);
    }
  });
});

describe('connection lifecycle', () => {
  it('disconnect() stops reconnection until connect() is called again', async () => {
    const { result } = renderHook(() => useWebSocket(URL, options({ baseDelayMs: 100 })));
    act(() => result.current.connect());
    await settle();
    act(() => last().open());
    expect(result.current.isConnected).toBe(true);
    act(() => result.current.disconnect());
    expect(last().closedWith).toBe(1000);
    expect(result.current.isConnected).toBe(false);
    await act(async () => {
      vi.advanceTimersByTime(120_000);
    });
    expect(FakeSocket.instances).toHaveLength(1);
    act(() => result.current.connect());
    await settle();
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it('unmount closes the socket and cancels a pending reconnect', async () => {
    const { result, unmount } = renderHook(() => useWebSocket(URL, options()));
    act(() => result.current.connect());
    await settle();
    act(() => last().open());
    act(() => last().serverClose(1006));
    unmount();
    await act(async () => {
      vi.advanceTimersByTime(120_000);
    });
    expect(FakeSocket.instances).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reconnects with full-jitter exponential backoff capped at 30 s', async () => {
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const { result } = renderHook(() => useWebSocket(URL, options()));
    act(() => result.current.connect());
    await settle();
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      const before = FakeSocket.instances.length;
      act(() => last().serverClose(1006));
      let waited = 0;
      while (FakeSocket.instances.length === before) {
        await act(async () => {
          vi.advanceTimersByTime(100);
        });
        waited += 100;
      }
      waits.push(waited);
    }
    // Ceilings 1, 2, 4, 8, 16, 30, 30 s (random just under 1 puts each wait at its ceiling).
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    // And the jitter really spreads clients: with random() = 0.25, a quarter of the ceiling.
    random.mockReturnValue(0.25);
    expect(backoffDelay(3, 1000, 30000)).toBe(2000);
    expect(backoffDelay(10, 1000, 30000)).toBe(7500);
  });

  it('a successful open resets the backoff', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const { result } = renderHook(() => useWebSocket(URL, options()));
    act(() => result.current.connect());
    await settle();
    act(() => last().serverClose(1006));
    await act(async () => {
      vi.advanceTimersByTime(1000);
    });
    act(() => last().serverClose(1006));
    await act(async () => {
      vi.advanceTimersByTime(2000);
    });
    act(() => last().open());
    act(() => last().serverClose(1001));
    const before = FakeSocket.instances.length;
    await act(async () => {
      vi.advanceTimersByTime(1000);
    });
    expect(FakeSocket.instances.length).toBe(before + 1);
  });
});

describe('keeping the connection', () => {
  it('pings every 5 minutes by default', async () => {
    const { result } = renderHook(() => useWebSocket(URL, options()));
    act(() => result.current.connect());
    await settle();
    act(() => last().open());
    await act(async () => {
      vi.advanceTimersByTime(4 * 60 * 1000 + 59_000);
    });
    expect(last().actions()).toEqual([]);
    await act(async () => {
      vi.advanceTimersByTime(1000);
    });
    expect(last().actions()).toEqual(['ping']);
    await act(async () => {
      vi.advanceTimersByTime(10 * 60 * 1000);
    });
    expect(last().actions()).toEqual(['ping', 'ping', 'ping']);
  });

  it('replaces the connection before the 2-hour limit, new before old, topics included', async () => {
    const { result } = renderHook(() => useWebSocket(URL, options({ keepaliveMs: 0 })));
    act(() => result.current.connect());
    await settle();
    const first = last();
    act(() => first.open());
    act(() => result.current.subscribe('claims'));
    await act(async () => {
      vi.advanceTimersByTime(115 * 60 * 1000);
    });
    await settle();
    const second = last();
    expect(second).not.toBe(first);
    expect(first.closedWith).toBeNull(); // still serving until the new one is up
    act(() => second.open());
    expect(first.closedWith).toBe(1000);
    expect(second.sent.map((s) => JSON.parse(s))).toEqual([{ action: 'subscribe', topic: 'claims' }]);
    expect(result.current.isConnected).toBe(true);
    expect(live()).toEqual([second]);
  });
});

describe('messages', () => {
  it('dispatches {type, data} to handlers and removes them with off', async () => {
    const { result } = renderHook(() => useWebSocket(URL, options()));
    const seen: unknown[] = [];
    const handler = (d: unknown) => seen.push(d);
    act(() => {
      result.current.on('notification', handler);
      result.current.connect();
    });
    await settle();
    act(() => last().open());
    act(() => last().receive({ type: 'notification', data: { n: 1 } }));
    act(() => last().receive({ type: 'other', data: {} }));
    act(() => result.current.off('notification', handler));
    act(() => last().receive({ type: 'notification', data: { n: 2 } }));
    expect(seen).toEqual([{ n: 1 }]);
  });

  it('resubscribes every topic after a reconnect', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { result } = renderHook(() => useWebSocket(URL, options()));
    act(() => result.current.connect());
    await settle();
    act(() => last().open());
    act(() => {
      result.current.subscribe('claims');
      result.current.subscribe('news');
      result.current.unsubscribe('news');
    });
    act(() => last().serverClose(1001));
    await act(async () => {
      vi.advanceTimersByTime(1);
    });
    await settle();
    act(() => last().open());
    expect(FakeSocket.instances).toHaveLength(2);
    expect(last().sent.map((s) => JSON.parse(s))).toEqual([{ action: 'subscribe', topic: 'claims' }]);
  });

  it('a refused topic is emitted as forbidden and not asked for again on reconnect', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { result } = renderHook(() => useWebSocket(URL, options()));
    const refused: unknown[] = [];
    const subscribed: unknown[] = [];
    act(() => {
      result.current.on('forbidden', (d) => refused.push(d));
      result.current.on('subscribed', (d) => subscribed.push(d));
      result.current.connect();
    });
    await settle();
    act(() => last().open());
    act(() => {
      result.current.subscribe('news');
      result.current.subscribe('user:bob');
    });
    const forbidden = {
      code: 'forbidden',
      action: 'subscribe',
      topic: 'user:bob',
      message: 'not allowed to subscribe to "user:bob"',
    };
    act(() => {
      last().receive({ type: 'subscribed', data: { topic: 'news' } });
      last().receive({ type: 'error', data: forbidden });
    });
    expect(subscribed).toEqual([{ topic: 'news' }]);
    expect(refused).toEqual([forbidden]);
    // A refused broadcast is emitted too, and touches no subscription.
    act(() => last().receive({ type: 'error', data: { ...forbidden, action: 'broadcast', topic: 'news' } }));
    expect(refused).toHaveLength(2);
    // Other errors are not refusals.
    act(() => last().receive({ type: 'error', data: { code: 'bad_request', message: 'x' } }));
    expect(refused).toHaveLength(2);
    act(() => last().serverClose(1001));
    await act(async () => {
      vi.advanceTimersByTime(1);
    });
    await settle();
    act(() => last().open());
    expect(last().sent.map((s) => JSON.parse(s))).toEqual([{ action: 'subscribe', topic: 'news' }]);
  });

  it('request() sends a requestId and resolves with the answer that carries it', async () => {
    const { result } = renderHook(() => useWebSocket(URL, options()));
    act(() => result.current.connect());
    await settle();
    act(() => last().open());
    let answer!: Promise<any>;
    act(() => {
      answer = result.current.request('sendmessage', { room: 'r1', text: 'hi' });
    });
    const sent = JSON.parse(last().sent[0]);
    expect(sent).toMatchObject({ action: 'sendmessage', room: 'r1', text: 'hi' });
    expect(typeof sent.requestId).toBe('string');
    const seen: unknown[] = [];
    act(() => result.current.on('sent', (d) => seen.push(d)));
    act(() => {
      last().receive({ type: 'sent', data: { room: 'r1' }, requestId: 'someone-else' });
      last().receive({ type: 'sent', data: { room: 'r1', requestId: sent.requestId } });
    });
    await expect(answer).resolves.toEqual({ type: 'sent', data: { room: 'r1', requestId: sent.requestId } });
    expect(seen).toHaveLength(2);
  });

  it('request() rejects on timeout, on close, and when not connected', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { result } = renderHook(() => useWebSocket(URL, options()));
    await expect(result.current.request('x')).rejects.toThrow('not connected');
    act(() => result.current.connect());
    await settle();
    act(() => last().open());
    let slow!: Promise<any>;
    let cut!: Promise<any>;
    const errors: unknown[] = [];
    act(() => {
      result.current.on('gateway_error', (e) => errors.push(e));
      slow = result.current.request('slow', {}, { timeoutMs: 1000 });
      slow.catch(() => {});
    });
    act(() => last().receive({ message: 'Endpoint request timed out', connectionId: 'A=', requestId: 'gw' }));
    expect(errors).toEqual([{ message: 'Endpoint request timed out', connectionId: 'A=', requestId: 'gw' }]);
    await act(async () => {
      vi.advanceTimersByTime(1000);
    });
    await expect(slow).rejects.toThrow('no answer to slow within 1000 ms');
    act(() => {
      cut = result.current.request('later');
      cut.catch(() => {});
    });
    act(() => last().serverClose(1006));
    await expect(cut).rejects.toThrow('closed before the answer');
  });

  it('resumes every stream it heard after a reconnect, and hands each message over once in order', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { result } = renderHook(() => useWebSocket(URL, options()));
    const ticks: unknown[] = [];
    const gaps: unknown[] = [];
    act(() => {
      result.current.on('tick', (d) => ticks.push(d));
      result.current.on('gap', (d) => gaps.push(d));
      result.current.connect();
    });
    await settle();
    act(() => last().open());
    expect(last().actions()).toEqual([]);
    const tick = (seq: number, stream = 'topic:claims') => ({ type: 'tick', data: seq, wsctl: { id: `m${stream}${seq}`, stream, seq } });
    act(() => {
      last().receive(tick(1));
      last().receive(tick(2));
      last().receive(tick(7, 'all'));
    });
    act(() => last().serverClose(1006));
    await act(async () => {
      vi.advanceTimersByTime(1);
    });
    await settle();
    act(() => last().open());
    expect(last().sent.map((x) => JSON.parse(x))).toEqual([
      { action: 'resume', streams: { 'topic:claims': 2, all: 7 } },
    ]);
    // The replay overlaps what was heard, and a live message overtakes it.
    act(() => {
      last().receive(tick(4));
      last().receive(tick(2));
      last().receive(tick(3));
      last().receive({ type: 'resumed', data: { streams: {} } });
      last().receive({ type: 'gap', data: { stream: 'all', after: 7, head: 20 } });
    });
    expect(ticks).toEqual([1, 2, 7, 3, 4]);
    expect(gaps).toEqual([{ stream: 'all', after: 7, head: 20 }]);
  });

  it('queues while offline up to queueSize, dropping the oldest, and flushes on open', async () => {
    const { result } = renderHook(() => useWebSocket(URL, options({ queueSize: 2 })));
    expect(result.current.send('a')).toBe(true);
    expect(result.current.send('b')).toBe(true);
    expect(result.current.send('c')).toBe(true);
    act(() => result.current.connect());
    await settle();
    act(() => last().open());
    expect(last().actions()).toEqual(['b', 'c']);
  });

  it('refuses to send while offline without a queue', () => {
    const { result } = renderHook(() => useWebSocket(URL, options()));
    expect(result.current.send('ping')).toBe(false);
  });

  it('sends the runbook shape {action, ...data}', async () => {
    const { result } = renderHook(() => useWebSocket(URL, options()));
    act(() => result.current.connect());
    await settle();
    act(() => last().open());
    result.current.send('sendMessage', { text: 'hi' });
    expect(JSON.parse(last().sent[0])).toEqual({ action: 'sendMessage', text: 'hi' });
  });
});

describe('tokens', () => {
  it('asks the token callback again on every reconnect', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    let n = 0;
    const token = vi.fn(async () => `tok-${++n}`);
    const { result } = renderHook(() => useWebSocket(URL, options({ token, tokenParam: 'access_token' })));
    act(() => result.current.connect());
    await settle();
    expect(last().url).toBe(`${URL}?access_token=tok-1`);
    act(() => last().open());
    act(() => last().serverClose(1006));
    await act(async () => {
      vi.advanceTimersByTime(1);
    });
    await settle();
    expect(last().url).toBe(`${URL}?access_token=tok-2`);
    expect(token).toHaveBeenCalledTimes(2);
  });

  it("with tokenIn 'protocol' offers ['wsctl', token] and leaves the URL alone", async () => {
    let n = 0;
    const token = vi.fn(async () => `tok-${++n}`);
    const { result } = renderHook(() => useWebSocket(URL, options({ token, tokenIn: 'protocol' })));
    act(() => result.current.connect());
    await settle();
    expect(last().url).toBe(URL);
    expect(last().protocols).toEqual(['wsctl', 'tok-1']);
  });

  it('without a token offers no subprotocol', async () => {
    const { result } = renderHook(() => useWebSocket(URL, options({ tokenIn: 'protocol' })));
    act(() => result.current.connect());
    await settle();
    expect(last().url).toBe(URL);
    expect(last().protocols).toBeUndefined();
  });

  it('encodes the token and keeps an existing query string', () => {
    expect(withToken('wss://x/prod?a=1', 'token', 'a b+c')).toBe('wss://x/prod?a=1&token=a%20b%2Bc');
  });

  it('a failing token callback is retried with backoff', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const token = vi.fn().mockRejectedValueOnce(new Error('refresh failed')).mockResolvedValue('ok');
    const { result } = renderHook(() => useWebSocket(URL, options({ token })));
    act(() => result.current.connect());
    await settle();
    expect(FakeSocket.instances).toHaveLength(0);
    await act(async () => {
      vi.advanceTimersByTime(1);
    });
    await settle();
    expect(last().url).toBe(`${URL}?token=ok`);
  });
});

describe('console', () => {
  it('is silent by default and talks with debug', async () => {
    const spies = (['log', 'warn', 'error', 'info', 'debug'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(() => {}),
    );
    const quiet = renderHook(() => useWebSocket(URL, options()));
    act(() => quiet.result.current.connect());
    await settle();
    act(() => last().open());
    act(() => last().receive('not json' as unknown));
    quiet.result.current.send('x');
    act(() => last().serverClose(1006));
    quiet.unmount();
    expect(spies.every((s) => s.mock.calls.length === 0)).toBe(true);

    const loud = renderHook(() => useWebSocket(URL, options({ debug: true })));
    act(() => loud.result.current.connect());
    await settle();
    act(() => last().open());
    expect(spies[0].mock.calls.length).toBeGreaterThan(0);
  });
});
