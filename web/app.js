// The page of `folklstm serve`: reads the controls, asks POST /api/generate, and shows each tune
// as sheet music (abcjs) with playback, its judge verdict and downloads. Nothing is loaded from
// outside this server. URL parameters fill the controls (?count=8&meter=6/8&rng_seed=1&shape=1), and
// ?generate=1 generates at once: the browser test uses that, and reads body[data-state] and
// body[data-ms] (time from Generate to the last tune drawn).
'use strict';

const $ = (id) => document.getElementById(id);
const notation = typeof window.ABCJS !== 'undefined';
const fields = ['checkpoint', 'meter', 'key', 'temperature', 'count', 'rng_seed', 'keep', 'len', 'seed'];
let info = null;
let busy = false;

// ---------------------------------------------------------------- playback

// A small Web Audio synthesizer over abcjs's note list: the melody on a triangle wave, the
// chord track softer on a sine. No sound font is fetched, so it works offline.
const player = {
  ctx: null,
  nodes: [],
  timer: null,
  button: null,

  play(visual, qpm, button) {
    this.stop();
    this.ctx = this.ctx || new (window.AudioContext || window.webkitAudioContext)();
    const audio = visual.setUpAudio({});
    const whole = 240 / qpm; // seconds per whole note
    const t0 = this.ctx.currentTime + 0.1;
    let end = t0;
    audio.tracks.forEach((track, k) => {
      for (const ev of track) {
        if (ev.cmd !== 'note' || ev.pitch === undefined) continue;
        const start = t0 + ev.start * whole;
        const dur = Math.max(0.04, ev.duration * whole);
        const osc = this.ctx.createOscillator();
        osc.type = k === 0 ? 'triangle' : 'sine';
        osc.frequency.value = 440 * Math.pow(2, (ev.pitch - 69) / 12);
        const gain = this.ctx.createGain();
        const level = ((ev.volume || 80) / 127) * (k === 0 ? 0.3 : 0.07);
        gain.gain.setValueAtTime(0, start);
        gain.gain.linearRampToValueAtTime(level, start + 0.01);
        gain.gain.setTargetAtTime(0, start + dur * 0.8, dur * 0.1);
        osc.connect(gain).connect(this.ctx.destination);
        osc.start(start);
        osc.stop(start + dur + 0.05);
        this.nodes.push(osc);
        end = Math.max(end, start + dur);
      }
    });
    this.button = button;
    button.textContent = '■ Stop';
    this.timer = setTimeout(() => this.stop(), (end - this.ctx.currentTime + 0.3) * 1000);
  },

  stop() {
    for (const n of this.nodes) {
      try { n.stop(); } catch (e) { /* already stopped */ }
    }
    this.nodes = [];
    clearTimeout(this.timer);
    if (this.button) this.button.textContent = '▶ Play';
    this.button = null;
  },
};

// ---------------------------------------------------------------- helpers

function setStatus(text, isError) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', !!isError);
}

function fileName(abc, ext) {
  const t = (abc.match(/^T:\s*(.*)$/m) || [])[1] || 'tune';
  return (t.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'tune') + '.' + ext;
}

function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// The header (through K:) and the first four bars: what "Use this opening" hands the model.
function opening(abc, bars) {
  const lines = abc.split('\n');
  const k = lines.findIndex((l) => /^K:/.test(l));
  const head = lines.slice(0, k + 1).join('\n') + '\n';
  const body = lines.slice(k + 1).join('\n');
  let seen = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '|' && body[i - 1] !== '|' && body[i - 1] !== ':' && body[i - 1] !== '[') {
      seen += 1;
      if (seen === bars) {
        let j = i + 1;
        while (j < body.length && /[|:\]]/.test(body[j])) j++;
        return head + body.slice(0, j);
      }
    }
  }
  return head + body;
}

// Quarter notes per minute: a lively pace for the meter (compound meters count dotted quarters).
function defaultTempo(meter) {
  return /^(6|9|12)\/8$/.test(meter || '') ? 180 : 120;
}

function verdictText(j) {
  if (!j) return ['no tune in this text', 'bad'];
  const parts = [];
  let cls = 'good';
  if (j.valid) parts.push('✓ valid');
  else { parts.push('✗ ' + (j.first_problem || 'not valid')); cls = 'bad'; }
  parts.push(`form ${j.form || '–'} · ${j.parts} part${j.parts === 1 ? '' : 's'} · ${j.bars} bars`);
  if (j.ends_on_tonic === true) parts.push('ends on the tonic');
  const o = j.originality;
  if (o) {
    if (o.near_copy) { parts.push(`near copy of ${o.nearest} (similarity ${o.similarity})`); cls = 'bad'; }
    else parts.push(`original · nearest training tune ${o.nearest || 'none'} (similarity ${o.similarity})`);
    if (o.same_opening) parts.push('opens like a training tune');
  }
  return [parts.join(' — '), cls];
}

// ---------------------------------------------------------------- the tunes

function showTune(tune, n) {
  const card = $('tune-card').content.firstElementChild.cloneNode(true);
  const abc = tune.abc;
  const title = (abc.match(/^T:\s*(.*)$/m) || [])[1] || 'Untitled';
  card.querySelector('.title').textContent = `${n}. ${title}`;
  const [text, cls] = verdictText(tune.judge);
  const v = card.querySelector('.verdict');
  v.textContent = text;
  v.classList.add(cls);
  card.querySelector('pre').textContent = abc;
  const meter = tune.judge && tune.judge.meter;
  card.querySelector('.bpm').value = defaultTempo(meter);
  $('tunes').appendChild(card);
  const play = card.querySelector('.play');
  if (notation) {
    const visual = ABCJS.renderAbc(card.querySelector('.sheet'), abc, { responsive: 'resize', add_classes: true, staffwidth: 740 })[0];
    play.addEventListener('click', () => {
      if (player.button === play) { player.stop(); return; }
      player.play(visual, Number(card.querySelector('.bpm').value) || defaultTempo(meter), play);
    });
  } else {
    play.remove();
    card.querySelector('.tempo').remove();
    card.querySelector('details').open = true;
  }
  card.querySelector('.download-abc').addEventListener('click', () => download(new Blob([abc], { type: 'text/vnd.abc' }), fileName(abc, 'abc')));
  card.querySelector('.download-midi').addEventListener('click', async () => {
    const r = await fetch('/api/midi', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ abc }) });
    if (r.ok) download(await r.blob(), fileName(abc, 'mid'));
    else setStatus('MIDI: ' + (await r.json()).error, true);
  });
  card.querySelector('.use-opening').addEventListener('click', () => {
    $('seed').value = opening(abc, 4);
    syncSeed();
    $('seed').scrollIntoView({ behavior: 'smooth', block: 'center' });
  });
}

// ---------------------------------------------------------------- the request

function request() {
  const r = {};
  const val = (id) => $(id).value.trim();
  if (val('checkpoint')) r.checkpoint = val('checkpoint');
  r.count = Number(val('count'));
  r.temperature = Number(val('temperature'));
  if (val('len')) r.len = Number(val('len'));
  if (val('keep')) r.keep = val('keep');
  if ($('shape').checked) r.shape = true;
  if ($('seed').value.trim()) r.seed = $('seed').value;
  else {
    if (val('meter')) r.meter = val('meter');
    if (val('key')) r.key = val('key');
  }
  if ($('lock').checked && val('rng_seed') !== '') r.rng_seed = Number(val('rng_seed'));
  return r;
}

async function generate() {
  if (busy) return;
  busy = true;
  document.body.dataset.state = 'busy';
  player.stop();
  const t0 = performance.now();
  $('generate').disabled = true;
  for (const f of fields) if ($(f)) $(f).classList.remove('invalid');
  setStatus('Generating…');
  try {
    const res = await fetch('/api/generate', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request()) });
    const data = await res.json();
    if (!res.ok) {
      setStatus(data.error, true);
      if (data.field && $(data.field)) $(data.field).classList.add('invalid');
      document.body.dataset.state = 'error';
      return;
    }
    $('rng_seed').value = data.rng_seed;
    $('tunes').replaceChildren();
    $('warnings').replaceChildren(...data.warnings.map((w) => Object.assign(document.createElement('li'), { textContent: w })));
    data.tunes.forEach((t, k) => showTune(t, k + 1));
    // Drawn means painted: wait for the frame that shows them.
    await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
    const ms = performance.now() - t0;
    const valid = data.tunes.filter((t) => t.judge && t.judge.valid).length;
    setStatus(`${data.tunes.length} tunes (${valid} valid) from ${data.checkpoint}, seed ${data.rng_seed}, in ${(ms / 1000).toFixed(2)} s ` +
      `(${data.seconds.toFixed(2)} s generating${data.drawn > data.tunes.length ? `, ${data.drawn} drawn` : ''}).`);
    document.body.dataset.ms = Math.round(ms);
    document.body.dataset.tunes = data.tunes.length;
    document.body.dataset.state = 'done';
  } catch (e) {
    setStatus('The server did not answer: ' + e, true);
    document.body.dataset.state = 'error';
  } finally {
    $('generate').disabled = false;
    busy = false;
  }
}

// A start text writes the header itself: meter and key are then not used.
function syncSeed() {
  const has = $('seed').value.trim() !== '';
  $('meter').disabled = has;
  $('key').disabled = has;
}

async function start() {
  document.body.dataset.state = 'loading';
  $('no-notation').hidden = notation;
  info = await (await fetch('/api/info')).json();
  $('checkpoint').replaceChildren(...info.checkpoints.map((c) => new Option(c, c, c === info.default, c === info.default)));
  const list = (id, items) => {
    const d = document.createElement('datalist');
    d.id = id;
    d.replaceChildren(...items.map((v) => new Option(v)));
    document.body.appendChild(d);
  };
  list('meters', info.meters);
  list('keys', info.keys);
  $('count').max = info.limits.count;
  $('len').max = info.limits.len;
  if (!info.corpus) {
    $('corpus-note').hidden = false;
    for (const o of $('keep').options) if (o.value === 'original' || o.value === 'both') o.disabled = true;
  }
  const params = new URLSearchParams(location.search);
  for (const f of fields) if (params.has(f)) $(f).value = params.get(f);
  if (params.has('rng_seed')) $('lock').checked = true;
  if (params.get('shape') === '1') $('shape').checked = true;
  $('temperature-value').textContent = Number($('temperature').value).toFixed(2);
  $('temperature').addEventListener('input', () => { $('temperature-value').textContent = Number($('temperature').value).toFixed(2); });
  $('seed').addEventListener('input', syncSeed);
  $('clear-seed').addEventListener('click', () => { $('seed').value = ''; syncSeed(); });
  $('controls').addEventListener('submit', (e) => { e.preventDefault(); generate(); });
  syncSeed();
  document.body.dataset.state = 'ready';
  if (params.get('generate') === '1') generate();
}

start().catch((e) => setStatus('Could not reach the server: ' + e, true));
