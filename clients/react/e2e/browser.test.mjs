// A real browser (Debian's chromium, driven by playwright-core) runs a page using the hook
// against `wsctl dev`: one socket after many renders, ping/pong, a broadcast received once,
// reconnect after the gateway restarts with the topic resubscribed, and disconnect() staying
// disconnected; the page is typed by the test project's catalogue (e2e/wsctl.toml), whose
// generated module must be up to date, and the gateway refuses broadcasts that break it.
// WSCTL_BIN names the wsctl binary; CHROMIUM the browser (default /usr/bin/chromium).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const wsctl = process.env.WSCTL_BIN ?? join(here, '../../../target/debug/wsctl');
const browserPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The test project: its catalogue, and the page's types generated from it.
const project = readFileSync(join(here, 'wsctl.toml'), 'utf8');
const generated = execFileSync(wsctl, ['--config', join(here, 'wsctl.toml'), 'types'], { encoding: 'utf8' });
assert.equal(
  readFileSync(join(here, 'events.ts'), 'utf8'),
  generated,
  'e2e/events.ts is out of date: run `wsctl --config e2e/wsctl.toml types --out e2e/events.ts`',
);


/** A broadcast's report: its id (`wsctl broadcast status ID`), then the counts, exactly. */
function assertReport(report, expected) {
  const { broadcast_id: id, ...counts } = report;
  assert.match(id, /^\d{8}T\d{6}Z-[0-9a-f]{8}$/, JSON.stringify(report));
  assert.deepEqual(counts, expected);
}

async function freePort() {
  return new Promise((resolve) => {
    const s = netServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what, check, timeoutMs = 10000) {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** An HS256 JWT for `claims`. */
function hs256(secret, claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** `wsctl dev` on `port` (plus `args`, and `env` added to this process's); resolves once it
 * prints its URL. */
async function startDev(port, args = [], env = {}, config = null) {
  const dir = mkdtempSync(join(tmpdir(), 'wsctl-e2e-'));
  if (config) writeFileSync(join(dir, 'wsctl.toml'), config);
  cpSync(join(here, 'catalogue'), join(dir, 'catalogue'), { recursive: true });
  const child = spawn(wsctl, ['dev', '--port', String(port), '--host', '127.0.0.1', ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const dev = { child, log: '', exited: false };
  child.stderr.on('data', (d) => (dev.log += d));
  child.on('exit', () => (dev.exited = true));
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (code) => reject(new Error(`wsctl dev exited with ${code}: ${dev.log}`)));
  });
  return dev;
}

async function stopDev(dev) {
  dev.child.kill('SIGTERM');
  await waitFor('wsctl dev to exit', () => dev.exited);
}

const count = (log, needle) => log.split('\n').filter((l) => l.includes(needle)).length;

/** The Lambda invoke API's answer: its status, the X-Amz-Function-Error header, the body. */
async function invokeRaw(port, payload) {
  const res = await fetch(`http://127.0.0.1:${port}/2015-03-31/functions/handler/invocations`, {
    method: 'POST',
    body: JSON.stringify(payload),
  });
  return { status: res.status, functionError: res.headers.get('x-amz-function-error'), body: await res.json() };
}

async function invoke(port, payload) {
  const res = await fetch(`http://127.0.0.1:${port}/2015-03-31/functions/handler/invocations`, {
    method: 'POST',
    body: JSON.stringify(payload),
  });
  assert.equal(res.status, 200);
  return res.json();
}

// The page: bundled with esbuild, served with its HTML.
const out = await build({
  entryPoints: [join(here, 'app.tsx')],
  bundle: true,
  format: 'esm',
  write: false,
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"development"' },
});
const bundle = out.outputFiles[0].text;
const html = readFileSync(join(here, 'index.html'));
const site = createServer((req, res) => {
  if (req.url.startsWith('/app.js')) {
    res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundle);
  } else {
    res.writeHead(200, { 'Content-Type': 'text/html' }).end(html);
  }
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const sitePort = site.address().port;

const devPort = await freePort();
let dev = await startDev(devPort, [], {}, project);
const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] });
const results = [];
const step = async (name, fn) => {
  await fn();
  results.push(name);
  console.log(`ok - ${name}`);
};

try {
  const page = await browser.newPage();
  const consoleMessages = [];
  page.on('console', (m) => consoleMessages.push(m.text()));
  await page.goto(`http://127.0.0.1:${sitePort}/?ws=ws://127.0.0.1:${devPort}/ws`);
  const events = () => page.evaluate(() => window.__events);
  const status = () => page.locator('#status');

  await step('one socket after 100 renders (StrictMode, the runbook usage pattern)', async () => {
    await waitFor('100 renders', async () => (await status().getAttribute('data-renders')) === '100');
    await waitFor('connected', async () => (await status().getAttribute('data-connected')) === 'true');
    assert.equal(await page.evaluate(() => window.__opened), 1);
    assert.equal(count(dev.log, '$connect '), 1, dev.log);
  });

  await step('ping gets a pong', async () => {
    await page.evaluate(() => window.__api.send('ping'));
    await waitFor('a pong', async () => (await events()).some((e) => e.type === 'pong'));
  });

  await step('a broadcast arrives once', async () => {
    const report = await invoke(devPort, {
      action: 'broadcast',
      message: { type: 'notification', data: { n: 1 } },
    });
    assertReport(report, { delivered: 1, gone: 0, failed: 0, throttled: 0, retried: 0, complete: true });
    await waitFor('the broadcast', async () => (await events()).some((e) => e.type === 'notification'));
    await sleep(300);
    assert.equal((await events()).filter((e) => e.type === 'notification' && e.data.n === 1).length, 1);
  });

  await step('a broadcast that breaks the catalogue is refused, naming the field, and never arrives', async () => {
    for (const [message, pointer] of [
      [{ type: 'notification', data: { n: 'one' } }, '/data/n'],
      [{ type: 'notificaton', data: { n: 3 } }, '/type'],
    ]) {
      const answer = await invokeRaw(devPort, { action: 'broadcast', message });
      assert.equal(answer.status, 200);
      assert.equal(answer.functionError, 'Unhandled');
      assert.equal(answer.body.errorType, 'InvalidMessage', JSON.stringify(answer.body));
      assert.ok(answer.body.errorMessage.includes(pointer), answer.body.errorMessage);
    }
    await sleep(300);
    assert.deepEqual(
      (await events()).filter((e) => e.type.startsWith('notific')).map((e) => e.data.n),
      [1],
    );
  });

  await step('a topic subscribed through the hook', async () => {
    await page.evaluate(() => window.__api.subscribe('news'));
    await waitFor('subscribed', async () => (await events()).filter((e) => e.type === 'subscribed').length === 1);
  });

  await step('reconnects after the gateway restarts, and the topic is resubscribed', async () => {
    await stopDev(dev);
    await waitFor('disconnected', async () => (await status().getAttribute('data-connected')) === 'false');
    dev = await startDev(devPort, [], {}, project);
    await waitFor('reconnected', async () => (await status().getAttribute('data-connected')) === 'true', 15000);
    await waitFor('resubscribed', async () => (await events()).filter((e) => e.type === 'subscribed').length === 2);
    const report = await invoke(devPort, {
      action: 'broadcast',
      topic: 'news',
      message: { type: 'notification', data: { n: 2 } },
    });
    assertReport(report, { delivered: 1, gone: 0, failed: 0, throttled: 0, retried: 0, complete: true });
    await waitFor('the topic broadcast', async () =>
      (await events()).some((e) => e.type === 'notification' && e.data.n === 2),
    );
    // One connection reached the new gateway. (The page may count more sockets: attempts made
    // while the gateway was down fail and are retried.)
    assert.equal(count(dev.log, '$connect '), 1, dev.log);
  });

  await step('disconnect() stays disconnected', async () => {
    await page.evaluate(() => window.__api.disconnect());
    await waitFor('disconnected', async () => (await status().getAttribute('data-connected')) === 'false');
    const opened = await page.evaluate(() => window.__opened);
    await sleep(3000); // three times the longest backoff the page allows
    assert.equal(await status().getAttribute('data-connected'), 'false');
    assert.equal(await page.evaluate(() => window.__opened), opened, 'no socket opened after disconnect()');
    assert.equal(count(dev.log, '$connect '), 1, dev.log);
    await waitFor('$disconnect', async () => count(dev.log, '$disconnect ') === 1);
  });

  await step('no console output from the hook', async () => {
    const noise = consoleMessages.filter((m) => m.includes('useWebSocket'));
    assert.deepEqual(noise, []);
  });

  // Tokens: against a gateway that requires one, in the query string or in the subprotocol.
  const authPort = await freePort();
  const secret = 'e2e-secret';
  const authDev = await startDev(
    authPort,
    ['--jwt-secret-env', 'WSCTL_E2E_SECRET', '--token-source', 'either', '--topics-subscribe', 'user:{sub}'],
    { WSCTL_E2E_SECRET: secret },
  );
  const token = hs256(secret, { sub: 'e2e', exp: Math.floor(Date.now() / 1000) + 600 });
  const open = async (tokenIn, tok) => {
    const p = await browser.newPage();
    const q = new URLSearchParams({ ws: `ws://127.0.0.1:${authPort}/ws`, token: tok, tokenIn });
    await p.goto(`http://127.0.0.1:${sitePort}/?${q}`);
    return p;
  };
  try {
    await step("tokenIn 'protocol': the token travels in Sec-WebSocket-Protocol, not the URL", async () => {
      const p = await open('protocol', token);
      await waitFor('connected', async () => (await p.locator('#status').getAttribute('data-connected')) === 'true');
      const urls = await p.evaluate(() => window.__urls);
      assert.ok(urls.length >= 1 && urls.every((u) => !u.includes(token) && !u.includes('token=')), urls.join(' '));
      assert.deepEqual(await p.evaluate(() => window.__protocols), ['wsctl']);
      await p.close();
    });

    await step("tokenIn 'query' (the default) still works", async () => {
      const p = await open('query', token);
      await waitFor('connected', async () => (await p.locator('#status').getAttribute('data-connected')) === 'true');
      const urls = await p.evaluate(() => window.__urls);
      assert.ok(urls[0].includes(`token=${token}`), urls[0]);
      assert.deepEqual(await p.evaluate(() => window.__protocols), ['']);
      await p.close();
    });

    await step("the topic rules: the user's own topic is subscribed, another user's is forbidden", async () => {
      const p = await open('protocol', token);
      await waitFor('connected', async () => (await p.locator('#status').getAttribute('data-connected')) === 'true');
      await p.evaluate(() => {
        window.__api.subscribe('user:e2e');
        window.__api.subscribe('user:bob');
      });
      const seen = () => p.evaluate(() => window.__events);
      await waitFor('subscribed user:e2e', async () =>
        (await seen()).some((e) => e.type === 'subscribed' && e.data.topic === 'user:e2e'),
      );
      await waitFor('forbidden user:bob', async () =>
        (await seen()).some((e) => e.type === 'forbidden' && e.data.topic === 'user:bob' && e.data.action === 'subscribe'),
      );
      assert.ok(!(await seen()).some((e) => e.type === 'subscribed' && e.data.topic === 'user:bob'));
      await p.close();
    });

    await step('a bad token in the subprotocol is refused (401) and never connects', async () => {
      const before = count(authDev.log, ' 401');
      const p = await open('protocol', hs256('another-secret', { sub: 'x', exp: Math.floor(Date.now() / 1000) + 600 }));
      await waitFor('a 401 on $connect', async () => count(authDev.log, ' 401') > before);
      assert.equal(await p.locator('#status').getAttribute('data-connected'), 'false');
      await p.close();
    });
  } finally {
    await stopDev(authDev).catch(() => {});
  }

  // A forced drop in the middle of 100 broadcasts: the app's handler sees all 100, once each, in
  // order (what it missed comes back through resume).
  const historyPort = await freePort();
  const historyDev = await startDev(historyPort, ['--history', '10m'], {}, project);
  try {
    await step('across a forced drop during 100 broadcasts, the handler sees each once, in order', async () => {
      const p = await browser.newPage();
      await p.goto(`http://127.0.0.1:${sitePort}/?ws=ws://127.0.0.1:${historyPort}/ws`);
      await waitFor('connected', async () => (await p.locator('#status').getAttribute('data-connected')) === 'true');
      await p.evaluate(() => window.__api.subscribe('ticks'));
      const seen = () => p.evaluate(() => window.__events);
      await waitFor('subscribed', async () => (await seen()).some((e) => e.type === 'subscribed' && e.data.topic === 'ticks'));
      for (let n = 1; n <= 100; n++) {
        await invoke(historyPort, { action: 'broadcast', topic: 'ticks', message: { type: 'tick', data: { n } } });
        if (n === 40) {
          const res = await fetch(`http://127.0.0.1:${historyPort}/_dev/drop?mode=abrupt`, { method: 'POST' });
          assert.equal(res.status, 200);
        }
      }
      await waitFor('100 ticks', async () => (await seen()).filter((e) => e.type === 'tick').length >= 100, 15000);
      await sleep(500);
      const ticks = (await seen()).filter((e) => e.type === 'tick').map((e) => e.data.n);
      assert.deepEqual(ticks, Array.from({ length: 100 }, (_, i) => i + 1));
      // The handler typed by the catalogue (`tick.n`) saw the same.
      assert.equal(await p.evaluate(() => window.__sum), 5050);
      assert.ok((await seen()).filter((e) => e.type === 'disconnect').length >= 1, 'the page was dropped');
      await p.close();
    });
  } finally {
    await stopDev(historyDev).catch(() => {});
  }

  // A two-way route to the team's HTTP backend: request() resolves with its answer.
  const backend = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const message = JSON.parse(body);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ type: 'sent', data: { text: message.text, connection: req.headers['x-wsctl-connection-id'] }, requestId: message.requestId }));
    });
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const routePort = await freePort();
  const routeDev = await startDev(routePort, [], {}, project.replace('127.0.0.1:8000', `127.0.0.1:${backend.address().port}`));
  try {
    await step('request() to a two-way route resolves with the backend\'s answer', async () => {
      const p = await browser.newPage();
      await p.goto(`http://127.0.0.1:${sitePort}/?ws=ws://127.0.0.1:${routePort}/ws`);
      await waitFor('connected', async () => (await p.locator('#status').getAttribute('data-connected')) === 'true');
      const answer = await p.evaluate(() => window.__api.request('sendmessage', { text: 'hi' }, { timeoutMs: 5000 }));
      assert.equal(answer.type, 'sent');
      assert.equal(answer.data.text, 'hi');
      assert.match(answer.data.connection, /^[A-Za-z0-9+/]{15}=$/);
      await p.close();
    });
  } finally {
    await stopDev(routeDev).catch(() => {});
    backend.close();
  }
} finally {
  await browser.close();
  await stopDev(dev).catch(() => {});
  site.close();
}
console.log(`${results.length} browser checks passed`);
