//! The whole network as a sequence of kernels: where every activation lives in `work`, and the
//! forward pass, loss, backward pass and state carry recorded as programs. This file is the GPU
//! twin of `src/cpu/network.rs` and follows it function by function.

use super::adam;
use super::context::{Buf, ProgramBuilder};
use super::embed::{col_sums_list, copy_list, scatter_rows};
use super::kernels::rows_by_symbol;
use super::lstm::{StepArgs, backward_steps, forward_steps};
use super::matmul::{BATCH, Operand, Product, matmul, matmul_batch, split_words};
use super::xent::{XentArgs, softmax_xent};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, ParamLayout};

/// Where one layer's activations live in `work` (word offsets, time-major rows r = t·B + b).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerSlots {
    /// `[T·B, 4H]`: pre-activations, then activations (i, f, g, o); in the backward pass, dz.
    pub act: usize,
    /// `[(T+1)·B, H]`: block 0 holds the carried h0, block t+1 holds h_t.
    pub h: usize,
    /// `[(T+1)·B, H]`: block 0 holds the carried c0, block t+1 holds c_t.
    pub c: usize,
    /// `[T·B, H]`: tanh(c_t).
    pub tc: usize,
    /// `[T·B, H]`: the layer's output y = h ⊙ mask (= h when dropout is off).
    pub y: usize,
}

/// The phases a step's dispatches are recorded under (what `bench --plan` groups by).
pub(crate) mod phase {
    pub const INPUT: &str = "input projections";
    pub const RECURRENT_FORWARD: &str = "recurrent forward";
    pub const OUTPUT: &str = "output layer";
    pub const LOSS: &str = "loss";
    pub const OUTPUT_BACKWARD: &str = "output backward";
    pub const RECURRENT_BACKWARD: &str = "recurrent backward";
    pub const WEIGHT_GRADIENTS: &str = "weight gradients";
    pub const OPTIMIZER: &str = "norm and Adam";
    pub const CARRY: &str = "state carry";
}

/// Scalars of a step, at `Net::scalars`: Σ loss, Σ hits, ‖g‖, finite (1/0), clip scale, Adam's
/// t (u32 bits).
pub(crate) const SCALARS: usize = 8;

/// The network for one window shape `(B, T)`: the layout of `work` and `ids`.
#[derive(Clone, Debug)]
pub(crate) struct Net {
    pub cfg: ModelConfig,
    pub layout: ParamLayout,
    pub b: usize,
    pub t: usize,
    pub layers: Vec<LayerSlots>,
    /// `[V, 4H]` per-symbol layer-0 projection P = embedding · W_ih0.
    pub p0: usize,
    /// `[V, 4H]` dz of layer 0 summed per input symbol.
    pub g0: usize,
    /// `[T·B, V]` logits.
    pub logits: usize,
    /// `[T·B, V]` d loss / d logits.
    pub dlogits: usize,
    /// `[T·B, H]` d loss / d (output of the top layer); the layers below compute theirs step by
    /// step in the wavefront.
    pub dy: usize,
    /// `[L, B, H]` each layer's carried dc of the backward time loop.
    pub dc: usize,
    /// Partial products of split-K GEMMs, `split_len` words.
    pub split: usize,
    pub split_len: usize,
    /// `[2·T·B]` per-row loss, then per-row hit.
    pub rows: usize,
    /// Partial sums of ‖g‖².
    pub parts: usize,
    /// `[SCALARS]` the step's results.
    pub scalars: usize,
    /// Words of `work`.
    pub work_len: usize,
    /// ids: `[T·B]` inputs, `[T·B]` targets, `[V+1]` row-list starts, `[T·B]` rows by symbol.
    pub ids_x: usize,
    pub ids_y: usize,
    pub ids_csr: usize,
    pub ids_rows: usize,
    /// Words of `ids`.
    pub ids_len: usize,
}

impl Net {
    /// Lays out `work` and `ids` for windows of `b` streams × `t` steps.
    pub fn new(cfg: &ModelConfig, b: usize, t: usize) -> Result<Self> {
        cfg.validate()?;
        let layout = ParamLayout::new(cfg);
        let (v, h) = (cfg.vocab, cfg.hidden);
        let n = b * t;
        let mut off = 0usize;
        let mut take = |len: usize| {
            let at = off;
            off += len;
            at
        };
        let layers = (0..cfg.layers)
            .map(|_| LayerSlots {
                act: take(n * 4 * h),
                h: take((t + 1) * b * h),
                c: take((t + 1) * b * h),
                tc: take(n * h),
                y: take(n * h),
            })
            .collect();
        let p0 = take(v * 4 * h);
        let g0 = take(v * 4 * h);
        let logits = take(n * v);
        let dlogits = take(n * v);
        let dy = take(n * h);
        let dc = take(cfg.layers * b * h);
        // Every GEMM shape of the step (m, n, k); the largest split sets the scratch.
        let (e, g4) = (cfg.embed, 4 * h);
        // The weight-gradient batch (dW_d, and W_hh and W_ih of the layers) counts as one
        // product of its stacked rows.
        let batch = (h * (2 * cfg.layers).min(BATCH), g4.max(v), n);
        let shapes = [(v, g4, e), (n, g4, h), (n, v, h), batch, (n, h, v), (e, g4, v), (v, e, g4)];
        let split_len = shapes.into_iter().map(split_words).max().unwrap_or(0);
        let split = take(split_len);
        let rows = take(2 * n);
        let parts = take(adam::norm_parts(layout.total));
        let scalars = take(SCALARS);
        let work_len = off;
        let ids_len = 3 * n + v + 1;
        let biggest = work_len.max(2 * layout.total).max(ids_len);
        if biggest > u32::MAX as usize / 4 {
            return Err(Error::Gpu(format!(
                "the model needs {biggest} words in one GPU buffer, more than 32-bit indices reach; \
                 use a smaller model or batch, or --device cpu"
            )));
        }
        Ok(Net {
            cfg: *cfg,
            layout,
            b,
            t,
            layers,
            p0,
            g0,
            logits,
            dlogits,
            dy,
            dc,
            split,
            split_len,
            rows,
            parts,
            scalars,
            work_len,
            ids_x: 0,
            ids_y: n,
            ids_csr: 2 * n,
            ids_rows: 2 * n + v + 1,
            ids_len,
        })
    }

    /// `N = T·B`.
    pub fn n(&self) -> usize {
        self.b * self.t
    }

    /// The `ids` contents for a window: `x, y: [B, T]` batch-major token ids, stored
    /// time-major, then the rows of each input symbol (ascending) for the layer-0 scatter.
    /// `y` may be None (sampling). Checks lengths and the vocabulary, as the CPU engine does.
    pub fn ids_for(&self, x: &[u32], y: Option<&[u32]>) -> Result<Vec<u32>> {
        let (b, t, v) = (self.b, self.t, self.cfg.vocab);
        let n = b * t;
        let mut out = vec![0u32; self.ids_len];
        let (head, ys) = out.split_at_mut(self.ids_y);
        let yt = y.map(|_| &mut ys[..n]);
        let window = crate::model::BatchConfig { batch: b, seq: t };
        crate::corpus::window_time_major(x, y, window, v, &mut head[self.ids_x..self.ids_x + n], yt)?;
        // The rows of each input symbol, ascending, for the layer-0 scatter-add.
        let (starts, rows) = rows_by_symbol(&out[self.ids_x..self.ids_x + n], v);
        out[self.ids_csr..self.ids_csr + v + 1].copy_from_slice(&starts);
        out[self.ids_rows..self.ids_rows + n].copy_from_slice(&rows);
        Ok(out)
    }

    /// Records `P = embedding · W_ih0` (`[V, E] x [E, 4H]`).
    pub fn record_p0(&self, pb: &mut ProgramBuilder) -> Result<()> {
        let (v, e, g4) = (self.cfg.vocab, self.cfg.embed, 4 * self.cfg.hidden);
        let lo = &self.layout;
        pb.phase(phase::INPUT);
        pb.split_scratch = Some((self.split, self.split_len));
        matmul(
            pb,
            (v, g4, e),
            Operand::mat(Buf::Params, lo.embedding.range.start, e),
            Operand::mat(Buf::Params, lo.lstm[0].w_ih.range.start, g4),
            Operand::mat(Buf::Work, self.p0, g4),
            None,
            false,
        )
    }

    /// Records the forward pass over the window (src/cpu/network.rs `forward`): every layer,
    /// then the logits. `with_p0`: recompute P first (training: the weights change every step).
    ///
    /// ```text
    /// wavefront d = 0 .. T+L-2:            one fused dispatch per d (per 3 layers)
    ///     every layer l with t = d - l in 0..T:
    ///         z_t = y^{l-1}_t·W_ih + b + h_{t-1}·W_hh (layer 0: P[x_t] + b + h_{t-1}·W_hh)
    ///         cell; y_t = h_t ⊙ mask_t
    /// logits   = Y_top·W_d + b_d
    /// ```
    ///
    /// Layer l at step t needs the layer below at step t, written one dispatch earlier, and its
    /// own step t-1, also one dispatch earlier: the steps of one dispatch are independent.
    pub fn record_forward(&self, pb: &mut ProgramBuilder, with_p0: bool) -> Result<()> {
        let (b, t, h) = (self.b, self.t, self.cfg.hidden);
        pb.split_scratch = Some((self.split, self.split_len));
        if with_p0 {
            self.record_p0(pb)?;
        }
        pb.phase(phase::RECURRENT_FORWARD);
        let layers = self.cfg.layers;
        for d in 0..t + layers - 1 {
            let steps: Vec<StepArgs> =
                (0..layers).filter(|&l| d >= l && d - l < t).map(|l| self.forward_args(l, d - l)).collect();
            forward_steps(pb, (b, h), &steps)?;
        }
        self.record_logits(pb, 0, t)
    }

    /// The forward step of layer `l` at time `ti`: where it reads and writes.
    pub fn forward_args(&self, l: usize, ti: usize) -> StepArgs {
        let (b, h) = (self.b, self.cfg.hidden);
        let (g4, bh) = (4 * h, b * h);
        let (s, lay) = (&self.layers[l], &self.layout.lstm[l]);
        StepArgs {
            layer: l,
            row0: ti * b,
            z: s.act + ti * b * g4,
            hprev: s.h + ti * bh,
            cprev: s.c + ti * bh,
            c: s.c + (ti + 1) * bh,
            h_out: s.h + (ti + 1) * bh,
            tc: s.tc + ti * bh,
            y: s.y + ti * bh,
            w: lay.w_hh.range.start,
            input: (l > 0).then(|| (self.layers[l - 1].y + ti * bh, lay.w_ih.range.start, lay.b.range.start)),
            symbols: (l == 0).then(|| (self.ids_x + ti * b, self.p0, lay.b.range.start)),
            ..Default::default()
        }
    }

    /// The backward step of layer `l` at time `ti`: where it reads and writes.
    pub fn backward_args(&self, l: usize, ti: usize) -> StepArgs {
        let (b, h, t) = (self.b, self.cfg.hidden, self.t);
        let (g4, bh) = (4 * h, b * h);
        let (s, lo) = (&self.layers[l], &self.layout);
        let top = l + 1 == self.cfg.layers;
        StepArgs {
            layer: l,
            row0: ti * b,
            z: s.act + ti * b * g4,
            cprev: s.c + ti * bh,
            tc: s.tc + ti * bh,
            w: lo.lstm[l].w_hh.range.start,
            dy: top.then(|| self.dy + ti * bh),
            above: (!top).then(|| (self.layers[l + 1].act + ti * b * g4, lo.lstm[l + 1].w_ih.range.start)),
            dc: self.dc + l * bh,
            dznext: (ti + 1 < t).then(|| s.act + (ti + 1) * b * g4),
            ..Default::default()
        }
    }

    /// Records the logits of time steps `t0 .. t0 + steps`: `Y_top·W_d + b_d` on their rows.
    pub fn record_logits(&self, pb: &mut ProgramBuilder, t0: usize, steps: usize) -> Result<()> {
        let (b, h, v) = (self.b, self.cfg.hidden, self.cfg.vocab);
        let lo = &self.layout;
        let top = self.layers[self.cfg.layers - 1].y;
        pb.phase(phase::OUTPUT);
        matmul(
            pb,
            (steps * b, v, h),
            Operand::mat(Buf::Work, top + t0 * b * h, h),
            Operand::mat(Buf::Params, lo.dense_w.range.start, v),
            Operand::mat(Buf::Work, self.logits + t0 * b * v, v),
            Some(lo.dense_b.range.start),
            false,
        )
    }

    /// Records the softmax cross-entropy and the loss/hit sums; `grad`: also d loss / d logits.
    pub fn record_loss(&self, pb: &mut ProgramBuilder, grad: bool) -> Result<()> {
        pb.phase(phase::LOSS);
        softmax_xent(
            pb,
            &XentArgs {
                rows: self.n(),
                v: self.cfg.vocab,
                logits: self.logits,
                dlogits: grad.then_some(self.dlogits),
                targets: self.ids_y,
                rows_out: self.rows,
                out: self.scalars,
            },
        )
    }

    /// Records the backward pass (src/cpu/network.rs `backward` and `layer_backward`): every
    /// gradient tensor into `grads`, each fully overwritten.
    ///
    /// ```text
    /// dW_d = Y_topᵀ·dlogits,  db_d = Σ_rows dlogits,  dY_top = dlogits·W_dᵀ
    /// wavefront d = 0 .. T+L-2, the top layer leading:    one fused dispatch per d (per 3 layers)
    ///     every layer l with t = T-1 - (d - (L-1-l)) in 0..T:
    ///         dY_l[t] = dY_top[t] (top) or dZ_{l+1}[t]·W_ih^{l+1}ᵀ (below)
    ///         dz_t, dc = step_backward(...)
    /// per layer:
    ///     dW_hh = H_prevᵀ·dZ,  db = Σ_rows dZ
    ///     l > 0: dW_ih = Y_{l-1}ᵀ·dZ
    ///     l = 0: G[v] = Σ_{r: x_r = v} dZ[r];  dW_ih0 = Eᵀ·G;  dE = G·W_ih0ᵀ
    /// ```
    ///
    /// Layer l at step t needs the layer above at step t and its own step t+1, both one
    /// dispatch earlier.
    pub fn record_backward(&self, pb: &mut ProgramBuilder) -> Result<()> {
        let (b, t, h, v, e) = (self.b, self.t, self.cfg.hidden, self.cfg.vocab, self.cfg.embed);
        let (n, g4) = (self.n(), 4 * h);
        let lo = &self.layout;
        let top = self.layers[self.cfg.layers - 1].y;
        pb.phase(phase::OUTPUT_BACKWARD);
        pb.split_scratch = Some((self.split, self.split_len));
        matmul(
            pb,
            (n, h, v),
            Operand::mat(Buf::Work, self.dlogits, v),
            Operand::mat(Buf::Params, lo.dense_w.range.start, v).t(),
            Operand::mat(Buf::Work, self.dy, h),
            None,
            false,
        )?;
        pb.phase(phase::RECURRENT_BACKWARD);
        let layers = self.cfg.layers;
        for d in 0..t + layers - 1 {
            // The top layer leads: layer l is at step T-1 - (d - (L-1-l)).
            let steps: Vec<StepArgs> = (0..layers)
                .rev()
                .filter(|&l| d + l + 1 >= layers && d + l + 1 - layers < t)
                .map(|l| self.backward_args(l, t - 1 - (d + l + 1 - layers)))
                .collect();
            backward_steps(pb, (b, h), &steps)?;
        }
        // Every product Xᵀ·dY with X: [T·B, H] at once: dW_d = Y_topᵀ·dlogits, and per layer
        // dW_hh = H_prevᵀ·dZ (H_prev = blocks 0..T of h) and, above layer 0, dW_ih = Y_{l-1}ᵀ·dZ;
        // then every bias gradient, db = Σ_rows dZ and db_d = Σ_rows dlogits.
        pb.phase(phase::WEIGHT_GRADIENTS);
        let mut products = vec![Product { a: top, b: self.dlogits, c: lo.dense_w.range.start, n: v }];
        let mut biases = vec![(self.dlogits, lo.dense_b.range.start, v)];
        for (l, s) in self.layers.iter().enumerate() {
            let lay = &lo.lstm[l];
            products.push(Product { a: s.h, b: s.act, c: lay.w_hh.range.start, n: g4 });
            if l > 0 {
                products.push(Product { a: self.layers[l - 1].y, b: s.act, c: lay.w_ih.range.start, n: g4 });
            }
            biases.push((s.act, lay.b.range.start, g4));
        }
        matmul_batch(pb, (h, n), Operand::mat(Buf::Work, 0, h).t(), (Buf::Work, Buf::Grads), &products)?;
        col_sums_list(pb, n, &biases)?;
        // Layer 0: G[v] = Σ_{r: x_r = v} dZ[r];  dW_ih0 = Eᵀ·G;  dE = G·W_ih0ᵀ.
        let (s, lay) = (&self.layers[0], &lo.lstm[0]);
        scatter_rows(pb, (v, g4), n, s.act, self.g0, self.ids_rows, self.ids_csr)?;
        matmul(
            pb,
            (e, g4, v),
            Operand::mat(Buf::Params, lo.embedding.range.start, e).t(),
            Operand::mat(Buf::Work, self.g0, g4),
            Operand::mat(Buf::Grads, lay.w_ih.range.start, g4),
            None,
            false,
        )?;
        matmul(
            pb,
            (v, e, g4),
            Operand::mat(Buf::Work, self.g0, g4),
            Operand::mat(Buf::Params, lay.w_ih.range.start, g4).t(),
            Operand::mat(Buf::Grads, lo.embedding.range.start, e),
            None,
            false,
        )?;
        Ok(())
    }

    /// Records ‖g‖, the finiteness flag and the clipping scale (into the scalars); with
    /// `update`, a finite step advances Adam's t (scalar 5).
    pub fn record_norm(&self, pb: &mut ProgramBuilder, update: bool) -> Result<()> {
        pb.phase(phase::OPTIMIZER);
        adam::grad_norm(pb, self.layout.total, self.parts, self.scalars, update)
    }

    /// Records the Adam update of every parameter.
    pub fn record_adam(&self, pb: &mut ProgramBuilder) -> Result<()> {
        pb.phase(phase::OPTIMIZER);
        adam::update(pb, self.layout.total, self.scalars)
    }

    /// Records the carry: the final (h, c) of every layer becomes the next window's (h0, c0).
    pub fn record_carry(&self, pb: &mut ProgramBuilder) -> Result<()> {
        let bh = self.b * self.cfg.hidden;
        pb.phase(phase::CARRY);
        let regions: Vec<(usize, usize)> =
            self.layers.iter().flat_map(|s| [(s.h + self.t * bh, s.h), (s.c + self.t * bh, s.c)]).collect();
        copy_list(pb, bh, &regions)
    }

    /// Records one step: forward, loss, and (`backward`) the backward pass and ‖g‖, then
    /// (`update`) Adam, then the carry. The training step is `record_step(pb, true, true)`.
    pub fn record_step(&self, pb: &mut ProgramBuilder, update: bool, backward: bool) -> Result<()> {
        self.record_forward(pb, true)?;
        self.record_loss(pb, backward)?;
        if backward {
            self.record_backward(pb)?;
            self.record_norm(pb, update)?;
        }
        if update {
            self.record_adam(pb)?;
        }
        self.record_carry(pb)
    }

    /// Word offsets of every layer's carried (h, c) blocks: `(h0, c0)` per layer, each `[B, H]`.
    pub fn state_slots(&self) -> Vec<(usize, usize)> {
        self.layers.iter().map(|s| (s.h, s.c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Net {
        let cfg = ModelConfig { vocab: 4, embed: 3, hidden: 2, layers: 2, dropout: 0.0 };
        Net::new(&cfg, 2, 3).unwrap()
    }

    #[test]
    fn ids_are_time_major_with_the_rows_of_each_symbol_in_order() {
        let net = tiny();
        // x: [B=2, T=3] batch-major; time-major rows r = t*B + b.
        let x = [1, 3, 1, 0, 1, 2];
        let y = [3, 1, 0, 1, 2, 2];
        let ids = net.ids_for(&x, Some(&y)).unwrap();
        assert_eq!(&ids[net.ids_x..net.ids_x + 6], &[1, 0, 3, 1, 1, 2]);
        assert_eq!(&ids[net.ids_y..net.ids_y + 6], &[3, 1, 1, 2, 0, 2]);
        // Symbol 0: row 1; symbol 1: rows 0, 3, 4; symbol 2: row 5; symbol 3: row 2.
        assert_eq!(&ids[net.ids_csr..net.ids_csr + 5], &[0, 1, 4, 5, 6]);
        assert_eq!(&ids[net.ids_rows..net.ids_rows + 6], &[1, 0, 3, 4, 5, 2]);
    }

    #[test]
    fn bad_windows_are_errors() {
        let net = tiny();
        assert!(net.ids_for(&[0; 5], None).is_err());
        assert!(net.ids_for(&[0; 6], Some(&[0; 7])).is_err());
        assert!(net.ids_for(&[0, 0, 0, 0, 0, 4], None).is_err());
        assert!(net.ids_for(&[0; 6], Some(&[9, 0, 0, 0, 0, 0])).is_err());
    }

    #[test]
    fn work_regions_do_not_overlap() {
        let net = tiny();
        let (n, h, g4, v) = (6, 2, 8, 4);
        let mut regions: Vec<(usize, usize)> = Vec::new();
        for s in &net.layers {
            regions.extend([(s.act, n * g4), (s.h, 4 * 2 * h), (s.c, 4 * 2 * h)]);
            regions.extend([(s.tc, n * h), (s.y, n * h)]);
        }
        regions.extend([(net.p0, v * g4), (net.g0, v * g4), (net.logits, n * v)]);
        regions.extend([(net.dlogits, n * v), (net.dy, n * h), (net.dc, 2 * 2 * h)]);
        regions.extend([(net.rows, 2 * n), (net.scalars, SCALARS), (net.split, net.split_len)]);
        regions.sort();
        for w in regions.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{w:?}");
        }
        assert!(regions.last().unwrap().0 + regions.last().unwrap().1 <= net.work_len);
    }
}
