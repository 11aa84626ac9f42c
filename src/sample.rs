//! Generation: run the network one character at a time and draw the next character.
//!
//! [`CpuSampler`] implements [`Sampler`] with two paths: a batch of N streams goes through one
//! GEMM per layer per step (`matrixmultiply`), and a single stream through a dedicated
//! matrix-vector kernel over pre-packed weights ([`Gemv`]), which an M=1 GEMM would run 5-10x
//! slower. [`generate`] is device-agnostic: it drives any [`Sampler`] and draws on the host.

use crate::backend::Sampler;
use crate::corpus::Vocab;
use crate::cpu::gemm::{Mat, MatMut, gemm};
use crate::cpu::team::{Shared, SpinBarrier, run_team};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, Params};
use crate::real::Gates;
use crate::real::Real;
use crate::rng::{Key, stream};

/// Hidden units per packed block of the matrix-vector kernel: the block's 4 gates x 32 units =
/// 128 accumulators stay in registers (8 AVX-512 or 16 AVX2 vectors).
const UNITS: usize = 32;

/// A weight matrix `[K, 4H]` repacked for the batch-1 kernel: for each block of `UNITS` (32)
/// hidden units, a contiguous `[K, 4 * UNITS]` panel holding that block's i, f, g, o columns
/// side by side, so one pass over the panel yields all four gates of those units.
#[derive(Clone, Debug)]
pub struct Gemv {
    k: usize,
    panels: Vec<f32>,
}

impl Gemv {
    /// Packs `w: [K, 4H]` (gate column order i, f, g, o). H must be a multiple of `UNITS` (32)
    /// for the fast path; other sizes are padded with zero columns.
    pub fn pack(w: &[f32], k: usize, hidden: usize) -> Self {
        let nb = hidden.div_ceil(UNITS);
        let mut panels = vec![0.0; nb * k * 4 * UNITS];
        for blk in 0..nb {
            for row in 0..k {
                let dst = &mut panels[(blk * k + row) * 4 * UNITS..][..4 * UNITS];
                for gate in 0..4 {
                    for u in 0..UNITS {
                        let unit = blk * UNITS + u;
                        if unit < hidden {
                            dst[gate * UNITS + u] = w[row * 4 * hidden + gate * hidden + unit];
                        }
                    }
                }
            }
        }
        Gemv { k, panels }
    }

    /// `z[b] = x · W` for the units of block `blk`: `x: [K]`, out: `[4 * UNITS]` (i, f, g, o).
    #[inline]
    fn block(&self, blk: usize, x: &[f32], acc: &mut [f32; 4 * UNITS]) {
        let panel = &self.panels[blk * self.k * 4 * UNITS..][..self.k * 4 * UNITS];
        crate::cpu::simd::gemv128(crate::cpu::simd::isa(), &x[..self.k], panel, acc);
    }
}

/// One LSTM layer of the batch-1 path: packed `[x; h] -> 4H` weights and the bias.
#[derive(Clone, Debug)]
struct Layer1 {
    /// Layer 0: packed W_hh only (its input part comes from the per-symbol table).
    /// Above: packed `[W_ih; W_hh]`, `[2H, 4H]`.
    w: Gemv,
    bias: Vec<f32>,
}

/// The CPU sampler.
pub struct CpuSampler {
    cfg: ModelConfig,
    params: Params<f32>,
    /// `[V, 4H]`: embedding · W_ih0 + b0, the layer-0 input projection per symbol.
    table0: Vec<f32>,
    layers1: Vec<Layer1>,
    /// `[N, L, H]` carried state.
    h: Vec<f32>,
    c: Vec<f32>,
    /// The batch-1 step's new state, swapped with `h`, `c` after each step.
    nh: Vec<f32>,
    nc: Vec<f32>,
    n: usize,
    /// Scratch for the batched path.
    z: Vec<f32>,
    xin: Vec<f32>,
    tc: Vec<f32>,
    pool: rayon::ThreadPool,
}

impl CpuSampler {
    /// A sampler for `params`, with its own pool of `threads` (None: one per core).
    pub fn new(params: &Params<f32>, threads: Option<usize>) -> Result<Self> {
        let cfg = params.config;
        cfg.validate()?;
        let (v, e, h) = (cfg.vocab, cfg.embed, cfg.hidden);
        let lo = &params.layout;
        let mut table0 = vec![0.0; v * 4 * h];
        gemm(
            1.0,
            Mat::new(params.get(&lo.embedding), v, e),
            Mat::new(params.get(&lo.lstm[0].w_ih), e, 4 * h),
            0.0,
            MatMut::new(&mut table0, v, 4 * h),
        );
        let b0 = params.get(&lo.lstm[0].b);
        for row in table0.chunks_exact_mut(4 * h) {
            row.iter_mut().zip(b0).for_each(|(a, b)| *a += b);
        }
        let layers1 = lo
            .lstm
            .iter()
            .enumerate()
            .map(|(l, lay)| {
                let w = if l == 0 {
                    Gemv::pack(params.get(&lay.w_hh), h, h)
                } else {
                    let mut cat = params.get(&lay.w_ih).to_vec();
                    cat.extend_from_slice(params.get(&lay.w_hh));
                    Gemv::pack(&cat, 2 * h, h)
                };
                Layer1 { w, bias: params.get(&lay.b).to_vec() }
            })
            .collect();
        if threads == Some(0) {
            return Err(Error::Config("--threads 0: needs at least 1".into()));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .build()
            .map_err(|e| Error::Config(format!("cannot start worker threads: {e}")))?;
        Ok(CpuSampler {
            cfg,
            params: params.clone(),
            table0,
            layers1,
            h: Vec::new(),
            c: Vec::new(),
            nh: Vec::new(),
            nc: Vec::new(),
            n: 0,
            z: Vec::new(),
            xin: Vec::new(),
            tc: Vec::new(),
            pool,
        })
    }

    /// Batch-1 step: the packed matrix-vector kernel with the cell fused per block of units.
    fn step1(&mut self, token: u32, logits: &mut [f32]) {
        let cfg = self.cfg;
        let (h, l_n) = (cfg.hidden, cfg.layers);
        let nb = h.div_ceil(UNITS);
        // Two threads pay off only when each has several unit blocks to stream.
        let nt = if nb >= 4 { self.pool.current_num_threads().min(nb) } else { 1 };
        self.nh.resize(l_n * h, 0.0);
        self.nc.resize(l_n * h, 0.0);
        let barrier = SpinBarrier::new(nt);
        let (snh, snc) = (Shared(self.nh.as_mut_ptr()), Shared(self.nc.as_mut_ptr()));
        let (old_h, old_c) = (&self.h, &self.c);
        let (layers1, table0) = (&self.layers1, &self.table0);
        let team = |me: usize| {
            let mut x: Vec<f32> = Vec::with_capacity(2 * h);
            for (l, layer) in layers1.iter().enumerate() {
                // Input of this layer's packed GEMV: layer 0 reads h only, the others [x; h].
                // SAFETY: layer l-1 of the new state was completed before the last barrier and
                // is not written during layer l.
                x.clear();
                if l > 0 {
                    x.extend_from_slice(unsafe { snh.slice((l - 1) * h, h) });
                }
                x.extend_from_slice(&old_h[l * h..(l + 1) * h]);
                let base: &[f32] = if l == 0 { &table0[token as usize * 4 * h..][..4 * h] } else { &layer.bias };
                for blk in me * nb / nt..(me + 1) * nb / nt {
                    let (u0, n) = (blk * UNITS, UNITS.min(h - blk * UNITS));
                    let mut acc = [0.0f32; 4 * UNITS];
                    for g in 0..4 {
                        acc[g * UNITS..g * UNITS + n].copy_from_slice(&base[g * h + u0..][..n]);
                    }
                    layer.w.block(blk, &x, &mut acc);
                    let mut z = [0.0f32; 4 * UNITS];
                    for g in 0..4 {
                        z[g * n..(g + 1) * n].copy_from_slice(&acc[g * UNITS..g * UNITS + n]);
                    }
                    let mut tc = [0.0f32; UNITS];
                    // SAFETY: units u0..u0+n of layer l are this member's alone.
                    let (hn, cn) = unsafe { (snh.slice_mut(l * h + u0, n), snc.slice_mut(l * h + u0, n)) };
                    f32::cell_forward(Gates::split(&mut z[..4 * n]), &old_c[l * h + u0..][..n], cn, &mut tc[..n], hn);
                }
                barrier.wait();
            }
        };
        if nt > 1 {
            self.pool.install(|| run_team(nt, team));
        } else {
            team(0);
        }
        std::mem::swap(&mut self.h, &mut self.nh);
        std::mem::swap(&mut self.c, &mut self.nc);
        let lo = &self.params.layout;
        let top = &self.h[(l_n - 1) * h..l_n * h];
        dense(self.params.get(&lo.dense_w), self.params.get(&lo.dense_b), top, cfg.vocab, logits);
    }

    /// Batch-N step: per layer one `[N, in] x [in, 4H]` and one `[N, H] x [H, 4H]` GEMM.
    fn step_n(&mut self, tokens: &[u32], logits: &mut [f32]) {
        let cfg = self.cfg;
        let (n, h, l_n, v) = (self.n, cfg.hidden, cfg.layers, cfg.vocab);
        let g4 = 4 * h;
        let lo = self.params.layout.clone();
        self.z.resize(n * g4, 0.0);
        self.xin.resize(n * h, 0.0);
        self.tc.resize(n * h, 0.0);
        let mut hl = vec![0.0f32; n * h];
        let mut cl = vec![0.0f32; n * h];
        let mut cnew = vec![0.0f32; n * h];
        let mut hnew = vec![0.0f32; n * h];
        let CpuSampler { params, table0, h: hs, c: cs, z, xin, tc, pool, .. } = self;
        pool.install(|| {
            for l in 0..l_n {
                for s in 0..n {
                    hl[s * h..][..h].copy_from_slice(&hs[(s * l_n + l) * h..][..h]);
                    cl[s * h..][..h].copy_from_slice(&cs[(s * l_n + l) * h..][..h]);
                }
                let lay = &lo.lstm[l];
                if l == 0 {
                    for (s, &t) in tokens.iter().enumerate() {
                        z[s * g4..][..g4].copy_from_slice(&table0[t as usize * g4..][..g4]);
                    }
                } else {
                    let b = params.get(&lay.b);
                    z.chunks_exact_mut(g4).for_each(|r| r.copy_from_slice(b));
                    gemm(1.0, Mat::new(xin, n, h), Mat::new(params.get(&lay.w_ih), h, g4), 1.0, MatMut::new(z, n, g4));
                }
                gemm(1.0, Mat::new(&hl, n, h), Mat::new(params.get(&lay.w_hh), h, g4), 1.0, MatMut::new(z, n, g4));
                for s in 0..n {
                    let r = s * h..(s + 1) * h;
                    f32::cell_forward(
                        crate::real::Gates::split(&mut z[s * g4..][..g4]),
                        &cl[r.clone()],
                        &mut cnew[r.clone()],
                        &mut tc[r.clone()],
                        &mut hnew[r],
                    );
                }
                for s in 0..n {
                    hs[(s * l_n + l) * h..][..h].copy_from_slice(&hnew[s * h..][..h]);
                    cs[(s * l_n + l) * h..][..h].copy_from_slice(&cnew[s * h..][..h]);
                }
                xin.copy_from_slice(&hnew);
            }
            logits.chunks_exact_mut(v).for_each(|r| r.copy_from_slice(params.get(&lo.dense_b)));
            gemm(1.0, Mat::new(xin, n, h), Mat::new(params.get(&lo.dense_w), h, v), 1.0, MatMut::new(logits, n, v));
        });
    }
}

/// `logits = x · W + b` for one row: `W: [H, V]`, `x: [H]`.
fn dense(w: &[f32], b: &[f32], x: &[f32], v: usize, logits: &mut [f32]) {
    logits.copy_from_slice(b);
    for (xk, row) in x.iter().zip(w.chunks_exact(v)) {
        for (a, &wv) in logits.iter_mut().zip(row) {
            *a += xk * wv;
        }
    }
}

impl Sampler for CpuSampler {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn reset(&mut self, count: usize) -> Result<()> {
        if count == 0 {
            return Err(Error::Config("--count 0: needs at least 1 tune".into()));
        }
        let len = count
            .checked_mul(self.cfg.layers * self.cfg.hidden)
            .ok_or_else(|| Error::Config("--count too large".into()))?;
        self.n = count;
        self.h = vec![0.0; len];
        self.c = vec![0.0; len];
        Ok(())
    }

    fn step(&mut self, tokens: &[u32], logits: &mut [f32]) -> Result<()> {
        let v = self.cfg.vocab;
        if tokens.len() != self.n || logits.len() != self.n * v {
            return Err(Error::Shape(format!(
                "sampler step: {} tokens and {} logits for {} streams of vocabulary {v}",
                tokens.len(),
                logits.len(),
                self.n
            )));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= v) {
            return Err(Error::Shape(format!("token id {t} is outside the vocabulary of {v}")));
        }
        if self.n == 1 {
            self.step1(tokens[0], logits)
        } else {
            self.step_n(tokens, logits)
        }
        Ok(())
    }
}

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
}

impl SampleOptions {
    /// Characters in each generated text: the seed followed by `len` new ones.
    pub fn chars_per_tune(&self) -> usize {
        self.seed_text.as_deref().map_or(0, |s| s.chars().count()).saturating_add(self.len)
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

/// Bytes of memory the ABC checker may take per character of the tune it checks (measured:
/// about 220 on a single tune of a million notes, the worst case found).
pub const CHECKER_BYTES_PER_CHAR: f64 = 256.0;

/// An upper estimate of the peak memory of sampling, in bytes: reading and verifying a
/// checkpoint file of `file_bytes` (the file and its decoded tensors), then the sampler's copy of
/// the weights, its packed panels and state for `count` streams, the generated texts of
/// `chars` characters each (token ids and text), and the ABC checker run on one tune at a time.
pub fn sampling_memory(cfg: &ModelConfig, file_bytes: u64, count: usize, chars: usize) -> f64 {
    const F: f64 = 4.0;
    const PROGRAM: f64 = 16.0 * 1024.0 * 1024.0;
    let p = crate::model::ParamLayout::new(cfg).total as f64;
    let (v, h, l, n) = (cfg.vocab as f64, cfg.hidden as f64, cfg.layers as f64, count as f64);
    let hp = (cfg.hidden.div_ceil(UNITS) * UNITS) as f64;
    let load = 2.0 * file_bytes as f64;
    let sampler = F
        * (2.0 * p // the checkpoint's weights and the sampler's copy
            + v * 4.0 * h // layer-0 table
            + 4.0 * hp * h * (2.0 * l - 1.0) // packed panels
            + 4.0 * n * l * h // h, c and their next values
            + n * (4.0 * h + 6.0 * h) // gate and layer scratch of the batched step
            + 2.0 * n * v); // logits
    let text = n * chars as f64 * (4.0 + 4.0); // token ids, then the text (UTF-8, at most 4 bytes a character)
    let checker = CHECKER_BYTES_PER_CHAR * chars as f64;
    1.1 * (PROGRAM + load.max(sampler + text + checker))
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

/// Generates `opts.count` texts with any [`Sampler`]. Each text is the seed followed by the
/// generated characters. Draw k of tune n uses the uniform number `(rng_seed, k, SAMPLE + n)`,
/// so the same seed gives the same tunes on every device and for every `count`.
pub fn generate(sampler: &mut dyn Sampler, vocab: &Vocab, opts: &SampleOptions) -> Result<Vec<String>> {
    opts.validate()?;
    let v = sampler.config().vocab;
    if vocab.len() != v {
        return Err(Error::Shape(format!("vocabulary of {} characters for a model of {v}", vocab.len())));
    }
    let n = opts.count;
    sampler.reset(n)?;
    let key = Key::new(opts.rng_seed);
    let mut logits = vec![0.0f32; n * v];
    let mut out: Vec<Vec<u32>> = vec![Vec::with_capacity(opts.chars_per_tune()); n];
    let mut remaining = opts.len;
    match &opts.seed_text {
        Some(s) if !s.is_empty() => {
            let ids = vocab.encode(s, "--seed text")?;
            let mut tokens = vec![0; n];
            for &t in &ids[..ids.len() - 1] {
                tokens.fill(t);
                sampler.step(&tokens, &mut logits)?;
            }
            out.iter_mut().for_each(|o| o.extend_from_slice(&ids));
        }
        _ => {
            for (s, o) in out.iter_mut().enumerate() {
                let u = key.uniform(0, stream::SAMPLE + s as u32, 1);
                o.push(((u as f64 * v as f64) as u32).min(v as u32 - 1));
            }
            remaining -= 1;
        }
    }
    let mut tokens: Vec<u32> = out.iter().map(|o| *o.last().unwrap_or(&0)).collect();
    // With `one_tune`, a stream is done once "\nX:" appears after what it started with.
    let start = out.first().map_or(0, |o| o.len());
    let next_tune = match (vocab.id('\n'), vocab.id('X'), vocab.id(':')) {
        (Some(nl), Some(x), Some(colon)) if opts.one_tune => Some([nl, x, colon]),
        _ => None,
    };
    let mut done = vec![false; n];
    for k in 0..remaining {
        if done.iter().all(|&d| d) {
            break;
        }
        sampler.step(&tokens, &mut logits)?;
        for s in 0..n {
            let u = key.uniform(k as u32 + 1, stream::SAMPLE + s as u32, 0);
            let t = draw(&logits[s * v..(s + 1) * v], opts.temperature, opts.top_k, u);
            tokens[s] = t;
            if done[s] {
                continue;
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
    }
    Ok(out.into_iter().map(|o| vocab.decode(&o)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let vocab = Vocab::from_text(text);
        let cfg = ModelConfig { vocab: vocab.len(), embed: 1, hidden: 1, layers: 1, dropout: 0.0 };
        let mut s = Script { cfg, text: vocab.encode(text, "t").unwrap(), pos: 0 };
        let mut opts = SampleOptions {
            seed_text: Some("X".into()),
            len: 40,
            temperature: 0.01,
            top_k: None,
            rng_seed: 1,
            count: 2,
            one_tune: true,
        };
        let got = generate(&mut s, &vocab, &opts).unwrap();
        assert_eq!(got, vec!["X:1\nT:a\nabc|\n".to_string(); 2]);
        opts.one_tune = false;
        let raw = generate(&mut s, &vocab, &opts).unwrap();
        assert!(raw[0].starts_with("X:1\nT:a\nabc|\n\n\nX:2\nT:b\ndef|\n"), "{:?}", raw[0]);
    }
}
