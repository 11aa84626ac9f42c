//! Generation, on any engine: run a [`Sampler`] one character at a time and draw the next
//! character on the host ([`generate`], [`draw`]). The CPU's sampler is
//! [`crate::cpu::sampler::CpuSampler`], the GPU's [`crate::gpu::GpuSampler`]; the GPU also draws
//! runs of characters itself ([`Sampler::run_ahead`]), which the host checks against its own
//! draws and cuts where they part, so the text is the same either way.

use crate::abc::guide::Guide;
use crate::abc::judge::CorpusIndex;
use crate::abc::prime::{CorpusStyle, Piece, Wishes, plan};
use crate::backend::{DrawRule, Sampler};
use crate::corpus::Vocab;
use crate::error::{Error, Result};
use crate::rng::{Key, stream};

/// The most characters one tune may have (seed included), the most tunes one call may make,
/// and the most characters all tunes together may have. Past these the output alone would
/// take gigabytes; they are refused before anything is loaded.
pub const MAX_LEN: usize = 1_000_000;
/// See [`MAX_LEN`].
pub const MAX_COUNT: usize = 4096;
/// See [`MAX_LEN`]: 16 Mi characters, about 200 MiB of token ids and text.
pub const MAX_TOTAL: usize = 1 << 24;

/// How to sample.
#[derive(Clone, Debug)]
pub struct SampleOptions {
    /// Text to prime the network with (printed first). None: the first character is drawn
    /// uniformly from the vocabulary.
    pub seed_text: Option<String>,
    /// Characters to generate after the seed (with no seed, including the random first one).
    pub len: usize,
    /// Softmax temperature (> 0): logits are divided by it.
    pub temperature: f32,
    /// Keep only the k most likely characters at each draw.
    pub top_k: Option<usize>,
    /// Seed of the draws.
    pub rng_seed: u64,
    /// Number of independent tunes, generated as one batch.
    pub count: usize,
    /// Stop each stream at the end of its first tune: when a line starting `X:` begins after
    /// the seed, it is dropped and the stream is done (`len` is then the most it generates).
    pub one_tune: bool,
    /// After the seed, what each stream writes next: text written for the model (each
    /// character replaces the draw, so the model reads it as its own) and lines the model
    /// writes itself; see [`crate::abc::prime::plan`]. Empty: the model writes everything.
    pub script: Vec<Piece>,
    /// Number of the first stream: stream `s` of this call draws as stream `first_stream + s`
    /// would, so batches drawn one after another (`--keep`) give the tunes one big batch would.
    pub first_stream: usize,
    /// Guided sampling: after the seed, each draw is restricted to the characters that keep
    /// the tune valid under the ABC checker ([`crate::abc::guide::Guide`]); the others are
    /// masked and the draw renormalises over the rest. A stream ends when its tune is
    /// complete and the model writes the blank line after it. ABC models only.
    pub guided: bool,
    /// With `guided`: tunes of two or more parts of 8 bars each ([`Guide::shaped`]).
    pub shape: bool,
    /// Text the model reads before the seed (or before its first draw) and that is not
    /// printed: it brings the recurrent state from zero to where training leaves it after a
    /// tune ([`WARM_UP`]). A model trained on long windows has rarely seen the zero state at
    /// the start of a tune, and from it writes noise for a while.
    pub warm_up: Option<String>,
    /// Semitones each finished tune is moved by (0: none): a model trained on one tonic
    /// (`train --tonic`) writes its tunes there, and they are moved to the key asked
    /// ([`key_on_tonic`]). A text that cannot be transposed safely (not readable as one tune)
    /// is left as written and counted ([`GuideStats::untransposed`]).
    pub transpose: i32,
}

/// Whether `sample` warms a model up when neither `--warm-up` nor `--no-warm-up` is given: for
/// a model trained on windows longer than the reference's 64 characters. Trained statefully,
/// such a model has met the zero state at the start of a tune too rarely to write well from it
/// (`model/nottingham`, 128-character windows: 40 valid raw tunes of 100 cold, 55 warmed);
/// the reference model writes as well either way (65.2% cold, 62.8% warmed, 500 tunes).
pub fn warm_up_by_default(train_seq: usize) -> bool {
    train_seq > 64
}

/// The warm-up text of `sample --warm-up`: a one-line tune and the blank line after it, so the
/// model's state is that of the boundary between two tunes when the seed begins.
pub const WARM_UP: &str = "X: 0\nT:x\nM:6/8\nK:G\nGAB|]\n\n";

/// What guided sampling saw (see [`generate_with_stats`]); all zero but `rows` when not guided.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GuideStats {
    /// Draws made under the guide.
    pub draws: u64,
    /// Of those, draws where the model put less than [`STARVED`] of its probability (at the
    /// sampling temperature) on the legal characters: how far it strays from the grammar.
    pub starved: u64,
    /// Streams where no character was legal (the guide led into a corner): left unfinished.
    pub dead_ends: usize,
    /// Streams that ran out of `len` before their tune was complete.
    pub unfinished: usize,
    /// Streams whose draws near the end of `len` were limited to characters after which the
    /// tune can still end in time ([`CLOSE_WINDOW`]).
    pub closed: usize,
    /// Guided streams, and those with at least one starved draw.
    pub tunes: usize,
    /// See `tunes`.
    pub starved_tunes: usize,
    /// Rows the model computed, guided or not: sampler steps times streams (for speed figures).
    pub rows: u64,
    /// Seconds of the sampling loop (from the sampler's reset to the last draw).
    pub seconds: f64,
    /// Steps whose logits came from a run drawn on the device ([`Sampler::run_ahead`]), and of
    /// those, steps where the host drew some stream's character differently (the guide's mask,
    /// a script, or rounding at a boundary) and the run was cut there.
    pub ahead: u64,
    /// See `ahead`.
    pub overruled: u64,
    /// Texts [`SampleOptions::transpose`] could not move (left on the model's tonic).
    pub untransposed: usize,
}

impl GuideStats {
    /// Adds another batch's figures (`--keep` draws several).
    pub fn add(&mut self, o: &GuideStats) {
        self.draws += o.draws;
        self.starved += o.starved;
        self.dead_ends += o.dead_ends;
        self.unfinished += o.unfinished;
        self.closed += o.closed;
        self.tunes += o.tunes;
        self.starved_tunes += o.starved_tunes;
        self.rows += o.rows;
        self.seconds += o.seconds;
        self.ahead += o.ahead;
        self.overruled += o.overruled;
        self.untransposed += o.untransposed;
    }
}

/// See [`GuideStats::starved`].
pub const STARVED: f64 = 1e-3;

impl Default for SampleOptions {
    /// 512 characters of one stream at temperature 1, no seed, draw seed 0.
    fn default() -> Self {
        SampleOptions {
            seed_text: None,
            len: 512,
            temperature: 1.0,
            top_k: None,
            rng_seed: 0,
            count: 1,
            one_tune: false,
            script: Vec::new(),
            first_stream: 0,
            guided: false,
            shape: false,
            warm_up: None,
            transpose: 0,
        }
    }
}

impl SampleOptions {
    /// Characters in each generated text: the seed followed by `len` new ones.
    pub fn chars_per_tune(&self) -> usize {
        self.seed_text.as_deref().map_or(0, |s| s.chars().count()).saturating_add(self.len)
    }

    /// The stream number of the draws of this call's stream `s` (see [`Self::first_stream`]).
    fn stream(&self, s: usize) -> u32 {
        stream::SAMPLE.wrapping_add((self.first_stream + s) as u32)
    }

    /// Checks every value and the size limits ([`MAX_LEN`], [`MAX_COUNT`], [`MAX_TOTAL`]); the
    /// message names the flag and the limit. A seed longer than the training windows is fine:
    /// the LSTM has no fixed context, the seed just primes the state character by character.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(format!("--temperature {} must be a positive number", self.temperature));
        }
        if self.len == 0 {
            return bad("--len 0: nothing to generate; give at least 1".into());
        }
        if self.count == 0 {
            return bad("--count 0: needs at least 1 tune".into());
        }
        if self.top_k == Some(0) {
            return bad("--top-k 0 would leave no character to draw; use at least 1".into());
        }
        if self.count > MAX_COUNT {
            return bad(format!("--count {} is more than the limit of {MAX_COUNT} tunes", self.count));
        }
        let per_tune = self.chars_per_tune();
        if per_tune > MAX_LEN {
            let seed = per_tune - self.len;
            return bad(if seed == 0 {
                format!("--len {} is more than the limit of {MAX_LEN} characters per tune", self.len)
            } else {
                format!(
                    "--seed ({seed} characters) and --len {} make {per_tune} characters per tune, more than the \
                     limit of {MAX_LEN}",
                    self.len
                )
            });
        }
        let total = per_tune.saturating_mul(self.count);
        if total > MAX_TOTAL {
            return bad(format!(
                "--count {} tunes of {per_tune} characters make {total} characters, more than the limit of \
                 {MAX_TOTAL} per run; ask for fewer or shorter tunes (or run several times with other --rng-seed)",
                self.count
            ));
        }
        Ok(())
    }
}

/// Draws one token from `logits: [V]` with the uniform number `u` in [0, 1): softmax at
/// `temperature`, optional top-k, then inverse CDF (in f64, so the draw depends on the
/// probabilities, not on summation noise, except within 1e-12 of a boundary).
pub fn draw(logits: &[f32], temperature: f32, top_k: Option<usize>, u: f32) -> u32 {
    let inv_t = 1.0 / temperature as f64;
    let mut keep: Vec<usize> = (0..logits.len()).collect();
    if let Some(k) = top_k.filter(|&k| k < logits.len()) {
        // Stable order: by logit descending, ties by index.
        keep.sort_by(|&a, &b| logits[b].partial_cmp(&logits[a]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
        keep.truncate(k.max(1));
        keep.sort_unstable();
    }
    let m = keep.iter().map(|&i| logits[i] as f64 * inv_t).fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = keep.iter().map(|&i| (logits[i] as f64 * inv_t - m).exp()).collect();
    let total: f64 = w.iter().sum();
    let target = u as f64 * total;
    let mut acc = 0.0;
    for (&i, &wi) in keep.iter().zip(&w) {
        acc += wi;
        if target < acc {
            return i as u32;
        }
    }
    *keep.last().unwrap_or(&0) as u32
}

/// [`SampleOptions::script`] as token ids, and where each stream stands in it.
struct Forcing {
    /// Forced ids (`Some`) or a line the model writes (`None`).
    pieces: Vec<Option<Vec<u32>>>,
    newline: Option<u32>,
}

impl Forcing {
    fn encode(pieces: &[Piece], vocab: &Vocab) -> Result<Forcing> {
        let pieces = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => vocab.encode(t, "the tune's header (--meter, --key, --title)").map(Some),
                Piece::Line => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Forcing { pieces, newline: vocab.id('\n') })
    }

    /// The token a stream writes next, given the drawn one; `at` is (piece, position in it).
    fn next(&self, at: &mut (usize, usize), drawn: u32) -> u32 {
        while let Some(piece) = self.pieces.get(at.0) {
            match piece {
                Some(ids) if at.1 < ids.len() => {
                    at.1 += 1;
                    return ids[at.1 - 1];
                }
                Some(_) => *at = (at.0 + 1, 0),
                None => {
                    if Some(drawn) == self.newline {
                        *at = (at.0 + 1, 0);
                    }
                    return drawn;
                }
            }
        }
        drawn
    }
}

/// Generates `opts.count` texts with any [`Sampler`]. Each text is the seed followed by the
/// generated characters. Draw k of tune n uses the uniform number `(rng_seed, k, SAMPLE + n)`,
/// so the same seed gives the same tunes on every device and for every `count`.
pub fn generate(sampler: &mut dyn Sampler, vocab: &Vocab, opts: &SampleOptions) -> Result<Vec<String>> {
    generate_with_stats(sampler, vocab, opts).map(|(texts, _)| texts)
}

/// Masks, in `row: [V]`, the characters `guide` refuses (logit -inf) and returns the share of
/// probability at `temperature` the model put on the legal ones (0 when none is legal). With a
/// `budget`, a legal character after which the guide's closer ([`Guide::to_finish`]) could not
/// end the tune within `budget` more characters is masked too (it does not count as illegal).
fn mask_row(row: &mut [f32], chars: &[char], guide: &Guide, temperature: f32, budget: Option<usize>) -> f64 {
    let inv_t = 1.0 / temperature as f64;
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64 * inv_t;
    let (mut total, mut legal) = (0.0f64, 0.0f64);
    for (x, &c) in row.iter_mut().zip(chars) {
        let w = (*x as f64 * inv_t - m).exp();
        total += w;
        let mut after = *guide;
        if after.push(c) {
            legal += w;
            if budget.is_some_and(|b| after.to_finish(b).is_none()) {
                *x = f32::NEG_INFINITY;
            }
        } else {
            *x = f32::NEG_INFINITY;
        }
    }
    if legal > 0.0 { legal / total } else { 0.0 }
}

/// Draws left (this one included) below which a guided stream checks that its tune can still
/// end within `--len`: more than the closer of any state seen needs (tens of characters).
pub const CLOSE_WINDOW: usize = 128;

/// How many characters one character may add to what the closer needs to end the tune (e.g. a
/// `(3` adds three notes, a `P:` line of a missing part a line): while more draws are left than
/// the closer needs plus this, no character can take the end out of reach, and the draw is not
/// filtered. `tests/guide.rs` holds every character of the corpus's tunes to it.
pub const CLOSE_SLACK: usize = 32;

/// The budget for [`mask_row`] of a guided stream with `left` draws (this one included): `Some`
/// when the end is near enough that a character could put it out of reach and the closer can
/// still end the tune; `None` otherwise (no filter). O(`CLOSE_WINDOW`) at most; no allocation.
fn budget(guide: &Guide, left: usize, chars: &[char]) -> Option<usize> {
    if left > guide.close_window() {
        return None;
    }
    let need = guide.to_finish(left)?;
    // The closer's own next character must be one the model can write.
    let next = guide.closing_char()?;
    (left <= need + guide.close_slack() && chars.contains(&next)).then(|| left - 1)
}

/// [`generate`], also returning what the guide saw ([`GuideStats`]) when `opts.guided`.
pub fn generate_with_stats(
    sampler: &mut dyn Sampler,
    vocab: &Vocab,
    opts: &SampleOptions,
) -> Result<(Vec<String>, GuideStats)> {
    opts.validate()?;
    let v = sampler.config().vocab;
    if vocab.len() != v {
        return Err(Error::Shape(format!("vocabulary of {} characters for a model of {v}", vocab.len())));
    }
    let n = opts.count;
    sampler.reset(n)?;
    let mut logits = vec![0.0f32; n * v];
    if let Some(w) = opts.warm_up.as_deref().filter(|w| !w.is_empty()) {
        // Read, not printed, not drawn: the streams' draws stay those of the same seed.
        let mut tokens = vec![0; n];
        for t in vocab.encode(w, "the --warm-up text")? {
            tokens.fill(t);
            sampler.step(&tokens, &mut logits)?;
        }
    }
    // The speed figures count from here (the warm-up is neither timed nor counted).
    let started = std::time::Instant::now();
    let key = Key::new(opts.rng_seed);
    let mut out: Vec<Vec<u32>> = vec![Vec::with_capacity(opts.chars_per_tune()); n];
    let mut remaining = opts.len;
    let chars = vocab.chars();
    let mut stats = GuideStats::default();
    // A meter or key written for the model (--meter, --key) holds for the whole tune.
    let forced = |field: &str| {
        opts.script.iter().any(|p| matches!(p, Piece::Text(t) if t.lines().any(|l| l.starts_with(field))))
    };
    let guide = Guide::new().keep_header(forced("M:"), forced("K:"));
    let guide = if opts.shape { guide.shaped() } else { guide };
    let mut guides = vec![guide; if opts.guided { n } else { 0 }];
    // Sampler steps (seed included), for the speed figures.
    let mut steps = 0u64;
    let refused = |what: &str| {
        Error::Config(format!(
            "guided sampling: {what} is not the start of a tune the guide can follow (it writes the \
             Nottingham edition's subset of ABC); sample with --free"
        ))
    };
    match &opts.seed_text {
        Some(s) if !s.is_empty() => {
            let ids = vocab.encode(s, "--seed text")?;
            for g in guides.iter_mut() {
                if !s.chars().all(|c| g.push(c)) {
                    return Err(refused("the --seed text"));
                }
            }
            let mut tokens = vec![0; n];
            for &t in &ids[..ids.len() - 1] {
                tokens.fill(t);
                sampler.step(&tokens, &mut logits)?;
                steps += 1;
            }
            out.iter_mut().for_each(|o| o.extend_from_slice(&ids));
        }
        _ => {
            for (s, o) in out.iter_mut().enumerate() {
                let u = key.uniform(0, opts.stream(s), 1);
                let first = match guides.get_mut(s) {
                    // Uniform over the characters a tune may start with.
                    Some(g) => {
                        let ok: Vec<u32> = (0..v as u32).filter(|&i| g.allows(chars[i as usize])).collect();
                        let t = *ok.get((u as f64 * ok.len() as f64) as usize).or(ok.last()).ok_or_else(|| {
                            Error::Config("guided sampling: no character of the vocabulary starts a tune".into())
                        })?;
                        g.push(chars[t as usize]);
                        t
                    }
                    None => ((u as f64 * v as f64) as u32).min(v as u32 - 1),
                };
                o.push(first);
            }
            remaining -= 1;
        }
    }
    let mut tokens: Vec<u32> = out.iter().map(|o| *o.last().unwrap_or(&0)).collect();
    // With `one_tune`, a stream is done once "\nX:" appears after what it started with.
    let start = out.first().map_or(0, |o| o.len());
    let next_tune = match (vocab.id('\n'), vocab.id('X'), vocab.id(':')) {
        (Some(nl), Some(x), Some(colon)) if opts.one_tune && !opts.guided => Some([nl, x, colon]),
        _ => None,
    };
    let script = Forcing::encode(&opts.script, vocab)?;
    let mut at = vec![(0usize, 0usize); n];
    let mut done = vec![false; n];
    // Guided streams that the end of `len` steered toward closing, and that starved at least once.
    let (mut closing, mut starved) = (vec![false; guides.len()], vec![false; guides.len()]);
    // An engine that draws on the device runs ahead: its draws are proposals that the host
    // checks against its own, guide and script included (`ahead.at` of `ahead.len` steps used
    // so far), and a run is cut at the first one the host draws differently.
    let mut ahead = Ahead { on: true, want: MAX_AHEAD, ..Ahead::default() };
    let rule = DrawRule { key, temperature: opts.temperature, top_k: opts.top_k, stream0: opts.stream(0) };
    for k in 0..remaining {
        if done.iter().all(|&d| d) {
            break;
        }
        if ahead.on && ahead.at == ahead.len {
            let (l, d) = (&mut ahead.logits, &mut ahead.drawn);
            ahead.len = sampler.run_ahead(&tokens, ahead.want.min(remaining - k), k as u32 + 1, &rule, l, d)?;
            ahead.at = 0;
            ahead.on = ahead.len > 0;
        }
        let proposed = if ahead.on {
            logits.copy_from_slice(&ahead.logits[ahead.at * n * v..(ahead.at + 1) * n * v]);
            stats.ahead += 1;
            Some(ahead.at)
        } else {
            sampler.step(&tokens, &mut logits)?;
            None
        };
        steps += 1;
        for s in 0..n {
            let u = key.uniform(k as u32 + 1, opts.stream(s), 0);
            let row = &mut logits[s * v..(s + 1) * v];
            if let Some(g) = guides.get(s).filter(|_| !done[s]) {
                let budget = budget(g, remaining - k, chars);
                closing[s] |= budget.is_some();
                let legal = mask_row(row, chars, g, opts.temperature, budget);
                stats.draws += 1;
                stats.starved += u64::from(legal < STARVED);
                starved[s] |= legal < STARVED;
                if legal == 0.0 {
                    stats.dead_ends += 1;
                    done[s] = true;
                }
            }
            let drawn = draw(row, opts.temperature, opts.top_k, u);
            let t = script.next(&mut at[s], drawn);
            tokens[s] = t;
            if done[s] {
                continue;
            }
            if let Some(g) = guides.get_mut(s) {
                if !g.push(chars[t as usize]) {
                    return Err(refused("the header written for the model (--meter, --key, --title)"));
                }
                if g.ended() {
                    // The blank line after a complete tune: the stream is done.
                    done[s] = true;
                    continue;
                }
            }
            out[s].push(t);
            if let Some(pat) = next_tune {
                let o = &mut out[s];
                if o.len() >= start + 2 && o.ends_with(&pat) {
                    // Keep the newline that ended the tune; drop "X:" and the blank lines before it.
                    o.truncate(o.len() - 2);
                    while o.len() > start && o.ends_with(&[pat[0], pat[0]]) {
                        o.pop();
                    }
                    done[s] = true;
                }
            }
        }
        if let Some(at) = proposed {
            ahead.at = at + 1;
            if ahead.drawn[at * n..(at + 1) * n] != tokens[..] {
                // The device drew differently (the guide, a script, or rounding at a boundary):
                // its later steps went on from another character. The next run asks for about
                // twice what this one kept, so frequent cuts waste little device time.
                stats.overruled += 1;
                if ahead.at < ahead.len {
                    sampler.rewind(ahead.at)?;
                }
                ahead.len = ahead.at;
                ahead.want = (2 * ahead.at).clamp(MIN_AHEAD, MAX_AHEAD);
            } else if ahead.at == ahead.len {
                ahead.want = (2 * ahead.len).clamp(MIN_AHEAD, MAX_AHEAD);
            }
        }
    }
    stats.unfinished = guides.iter().zip(&done).filter(|(g, d)| !**d && !g.ended()).count();
    stats.closed = closing.iter().filter(|&&c| c).count();
    stats.starved_tunes = starved.iter().filter(|&&c| c).count();
    stats.tunes = guides.len();
    stats.rows = steps * n as u64;
    stats.seconds = started.elapsed().as_secs_f64();
    let mut texts: Vec<String> = out.into_iter().map(|o| vocab.decode(&o)).collect();
    if opts.transpose != 0 {
        for t in &mut texts {
            match crate::abc::transpose::transpose_tune(t, opts.transpose) {
                Ok(moved) => *t = moved,
                Err(_) => stats.untransposed += 1,
            }
        }
    }
    Ok((texts, stats))
}

/// For a model whose tunes were all written on one tonic (`train --tonic`), when no key was
/// asked: each text moved from the key its header names to a key of the same mode drawn from
/// `keys` (the corpus's tunes per key, its `style.json`), weighted by their counts, so that the
/// tunes come in the corpus's keys as often as its tunes do. Text `k` draws with
/// [`crate::rng::Key`] from `rng_seed` and `k` alone. Returns how many texts were left as they
/// were: not readable as one tune (the transposer refuses them), with no key, or of a mode the
/// corpus has no key in.
pub fn move_to_drawn_keys(
    texts: &mut [String],
    keys: &std::collections::BTreeMap<String, usize>,
    rng_seed: u64,
) -> usize {
    use crate::abc::judge::KeyName;
    let keys: Vec<(KeyName, usize)> = keys.iter().filter_map(|(k, &n)| KeyName::parse(k).map(|k| (k, n))).collect();
    let draws = crate::rng::Key::new(rng_seed);
    let mut left = 0;
    for (k, text) in texts.iter_mut().enumerate() {
        let Some(own) = crate::abc::transpose::header_key(text) else {
            left += 1;
            continue;
        };
        let of_mode: Vec<&(KeyName, usize)> = keys.iter().filter(|(key, _)| own.mode == key.mode).collect();
        let total: usize = of_mode.iter().map(|(_, n)| n).sum();
        if total == 0 {
            left += 1;
            continue;
        }
        // A counter no sampling step uses: these draws never repeat a character's.
        let mut at = (draws.uniform(u32::MAX, k as u32, 0) as f64 * total as f64) as usize;
        let mut chosen = &of_mode[0].0;
        for (key, n) in &of_mode {
            if at < *n {
                chosen = key;
                break;
            }
            at -= n;
        }
        let shift = crate::abc::transpose::nearest_shift(own.tonic, chosen.tonic);
        if shift == 0 {
            continue;
        }
        match crate::abc::transpose::transpose_tune(text, shift) {
            Ok(moved) => *text = moved,
            Err(_) => left += 1,
        }
    }
    left
}

/// For a model whose tunes were all written on one tonic (`train --tonic G`): the key it
/// writes a tune in when `asked` is wanted (the tonic with the asked key's mode: `G` for `D`,
/// `Gm` for `Am`) and the semitones that move the tune there afterwards
/// ([`SampleOptions::transpose`]; the nearest shift, -6 to 5).
pub fn key_on_tonic(tonic: &str, asked: &str) -> Result<(String, i32)> {
    use crate::abc::judge::KeyName;
    let t = KeyName::parse(tonic)
        .ok_or_else(|| Error::Config(format!("the checkpoint's tonic {tonic:?} is not a key; is it damaged?")))?;
    let k = KeyName::parse(asked).ok_or_else(|| {
        Error::Config(format!("--key {asked}: not a key; write a tonic and a mode, e.g. G, Am, Dmix, Edor, F#m"))
    })?;
    // The canonical name is the tonic's spelling (a letter, perhaps `#` or `b`), then the mode's.
    let spelled = |n: &str| if n[1..].starts_with(['#', 'b']) { 2 } else { 1 };
    let mode = &k.name[spelled(&k.name)..];
    let written = format!("{}{mode}", &t.name[..spelled(&t.name)]);
    Ok((written, crate::abc::transpose::nearest_shift(t.tonic, k.tonic)))
}

/// The longest and shortest run of steps [`generate_with_stats`] asks an engine to draw ahead.
const MAX_AHEAD: usize = 64;
const MIN_AHEAD: usize = 4;

/// A run of steps drawn on the device ([`Sampler::run_ahead`]) while the host uses it.
#[derive(Default)]
struct Ahead {
    /// Whether runs are asked for (until the engine says it makes none).
    on: bool,
    /// Steps the next run asks for.
    want: usize,
    /// `[len, N, V]` logits and `[len, N]` draws of the run.
    logits: Vec<f32>,
    drawn: Vec<u32>,
    /// Steps of the run, and steps used so far.
    len: usize,
    at: usize,
}

/// What `--keep` asks of a tune, judged by the caller (e.g. the ABC checker and
/// [`crate::abc::judge`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Verdict {
    /// The tune passes.
    pub keep: bool,
    /// It failed the checker.
    pub invalid: bool,
    /// It is a near copy of a training tune.
    pub copy: bool,
    /// It passed the checker but is not shaped like a dance tune ([`Keep::Shaped`]).
    pub unshaped: bool,
}

/// What [`generate_kept`] drew.
#[derive(Clone, Debug, Default)]
pub struct Kept {
    /// The tunes that passed, in stream order (at most the count asked for).
    pub tunes: Vec<String>,
    /// Tunes drawn in all.
    pub drawn: usize,
    /// Of those, how many passed (some of the last batch's may be beyond the count asked for).
    pub passed: usize,
    /// Of those, how many failed the checker, and how many were near copies.
    pub invalid: usize,
    /// See `invalid`.
    pub copies: usize,
    /// Of those, how many were valid but not shaped like a dance tune (`--keep shaped`).
    pub unshaped: usize,
    /// Batches run.
    pub batches: usize,
    /// What guided sampling saw, over all batches.
    pub stats: GuideStats,
}

/// Draws batches of tunes until `opts.count` of them pass `judge`, or `max_attempts` tunes have
/// been drawn. Tune `n` (counting every tune drawn, kept or not) is always the same for the
/// same options and seed, whatever the batch sizes: batch after batch continues the stream
/// numbers ([`SampleOptions::first_stream`]). Batches hold at most `max_batch` streams and grow
/// with the observed rejection rate.
pub fn generate_kept(
    sampler: &mut dyn Sampler,
    vocab: &Vocab,
    opts: &SampleOptions,
    max_attempts: usize,
    max_batch: usize,
    judge: &mut dyn FnMut(&str) -> Verdict,
) -> Result<Kept> {
    opts.validate()?;
    if max_attempts < opts.count {
        return Err(Error::Config(format!(
            "--max-attempts {max_attempts} is fewer than --count {}: every kept tune needs an attempt",
            opts.count
        )));
    }
    let mut kept = Kept::default();
    while kept.tunes.len() < opts.count && kept.drawn < max_attempts {
        let need = opts.count - kept.tunes.len();
        // Expect the acceptance rate seen so far (a first guess of one in two), plus a margin.
        let rate = if kept.drawn == 0 { 0.5 } else { (kept.tunes.len().max(1)) as f64 / kept.drawn as f64 };
        let want = ((need as f64 / rate) * 1.2).ceil() as usize;
        let batch = want.clamp(1, max_batch.max(1)).min(max_attempts - kept.drawn);
        let o = SampleOptions { count: batch, first_stream: opts.first_stream + kept.drawn, ..opts.clone() };
        let (texts, stats) = generate_with_stats(sampler, vocab, &o)?;
        kept.stats.add(&stats);
        kept.batches += 1;
        kept.drawn += batch;
        for t in texts {
            let v = judge(&t);
            kept.invalid += usize::from(v.invalid);
            kept.copies += usize::from(v.copy);
            kept.unshaped += usize::from(v.unshaped);
            kept.passed += usize::from(v.keep);
            if v.keep && kept.tunes.len() < opts.count {
                kept.tunes.push(t);
            }
        }
    }
    Ok(kept)
}

/// A draw seed for a run that was given none: from the clock and the process id, below 2^53 so
/// that it survives a round trip through JSON numbers (JavaScript's doubles).
pub fn clock_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    ((t as u64) ^ ((std::process::id() as u64) << 32)) & ((1 << 53) - 1)
}

/// The most tunes one batch of [`generate_kept`] draws when `count` are asked for: at least 8, so
/// that a few rejected ones do not cost a batch each.
pub fn keep_batch(count: usize) -> usize {
    count.clamp(8, 64).min(MAX_COUNT)
}

/// What `--keep` keeps (the `keep` field of `serve`'s API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Keep {
    /// Tunes the checker calls valid.
    Valid,
    /// Tunes that are not near copies of a --corpus tune.
    Original,
    /// Both.
    Both,
    /// Valid tunes shaped like the corpus's dance tunes: every part a whole number of 4-bar
    /// phrases, 8 bars or more in all ([`crate::abc::judge::structured`]), and the last note the
    /// key's tonic; not a near copy either, when --corpus is given.
    Shaped,
}

impl Keep {
    /// Whether judging this needs the training corpus.
    pub fn needs_corpus(self) -> bool {
        matches!(self, Keep::Original | Keep::Both)
    }
}

/// `--keep`'s verdict on one generated text: valid means one tune, called valid by the checker;
/// a copy is a near copy of a `corpus` tune (never, without a corpus); unshaped, a valid tune
/// that [`Keep::Shaped`] would refuse (judged only for it).
pub fn keep_verdict(text: &str, what: Keep, corpus: Option<&CorpusIndex>) -> Verdict {
    use crate::abc::judge;
    // One parse: the judge's reading carries the checker's verdict; without a corpus or a
    // question of shape the checker alone is cheaper.
    let (invalid, copy, unshaped) = if corpus.is_some() || what == Keep::Shaped {
        let tunes = judge::read_tunes(text);
        let valid = tunes.len() == 1 && tunes[0].valid;
        let copy = corpus.is_some_and(|c| tunes.iter().any(|f| c.originality(f, &|_| false).near_copy));
        let shaped = |f: &judge::Features| judge::structured(f) && f.ends_on_tonic == Some(true);
        (!valid, copy, what == Keep::Shaped && valid && !shaped(&tunes[0]))
    } else {
        let (n, v) = crate::abc::count_valid(text);
        (!(n == 1 && v == 1), false, false)
    };
    let keep = match what {
        Keep::Valid => !invalid,
        Keep::Original => !copy,
        Keep::Both => !invalid && !copy,
        Keep::Shaped => !invalid && !copy && !unshaped,
    };
    Verdict { keep, invalid, copy, unshaped }
}

/// Writes the start of every tune for `wishes` (meter, key, title) in `style`'s header layout
/// ([`plan`]): its first piece of text becomes the seed, which primes every stream alike, and
/// the rest the [`SampleOptions::script`]. Returns the plan's warnings (a meter or key the
/// corpus never uses); errors name the flag.
pub fn steer(opts: &mut SampleOptions, style: Option<&CorpusStyle>, wishes: &Wishes) -> Result<Vec<String>> {
    let (mut pieces, warnings) = plan(style, wishes).map_err(Error::Config)?;
    if let Some(Piece::Text(t)) = pieces.first() {
        opts.seed_text = Some(t.clone());
        pieces.remove(0);
    }
    opts.script = pieces;
    Ok(warnings)
}

/// The training corpus given with `--corpus FILES`, indexed for judging, and its style; `None`
/// for no files. A corpus without any tune is an error.
pub fn read_corpus(files: &[std::path::PathBuf]) -> Result<Option<(CorpusIndex, CorpusStyle)>> {
    if files.is_empty() {
        return Ok(None);
    }
    let texts = crate::abc::cli::read_files(files)?;
    let index = CorpusIndex::build(&texts);
    if index.tunes.is_empty() {
        return Err(Error::Config(format!(
            "--corpus {}: no ABC tunes found (tunes start at lines beginning with X:)",
            files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" ")
        )));
    }
    let style = CorpusStyle::learn(texts.iter().map(|(_, t)| t.as_str()));
    Ok(Some((index, style)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    /// `--keep shaped` on hand-written tunes: an AABB jig of two 8-bar parts ending on its
    /// tonic passes; the same ending off the tonic, a 5-bar tune, and an invalid one do not,
    /// each for its own reason; `valid` keeps the valid ones whatever their shape.
    #[test]
    fn keep_shaped_wants_whole_phrases_and_a_tonic_ending() {
        let part = |last: &str| format!("|:DFA dFA|GBd gBd|AFA dFA|GEE E3|DFA dFA|GBd gBd|AFA GEC|{last}:|\n");
        let tune = |a: &str, b: &str| format!("X:1\nT:T\nM:6/8\nL:1/8\nK:D\n{}{}\n", part(a), part(b));
        let cases = [
            (tune("D3 D3", "d3 d3"), true, false),
            (tune("D3 D3", "E3 E3"), true, true),
            ("X:1\nT:T\nM:6/8\nL:1/8\nK:D\n|:DFA dFA|GBd gBd|AFA dFA|GEE E3|D3 D3:|\n".to_string(), true, true),
            (tune("D3 D3", "d3 d3 d"), false, false),
        ];
        for (text, valid, unshaped) in &cases {
            let v = keep_verdict(text, Keep::Shaped, None);
            assert_eq!((v.invalid, v.unshaped, v.copy), (!valid, *unshaped, false), "{text}");
            assert_eq!(v.keep, *valid && !unshaped, "{text}");
            // `valid` asks nothing of the shape, and does not judge it.
            let v = keep_verdict(text, Keep::Valid, None);
            assert_eq!((v.keep, v.unshaped), (*valid, false), "{text}");
        }
    }

    #[test]
    fn a_key_asked_of_a_model_on_one_tonic_is_written_there_and_moved_by_the_nearest_shift() {
        let on_g = |k: &str| key_on_tonic("G", k).unwrap();
        assert_eq!(on_g("D"), ("G".to_string(), -5));
        assert_eq!(on_g("Am"), ("Gm".to_string(), 2));
        assert_eq!(on_g("F#m"), ("Gm".to_string(), -1));
        assert_eq!(on_g("Bb"), ("G".to_string(), 3));
        assert_eq!(on_g("Edor"), ("Gdor".to_string(), -3));
        assert_eq!(on_g("G"), ("G".to_string(), 0));
        assert_eq!(key_on_tonic("Bb", "Em").unwrap(), ("Bbm".to_string(), 6 - 12));
        assert!(key_on_tonic("G", "H").unwrap_err().to_string().contains("--key H: not a key"));
    }

    #[test]
    fn tunes_on_one_tonic_move_to_keys_of_their_mode_drawn_by_the_corpus_counts() {
        let major = "X:1\nM:6/8\nL:1/8\nK:G\nGAB c2A|d2e fed|g3 G3|]\n";
        let minor = "X:2\nM:6/8\nL:1/8\nK:Gm\nGAB c2A|d2e fed|g3 G3|]\n";
        let broken = "X:3\nM:6/8\nL:1/8\nK:G\n[GAB c2A|]\n";
        let keys: std::collections::BTreeMap<String, usize> =
            [("D".to_string(), 3), ("A".to_string(), 1), ("Am".to_string(), 2)].into_iter().collect();
        let mut texts: Vec<String> = (0..400).map(|k| if k % 4 == 3 { minor } else { major }.to_string()).collect();
        texts.push(broken.to_string());
        let left = move_to_drawn_keys(&mut texts, &keys, 5);
        assert_eq!(left, 1, "only the tune that cannot be read (an unclosed chord) stays");
        assert_eq!(texts[400], broken);
        let key_of = |t: &str| t.lines().find_map(|l| l.strip_prefix("K:")).unwrap().to_string();
        let count = |k: &str| texts[..400].iter().filter(|t| key_of(t) == k).count();
        // Minor tunes go to the corpus's one minor key; major ones to D or A, 3 to 1: of 300,
        // D's count is binomial (300, 0.75), 225 +- 7.5 (one sd); the bounds are 4 sd.
        assert_eq!((count("Am"), count("D") + count("A")), (100, 300));
        assert!((195..=255).contains(&count("D")), "{} in D", count("D"));
        // Each moved tune is the tune moved by the nearest shift: D is 5 below G.
        let d = texts.iter().find(|t| key_of(t) == "D").unwrap();
        assert_eq!(d, &crate::abc::transpose::transpose_tune(major, -5).unwrap());
        // The same seed draws the same keys.
        let mut again: Vec<String> = (0..400).map(|k| if k % 4 == 3 { minor } else { major }.to_string()).collect();
        move_to_drawn_keys(&mut again, &keys, 5);
        assert_eq!(again[..], texts[..400]);
    }

    #[test]
    fn draw_respects_temperature_and_top_k() {
        let logits = [0.0f32, 2.0, 1.0, -1.0];
        // u just below 1 picks the last kept symbol; top-1 always picks the argmax.
        assert_eq!(draw(&logits, 1.0, Some(1), 0.999), 1);
        assert_eq!(draw(&logits, 1.0, Some(2), 0.0), 1);
        assert_eq!(draw(&logits, 1.0, Some(2), 0.999), 2);
        // A very low temperature makes the draw the argmax for any u.
        for u in [0.0, 0.3, 0.99] {
            assert_eq!(draw(&logits, 1e-3, None, u), 1);
        }
        // At temperature 1 the CDF of softmax([0,2,1,-1]) is [0.087, 0.730, 0.966, 1].
        assert_eq!(draw(&logits, 1.0, None, 0.05), 0);
        assert_eq!(draw(&logits, 1.0, None, 0.5), 1);
        assert_eq!(draw(&logits, 1.0, None, 0.9), 2);
        assert_eq!(draw(&logits, 1.0, None, 0.99), 3);
    }

    /// A sampler whose logits always favour the next character of a fixed text, so `generate`
    /// reproduces that text (at a very low temperature) and `one_tune` can be checked exactly.
    struct Script {
        cfg: ModelConfig,
        text: Vec<u32>,
        pos: usize,
    }

    impl Script {
        /// The vocabulary of `text` and a sampler that writes it.
        fn over(text: &str) -> (Vocab, Script) {
            let vocab = Vocab::from_text(text);
            let cfg = ModelConfig { vocab: vocab.len(), embed: 1, hidden: 1, layers: 1, dropout: 0.0 };
            let text = vocab.encode(text, "t").unwrap();
            (vocab, Script { cfg, text, pos: 0 })
        }

        /// Options every test here starts from: seed "X", two streams, near-greedy draws.
        fn options(len: usize) -> SampleOptions {
            SampleOptions {
                seed_text: Some("X".into()),
                len,
                temperature: 0.01,
                rng_seed: 1,
                count: 2,
                ..Default::default()
            }
        }
    }

    impl Sampler for Script {
        fn config(&self) -> &ModelConfig {
            &self.cfg
        }
        fn reset(&mut self, _count: usize) -> Result<()> {
            self.pos = 0;
            Ok(())
        }
        fn step(&mut self, _tokens: &[u32], logits: &mut [f32]) -> Result<()> {
            let v = self.cfg.vocab;
            let next = self.text[(self.pos + 1).min(self.text.len() - 1)];
            for row in logits.chunks_mut(v) {
                row.iter_mut().enumerate().for_each(|(j, x)| *x = if j as u32 == next { 10.0 } else { 0.0 });
            }
            self.pos += 1;
            Ok(())
        }
    }

    #[test]
    fn one_tune_stops_each_stream_before_the_next_x_line() {
        let text = "X:1\nT:a\nabc|\n\n\nX:2\nT:b\ndef|\n";
        let (vocab, mut s) = Script::over(text);
        let mut opts = SampleOptions { one_tune: true, ..Script::options(40) };
        let got = generate(&mut s, &vocab, &opts).unwrap();
        assert_eq!(got, vec!["X:1\nT:a\nabc|\n".to_string(); 2]);
        opts.one_tune = false;
        let raw = generate(&mut s, &vocab, &opts).unwrap();
        assert!(raw[0].starts_with("X:1\nT:a\nabc|\n\n\nX:2\nT:b\ndef|\n"), "{:?}", raw[0]);
    }

    #[test]
    fn guided_streams_end_at_the_blank_line_after_a_complete_tune() {
        let text = "X:1\nM:6/8\nL:1/8\nK:D\nabc def|\n\nX:2\nT:b\n";
        let (vocab, mut s) = Script::over(text);
        let opts = SampleOptions { guided: true, ..Script::options(60) };
        let (got, stats) = generate_with_stats(&mut s, &vocab, &opts).unwrap();
        assert_eq!(got, vec!["X:1\nM:6/8\nL:1/8\nK:D\nabc def|\n".to_string(); 2]);
        assert_eq!((stats.dead_ends, stats.unfinished, stats.starved), (0, 0, 0), "{stats:?}");
        // Unguided, the same model runs on into the next tune.
        let free = generate(&mut s, &vocab, &SampleOptions { guided: false, ..opts.clone() }).unwrap();
        assert!(free[0].contains("X:2"), "{:?}", free[0]);
        // A seed the guide cannot follow is refused, pointing at --free.
        let bad = SampleOptions { seed_text: Some("T:b\n".into()), ..opts };
        let e = generate(&mut s, &vocab, &bad).unwrap_err().to_string();
        assert!(e.contains("--free"), "{e}");
    }

    #[test]
    fn a_script_writes_its_text_and_lets_the_model_write_its_lines() {
        // The model would write "X:1\nT:a\nabc|..." (as the Script sampler above); the script
        // forces "T:" then leaves the title line to the model, then forces "M:6/8\n".
        let text = "X:1\nT:a\nabc|\n6/8M\n";
        let (vocab, mut s) = Script::over(text);
        let opts = SampleOptions {
            script: vec![Piece::Text(":1\nT:".into()), Piece::Line, Piece::Text("M:6/8\n".into())],
            ..Script::options(16)
        };
        let got = generate(&mut s, &vocab, &opts).unwrap();
        // After the forced text the Script sampler, which counts steps, continues where its
        // own text stands at that step: "a\n" is its title line, then the forced meter, then
        // its text resumes ("1\n" .. ) where its step counter is.
        for g in &got {
            assert!(g.starts_with("X:1\nT:a\nM:6/8\n"), "{g:?}");
            assert_eq!(g.chars().count(), 17);
        }
        // A script character outside the vocabulary is refused, naming the flags.
        let bad = SampleOptions { script: vec![Piece::Text("Z".into())], ..opts };
        let e = generate(&mut s, &vocab, &bad).unwrap_err().to_string();
        assert!(e.contains("--key"), "{e}");
    }
}
