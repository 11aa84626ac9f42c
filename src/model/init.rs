//! Initialisation as in the reference design (Keras' defaults for Embedding, LSTM and Dense):
//!
//! - embedding: uniform(-0.05, 0.05)
//! - `w_ih` and `dense.w`: Glorot-uniform, limit sqrt(6 / (fan_in + fan_out)) on the `[in, out]` matrix
//! - `w_hh` `[H, 4H]`: orthogonal (its H rows are orthonormal), from the QR decomposition of a
//!   Gaussian `[4H, H]` matrix with the signs of R's diagonal folded in, transposed
//! - biases zero, except the forget gate's quarter of each LSTM bias, which is 1
//!
//! Seeded with `Xoshiro256PlusPlus::seed_from_u64`, whose output `rand` documents as portable,
//! so a seed gives the same model on every machine.

use super::{ModelConfig, Params};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// A freshly initialised model for `cfg`, reproducible from `seed`.
pub fn init_params(cfg: &ModelConfig, seed: u64) -> Params<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut p = Params::<f32>::zeros(cfg);
    let lo = p.layout.clone();
    let h = cfg.hidden;
    for x in p.get_mut(&lo.embedding) {
        *x = rng.random_range(-0.05f32..0.05);
    }
    for (l, lay) in lo.lstm.iter().enumerate() {
        glorot(&mut rng, p.get_mut(&lay.w_ih), cfg.layer_input(l), 4 * h);
        let q = orthogonal(&mut rng, h, 4 * h);
        for (d, s) in p.get_mut(&lay.w_hh).iter_mut().zip(q) {
            *d = s as f32;
        }
        p.get_mut(&lay.b)[h..2 * h].fill(1.0);
    }
    glorot(&mut rng, p.get_mut(&lo.dense_w), h, cfg.vocab);
    p
}

fn glorot(rng: &mut Xoshiro256PlusPlus, w: &mut [f32], fan_in: usize, fan_out: usize) {
    let lim = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    for x in w {
        *x = rng.random_range(-lim..lim);
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A `rows x cols` row-major matrix whose rows (if rows <= cols) or columns (otherwise) are
/// orthonormal, as Keras' `Orthogonal` initialiser makes it.
pub fn orthogonal(rng: &mut Xoshiro256PlusPlus, rows: usize, cols: usize) -> Vec<f64> {
    // Work on a tall matrix A [m, k], m >= k, stored column by column.
    let (m, k) = (rows.max(cols), rows.min(cols));
    let mut q: Vec<Vec<f64>> = (0..k).map(|_| (0..m).map(|_| normal(rng)).collect()).collect();
    // Modified Gram-Schmidt, twice over ("twice is enough" for full orthogonality in floating
    // point). r_jj > 0 by construction, which is the QR with sign(diag R) folded in.
    for j in 0..k {
        for _pass in 0..2 {
            for p in 0..j {
                let (done, rest) = q.split_at_mut(j);
                let dot: f64 = done[p].iter().zip(&rest[0]).map(|(a, b)| a * b).sum();
                for (x, y) in rest[0].iter_mut().zip(&done[p]) {
                    *x -= dot * y;
                }
            }
        }
        let norm = q[j].iter().map(|x| x * x).sum::<f64>().sqrt();
        q[j].iter_mut().for_each(|x| *x /= norm);
    }
    // q[j][i] is A[i, j]. Return [rows, cols]: A itself if rows >= cols, else Aᵀ.
    let mut out = vec![0.0; rows * cols];
    for (j, col) in q.iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            if rows >= cols {
                out[i * cols + j] = v;
            } else {
                out[j * cols + i] = v;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurrent_weights_have_orthonormal_rows_and_biases_follow_keras() {
        let cfg = ModelConfig { vocab: 9, embed: 7, hidden: 6, layers: 2, dropout: 0.2 };
        let p = init_params(&cfg, 3);
        for lay in &p.layout.lstm {
            let w = p.get(&lay.w_hh);
            for a in 0..6 {
                for b in 0..6 {
                    let dot: f64 = (0..24).map(|j| w[a * 24 + j] as f64 * w[b * 24 + j] as f64).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    // f32 storage rounds each entry by 2^-24 relative; 24 terms keep the dot
                    // product within ~1e-6 of exact.
                    assert!((dot - want).abs() < 1e-5, "rows {a},{b}: {dot}");
                }
            }
            let bias = p.get(&lay.b);
            assert!(bias[..6].iter().all(|&x| x == 0.0));
            assert!(bias[6..12].iter().all(|&x| x == 1.0));
            assert!(bias[12..].iter().all(|&x| x == 0.0));
        }
        let e = p.get(&p.layout.embedding);
        assert!(e.iter().all(|x| x.abs() <= 0.05) && e.iter().any(|&x| x != 0.0));
        let lim = (6.0f32 / (7.0 + 24.0)).sqrt();
        assert!(p.get(&p.layout.lstm[0].w_ih).iter().all(|x| x.abs() <= lim));
        assert_eq!(init_params(&cfg, 3), p, "same seed, same model");
        assert_ne!(init_params(&cfg, 4).data, p.data);
    }
}
