//! Every GPU kernel against its CPU counterpart on random inputs, with shapes that are not
//! multiples of the kernels' tiles (GEMM 32 rows x 128 columns x 16 k; LSTM step 2 units x 16
//! rows per workgroup with k split 16 ways forward and 32 ways backward; reductions of 256 and
//! 4096).
//!
//! Tolerances: a dot product of length K computed in f32 in any order (with or without fma)
//! differs from the exact one by at most γ_K·Σ|a_k b_k|, γ_K ≈ K·u, u = 2^-24 (Higham, "Accuracy
//! and Stability of Numerical Algorithms", §3.1). The CPU references below are exact up to f64
//! rounding, so each GEMM-like output is checked against that bound; elementwise math (exp,
//! sigmoid, tanh) adds a few ulp on values of order 1, hence the small absolute terms.

mod common;
use common::gpu::{gpu_or_skip, noise, tokens};
use folklstm::gpu::KernelRunner;
use folklstm::gpu::kernels::{Place, StepDropout};
use folklstm::model::cell::{self, Gates};
use folklstm::optim::{AdamConfig, AdamState, adam_update, clip_global_norm};
use folklstm::rng::{Key, stream};

/// u = 2^-24, the unit roundoff of f32.
const U: f64 = 1.0 / 16_777_216.0;

fn runner() -> Option<KernelRunner> {
    gpu_or_skip()?;
    Some(KernelRunner::new().expect("an adapter was found, so the device must open"))
}

/// `op(A)·op(B)` in f64 and the error bound Σ_k |a b| per output.
#[allow(clippy::too_many_arguments)]
fn gemm_ref((m, n, k): (usize, usize, usize), a: &[f32], a_t: bool, b: &[f32], b_t: bool) -> (Vec<f64>, Vec<f64>) {
    let at = |i: usize, kk: usize| if a_t { a[kk * m + i] } else { a[i * k + kk] } as f64;
    let bt = |kk: usize, j: usize| if b_t { b[j * k + kk] } else { b[kk * n + j] } as f64;
    let mut c = vec![0.0; m * n];
    let mut s = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for kk in 0..k {
                let p = at(i, kk) * bt(kk, j);
                c[i * n + j] += p;
                s[i * n + j] += p.abs();
            }
        }
    }
    (c, s)
}

#[test]
fn matmul_matches_f64_within_the_summation_bound_for_every_shape_transpose_and_buffer() {
    let Some(g) = runner() else { return };
    // The last three are long in K on few tiles, so K is split (into 2, 7 and 4 slices: 150,
    // 143 and 129 long, off the 16-long panels) and a second kernel sums the slices.
    let shapes = [
        (1, 1, 1),
        (32, 128, 16),
        (33, 129, 17),
        (65, 67, 17),
        (3, 130, 200),
        (130, 5, 33),
        (7, 9, 300),
        (65, 67, 1000),
        (130, 5, 513),
    ];
    let placements = [
        (Place::Work, Place::Params, Place::Work),
        (Place::Params, Place::Work, Place::Grads),
        (Place::Work, Place::Work, Place::Grads),
        (Place::Grads, Place::Params, Place::Work),
    ];
    let mut case = 0u64;
    for &(m, n, k) in &shapes {
        for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
            case += 1;
            let place = placements[case as usize % placements.len()];
            let a = noise(m * k, 10 + case);
            let b = noise(k * n, 20 + case);
            // Every other case adds a bias, every third accumulates onto C.
            let bias = case.is_multiple_of(2).then(|| noise(n, 30 + case));
            let c0 = case.is_multiple_of(3).then(|| noise(m * n, 40 + case));
            let got = g.matmul((m, n, k), &a, a_t, &b, b_t, bias.as_deref(), c0.as_deref(), place).unwrap();
            let (mut want, mut bound) = gemm_ref((m, n, k), &a, a_t, &b, b_t);
            for i in 0..m {
                for j in 0..n {
                    let w = &mut want[i * n + j];
                    let extra =
                        bias.as_ref().map_or(0.0, |b| b[j] as f64) + c0.as_ref().map_or(0.0, |c| c[i * n + j] as f64);
                    *w += extra;
                    // K products, plus up to two more additions (bias, C).
                    bound[i * n + j] = (k + 2) as f64 * U * (bound[i * n + j] + extra.abs());
                }
            }
            for (idx, ((&x, &w), &e)) in got.iter().zip(&want).zip(&bound).enumerate() {
                assert!(
                    (x as f64 - w).abs() <= e + 1e-30,
                    "shape {:?} a_t {a_t} b_t {b_t} {place:?}: C[{idx}] = {x}, want {w} ± {e}",
                    (m, n, k)
                );
            }
        }
    }
}

#[test]
fn batched_matmuls_match_f64_split_or_whole_and_past_one_dispatch() {
    let Some(g) = runner() else { return };
    // (M, K, the products' N): the first is long in K on few tiles, so K is split (2 slices of
    // 150) and the batch's partials are summed by product; the second runs whole; the third
    // has 13 products, one more than a dispatch holds.
    let cases: [(usize, usize, Vec<usize>); 3] =
        [(37, 300, vec![86, 148, 148]), (70, 50, vec![5, 130, 67]), (9, 20, (1..=13).map(|q| 3 * q + 1).collect())];
    for (case, (m, k, ns)) in cases.iter().enumerate() {
        let data: Vec<(Vec<f32>, Vec<f32>, usize)> = ns
            .iter()
            .enumerate()
            .map(|(q, &n)| {
                (noise(k * m, 100 * case as u64 + q as u64), noise(k * n, 200 + 100 * case as u64 + q as u64), n)
            })
            .collect();
        let products: Vec<(&[f32], &[f32], usize)> = data.iter().map(|(a, b, n)| (&a[..], &b[..], *n)).collect();
        let got = g.matmul_batch((*m, *k), &products).unwrap();
        assert_eq!(got.len(), ns.len());
        for (q, ((a, b, n), c)) in data.iter().zip(&got).enumerate() {
            let (want, bound) = gemm_ref((*m, *n, *k), a, true, b, false);
            for (idx, ((&x, &w), &e)) in c.iter().zip(&want).zip(&bound).enumerate() {
                // K products summed in f32 in some order: within K·u·Σ|a·b| of the f64 sum.
                let e = *k as f64 * U * e;
                assert!((x as f64 - w).abs() <= e + 1e-30, "case {case} product {q}: C[{idx}] = {x}, want {w} ± {e}");
            }
        }
    }
}

/// The CPU LSTM step in f64: z += h_prev·W_hh, then src/model/cell.rs's cell. Returns
/// (activations, c, tanh c, h, Σ|h w| per gate pre-activation).
type StepRef = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);
fn lstm_forward_ref((b, h): (usize, usize), z: &[f32], h_prev: &[f32], c_prev: &[f32], w: &[f32]) -> StepRef {
    let g4 = 4 * h;
    let mut zz: Vec<f64> = z.iter().map(|&v| v as f64).collect();
    let mut bound = vec![0.0; b * g4];
    for bi in 0..b {
        for col in 0..g4 {
            for k in 0..h {
                let p = h_prev[bi * h + k] as f64 * w[k * g4 + col] as f64;
                zz[bi * g4 + col] += p;
                bound[bi * g4 + col] += p.abs();
            }
        }
    }
    let (mut c, mut tc, mut hh) = (vec![0.0; b * h], vec![0.0; b * h], vec![0.0; b * h]);
    let cp: Vec<f64> = c_prev.iter().map(|&v| v as f64).collect();
    for bi in 0..b {
        let s = bi * h..(bi + 1) * h;
        cell::forward::<f64>(
            Gates::split(&mut zz[bi * g4..(bi + 1) * g4]),
            &cp[s.clone()],
            &mut c[s.clone()],
            &mut tc[s.clone()],
            &mut hh[s],
        );
    }
    (zz, c, tc, hh, bound)
}

fn dropout_mask(d: &StepDropout, b: usize, h: usize) -> Vec<f32> {
    let keep = (1.0 / (1.0 - d.p as f64)) as f32;
    (0..b * h)
        .map(|i| {
            let (bi, j) = (i / h, i % h);
            let r = d.row0 as usize + bi;
            let u = d.key.uniform(d.counter, stream::DROPOUT + d.layer, (r * h + j) as u32);
            if u >= d.p { keep } else { 0.0 }
        })
        .collect()
}

#[test]
fn lstm_forward_step_matches_the_cpu_cell_and_dropout_masks_are_bit_identical() {
    let Some(g) = runner() else { return };
    // (B, H): B below, at and above the 16-row tile and off the 4-row quads; H odd (a last
    // workgroup with one unit), below the 16-way k split (H = 1, 3) and not a multiple of it;
    // (16, 256) is the reference step. B = 1, 2, 3 take the narrow step (one quad of rows, k
    // split 64 ways: H = 300 over it, H = 1, 3, 40 below it).
    let shapes = [(5, 37), (1, 300), (17, 70), (3, 1), (3, 40), (16, 256), (2, 3), (19, 33)];
    for (case, &(b, h)) in shapes.iter().enumerate() {
        let seed = 100 * case as u64;
        let z: Vec<f32> = noise(b * 4 * h, seed + 1).iter().map(|v| 2.0 * v).collect();
        let hp = noise(b * h, seed + 2);
        let cp: Vec<f32> = noise(b * h, seed + 3).iter().map(|v| 3.0 * v).collect();
        let w: Vec<f32> = noise(h * 4 * h, seed + 4).iter().map(|v| v / (h as f32).sqrt()).collect();
        let drop = (case % 2 == 0).then_some(StepDropout {
            key: Key::new(7 + case as u64),
            counter: 11,
            layer: case as u32,
            row0: (3 * b) as u32,
            p: 0.3,
        });
        let got = g.lstm_forward_step((b, h), &z, &hp, &cp, &w, drop).unwrap();
        let (act, c, tc, hh, bound) = lstm_forward_ref((b, h), &z, &hp, &cp, &w);
        // The gate pre-activation carries the dot-product bound; σ and tanh have slope ≤ 1 and
        // add a few ulp (1e-6 covers it on values of order 1); c and h combine at most three
        // such terms with factors ≤ |c_prev| ≤ 3.
        let zerr: f64 = bound.iter().fold(0.0, |m, &s| m.max((h + 1) as f64 * U * s));
        let tol_gate = zerr + 1e-6;
        let tol_c = 4.0 * tol_gate;
        let check = |name: &str, got: &[f32], want: &[f64], tol: f64| {
            for (i, (&x, &w)) in got.iter().zip(want).enumerate() {
                assert!((x as f64 - w).abs() <= tol, "(B, H) = ({b}, {h}) {name}[{i}] = {x}, want {w} ± {tol}");
            }
        };
        check("act", &got.act, &act, tol_gate);
        check("c", &got.c, &c, tol_c);
        check("tanh(c)", &got.tc, &tc, tol_c);
        check("h", &got.h, &hh, tol_c);
        let mask = drop.map_or(vec![1.0; b * h], |d| dropout_mask(&d, b, h));
        // y = h ⊙ mask with the CPU's mask: the zeros must coincide exactly (the RNG is the
        // same integer function on both sides), the kept values are h scaled by the same f32.
        for (i, (&m, (&y, &hv))) in mask.iter().zip(got.y.iter().zip(&got.h)).enumerate() {
            assert_eq!(y == 0.0, m == 0.0, "mask differs at {i}");
            assert_eq!(y, hv * m, "y[{i}]");
        }
        if drop.is_some() {
            let dropped = mask.iter().filter(|&&m| m == 0.0).count();
            assert!(dropped > 0 || b * h < 10, "p = 0.3 dropped nothing");
        }
    }
}

#[test]
fn lstm_backward_step_matches_the_cpu_cell_backward() {
    let Some(g) = runner() else { return };
    // The reduction is 4H long, split 32 ways: 4H = 4, 12 and 148 leave invocations with no k or
    // uneven slices; B off the 4-row quads and the 16-row tile; (16, 256) is the reference step.
    let shapes = [(5, 37), (2, 70), (17, 130), (1, 1), (3, 40), (16, 256), (7, 3), (19, 33)];
    for (case, &(b, h)) in shapes.iter().enumerate() {
        let seed = 1000 + 100 * case as u64;
        // Activations in their ranges: i, f, o in (0, 1), g in (-1, 1).
        let raw = noise(b * 4 * h, seed + 1);
        let act: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, &v)| if (i % (4 * h)) / h == 2 { 0.9 * v } else { 0.5 + 0.45 * v })
            .collect();
        let cp: Vec<f32> = noise(b * h, seed + 2).iter().map(|v| 2.0 * v).collect();
        let tc: Vec<f32> = noise(b * h, seed + 3).iter().map(|v| 0.95 * v).collect();
        let dy = noise(b * h, seed + 4);
        let dc = noise(b * h, seed + 5);
        let w: Vec<f32> = noise(h * 4 * h, seed + 6).iter().map(|v| v / (h as f32).sqrt()).collect();
        let dzn = (case != 3).then(|| noise(b * 4 * h, seed + 7));
        let drop = (case % 2 == 1).then_some(StepDropout { key: Key::new(3), counter: 5, layer: 1, row0: 0, p: 0.25 });
        let (dz, dc_prev) = g.lstm_backward_step((b, h), &act, &cp, &tc, &dy, &w, dzn.as_deref(), &dc, drop).unwrap();
        // CPU: dh_rec = dz_next · W_hhᵀ (f64), dh_up = dy ⊙ mask, then the scalar cell backward.
        let mask = drop.map_or(vec![1.0; b * h], |d| dropout_mask(&d, b, h));
        let g4 = 4 * h;
        let mut dh_rec = vec![0.0f64; b * h];
        let mut bound = 0.0f64;
        if let Some(dzn) = &dzn {
            for bi in 0..b {
                for j in 0..h {
                    let mut s = 0.0;
                    for k in 0..g4 {
                        let p = dzn[bi * g4 + k] as f64 * w[j * g4 + k] as f64;
                        dh_rec[bi * h + j] += p;
                        s += p.abs();
                    }
                    bound = bound.max((g4 + 1) as f64 * U * s);
                }
            }
        }
        let mut want: Vec<f64> = act.iter().map(|&v| v as f64).collect();
        let mut dcw: Vec<f64> = if dzn.is_some() { dc.iter().map(|&v| v as f64).collect() } else { vec![0.0; b * h] };
        let dh_up: Vec<f64> = dy.iter().zip(&mask).map(|(&a, &m)| (a * m) as f64).collect();
        let cp64: Vec<f64> = cp.iter().map(|&v| v as f64).collect();
        let tc64: Vec<f64> = tc.iter().map(|&v| v as f64).collect();
        for bi in 0..b {
            let s = bi * h..(bi + 1) * h;
            cell::backward::<f64>(
                Gates::split(&mut want[bi * g4..(bi + 1) * g4]),
                &cp64[s.clone()],
                &tc64[s.clone()],
                &dh_up[s.clone()],
                &dh_rec[s.clone()],
                &mut dcw[s],
            );
        }
        // dh carries the dot-product bound; each output multiplies it by factors ≤ 2 (|c_prev|)
        // and adds a handful of f32 roundings on values of order 1.
        let tol = 4.0 * bound + 1e-6;
        for (i, (&x, &w)) in dz.iter().zip(&want).enumerate() {
            assert!((x as f64 - w).abs() <= tol, "(B, H) = ({b}, {h}) dz[{i}] = {x}, want {w} ± {tol}");
        }
        for (i, (&x, &w)) in dc_prev.iter().zip(&dcw).enumerate() {
            assert!((x as f64 - w).abs() <= tol, "(B, H) = ({b}, {h}) dc[{i}] = {x}, want {w} ± {tol}");
        }
    }
}

#[test]
fn embedding_helpers_are_exact_and_column_sums_within_the_summation_bound() {
    let Some(g) = runner() else { return };
    let (v, cols, rows) = (13, 71, 150);
    let x = tokens(rows, v, 5);
    // Gather: one f32 addition per element, as on the CPU: bit-identical.
    let p = noise(v * cols, 6);
    let bias = noise(cols, 7);
    let z = g.gather_rows(&p, cols, &x, &bias).unwrap();
    for r in 0..rows {
        for c in 0..cols {
            assert_eq!(z[r * cols + c], p[x[r] as usize * cols + c] + bias[c], "Z[{r}, {c}]");
        }
    }
    // Scatter-add: rows summed in ascending order from 0, as src/cpu/network.rs does: identical.
    let dz = noise(rows * cols, 8);
    let got = g.scatter_rows(&dz, cols, &x, v).unwrap();
    let mut want = vec![0.0f32; v * cols];
    for r in 0..rows {
        for c in 0..cols {
            want[x[r] as usize * cols + c] += dz[r * cols + c];
        }
    }
    assert_eq!(got, want, "scatter");
    // A symbol that never occurs gets an all-zero row.
    let got = g.scatter_rows(&dz[..cols], cols, &[2], v).unwrap();
    assert!(got[..2 * cols].iter().all(|&x| x == 0.0));
    // Column sums: 16 row slices and a tree, so not the CPU's order: each is a sum of `rows`
    // terms, within the summation bound rows·u·Σ|x| of the exact (f64) sum. Shapes off the
    // 16-column and 16-slice tiles, and fewer rows than slices.
    for (r2, c2) in [(301, 1030), (7, 19), (1, 1), (1024, 86)] {
        let x2 = noise(r2 * c2, 9 + r2 as u64);
        let got = g.col_sums(&x2, r2, c2).unwrap();
        for c in 0..c2 {
            let (want, abs) = (0..r2).fold((0.0f64, 0.0f64), |(s, a), r| {
                let v = x2[r * c2 + c] as f64;
                (s + v, a + v.abs())
            });
            let tol = r2 as f64 * U * abs;
            assert!((got[c] as f64 - want).abs() <= tol, "({r2}, {c2}) column {c}: {} vs {want} ± {tol}", got[c]);
        }
    }
    // Transpose: a permutation.
    let (r3, c3) = (37, 148);
    let x3 = noise(r3 * c3, 10);
    let got = g.transpose(&x3, r3, c3).unwrap();
    for i in 0..r3 {
        for j in 0..c3 {
            assert_eq!(got[j * r3 + i], x3[i * c3 + j]);
        }
    }
}

#[test]
fn softmax_cross_entropy_matches_f64() {
    let Some(g) = runner() else { return };
    let (n, v) = (333, 86);
    let logits: Vec<f32> = noise(n * v, 11).iter().map(|x| 6.0 * x).collect();
    let y = tokens(n, v, 12);
    let out = g.softmax_xent(&logits, v, &y).unwrap();
    let mut loss_sum = 0.0f64;
    let mut hits = 0u32;
    for r in 0..n {
        let row: Vec<f64> = logits[r * v..][..v].iter().map(|&x| x as f64).collect();
        let (mut best, mut arg) = (row[0], 0);
        for (j, &x) in row.iter().enumerate() {
            if x > best {
                best = x;
                arg = j;
            }
        }
        let sum: f64 = row.iter().map(|x| (x - best).exp()).sum();
        let loss = -((row[y[r] as usize] - best) - sum.ln());
        loss_sum += loss;
        hits += (arg == y[r] as usize) as u32;
        // exp and log in f32 on arguments up to |12|: a few ulp of the row's scale (≤ 16).
        assert!((out.loss[r] as f64 - loss).abs() < 1e-5, "loss[{r}] {} vs {loss}", out.loss[r]);
        assert_eq!(out.hit[r], (arg == y[r] as usize) as u32 as f32, "hit[{r}]");
        for (j, &lj) in row.iter().enumerate() {
            let p = (lj - best).exp() / sum;
            let want = (p - if j == y[r] as usize { 1.0 } else { 0.0 }) / n as f64;
            // Vulkan allows exp 3 + 2|x| ulp (≤ 27 ulp ≈ 3e-6 relative here): 1e-5 relative, then / N.
            let tol = (1e-5 * p + 1e-7) / n as f64;
            let x = out.dlogits[r * v + j] as f64;
            assert!((x - want).abs() <= tol, "dlogits[{r}, {j}] {x} vs {want}");
        }
    }
    // Σ of N positive f32 terms in a 256-wide tree after sequential runs of ≤ 2: error ≤ 10·u·Σ.
    assert!(((out.loss_sum as f64) - loss_sum).abs() <= 1e-5 * loss_sum + 10.0 * U * loss_sum);
    assert_eq!(out.hit_sum, hits as f32);
}

#[test]
fn adam_and_clipping_match_src_optim() {
    let Some(g) = runner() else { return };
    let n = 10_007; // not a multiple of 256 or of the 4096-element norm chunk
    let p0: Vec<f32> = noise(n, 21);
    let grads: Vec<f32> = noise(n, 22).iter().map(|x| 0.01 * x).collect();
    let m0: Vec<f32> = noise(n, 23).iter().map(|x| 0.001 * x).collect();
    let v0: Vec<f32> = noise(n, 24).iter().map(|x| 1e-5 * x.abs() + 1e-6).collect();
    let cfg = AdamConfig::default();
    for (step, clip) in [(1u64, None), (7, Some(0.05)), (3, Some(100.0))] {
        let lr = 2e-3;
        let out = g.adam(&p0, &grads, &m0, &v0, 1.5, lr, step, clip).unwrap();
        let mut p = p0.clone();
        let mut gr = grads.clone();
        let mut st = AdamState { step: step - 1, m: m0.clone(), v: v0.clone() };
        let norm = match clip {
            Some(c) => clip_global_norm(&mut gr, c),
            None => folklstm::optim::global_norm(&gr),
        };
        adam_update(&mut p, &gr, &mut st, &cfg, lr);
        // ‖g‖²: runs of 16 then two 256-wide trees: error ≤ ~40·u relative; 1e-5 is generous.
        assert!(((out.norm as f64) - norm).abs() <= 1e-5 * norm, "norm {} vs {norm}", out.norm);
        assert!(out.in_range);
        // The clip scale clip/‖g‖ is computed in f32 from a ‖g‖ within 1e-5: relative error
        // ≤ 2e-5 on the clipped gradient; m and v follow it linearly (v quadratically).
        let tol = if clip.is_some_and(|c| (c as f64) < norm) { 5e-5 } else { 1e-6 };
        for i in 0..n {
            let dm = (out.m[i] - st.m[i]).abs() as f64;
            let dv = (out.v[i] - st.v[i]).abs() as f64;
            assert!(dm <= tol * st.m[i].abs() as f64 + 1e-12, "m[{i}] {} vs {}", out.m[i], st.m[i]);
            assert!(dv <= 2.0 * tol * st.v[i].abs() as f64 + 1e-15, "v[{i}] {} vs {}", out.v[i], st.v[i]);
            // The step α·m/(sqrt(v)+ε) is ≤ ~α·|m|/sqrt(v) ≈ lr-sized; compare the step itself.
            let step_gpu = (out.params[i] - p0[i]) as f64;
            let step_cpu = (p[i] - p0[i]) as f64;
            assert!(
                (step_gpu - step_cpu).abs() <= 4.0 * tol * step_cpu.abs() + 4.0 * U * p0[i].abs() as f64,
                "θ[{i}] step {step_gpu} vs {step_cpu}"
            );
        }
    }
    // A NaN gradient, or a NaN loss: nothing moves, and the step says so.
    let mut bad = grads.clone();
    bad[n / 2] = f32::NAN;
    for (gr, loss) in [(&bad, 1.0), (&grads, f32::NAN), (&grads, f32::INFINITY)] {
        let out = g.adam(&p0, gr, &m0, &v0, loss, 1e-3, 1, Some(1.0)).unwrap();
        assert!(!out.in_range);
        assert_eq!(out.params, p0);
        assert_eq!(out.m, m0);
        assert_eq!(out.v, v0);
    }
}
