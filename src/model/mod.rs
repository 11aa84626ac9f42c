//! The network: configuration, parameters, initialisation, and the math.
//!
//! This page states every equation the engine implements, each with the function that
//! implements it. Shapes: B batch rows, T steps per window, V vocabulary, E embedding width,
//! H hidden width, L layers; N = B·T positions. Row-major; `x: [B, T]` token ids.
//!
//! # Forward
//!
//! **Embedding.** `e_t = E[x_t]`, `E: [V, E]`. Layer 0's input projection is computed per
//! symbol instead of per token: `P = E · W_ih0` (`[V, 4H]`), then `x_t·W_ih0 = P[x_t]`. Same
//! numbers, 12x fewer multiply-adds when V = 86 ≪ N = 1024
//! ([`crate::cpu::network`], `layer_forward`).
//!
//! **LSTM cell** (gate order i, f, g, o; one bias per layer; all four gates fused in one
//! `[in, 4H]` and one `[H, 4H]` matrix):
//! ```text
//! z_t = x_t·W_ih + h_{t-1}·W_hh + b              [B, 4H]   input part: one GEMM for all N rows
//! i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! h_t = o ⊙ tanh(c_t)
//! ```
//! ([`cell::forward`], SIMD: [`crate::cpu::simd::cell_forward`]).
//!
//! **Dropout** on each layer's output, inverted: `y_t = h_t ⊙ m_t / (1 - p)`, `m ~ Bernoulli(1-p)`,
//! drawn from a counter-based hash ([`crate::rng`]) so masks are reproducible; off at evaluation
//! and sampling.
//!
//! **Output.** `logits = y_top · W_d + b_d` (`[N, V]`), `p = softmax(logits)`,
//! `loss = -(1/N) Σ_r log p[r, target_r]` (nats per character).
//!
//! **Stateful windows.** (h, c) at the end of a window is the (h0, c0) of the next window of
//! the same streams; gradients do not flow across the window edge (truncated BPTT).
//!
//! # Backward (hand-derived)
//!
//! **Softmax cross-entropy:** `dlogits = (p - onehot(target)) / N`;
//! `dW_d = y_topᵀ · dlogits`, `db_d = Σ_r dlogits`, `dy_top = dlogits · W_dᵀ`
//! ([`crate::cpu::network::backward`]).
//!
//! **Dropout:** `dh_t(from above) = dy_t ⊙ m_t / (1 - p)`.
//!
//! **BPTT through one layer**, t = T-1 down to 0, starting from `dh_rec = dc = 0` (truncation):
//! ```text
//! dh    = dh_up_t + dh_rec                         (from above, and from step t+1 through W_hh)
//! do    = dh ⊙ tanh(c_t)                           dz_o = do ⊙ o(1-o)
//! dc   += dh ⊙ o ⊙ (1 - tanh²(c_t))
//! di    = dc ⊙ g        dz_i = di ⊙ i(1-i)
//! dg    = dc ⊙ i        dz_g = dg ⊙ (1-g²)
//! df    = dc ⊙ c_{t-1}  dz_f = df ⊙ f(1-f)
//! dc    = dc ⊙ f                                   (carried to step t-1)
//! dh_rec = dz_t · W_hhᵀ                            (carried to step t-1)
//! ```
//! ([`cell::backward`]). After the time loop, one GEMM each:
//! `dW_hh = Σ_t h_{t-1}ᵀ dz_t = H_prevᵀ · dZ`, `db = Σ_rows dZ`, `dW_ih = Xᵀ · dZ`,
//! `dX = dZ · W_ihᵀ` (the gradient for the layer below). For layer 0:
//! `G[v] = Σ_{r: x_r = v} dZ[r]` (`[V, 4H]`), `dW_ih0 = Eᵀ · G`, `dE = G · W_ih0ᵀ`.
//! What is left in `dh_rec` and `dc` after step 0 is `d loss / d h0` and `d loss / d c0`.
//!
//! # Adam
//! Keras' form ([`crate::optim::adam_update`]), with optional global-norm clipping before it
//! ([`crate::optim::clip_global_norm`]):
//! ```text
//! α_t = lr · sqrt(1 - β2^t) / (1 - β1^t);  m += (1-β1)(g - m);  v += (1-β2)(g² - v)
//! θ  -= α_t · m / (sqrt(v) + ε)            lr 1e-3, β1 0.9, β2 0.999, ε 1e-7
//! ```
//! `train --weight-decay λ` (off in the reference design) first shrinks every weight,
//! `θ ← θ·(1 - lr·λ)`, outside the moments ([`crate::optim::adamw_update`], AdamW).
//! `train --weight-drop p` (off in the reference design, CPU only) runs each window with
//! `W_hh ⊙ M`, `M ∈ {0, 1/(1-p)}` per entry, forward and backward, and takes
//! `dW_hh = M ⊙ d loss / d (W_hh ⊙ M)` (`src/cpu/network.rs`, `weight_drop`).
//!
//! # How it is checked
//! `tests/engine.rs`: five-point finite differences on every tensor and h0, c0 in f64 (the
//! same code path, generic over [`crate::real::Real`]); the fused engine against
//! [`reference::forward`] and its gradients against [`reference::backward`] (one gate and one
//! step at a time, `ndarray`); `tests/engine_fixtures.rs`: PyTorch autograd's numbers for the
//! same weights.

pub mod cell;
pub mod config;
pub mod init;
pub mod params;
pub mod reference;

pub use config::{BatchConfig, ModelConfig};
pub use init::init_params;
pub use params::{LstmRefs, ParamLayout, Params, TensorRef};
