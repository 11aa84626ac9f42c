// The browser check of `folklstm serve`'s page, run by tests/browser.rs: Debian's Chromium,
// driven by playwright-core, opens the page, sets 8 tunes and a locked seed, presses Generate,
// and reports per tune whether sheet music (an SVG with note heads) and a play control appeared,
// the time from the click to the tunes drawn, and every request that left the server. Then it
// saves a screenshot, presses Play and Stop, downloads ABC and MIDI, and generates two tunes
// from the first one's opening. With a second URL (a page folder without
// node_modules) it checks the fallback: the one-line notice, the ABC text, the downloads.
//
// usage: node browser.mjs URL SCREENSHOT.png [FALLBACK_URL]
import { chromium } from 'playwright-core';

const [url, shot, fallbackUrl] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
});
const report = {};
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1300 } });
  const origin = new URL(url).origin;
  const outside = [];
  const errors = [];
  page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('blob:')) outside.push(r.url()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('body[data-state=ready]');
  await page.fill('#count', '8');
  await page.fill('#rng_seed', '18');
  await page.check('#lock');
  await page.click('#generate');
  await page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 120000 });
  report.state = await page.getAttribute('body', 'data-state');
  report.status = await page.textContent('#status');
  report.ms = Number(await page.getAttribute('body', 'data-ms'));
  report.tunes = await page.$$eval('article.tune', (cards) => cards.map((c) => ({
    svgs: c.querySelectorAll('.sheet svg').length,
    noteheads: c.querySelectorAll('.sheet svg .abcjs-notehead').length,
    play: !!c.querySelector('button.play'),
    tempo: !!c.querySelector('input.bpm'),
    verdict: c.querySelector('.verdict').textContent,
    abc: c.querySelector('pre').textContent,
  })));
  // A second press with the seed locked: the same tunes, timed with the model already loaded.
  await page.click('#generate');
  await page.waitForFunction(() => document.body.dataset.state !== 'busy');
  await page.waitForSelector('body[data-state=done]', { timeout: 120000 });
  report.ms_again = Number(await page.getAttribute('body', 'data-ms'));
  report.same_again = JSON.stringify(await page.$$eval('article.tune pre', (p) => p.map((x) => x.textContent)))
    === JSON.stringify(report.tunes.map((t) => t.abc));
  await page.screenshot({ path: shot });
  const play = page.locator('article.tune button.play').first();
  await play.click();
  report.playing = (await play.textContent()).includes('Stop');
  await play.click();
  report.stopped = (await play.textContent()).includes('Play');
  // Downloads: the ABC text, and the MIDI file from the server's own writer.
  const card = page.locator('article.tune').first();
  const [abcFile] = await Promise.all([page.waitForEvent('download'), card.locator('.download-abc').click()]);
  const [midiFile] = await Promise.all([page.waitForEvent('download'), card.locator('.download-midi').click()]);
  report.downloads = [abcFile.suggestedFilename(), midiFile.suggestedFilename()];
  // "Use this opening": the first tune's header and first bars become the start text, and the
  // next tunes continue it.
  await card.locator('.use-opening').click();
  report.opening = await page.inputValue('#seed');
  report.meter_disabled = await page.isDisabled('#meter');
  await page.fill('#count', '2');
  await page.click('#generate');
  await page.waitForFunction(() => document.body.dataset.state !== 'busy');
  await page.waitForSelector('body[data-state=done]', { timeout: 120000 });
  report.continued = await page.$$eval('article.tune pre', (p) => p.map((x) => x.textContent));
  report.outside = outside;
  report.errors = errors;
  if (fallbackUrl) {
    const fb = await browser.newPage();
    await fb.goto(fallbackUrl);
    await fb.waitForSelector('body[data-state=ready]');
    await fb.fill('#count', '2');
    await fb.click('#generate');
    await fb.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 120000 });
    report.fallback = {
      state: await fb.getAttribute('body', 'data-state'),
      notice: await fb.isVisible('#no-notation') ? await fb.textContent('#no-notation') : null,
      tunes: await fb.$$eval('article.tune', (cards) => cards.map((c) => ({
        svgs: c.querySelectorAll('svg').length,
        abc_shown: c.querySelector('details').open && c.querySelector('pre').textContent.startsWith('X:'),
        downloads: !!c.querySelector('.download-abc') && !!c.querySelector('.download-midi'),
        play: !!c.querySelector('button.play'),
      }))),
    };
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
