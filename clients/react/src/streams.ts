/**
 * Exactly once and in order, for the app's handlers, over an at-least-once wire: messages of a
 * stack that keeps history carry `wsctl: {id, stream, seq}` (a position in their stream:
 * a topic, `all`, or one user's). A message already seen (by id, or at a position already
 * passed) is dropped; one ahead of the next expected position waits, for at most
 * `windowMs`, for those before it (a concurrent broadcast's post can overtake another's),
 * then is delivered anyway. The last position of every stream is what a resume asks from.
 */

/** What a stamped message says of itself. */
export interface Stamp {
  id: string;
  stream: string;
  seq: number;
}

/** The stamp of a message, if it has a valid one. */
export function stampOf(message: any): Stamp | null {
  const w = message?.wsctl;
  if (!w || typeof w.stream !== 'string' || typeof w.seq !== 'number' || !Number.isInteger(w.seq)) return null;
  return { id: typeof w.id === 'string' ? w.id : '', stream: w.stream, seq: w.seq };
}

/** Ids remembered for deduplication (the oldest forgotten first). */
const SEEN_IDS = 2000;

export class StreamOrder {
  private last = new Map<string, number>();
  private waiting = new Map<string, Map<number, any>>();
  private timers = new Map<string, ReturnType<typeof setTimeout>>();
  private seen = new Set<string>();

  constructor(
    private deliver: (message: any) => void,
    private windowMs: number,
  ) {}

  /** The last position delivered of every stream: what `resume` sends. */
  positions(): Record<string, number> {
    return Object.fromEntries(this.last);
  }

  /** Takes one stamped message: delivers it (and those it unblocks), holds it, or drops it. */
  accept(message: any, stamp: Stamp): void {
    if (stamp.id && this.seen.has(stamp.id)) return;
    const last = this.last.get(stamp.stream);
    if (last === undefined) {
      // The first message of a stream this client hears: where it starts.
      this.remember(stamp.id);
      this.last.set(stamp.stream, stamp.seq);
      this.deliver(message);
      return;
    }
    if (stamp.seq <= last) return;
    const held = this.waiting.get(stamp.stream) ?? new Map<number, any>();
    held.set(stamp.seq, message);
    this.waiting.set(stamp.stream, held);
    this.flush(stamp.stream, false);
  }

  /** The history no longer reaches back: the stream continues after `head`. */
  gap(stream: string, head: number): void {
    const last = this.last.get(stream) ?? 0;
    if (head > last) this.last.set(stream, head);
    const held = this.waiting.get(stream);
    if (held) for (const seq of [...held.keys()]) if (seq <= head) held.delete(seq);
    this.flush(stream, false);
  }

  /** Forgets every timer (unmount). */
  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private remember(id: string): void {
    if (!id) return;
    this.seen.add(id);
    if (this.seen.size > SEEN_IDS) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  /** Delivers what is next in order; with `force`, skips a missing position too. */
  private flush(stream: string, force: boolean): void {
    const held = this.waiting.get(stream);
    if (!held) return;
    let last = this.last.get(stream) ?? 0;
    for (;;) {
      let next = held.get(last + 1);
      if (next === undefined && force && held.size > 0) {
        const lowest = Math.min(...held.keys());
        next = held.get(lowest);
        last = lowest - 1;
      }
      if (next === undefined) break;
      held.delete(last + 1);
      last += 1;
      this.last.set(stream, last);
      const stamp = stampOf(next);
      if (stamp && stamp.id && this.seen.has(stamp.id)) continue;
      if (stamp) this.remember(stamp.id);
      this.deliver(next);
      force = false;
    }
    const timer = this.timers.get(stream);
    if (held.size === 0) {
      this.waiting.delete(stream);
      if (timer) clearTimeout(timer);
      this.timers.delete(stream);
    } else if (!timer) {
      this.timers.set(
        stream,
        setTimeout(() => {
          this.timers.delete(stream);
          this.flush(stream, true);
        }, this.windowMs),
      );
    }
  }
}
