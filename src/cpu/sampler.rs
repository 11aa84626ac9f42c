//! The CPU's [`Sampler`]: the trained network run forward one character at a time, for one
//! stream or a batch of N.
//!
//! A batch of N streams goes through two GEMMs per layer per step, one for the input part and
//! one for the recurrent part ([`super::gemm`]); a single stream through a dedicated matrix-vector kernel
//! over pre-packed weights ([`Gemv`], SIMD in [`super::simd::gemv128`]), which an M=1 GEMM
//! would run 5-10x slower. Layer 0's input part comes from a per-symbol table in both.

use super::gemm::{Mat, MatMut, gemm};
use super::kernels::CpuReal;
use super::team::{Shared, SpinBarrier, run_team};
use crate::backend::Sampler;
use crate::error::{Error, Result};
use crate::model::cell::Gates;
use crate::model::{ModelConfig, Params};

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
struct StreamLayer {
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
    stream_layers: Vec<StreamLayer>,
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
    /// The bytes a sampler for `cfg` holds with `count` streams: the weights (the caller's and
    /// this copy), the layer-0 table, the packed panels, the carried state and the scratch of
    /// the batched step, the logits. An upper estimate, for refusing what cannot fit.
    pub fn memory_bytes(cfg: &ModelConfig, count: usize) -> f64 {
        const F: f64 = 4.0;
        let p = crate::model::ParamLayout::new(cfg).total as f64;
        let (v, h, l, n) = (cfg.vocab as f64, cfg.hidden as f64, cfg.layers as f64, count as f64);
        let hp = (cfg.hidden.div_ceil(UNITS) * UNITS) as f64;
        F * (2.0 * p // the checkpoint's weights and the sampler's copy
            + v * 4.0 * h // layer-0 table
            + 4.0 * hp * h * (2.0 * l - 1.0) // packed panels
            + 4.0 * n * l * h // h, c and their next values
            + n * (4.0 * h + 6.0 * h) // gate and layer scratch of the batched step
            + 2.0 * n * v) // logits
    }

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
        let stream_layers = lo
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
                StreamLayer { w, bias: params.get(&lay.b).to_vec() }
            })
            .collect();
        let pool = super::team::pool(threads)?;
        Ok(CpuSampler {
            cfg,
            params: params.clone(),
            table0,
            stream_layers,
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
    fn step_one_stream(&mut self, token: u32, logits: &mut [f32]) {
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
        let (stream_layers, table0) = (&self.stream_layers, &self.table0);
        let team = |me: usize| {
            let mut x: Vec<f32> = Vec::with_capacity(2 * h);
            for (l, layer) in stream_layers.iter().enumerate() {
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
    fn step_streams(&mut self, tokens: &[u32], logits: &mut [f32]) {
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
                        Gates::split(&mut z[s * g4..][..g4]),
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
        crate::backend::check_stream_count(count)?;
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
            self.step_one_stream(tokens[0], logits)
        } else {
            self.step_streams(tokens, logits)
        }
        Ok(())
    }
}
