import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { StreamOrder } from '../src/index.js';

const m = (stream: string, seq: number, id = `${stream}#${seq}`) => ({
  type: 't',
  data: seq,
  wsctl: { id, stream, seq },
});

describe('StreamOrder', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function order(window = 1000) {
    const seen: number[] = [];
    const o = new StreamOrder((msg) => seen.push(msg.data), window);
    const take = (msg: any) => o.accept(msg, { id: msg.wsctl.id, stream: msg.wsctl.stream, seq: msg.wsctl.seq });
    return { o, seen, take };
  }

  it('delivers each message once, in position order', () => {
    const { o, seen, take } = order();
    for (const seq of [1, 3, 2, 2, 4, 1, 5]) take(m('topic:a', seq));
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(o.positions()).toEqual({ 'topic:a': 5 });
  });

  it('drops a copy by id even at a new position (a repeated send)', () => {
    const { seen, take } = order();
    take(m('all', 1, 'x'));
    take(m('all', 2, 'x'));
    take(m('all', 3, 'y'));
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual([1, 3]);
  });

  it('waits for a missing position at most the window, then goes on', () => {
    const { o, seen, take } = order(500);
    take(m('topic:a', 1));
    take(m('topic:a', 3));
    take(m('topic:a', 4));
    expect(seen).toEqual([1]);
    vi.advanceTimersByTime(499);
    expect(seen).toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(seen).toEqual([1, 3, 4]);
    take(m('topic:a', 2));
    expect(seen).toEqual([1, 3, 4]);
    expect(o.positions()).toEqual({ 'topic:a': 4 });
  });

  it('a gap moves the stream past what cannot be replayed', () => {
    const { o, seen, take } = order();
    take(m('topic:a', 1));
    take(m('topic:a', 9));
    o.gap('topic:a', 8);
    expect(seen).toEqual([1, 9]);
    expect(o.positions()).toEqual({ 'topic:a': 9 });
  });

  it('keeps streams apart', () => {
    const { o, seen, take } = order();
    take(m('topic:a', 4));
    take(m('user:bob', 10));
    take(m('topic:a', 5));
    expect(seen).toEqual([4, 10, 5]);
    expect(o.positions()).toEqual({ 'topic:a': 5, 'user:bob': 10 });
  });
});
