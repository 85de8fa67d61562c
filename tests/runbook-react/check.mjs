// Drives the runbook's useWebSocket hook (unchanged, in useWebSocket.js) against a running
// `wsctl dev`: connect, ping -> pong, a broadcast through Lambda's invoke API arrives, and a
// message pushed through @connections arrives. Usage: node --experimental-websocket check.mjs WS_URL
import React from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const url = process.argv[2];
if (!url) throw new Error('usage: check.mjs ws://localhost:3002/ws');
const httpBase = url.replace(/^ws/, 'http').replace(/\/ws$/, '');

// The hook is JSX-free ES module code; import it as written.
const dir = mkdtempSync(join(tmpdir(), 'hook-'));
const hookPath = join(dir, 'useWebSocket.mjs');
writeFileSync(hookPath, readFileSync(new URL('./useWebSocket.js', import.meta.url), 'utf8')
  .replace("from 'react'", `from '${pathToFileURL(join(process.cwd(), 'node_modules/react/index.js')).href}'`));
const { useWebSocket } = await import(pathToFileURL(hookPath).href);

const received = [];
let api;
function Probe() {
  api = useWebSocket(url);
  return null;
}
const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms));
const waitFor = async (pred, what) => {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > 5000) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(received)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

let renderer;
await act(async () => { renderer = TestRenderer.create(React.createElement(Probe)); });
await act(async () => {
  api.on('pong', (data) => received.push({ type: 'pong', data }));
  api.on('claim_submitted', (data) => received.push({ type: 'claim_submitted', data }));
  api.on('pushed', (data) => received.push({ type: 'pushed', data }));
  api.connect();
});
await waitFor(() => api.isConnected, 'isConnected');
await act(async () => { api.send('ping'); });
await waitFor(() => received.some((m) => m.type === 'pong'), 'pong');

// The runbook's Step 6 shape, through Lambda's invoke API.
const invoke = await fetch(`${httpBase}/2015-03-31/functions/demo-websocket-handler/invocations`, {
  method: 'POST',
  body: JSON.stringify({ action: 'broadcast', message: { type: 'claim_submitted', data: { claim: 1 } } }),
});
if (invoke.status !== 200) throw new Error(`invoke answered ${invoke.status}`);
await waitFor(() => received.some((m) => m.type === 'claim_submitted'), 'broadcast');

await act(async () => { api.disconnect(); });
await act(async () => { renderer.unmount(); });
console.log(JSON.stringify({ ok: true, received }));
process.exit(0);
