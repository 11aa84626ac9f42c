//! Adam, as the reference design (Keras) runs it, and global-norm gradient clipping.
//!
//! Keras' update (its epsilon sits outside the bias correction, unlike PyTorch's):
//! ```text
//! t     = t + 1
//! α_t   = lr · sqrt(1 - β2^t) / (1 - β1^t)
//! m     = m + (1 - β1)(g - m)
//! v     = v + (1 - β2)(g² - v)
//! θ     = θ - α_t · m / (sqrt(v) + ε)
//! ```
//! Clipping is applied to the gradient before this, outside the backward pass (a gradient
//! check must see the raw gradient).

use rayon::prelude::*;

/// Adam's hyper-parameters other than the learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to sqrt(v).
    pub eps: f32,
}

impl Default for AdamConfig {
    /// The reference defaults: β1 0.9, β2 0.999, ε 1e-7.
    fn default() -> Self {
        AdamConfig { beta1: 0.9, beta2: 0.999, eps: 1e-7 }
    }
}

/// Adam's moments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdamState {
    /// Number of updates applied.
    pub step: u64,
    /// First moment, one per parameter.
    pub m: Vec<f32>,
    /// Second moment, one per parameter.
    pub v: Vec<f32>,
}

impl AdamState {
    /// Zero moments for `n` parameters.
    pub fn new(n: usize) -> Self {
        AdamState { step: 0, m: vec![0.0; n], v: vec![0.0; n] }
    }
}

/// Elements per parallel chunk: fixed, so results never depend on the thread count.
const CHUNK: usize = 1 << 14;

impl AdamConfig {
    /// Adam's step size for update number `t` (1, 2, ...) in Keras' form,
    /// `α_t = lr · sqrt(1 - β2^t) / (1 - β1^t)`: computed in f64 and rounded once, the one
    /// definition the CPU update and the GPU's step uniform both use.
    pub fn step_size(&self, lr: f32, t: u64) -> f32 {
        let t = t.clamp(1, i32::MAX as u64) as i32;
        (lr as f64 * (1.0 - (self.beta2 as f64).powi(t)).sqrt() / (1.0 - (self.beta1 as f64).powi(t))) as f32
    }
}

/// One Adam update of `params` with gradient `grads` (see the module docs for the formula).
pub fn adam_update(params: &mut [f32], grads: &[f32], st: &mut AdamState, cfg: &AdamConfig, lr: f32) {
    adamw_update(params, grads, st, cfg, lr, 0.0);
}

/// Adam with decoupled weight decay (AdamW, Loshchilov and Hutter; `train --weight-decay`):
/// every parameter first shrinks by the factor `1 - lr·weight_decay`, then takes Adam's step,
/// `θ = θ·(1 - lr·λ) - α_t · m / (sqrt(v) + ε)`. The decay is not part of the gradient, so
/// Adam's moments never see it. With `weight_decay` 0 the factor is exactly 1 and this is
/// [`adam_update`] bit for bit.
pub fn adamw_update(
    params: &mut [f32],
    grads: &[f32],
    st: &mut AdamState,
    cfg: &AdamConfig,
    lr: f32,
    weight_decay: f32,
) {
    assert!(params.len() == grads.len() && st.m.len() == params.len() && st.v.len() == params.len());
    st.step += 1;
    let alpha = cfg.step_size(lr, st.step);
    let keep = 1.0 - lr * weight_decay;
    let (b1, b2, eps) = (1.0 - cfg.beta1, 1.0 - cfg.beta2, cfg.eps);
    params
        .par_chunks_mut(CHUNK)
        .zip(grads.par_chunks(CHUNK))
        .zip(st.m.par_chunks_mut(CHUNK))
        .zip(st.v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            for i in 0..p.len() {
                let gi = g[i];
                m[i] += b1 * (gi - m[i]);
                v[i] += b2 * (gi * gi - v[i]);
                p[i] = p[i] * keep - alpha * m[i] / (v[i].sqrt() + eps);
            }
        });
}

/// The largest global gradient norm an update may follow: sqrt(f32::MAX), about 1.8e19. Above
/// it a component's square can overflow Adam's f32 second moment to infinity, which would freeze
/// that weight for good while the loss still looks finite (and the GPU's f32 sum of squares
/// overflows at the same norm), so such a step counts as divergent.
pub const MAX_UPDATE_NORM: f64 = 1.844_674_352_395_373e19;

/// Whether an update may follow a step with this loss and gradient norm (taken before clipping):
/// both finite, and the norm Adam sees (after clipping to `clip`) below [`MAX_UPDATE_NORM`].
pub fn update_is_safe(loss: f64, norm: f64, clip: Option<f32>) -> bool {
    let seen = clip.map_or(norm, |c| norm.min(c as f64));
    loss.is_finite() && norm.is_finite() && seen < MAX_UPDATE_NORM
}

/// The global L2 norm of `g`, summed in f64 over fixed chunks in order (deterministic).
pub fn global_norm(g: &[f32]) -> f64 {
    let parts: Vec<f64> = g.par_chunks(CHUNK).map(|c| c.iter().map(|&x| (x as f64) * (x as f64)).sum()).collect();
    parts.iter().sum::<f64>().sqrt()
}

/// Scales `g` so its global norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_global_norm(g: &mut [f32], max_norm: f32) -> f64 {
    let norm = global_norm(g);
    if norm.is_finite() && norm > max_norm as f64 {
        let s = (max_norm as f64 / norm) as f32;
        g.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|x| *x *= s));
    }
    norm
}

/// How the learning rate changes over a run (`train --lr-schedule`); recorded in every
/// checkpoint so that a resumed run continues the same curve.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrShape {
    /// `lr` throughout (after the warm-up).
    Constant,
    /// Half a cosine from `lr` down to `lr_min` over the run's epochs, then `lr_min`.
    Cosine,
    /// `lr` times `gamma` after every `every` epochs, never below `lr_min`.
    Step {
        /// Epochs between two drops.
        every: u32,
        /// Factor of each drop.
        gamma: f32,
    },
}

/// A learning-rate schedule: a shape, its peak and floor, a linear warm-up and the epochs it
/// spans (the `--epochs` of the run that began it; a resumed run past them stays at the end
/// value).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrSchedule {
    /// The shape.
    pub shape: LrShape,
    /// The peak learning rate (`--lr`).
    pub lr: f32,
    /// The floor (`--lr-min`).
    pub lr_min: f32,
    /// Steps of linear warm-up from `lr / warmup` to `lr` (`--warmup`; 0: none).
    pub warmup: u64,
    /// Epochs the curve spans.
    pub epochs: u32,
}

impl LrSchedule {
    /// The learning rate of global step `step` (0-based) for a run of `steps_per_epoch`
    /// windows per epoch: computed in f64 and rounded once, so a resumed run gets the same
    /// numbers as an uninterrupted one.
    pub fn lr_at(&self, step: u64, steps_per_epoch: u64) -> f32 {
        let (lr, lo) = (self.lr as f64, self.lr_min as f64);
        if step < self.warmup {
            return (lr * (step + 1) as f64 / self.warmup as f64) as f32;
        }
        let spe = steps_per_epoch.max(1);
        let v = match self.shape {
            LrShape::Constant => lr,
            LrShape::Cosine => {
                let total = (self.epochs as u64 * spe).saturating_sub(self.warmup).max(1);
                let p = ((step - self.warmup) as f64 / total as f64).min(1.0);
                lo + (lr - lo) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            LrShape::Step { every, gamma } => {
                let drops = (step / spe) / every.max(1) as u64;
                (lr * (gamma as f64).powi(drops.min(i32::MAX as u64) as i32)).max(lo)
            }
        };
        v as f32
    }

    /// Refuses settings no run can use, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.lr_min >= 0.0 && self.lr_min.is_finite() && self.lr_min <= self.lr) {
            return Err(format!("--lr-min {} must be between 0 and --lr {}", self.lr_min, self.lr));
        }
        if let LrShape::Step { every, gamma } = self.shape {
            if every == 0 {
                return Err("--lr-step-epochs must be at least 1".into());
            }
            if !(gamma > 0.0 && gamma <= 1.0) {
                return Err(format!("--lr-gamma {gamma} must be in (0, 1]"));
            }
        }
        Ok(())
    }

    /// One line for the run's log, e.g. "cosine from 0.001 to 0 over 100 epochs, 50 warm-up steps".
    pub fn describe(&self) -> String {
        let shape = match self.shape {
            LrShape::Constant => format!("constant {}", self.lr),
            LrShape::Cosine => format!("cosine from {} to {} over {} epochs", self.lr, self.lr_min, self.epochs),
            LrShape::Step { every, gamma } => {
                format!("{} times {gamma} every {every} epochs, at least {}", self.lr, self.lr_min)
            }
        };
        match self.warmup {
            0 => shape,
            w => format!("{shape}, {w} warm-up steps"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_first_step_moves_each_weight_by_lr_against_the_gradient_sign() {
        // At t = 1: m = 0.1 g, v = 0.001 g², α = lr·sqrt(0.001)/0.1, so the step is
        // lr · g / (|g| + ε/sqrt(0.001)) ≈ lr·sign(g) for |g| >> 3e-6.
        let mut p = vec![1.0f32, 1.0, 1.0];
        let g = vec![0.5f32, -2.0, 0.0];
        let mut st = AdamState::new(3);
        adam_update(&mut p, &g, &mut st, &AdamConfig::default(), 1e-3);
        // f32 rounding of 1 - 1e-3 is 6e-8; the ε term changes the step by < 1e-5 relative.
        assert!((p[0] - 0.999).abs() < 1e-6, "{}", p[0]);
        assert!((p[1] - 1.001).abs() < 1e-6, "{}", p[1]);
        assert_eq!(p[2], 1.0);
        assert_eq!(st.step, 1);
    }

    /// Three Keras-form steps worked out independently in f64, straight from the textbook form
    /// (`m = β1 m + (1-β1) g`, not the code's `m += (1-β1)(g - m)`), with β1, β2 and ε chosen
    /// away from the defaults so that a swapped or dropped term shows. At t = 2 and 3 the bias
    /// correction no longer cancels β1, so these steps check what the t = 1 test cannot.
    #[test]
    fn three_adam_steps_match_the_keras_formula_worked_out_in_f64() {
        let cfg = AdamConfig { beta1: 0.8, beta2: 0.95, eps: 1e-3 };
        let lr = 0.01f32;
        // Four scalars, a different gradient each step: a sign change, a vanishing gradient,
        // one large and one tiny entry. Entry 3's gradients are ~1e-3, so sqrt(v) is of the
        // order of ε and ε changes its step by about half (checked below).
        let theta0 = [1.0f64, -0.5, 2.0, 0.25];
        let grads: [[f64; 4]; 3] = [[0.5, -2.0, 30.0, 1e-3], [-0.25, -1.0, 10.0, 2e-3], [1.5, 0.0, -20.0, -5e-4]];
        let (b1, b2, eps) = (cfg.beta1 as f64, cfg.beta2 as f64, cfg.eps as f64);
        let mut want = theta0;
        let (mut m, mut v) = ([0.0f64; 4], [0.0f64; 4]);
        let mut p: Vec<f32> = theta0.iter().map(|&x| x as f32).collect();
        let mut st = AdamState::new(4);
        for (step, g) in grads.iter().enumerate() {
            let t = step as i32 + 1;
            let alpha = lr as f64 * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            let mut eps_share = 0.0f64;
            let mut worst = 0.0f64;
            for i in 0..4 {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                want[i] -= alpha * m[i] / (v[i].sqrt() + eps);
                if i == 3 {
                    eps_share = eps / (v[i].sqrt() + eps);
                }
            }
            assert!(eps_share > 0.2, "step {t}: ε should matter for entry 3 (share {eps_share})");
            let g32: Vec<f32> = g.iter().map(|&x| x as f32).collect();
            adam_update(&mut p, &g32, &mut st, &cfg, lr);
            // Tolerance: each step does a handful of f32 operations on values of order 1
            // (|θ| ≤ 2, steps ≤ ~0.03), each rounding by u = 6e-8 relative; the f32 inputs
            // (β's, ε, lr, g) are themselves rounded by u. Three steps accumulate at most
            // ~30 u·max(|θ|, 1) ≈ 4e-6 of absolute error; 1e-5 is that with room, and far
            // below any formula slip (the smallest step here is ~1e-3, an ε or bias-correction
            // mistake changes a step by > 10%).
            for i in 0..4 {
                let err = (p[i] as f64 - want[i]).abs();
                worst = worst.max(err);
                assert!(err <= 1e-5, "step {t}, θ[{i}] = {} want {} (err {err:e})", p[i], want[i]);
                assert!((st.m[i] as f64 - m[i]).abs() <= 1e-5 * m[i].abs().max(1e-3), "step {t} m[{i}]");
                assert!((st.v[i] as f64 - v[i]).abs() <= 1e-5 * v[i].abs().max(1e-6), "step {t} v[{i}]");
            }
            assert_eq!(st.step, t as u64);
            eprintln!("step {t}: worst |θ - f64| {worst:.1e}, ε share of entry 3 {eps_share:.2}");
        }
        eprintln!("after 3 steps: {p:?} (f64: {want:?})");
    }

    /// AdamW against the decoupled form worked out in f64 (`θ ← θ - lr·λ·θ`, then Adam's step
    /// from moments that never see the decay), and against plain Adam: the same moments, and
    /// each weight pulled toward zero by the decay's share.
    #[test]
    fn adamw_shrinks_each_weight_by_lr_times_decay_and_leaves_the_moments_alone() {
        let cfg = AdamConfig::default();
        let (lr, wd) = (0.01f32, 0.5f32);
        let theta0 = [1.5f64, -2.0, 0.0, 0.25];
        let grads: [[f64; 4]; 2] = [[0.5, -0.25, 1.0, 0.0], [-1.0, 0.5, 0.25, 0.0]];
        let (b1, b2, eps) = (cfg.beta1 as f64, cfg.beta2 as f64, cfg.eps as f64);
        let mut want = theta0;
        let (mut m, mut v) = ([0.0f64; 4], [0.0f64; 4]);
        let mut p: Vec<f32> = theta0.iter().map(|&x| x as f32).collect();
        let mut plain = p.clone();
        let (mut st, mut st_plain) = (AdamState::new(4), AdamState::new(4));
        for (step, g) in grads.iter().enumerate() {
            let t = step as i32 + 1;
            let alpha = lr as f64 * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            for i in 0..4 {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                want[i] = want[i] - lr as f64 * wd as f64 * want[i] - alpha * m[i] / (v[i].sqrt() + eps);
            }
            let g32: Vec<f32> = g.iter().map(|&x| x as f32).collect();
            adamw_update(&mut p, &g32, &mut st, &cfg, lr, wd);
            adam_update(&mut plain, &g32, &mut st_plain, &cfg, lr);
            // Tolerance: as in the three-step test above (a few f32 roundings of values of
            // order 1 per step, ~1e-6 in all); a decay applied twice, to the gradient instead,
            // or not at all moves θ[0] by lr·λ·1.5 = 7.5e-3 per step.
            for i in 0..4 {
                assert!((p[i] as f64 - want[i]).abs() <= 1e-5, "step {t}, θ[{i}] = {} want {}", p[i], want[i]);
            }
            // The moments are Adam's own: the decay never enters them.
            assert_eq!((&st.m, &st.v), (&st_plain.m, &st_plain.v));
        }
        // Entry 3 has no gradient: only the decay moved it, by (1 - lr·λ)² in all.
        assert!((p[3] as f64 - 0.25 * (1.0 - 0.005f64).powi(2)).abs() < 1e-7, "{}", p[3]);
        assert!(p[3] < plain[3] && p[0].abs() < plain[0].abs(), "the decay pulls toward zero: {p:?} vs {plain:?}");
    }

    #[test]
    fn a_gradient_past_the_update_limit_would_overflow_v_so_the_step_is_refused_unless_clipped() {
        // The limit is f32's square root: one component just above it overflows v (the weight
        // then never moves again), one just below does not.
        assert_eq!(MAX_UPDATE_NORM, (f32::MAX as f64).sqrt());
        let mut st = AdamState::new(2);
        let mut p = vec![0.0f32; 2];
        let below = (MAX_UPDATE_NORM * 0.999) as f32;
        let above = (MAX_UPDATE_NORM * 1.001) as f32;
        adam_update(&mut p, &[below, above], &mut st, &AdamConfig::default(), 1e-3);
        assert!(st.v[0].is_finite() && st.v[1].is_infinite(), "{:?}", st.v);
        let norm = global_norm(&[above]);
        assert!(norm.is_finite() && norm > MAX_UPDATE_NORM);
        assert!(!update_is_safe(1.0, norm, None));
        assert!(update_is_safe(1.0, norm, Some(1.0)), "clipping brings the norm Adam sees down to 1");
        assert!(update_is_safe(1.0, global_norm(&[below]), None));
        assert!(!update_is_safe(f64::NAN, 1.0, None) && !update_is_safe(1.0, f64::INFINITY, Some(1.0)));
    }

    #[test]
    fn clipping_scales_to_the_norm() {
        let mut g = vec![3.0f32, 4.0];
        assert_eq!(clip_global_norm(&mut g, 1.0), 5.0);
        assert!((g[0] - 0.6).abs() < 1e-7 && (g[1] - 0.8).abs() < 1e-7);
        let mut g = vec![0.3f32, 0.4];
        clip_global_norm(&mut g, 1.0);
        assert_eq!(g, vec![0.3, 0.4]);
    }
    #[test]
    fn schedules_give_the_worked_out_rates() {
        let s = |shape, warmup| LrSchedule { shape, lr: 1e-3, lr_min: 1e-4, warmup, epochs: 10 };
        // 10 windows per epoch: 100 steps in all.
        let cos = s(LrShape::Cosine, 0);
        assert_eq!(cos.lr_at(0, 10), 1e-3);
        // Halfway (step 50 of 100): lr_min + (lr - lr_min)/2 = 5.5e-4.
        assert_eq!(cos.lr_at(50, 10), 5.5e-4);
        // A quarter in: 1e-4 + 9e-4 * (1 + cos(pi/4))/2 = 8.68198e-4, from the f32 inputs as
        // the schedule gets them (1e-3 and 1e-4 are not exact in f32), rounded once.
        let (hi, lo) = (1e-3f32 as f64, 1e-4f32 as f64);
        let quarter = lo + (hi - lo) * 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
        assert_eq!(cos.lr_at(25, 10), quarter as f32);
        assert!((cos.lr_at(25, 10) - 8.68198e-4).abs() < 1e-9);
        assert_eq!(cos.lr_at(100, 10), 1e-4, "the end");
        assert_eq!(cos.lr_at(1000, 10), 1e-4, "past the end it stays at lr_min");
        // Warm-up: 1/4, 2/4, ... of lr over 4 steps, then the cosine over the other 96 steps.
        let warm = s(LrShape::Cosine, 4);
        assert_eq!([0, 1, 2, 3].map(|k| warm.lr_at(k, 10)), [2.5e-4, 5e-4, 7.5e-4, 1e-3]);
        assert_eq!(warm.lr_at(4, 10), 1e-3);
        assert_eq!(warm.lr_at(52, 10), 5.5e-4, "step 4 + 48 of 96");
        // Step: 1e-3 for epochs 1-3, 5e-4 for 4-6, 2.5e-4 for 7-9, then the floor 1e-4 would be
        // 1.25e-4 (above it).
        let step = s(LrShape::Step { every: 3, gamma: 0.5 }, 0);
        assert_eq!([0, 29, 30, 59, 60, 90].map(|k| step.lr_at(k, 10)), [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 1.25e-4]);
        let floor = s(LrShape::Step { every: 1, gamma: 0.1 }, 0);
        assert_eq!(floor.lr_at(35, 10), 1e-4, "0.1^3 of lr is below the floor");
        assert_eq!(s(LrShape::Constant, 0).lr_at(77, 10), 1e-3);
        assert!(s(LrShape::Step { every: 0, gamma: 0.5 }, 0).validate().is_err());
        assert!(LrSchedule { lr_min: 2e-3, ..cos }.validate().is_err());
    }
}
