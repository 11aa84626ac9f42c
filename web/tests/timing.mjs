// Time from pressing Generate to eight tunes drawn, in Debian's Chromium (playwright-core), over
// N presses with seeds 1..N locked (each press a new set of tunes), on a running `folklstm serve`.
// The page measures it (body[data-ms]: the click to the frame after the last tune is drawn).
//
// usage: node web/tests/timing.mjs URL [N]      e.g. node web/tests/timing.mjs http://127.0.0.1:8080/ 20
import { chromium } from 'playwright-core';

const [url, n = '20'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1300 } });
  await page.goto(url);
  await page.waitForSelector('body[data-state=ready]');
  await page.fill('#count', '8');
  await page.check('#lock');
  const ms = [];
  const server = [];
  for (let seed = 1; seed <= Number(n); seed++) {
    await page.fill('#rng_seed', String(seed));
    await page.click('#generate');
    await page.waitForFunction(() => document.body.dataset.state !== 'busy');
    await page.waitForSelector('body[data-state=done]', { timeout: 120000 });
    ms.push(Number(await page.getAttribute('body', 'data-ms')));
    server.push(Number((await page.textContent('#status')).match(/\(([\d.]+) s generating/)[1]) * 1000);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  console.log(JSON.stringify({
    presses: ms.length,
    median_ms: q(0.5),
    p90_ms: q(0.9),
    max_ms: sorted[sorted.length - 1],
    under_2s: ms.filter((m) => m < 2000).length,
    ms,
    server_ms: server,
  }));
} finally {
  await browser.close();
}
