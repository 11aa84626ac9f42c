// common.wgsl: prepended to every kernel file (see src/gpu/context.rs).
//
// One bind group serves every kernel: binding 0 is the kernel's own parameter block (a uniform
// at a dynamic offset, declared by each kernel file), binding 1 the per-step values, and five
// storage buffers hold everything the model owns on the device:
//
//   params : [P]       all parameters, flat, in `ParamLayout` order (src/model/params.rs)
//   grads  : [P]       d loss / d params, same layout
//   opt    : [2P]      Adam's m (first P) and v (next P)
//   work   : [W]       activations, scratch and the step's scalars (offsets: src/gpu/net.rs)
//   ids    : [I]       u32: inputs, targets and the per-symbol row lists, time-major
//
// All storage buffers are declared read_write because wgpu requires the shader's access mode to
// equal the layout's, and one layout serves all kernels.

struct Step {
    // Adam: 1 - β1, 1 - β2, ε.
    one_minus_b1: f32,
    one_minus_b2: f32,
    eps: f32,
    // Max global gradient norm; NaN: no clipping.
    clip: f32,
    // Dropout: p, the kept scale 1/(1-p) (rounded from f64 as the CPU does), on (1) or off (0).
    drop_p: f32,
    drop_keep: f32,
    drop_on: u32,
    // Counter-based RNG (src/rng.rs): key halves and the step counter.
    key0: u32,
    key1: u32,
    counter: u32,
    // Decoupled weight decay: lr·λ (AdamW); each parameter shrinks by 1 - decay. 0: plain Adam.
    decay: f32,
    // Adam's t before the first step of this submission's batch, and α_t = lr·sqrt(1-β2^t)/(1-β1^t)
    // for t = alpha_base + 1 .. alpha_base + 16 (computed on the host in f64, as src/optim.rs
    // does): the device counts t itself (adam.wgsl `norm`), so a step need not wait for the
    // previous one's finiteness flag to be read back.
    alpha_base: u32,
    alphas: array<vec4<f32>, 4>,
}

@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> opt: array<f32>;
@group(0) @binding(5) var<storage, read_write> work: array<f32>;
@group(0) @binding(6) var<storage, read_write> ids: array<u32>;

// "No such buffer region" in parameter blocks.
const NONE: u32 = 0xffffffffu;

// MurmurHash3's 32-bit finaliser (src/rng.rs `fmix32`); u32 multiplication wraps in WGSL.
fn fmix32(x: u32) -> u32 {
    var h = x;
    h ^= h >> 16u;
    h *= 0x85ebca6bu;
    h ^= h >> 13u;
    h *= 0xc2b2ae35u;
    h ^= h >> 16u;
    return h;
}

// Key::word(counter, stream, index), bit for bit.
fn rng_word(counter: u32, stream: u32, index: u32) -> u32 {
    let h0 = fmix32(S.key0 ^ (counter * 0x9e3779b9u));
    let h1 = fmix32(h0 ^ S.key1 ^ (stream * 0x85ebca6bu));
    return fmix32(h1 ^ index);
}

// Key::uniform: 24 random bits scaled by 2^-24, exact in f32.
fn rng_uniform(counter: u32, stream: u32, index: u32) -> f32 {
    return f32(rng_word(counter, stream, index) >> 8u) * (1.0 / 16777216.0);
}

// Dropout multiplier of layer `layer` at time-major row r = t*B + b, unit j (width H):
// u = key.uniform(counter, DROPOUT_STREAM + layer, r*H + j); keep iff u >= p; kept values scale by
// 1/(1-p). DROPOUT_STREAM is rng::stream::DROPOUT, defined where the shaders are assembled
// (src/gpu/context.rs).
// 1 when dropout is off (evaluation, sampling, p = 0).
fn dropout_mult(layer: u32, r: u32, j: u32, hdim: u32) -> f32 {
    if (S.drop_on == 0u) {
        return 1.0;
    }
    let u = rng_uniform(S.counter, DROPOUT_STREAM + layer, r * hdim + j);
    return select(0.0, S.drop_keep, u >= S.drop_p);
}

// Logistic sigmoid 1 / (1 + e^-x), in the two-branch form of src/model/cell.rs `sigmoid` (never overflows).
fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// tanh(x) = sign(x)·(1 - 2/(e^{2|x|} + 1)). Written out because some drivers build tanh from
// e^{2x} and return inf/inf = NaN for large |x|; here e^{2|x|} = inf gives exactly ±1.
// The absolute error is a few ulp of 1 (about 1e-7).
// Below |x| = 1/8 an odd Taylor polynomial is used instead (next term 62x⁹/2835 < 3e-10), so
// small arguments keep their relative precision.
fn tanh_safe(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.125) {
        let x2 = x * x;
        return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
    }
    let e = exp(2.0 * a);
    let t = 1.0 - 2.0 / (e + 1.0);
    return select(t, -t, x < 0.0);
}

// True when x is NaN or ±inf, tested on the bits (WGSL lets compilers assume floats are finite,
// so `x != x` may be folded away).
fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// True when x is NaN, tested on the bits for the same reason.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
