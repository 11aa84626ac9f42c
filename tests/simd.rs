//! Every SIMD path of the elementwise gate math against the scalar path, on random inputs that
//! include large |x|: no NaN or Inf may come out of exp's overflow.

mod common;
use common::noise;
use folklstm::cpu::simd::{self, Func, Isa};

/// Inputs: a dense sweep of the interesting range, random values at several scales, and the
/// extremes (±88 is where expf overflows, ±1e30 and ±inf far beyond).
fn inputs() -> Vec<f32> {
    let mut v: Vec<f32> = (-4000..=4000).map(|i| i as f32 / 200.0).collect();
    for (k, scale) in [0.01f64, 1.0, 10.0, 100.0].into_iter().enumerate() {
        v.extend(noise(1001, 60 + k as u64).into_iter().map(|u| (u * scale) as f32));
    }
    v.extend([87.0, 88.5, 89.0, -87.0, -88.5, -104.0, 1e30, -1e30, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-30]);
    v
}

/// The vector instruction sets this CPU has, each to be compared with the scalar path. Which
/// ones that is varies between CI machines (AVX-512 one day, AVX2 the next), so it is not a
/// failure when one is missing; it is recorded in the skip log (see `common::note`), so that the
/// CI log says which SIMD paths each run actually tested.
fn vector_isas() -> Vec<Isa> {
    let v: Vec<Isa> = Isa::all_available().into_iter().filter(|&i| i != Isa::Scalar).collect();
    let names = |set: &mut dyn Iterator<Item = Isa>| set.map(Isa::name).collect::<Vec<_>>().join(", ");
    let absent = names(&mut [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| !v.contains(i)));
    let text = if v.is_empty() {
        format!("only the scalar path ran: this CPU has none of the vector paths ({absent})")
    } else if absent.is_empty() {
        format!("tested {} against scalar (every vector path)", names(&mut v.iter().copied()))
    } else {
        format!("tested {} against scalar; not on this CPU, so untested: {absent}", names(&mut v.iter().copied()))
    };
    common::note("simd", &text);
    v
}

#[test]
fn vector_functions_match_scalar_and_stay_finite() {
    let xs = inputs();
    for isa in vector_isas() {
        for f in [Func::Exp, Func::Sigmoid, Func::Tanh] {
            let mut want = xs.clone();
            simd::map(Isa::Scalar, f, &mut want);
            let mut got = xs.clone();
            simd::map(isa, f, &mut got);
            let (mut worst_rel, mut worst_abs) = (0.0f64, 0.0f64);
            for ((&x, &w), &g) in xs.iter().zip(&want).zip(&got) {
                if f == Func::Exp && !(-87.0..=88.0).contains(&x) {
                    // Outside expf's normal range the vector exp clamps; it must stay finite.
                    assert!(g.is_finite() && g >= 0.0, "{isa:?} exp({x}) = {g}");
                    continue;
                }
                assert!(g.is_finite(), "{isa:?} {f:?}({x}) = {g}");
                let (w, g) = (w as f64, g as f64);
                worst_abs = worst_abs.max((g - w).abs());
                if w.abs() > 1e-30 {
                    worst_rel = worst_rel.max((g - w).abs() / w.abs());
                }
            }
            eprintln!("{isa:?} {f:?}: max relative {worst_rel:e}, max absolute {worst_abs:e}");
            // exp: Cephes' polynomial is within 2 ulp (2.4e-7) of the true value and libm's expf
            // within 1 ulp, so they differ by at most 3 ulp = 3.6e-7 relative.
            // sigmoid: 1/(1+e^-x) adds one rounding of the sum and one of the division to exp's
            // error: 4 ulp relative = 4.8e-7, over the whole range including tiny outputs.
            // tanh: the rational approximation is within 2 ulp of tanh where |tanh| is not
            // tiny; near 0 its relative error stays at a few ulp too because p(x)/q(x) ~ x.
            let bound = match f {
                Func::Exp => 3.6e-7,
                Func::Sigmoid => 4.8e-7,
                Func::Tanh => 4.8e-7,
            };
            assert!(worst_rel <= bound, "{isa:?} {f:?}: relative error {worst_rel:e} > {bound:e}");
        }
    }
}

#[test]
fn nan_stays_nan() {
    for isa in Isa::all_available() {
        for f in [Func::Exp, Func::Sigmoid, Func::Tanh] {
            let mut x = vec![f32::NAN; 19];
            simd::map(isa, f, &mut x);
            assert!(x.iter().all(|v| v.is_nan()), "{isa:?} {f:?} hid a NaN: {x:?}");
        }
    }
}

/// The fused cell kernels, forward and backward, on a row length that is not a multiple of any
/// vector width (so the partial-vector tail is exercised) and on the model's H = 256.
#[test]
fn cell_kernels_match_scalar() {
    for isa in vector_isas() {
        for hd in [1usize, 7, 19, 256] {
            let z0: Vec<f32> = noise(4 * hd, 70 + hd as u64).iter().map(|&u| (u * 8.0) as f32).collect();
            let cp: Vec<f32> = noise(hd, 71).iter().map(|&u| (u * 3.0) as f32).collect();
            let run = |isa: Isa| {
                let (mut z, mut c, mut tc, mut h) = (z0.clone(), vec![0.0; hd], vec![0.0; hd], vec![0.0; hd]);
                simd::cell_forward(isa, folklstm::model::cell::Gates::split(&mut z), &cp, &mut c, &mut tc, &mut h);
                let dh_up: Vec<f32> = noise(hd, 72).iter().map(|&u| u as f32).collect();
                let dh_rec: Vec<f32> = noise(hd, 73).iter().map(|&u| u as f32).collect();
                let mut dc: Vec<f32> = noise(hd, 74).iter().map(|&u| u as f32).collect();
                let mut act = z.clone();
                simd::cell_backward(
                    isa,
                    folklstm::model::cell::Gates::split(&mut act),
                    &cp,
                    &tc,
                    &dh_up,
                    &dh_rec,
                    &mut dc,
                );
                [z, c, tc, h, act, dc]
            };
            let want = run(Isa::Scalar);
            let got = run(isa);
            for (k, (w, g)) in want.iter().zip(&got).enumerate() {
                let d = w.iter().zip(g).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                // All quantities are O(1) (activations in [-1, 1], c and the gradients below
                // ~10). Each output is a handful of operations on values carrying <= 4 ulp of
                // approximation error, and FMA contraction changes rounding by 1 ulp per
                // operation: 2e-6 absolute (about 16 ulp at magnitude 1) covers that, while a
                // wrong formula is off by O(0.1) or more.
                assert!(d < 2e-6, "{isa:?} H={hd} output {k}: max difference {d:e}");
            }
        }
    }
}

/// The recurrent block kernel: every vector path against the scalar one, for row counts that
/// exercise the register tiles (AVX-512 8 rows, AVX2 6 rows in two 16-column passes), the
/// remainder tiles of 4, 2 and 1, and several tiles in one call, with and without accumulation.
#[test]
fn panel_kernel_matches_scalar() {
    let k = 37;
    let lda = 40;
    let a: Vec<f32> = noise(25 * lda, 80).iter().map(|&u| u as f32).collect();
    let panel: Vec<f32> = noise(k * 32, 81).iter().map(|&u| u as f32).collect();
    let init: Vec<f32> = noise(25 * 32, 82).iter().map(|&u| u as f32).collect();
    for isa in vector_isas() {
        for rows in [1usize, 2, 3, 4, 5, 6, 7, 8, 11, 12, 16, 25] {
            for accumulate in [false, true] {
                let run = |isa: Isa| {
                    let mut c = init.clone();
                    let mut outs: Vec<&mut [f32]> = c.chunks_mut(32).take(rows).collect();
                    let panel = simd::pack_panel(isa, &panel, k);
                    simd::panel_kernel(isa, &a, lda, 1, k, &panel, &mut outs, accumulate);
                    c
                };
                let (want, got) = (run(Isa::Scalar), run(isa));
                for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                    // 37 products of values in [-1, 1]: sums are below 37 in magnitude; FMA and
                    // the scalar path round differently, at most 37 ulps of 37 = 1e-4 apart in
                    // the worst case, typically far less. A wrong index is off by O(1).
                    assert!((w - g).abs() < 1e-4, "{isa:?} rows={rows} acc={accumulate} element {i}: {w} vs {g}");
                }
                assert_eq!(&want[rows * 32..], &init[rows * 32..], "rows past the output were touched");
            }
        }
    }
}

/// The register tile never changes a bit: each output element is one chain of FMAs over k in
/// order, so computing rows one at a time (1-row tiles) or all at once (full tiles and their
/// remainders) must give identical results, on every vector path.
#[test]
fn panel_kernel_results_do_not_depend_on_the_tiling() {
    let (k, lda, rows) = (53, 60, 23);
    let a: Vec<f32> = noise(rows * lda, 90).iter().map(|&u| u as f32).collect();
    let panel: Vec<f32> = noise(k * 32, 91).iter().map(|&u| u as f32).collect();
    let init: Vec<f32> = noise(rows * 32, 92).iter().map(|&u| u as f32).collect();
    for isa in vector_isas() {
        let panel = simd::pack_panel(isa, &panel, k);
        for accumulate in [false, true] {
            let mut whole = init.clone();
            let mut outs: Vec<&mut [f32]> = whole.chunks_mut(32).collect();
            simd::panel_kernel(isa, &a, lda, 1, k, &panel, &mut outs, accumulate);
            let mut single = init.clone();
            for (r, row) in single.chunks_mut(32).enumerate() {
                simd::panel_kernel(isa, &a[r * lda..], lda, 1, k, &panel, &mut [row], accumulate);
            }
            assert_eq!(whole, single, "{isa:?} acc={accumulate}: tiling changed the result");
        }
    }
}
