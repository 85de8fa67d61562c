// The page the browser test drives: the runbook's usage pattern (connect and handlers in an
// effect that depends on [connect, on, off]) in a component that re-renders 100 times.
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';

import { useWebSocket } from '../src/index.js';

declare global {
  interface Window {
    __events: { type: string; data?: unknown }[];
    __opened: number;
    __api: ReturnType<typeof useWebSocket>;
  }
}

const params = new URLSearchParams(location.search);
const url = params.get('ws') ?? 'ws://localhost:3002/ws';
// A token and where it travels (`tokenIn=query|protocol`), when the page is given one.
const token = params.get('token') ?? undefined;
const tokenIn = (params.get('tokenIn') ?? undefined) as 'query' | 'protocol' | undefined;
window.__events = [];

function App() {
  const ws = useWebSocket(url, { baseDelayMs: 200, maxDelayMs: 1000, token, tokenIn });
  const { isConnected, connect, on, off } = ws;
  const [renders, setRenders] = useState(0);

  useEffect(() => {
    connect();
    for (const type of ['pong', 'notification', 'subscribed', 'forbidden', 'tick', 'gap', 'connect', 'disconnect']) {
      on(type, (data) => window.__events.push({ type, data }));
    }
    return () => {
      for (const type of ['pong', 'notification', 'subscribed', 'forbidden', 'tick', 'gap', 'connect', 'disconnect']) off(type);
    };
  }, [connect, on, off]);

  window.__api = ws;

  useEffect(() => {
    if (renders < 100) {
      const t = setTimeout(() => setRenders((r) => r + 1), 5);
      return () => clearTimeout(t);
    }
  }, [renders]);

  return (
    <p id="status" data-connected={String(isConnected)} data-renders={renders}>
      {isConnected ? 'connected' : 'disconnected'}
    </p>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
