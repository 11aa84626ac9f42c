//! [`KernelRunner`]: each kernel alone, on host data, so tests can hold it against its CPU
//! counterpart (and benches can time it). The training step records the same kernels through
//! `net.rs`, not through the runner; of this file only `rows_by_symbol` (the layer-0 scatter's
//! row lists) is on the training path.

use super::context::{Buf, Gpu, ProgramBuilder, StepUniform, Storage};
use super::{adam, embed, lstm, matmul, xent};
use crate::error::{Error, Result};
use crate::rng::Key;

/// A device buffer a GEMM operand can be placed in (each placement is its own pipeline variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The parameter buffer (A and B only).
    Params,
    /// The gradient buffer.
    Grads,
    /// The activation buffer.
    Work,
}

impl Place {
    fn buf(self) -> Buf {
        match self {
            Place::Params => Buf::Params,
            Place::Grads => Buf::Grads,
            Place::Work => Buf::Work,
        }
    }
}

/// Dropout of one LSTM step: masks from `(key, counter)`, stream `DROPOUT + layer`, index
/// `(row0 + b)·H + j`, as in `src/cpu/network.rs`.
#[derive(Clone, Copy, Debug)]
pub struct StepDropout {
    /// Key from `--rng-seed`.
    pub key: Key,
    /// Step counter.
    pub counter: u32,
    /// Layer index l.
    pub layer: u32,
    /// t·B: time-major row of the step's first batch row.
    pub row0: u32,
    /// Dropout probability p.
    pub p: f32,
}

/// What one forward LSTM step leaves behind (all `[B, ..]` row-major).
#[derive(Clone, Debug)]
pub struct LstmForward {
    /// `[B, 4H]` activations (i, f, g, o).
    pub act: Vec<f32>,
    /// `[B, H]` c_t.
    pub c: Vec<f32>,
    /// `[B, H]` tanh(c_t).
    pub tc: Vec<f32>,
    /// `[B, H]` h_t.
    pub h: Vec<f32>,
    /// `[B, H]` y_t = h_t ⊙ mask_t.
    pub y: Vec<f32>,
}

/// What the softmax cross-entropy kernel computes.
#[derive(Clone, Debug)]
pub struct XentOut {
    /// `[N]` per-row loss (nats).
    pub loss: Vec<f32>,
    /// `[N]` 1 where the argmax is the target, else 0.
    pub hit: Vec<f32>,
    /// `[N, V]` (softmax - onehot) / N.
    pub dlogits: Vec<f32>,
    /// Σ loss, from the reduction kernel.
    pub loss_sum: f32,
    /// Σ hit, from the reduction kernel.
    pub hit_sum: f32,
}

/// What the norm and Adam kernels leave behind.
#[derive(Clone, Debug)]
pub struct AdamOut {
    /// Updated parameters.
    pub params: Vec<f32>,
    /// Updated first moments.
    pub m: Vec<f32>,
    /// Updated second moments.
    pub v: Vec<f32>,
    /// ‖g‖ before clipping.
    pub norm: f32,
    /// False when the loss or ‖g‖ was not finite or ‖g‖ too large for Adam's f32 moments
    /// (nothing was updated).
    pub in_range: bool,
}

/// Words of padding before each region, so offsets are exercised (not all zero).
const PAD: usize = 3;

/// Host-side images of the buffers a test program binds.
#[derive(Default)]
struct Arena {
    params: Vec<f32>,
    grads: Vec<f32>,
    work: Vec<f32>,
    opt: Vec<f32>,
    ids: Vec<u32>,
}

impl Arena {
    fn vec(&mut self, b: Buf) -> &mut Vec<f32> {
        match b {
            Buf::Params => &mut self.params,
            Buf::Grads => &mut self.grads,
            Buf::Work => &mut self.work,
        }
    }

    /// Places `data` in `b` after a few words of padding; returns its offset.
    fn put(&mut self, b: Buf, data: &[f32]) -> usize {
        let v = self.vec(b);
        v.extend(std::iter::repeat_n(f32::NAN, PAD));
        let at = v.len();
        v.extend_from_slice(data);
        at
    }

    /// Reserves `len` words of `b` filled with NaN (a kernel that fails to write shows).
    fn reserve(&mut self, b: Buf, len: usize) -> usize {
        self.put(b, &vec![f32::NAN; len])
    }

    fn put_ids(&mut self, data: &[u32]) -> usize {
        self.ids.extend([u32::MAX; PAD]);
        let at = self.ids.len();
        self.ids.extend_from_slice(data);
        at
    }
}

fn check_len(what: &str, data: &[f32], want: usize) -> Result<()> {
    if data.len() != want {
        return Err(Error::Shape(format!("{what} holds {} values, needs {want}", data.len())));
    }
    Ok(())
}

/// Runs single kernels on host data (for tests and benchmarks).
pub struct KernelRunner {
    gpu: Gpu,
}

impl KernelRunner {
    /// Opens the adapter; [`Error::Gpu`] when there is none.
    pub fn new() -> Result<Self> {
        Ok(KernelRunner { gpu: Gpu::new()? })
    }

    /// The adapter in use: "name (backend)".
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }

    /// Uploads `arena`, records with `f`, runs once, and returns the storage for readback.
    fn run(
        &self,
        arena: &Arena,
        step: StepUniform,
        f: impl FnOnce(&mut ProgramBuilder) -> Result<()>,
    ) -> Result<Storage> {
        let gpu = &self.gpu;
        let st = Storage::new(
            gpu,
            arena.params.len(),
            arena.grads.len(),
            arena.opt.len(),
            arena.work.len(),
            arena.ids.len(),
        )?;
        gpu.write(&st.params, 0, &arena.params);
        gpu.write(&st.grads, 0, &arena.grads);
        gpu.write(&st.opt, 0, &arena.opt);
        gpu.write(&st.work, 0, &arena.work);
        gpu.write(&st.ids, 0, &arena.ids);
        gpu.write(&st.step, 0, std::slice::from_ref(&step));
        let mut pb = ProgramBuilder::new(gpu);
        f(&mut pb)?;
        pb.finish(&st)?.run::<f32>(gpu, None)?;
        Ok(st)
    }

    fn read(&self, st: &Storage, b: Buf, off: usize, len: usize) -> Result<Vec<f32>> {
        self.gpu.read(st.buf(b), off, len)
    }

    /// The tiled GEMM: `C[m, n] = op(A)·op(B) (+ c0) (+ bias)`. `a: [m, k]` row-major, or
    /// `[k, m]` when `a_t` (then op(A) = aᵀ); `b: [k, n]`, or `[n, k]` when `b_t`;
    /// `bias: [n]`, `c0: [m, n]`. `place` = buffers of (A, B, C); C cannot be in params.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        a_t: bool,
        b: &[f32],
        b_t: bool,
        bias: Option<&[f32]>,
        c0: Option<&[f32]>,
        place: (Place, Place, Place),
    ) -> Result<Vec<f32>> {
        check_len("A", a, m * k)?;
        check_len("B", b, k * n)?;
        if place.2 == Place::Params {
            return Err(Error::Shape("the GEMM cannot write the parameter buffer".into()));
        }
        let mut ar = Arena::default();
        let (pa, pb_, pc) = (place.0.buf(), place.1.buf(), place.2.buf());
        let oa = ar.put(pa, a);
        let ob = ar.put(pb_, b);
        let oc = match c0 {
            Some(c) => {
                check_len("C", c, m * n)?;
                ar.put(pc, c)
            }
            None => ar.reserve(pc, m * n),
        };
        // Room for split-K partial products, so long-K shapes exercise the split.
        let split = matmul::split_words((m, n, k));
        let scratch = ar.reserve(Buf::Work, split);
        let obias = match bias {
            Some(bv) => {
                check_len("bias", bv, n)?;
                Some(ar.put(Buf::Params, bv))
            }
            None => None,
        };
        let opa = if a_t { matmul::Operand::mat(pa, oa, m).t() } else { matmul::Operand::mat(pa, oa, k) };
        let opb = if b_t { matmul::Operand::mat(pb_, ob, k).t() } else { matmul::Operand::mat(pb_, ob, n) };
        let st = self.run(&ar, StepUniform::default(), |p| {
            p.split_scratch = Some((scratch, split));
            matmul::matmul(p, (m, n, k), opa, opb, matmul::Operand::mat(pc, oc, n), obias, c0.is_some())
        })?;
        self.read(&st, pc, oc, m * n)
    }

    /// Several GEMMs in batched dispatches (as the weight gradients run):
    /// `C_q[m, n_q] = a_qᵀ·b_q` for each `(a_q: [k, m], b_q: [k, n_q], n_q)`, A and B in work,
    /// C in grads. Long K on few tiles is split, as in the training step.
    pub fn matmul_batch(&self, (m, k): (usize, usize), products: &[(&[f32], &[f32], usize)]) -> Result<Vec<Vec<f32>>> {
        let mut ar = Arena::default();
        let mut list = Vec::new();
        for (q, &(a, b, n)) in products.iter().enumerate() {
            check_len(&format!("A{q}"), a, k * m)?;
            check_len(&format!("B{q}"), b, k * n)?;
            let (oa, ob) = (ar.put(Buf::Work, a), ar.put(Buf::Work, b));
            list.push(matmul::Product { a: oa, b: ob, c: ar.reserve(Buf::Grads, m * n), n });
        }
        let widest = products.iter().map(|p| p.2).max().unwrap_or(0);
        let split = matmul::split_words((m * products.len().min(matmul::BATCH), widest, k));
        let scratch = ar.reserve(Buf::Work, split);
        let st = self.run(&ar, StepUniform::default(), |p| {
            p.split_scratch = Some((scratch, split));
            matmul::matmul_batch(p, (m, k), matmul::Operand::mat(Buf::Work, 0, m).t(), (Buf::Work, Buf::Grads), &list)
        })?;
        list.iter().map(|q| self.read(&st, Buf::Grads, q.c, m * q.n)).collect()
    }

    fn dropout_uniform(d: Option<StepDropout>) -> StepUniform {
        match d {
            Some(d) => StepUniform {
                drop_p: d.p,
                drop_keep: (1.0 / (1.0 - d.p as f64)) as f32,
                drop_on: 1,
                key0: d.key.k0,
                key1: d.key.k1,
                counter: d.counter,
                ..Default::default()
            },
            None => StepUniform::default(),
        }
    }

    /// One fused forward LSTM step: `z: [B, 4H]` (x·W_ih + b), `h_prev, c_prev: [B, H]`,
    /// `w_hh: [H, 4H]`.
    #[allow(clippy::too_many_arguments)]
    pub fn lstm_forward_step(
        &self,
        (b, h): (usize, usize),
        z: &[f32],
        h_prev: &[f32],
        c_prev: &[f32],
        w_hh: &[f32],
        dropout: Option<StepDropout>,
    ) -> Result<LstmForward> {
        check_len("z", z, b * 4 * h)?;
        check_len("h_prev", h_prev, b * h)?;
        check_len("c_prev", c_prev, b * h)?;
        check_len("w_hh", w_hh, h * 4 * h)?;
        let mut ar = Arena::default();
        let w = ar.put(Buf::Params, w_hh);
        let zo = ar.put(Buf::Work, z);
        let hp = ar.put(Buf::Work, h_prev);
        let cp = ar.put(Buf::Work, c_prev);
        let (co, ho, tco, yo) = (
            ar.reserve(Buf::Work, b * h),
            ar.reserve(Buf::Work, b * h),
            ar.reserve(Buf::Work, b * h),
            ar.reserve(Buf::Work, b * h),
        );
        let args = lstm::StepArgs {
            layer: dropout.map_or(0, |d| d.layer as usize),
            row0: dropout.map_or(0, |d| d.row0 as usize),
            z: zo,
            hprev: hp,
            cprev: cp,
            c: co,
            h_out: ho,
            tc: tco,
            y: yo,
            w,
            ..Default::default()
        };
        let st = self.run(&ar, Self::dropout_uniform(dropout), |p| lstm::forward_steps(p, (b, h), &[args]))?;
        Ok(LstmForward {
            act: self.read(&st, Buf::Work, zo, b * 4 * h)?,
            c: self.read(&st, Buf::Work, co, b * h)?,
            tc: self.read(&st, Buf::Work, tco, b * h)?,
            h: self.read(&st, Buf::Work, ho, b * h)?,
            y: self.read(&st, Buf::Work, yo, b * h)?,
        })
    }

    /// One fused backward LSTM step:
    /// `act: [B, 4H]` activations (i, f, g, o) of step t, `c_prev, tc, dy: [B, H]`,
    /// `w_hh: [H, 4H]`, `dz_next: [B, 4H]` (None at the last step: dh_rec and dc start at 0),
    /// `dc: [B, H]` carried from step t+1. Returns `(dz_t [B, 4H], dc_{t-1} [B, H])`.
    #[allow(clippy::too_many_arguments)]
    pub fn lstm_backward_step(
        &self,
        (b, h): (usize, usize),
        act: &[f32],
        c_prev: &[f32],
        tc: &[f32],
        dy: &[f32],
        w_hh: &[f32],
        dz_next: Option<&[f32]>,
        dc: &[f32],
        dropout: Option<StepDropout>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        check_len("act", act, b * 4 * h)?;
        for (name, x) in [("c_prev", c_prev), ("tc", tc), ("dy", dy), ("dc", dc)] {
            check_len(name, x, b * h)?;
        }
        check_len("w_hh", w_hh, h * 4 * h)?;
        let mut ar = Arena::default();
        let w = ar.put(Buf::Params, w_hh);
        let zo = ar.put(Buf::Work, act);
        let cp = ar.put(Buf::Work, c_prev);
        let tco = ar.put(Buf::Work, tc);
        let dyo = ar.put(Buf::Work, dy);
        let dco = ar.put(Buf::Work, dc);
        let dzn = match dz_next {
            Some(d) => {
                check_len("dz_next", d, b * 4 * h)?;
                Some(ar.put(Buf::Work, d))
            }
            None => None,
        };
        let args = lstm::StepArgs {
            layer: dropout.map_or(0, |d| d.layer as usize),
            row0: dropout.map_or(0, |d| d.row0 as usize),
            z: zo,
            cprev: cp,
            tc: tco,
            w,
            dy: Some(dyo),
            dc: dco,
            dznext: dzn,
            ..Default::default()
        };
        let st = self.run(&ar, Self::dropout_uniform(dropout), |p| lstm::backward_steps(p, (b, h), &[args]))?;
        Ok((self.read(&st, Buf::Work, zo, b * 4 * h)?, self.read(&st, Buf::Work, dco, b * h)?))
    }

    /// `Z[r, :] = P[x_r, :] + bias`: `p: [V, cols]`, `x: [rows]`, `bias: [cols]`.
    pub fn gather_rows(&self, p: &[f32], cols: usize, x: &[u32], bias: &[f32]) -> Result<Vec<f32>> {
        check_len("bias", bias, cols)?;
        if cols == 0 || !p.len().is_multiple_of(cols) || x.iter().any(|&i| (i as usize + 1) * cols > p.len()) {
            return Err(Error::Shape("gather: ids outside the table".into()));
        }
        let rows = x.len();
        let mut ar = Arena::default();
        let po = ar.put(Buf::Work, p);
        let bo = ar.put(Buf::Params, bias);
        let xo = ar.put_ids(x);
        let zo = ar.reserve(Buf::Work, rows * cols);
        let st =
            self.run(&ar, StepUniform::default(), |pb| embed::gather_rows(pb, (rows, cols), po, zo, xo, Some(bo)))?;
        self.read(&st, Buf::Work, zo, rows * cols)
    }

    /// `G[v, :] = Σ_{r: x_r = v} dz[r, :]`: `dz: [rows, cols]`, `x: [rows]` ids below `vocab`.
    pub fn scatter_rows(&self, dz: &[f32], cols: usize, x: &[u32], vocab: usize) -> Result<Vec<f32>> {
        check_len("dz", dz, x.len() * cols)?;
        if x.iter().any(|&i| i as usize >= vocab) {
            return Err(Error::Shape("scatter: id outside the vocabulary".into()));
        }
        let (starts, rows_by_sym) = rows_by_symbol(x, vocab);
        let mut ar = Arena::default();
        let dzo = ar.put(Buf::Work, dz);
        let go = ar.reserve(Buf::Work, vocab * cols);
        let csr = ar.put_ids(&starts);
        let ro = ar.put_ids(&rows_by_sym);
        let st = self
            .run(&ar, StepUniform::default(), |pb| embed::scatter_rows(pb, (vocab, cols), x.len(), dzo, go, ro, csr))?;
        self.read(&st, Buf::Work, go, vocab * cols)
    }

    /// Column sums of `x: [rows, cols]` (written to the gradient buffer, as bias gradients are).
    pub fn col_sums(&self, x: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
        check_len("x", x, rows * cols)?;
        let mut ar = Arena::default();
        let xo = ar.put(Buf::Work, x);
        let o = ar.reserve(Buf::Grads, cols);
        let st = self.run(&ar, StepUniform::default(), |pb| embed::col_sums(pb, (rows, cols), xo, o))?;
        self.read(&st, Buf::Grads, o, cols)
    }

    /// `xᵀ: [cols, rows]` of `x: [rows, cols]` (from the parameter buffer into work).
    pub fn transpose(&self, x: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
        check_len("x", x, rows * cols)?;
        let mut ar = Arena::default();
        let xo = ar.put(Buf::Params, x);
        let o = ar.reserve(Buf::Work, rows * cols);
        let st = self.run(&ar, StepUniform::default(), |pb| embed::transpose(pb, (rows, cols), xo, o))?;
        self.read(&st, Buf::Work, o, rows * cols)
    }

    /// Softmax cross-entropy of `logits: [N, V]` against `targets: [N]`, and the reductions.
    pub fn softmax_xent(&self, logits: &[f32], v: usize, targets: &[u32]) -> Result<XentOut> {
        let n = targets.len();
        check_len("logits", logits, n * v)?;
        if targets.iter().any(|&t| t as usize >= v) {
            return Err(Error::Shape("target outside the vocabulary".into()));
        }
        let mut ar = Arena::default();
        let lo = ar.put(Buf::Work, logits);
        let dlo = ar.reserve(Buf::Work, n * v);
        let ro = ar.reserve(Buf::Work, 2 * n);
        let out = ar.reserve(Buf::Work, 2);
        let to = ar.put_ids(targets);
        let args = xent::XentArgs { rows: n, v, logits: lo, dlogits: Some(dlo), targets: to, rows_out: ro, out };
        let st = self.run(&ar, StepUniform::default(), |pb| xent::softmax_xent(pb, &args))?;
        let rows = self.read(&st, Buf::Work, ro, 2 * n)?;
        let sums = self.read(&st, Buf::Work, out, 2)?;
        Ok(XentOut {
            loss: rows[..n].to_vec(),
            hit: rows[n..].to_vec(),
            dlogits: self.read(&st, Buf::Work, dlo, n * v)?,
            loss_sum: sums[0],
            hit_sum: sums[1],
        })
    }

    /// The global norm, clipping and one Adam update (src/optim.rs), on the device:
    /// `params, grads, m, v: [P]`; `loss` decides finiteness with ‖g‖; Adam's `t` is `step`
    /// (1 for the first update), `clip` as in [`crate::backend::StepOptions`].
    #[allow(clippy::too_many_arguments)]
    pub fn adam(
        &self,
        params: &[f32],
        grads: &[f32],
        m: &[f32],
        v: &[f32],
        loss: f32,
        lr: f32,
        step: u64,
        clip: Option<f32>,
    ) -> Result<AdamOut> {
        let n = params.len();
        for (name, x) in [("grads", grads), ("m", m), ("v", v)] {
            check_len(name, x, n)?;
        }
        let cfg = crate::optim::AdamConfig::default();
        if step == 0 {
            return Err(Error::Shape("Adam's t starts at 1".into()));
        }
        // Adam indexes all of params, grads, m and v from 0: each gets its own buffer, alone.
        let mut ar =
            Arena { params: params.to_vec(), grads: grads.to_vec(), opt: [m, v].concat(), ..Default::default() };
        let parts = ar.reserve(Buf::Work, adam::norm_parts(n));
        // The scalars; the device advances t (word 5) from step - 1 to step.
        let t0 = f32::from_bits((step - 1) as u32);
        let out = ar.put(Buf::Work, &[loss, f32::NAN, f32::NAN, f32::NAN, f32::NAN, t0]);
        let u = StepUniform {
            alpha_base: (step - 1) as u32,
            alphas: StepUniform::alphas(&cfg, lr, step - 1),
            one_minus_b1: 1.0 - cfg.beta1,
            one_minus_b2: 1.0 - cfg.beta2,
            eps: cfg.eps,
            clip: clip.unwrap_or(f32::NAN),
            ..Default::default()
        };
        let st = self.run(&ar, u, |pb| {
            adam::grad_norm(pb, n, parts, out, true)?;
            adam::update(pb, n, out)
        })?;
        let s = self.read(&st, Buf::Work, out, 5)?;
        let mv = self.gpu.read::<f32>(&st.opt, 0, 2 * n)?;
        Ok(AdamOut {
            params: self.read(&st, Buf::Params, 0, n)?,
            m: mv[..n].to_vec(),
            v: mv[n..].to_vec(),
            norm: s[2],
            in_range: s[3] != 0.0,
        })
    }
}

/// Rows of each symbol, ascending: `(starts [V+1], rows [N])`; symbol s owns
/// `rows[starts[s] .. starts[s+1]]`.
pub(crate) fn rows_by_symbol(x: &[u32], vocab: usize) -> (Vec<u32>, Vec<u32>) {
    let mut starts = vec![0u32; vocab + 1];
    for &s in x {
        starts[s as usize + 1] += 1;
    }
    for s in 0..vocab {
        starts[s + 1] += starts[s];
    }
    let mut next = starts.clone();
    let mut rows = vec![0u32; x.len()];
    for (r, &s) in x.iter().enumerate() {
        rows[next[s as usize] as usize] = r as u32;
        next[s as usize] += 1;
    }
    (starts, rows)
}
