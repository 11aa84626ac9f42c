// adam.wgsl: global-norm clipping and the Adam update (src/gpu/adam.rs; the CPU's version is
// src/optim.rs). Keras' form of Adam, as the reference design runs it:
//
//   α_t = lr · sqrt(1 - β2^t) / (1 - β1^t)         (host, f64: Step.alphas, by t)
//   m   = m + (1 - β1)(g - m)
//   v   = v + (1 - β2)(g² - v)
//   θ   = θ · (1 - lr·λ) - α_t · m / (sqrt(v) + ε)   (λ: decoupled weight decay, 0 by default;
//                                                   Step.decay holds lr·λ)
//
// Clipping scales g by clip / ‖g‖ when ‖g‖ > clip, before the update; when the loss or ‖g‖ is
// not finite nothing is updated (src/cpu/backend.rs `train_step`).

struct AdamParams {
    n: u32,           // number of parameters P
    chunk: u32,       // sumsq: elements per workgroup
    parts: u32,       // norm: number of partial sums
    part_off: u32,    // work: partial sums [parts]
    out_off: u32,     // work: scalars; [0] Σ loss, [2] ‖g‖, [3] finite (1/0), [4] clip scale,
                      // [5] Adam's t (u32 bits), counted by `norm` when `counts` is 1
    counts: u32,      // norm: 1 when an update follows (a finite step advances t)
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: AdamParams;

var<workgroup> red: array<f32, 256>;

// Tree sum of red[0..256] into red[0]; every invocation of the workgroup must call it.
fn tree_sum(li: u32) {
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (li < w) {
            red[li] += red[li + w];
        }
        workgroupBarrier();
    }
}

// Stage 1 of ‖g‖²: workgroup w sums g² over its chunk [w·chunk, (w+1)·chunk) into part[w].
@compute @workgroup_size(256)
fn sumsq(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let w = wg.x + wg.y * nwg.x;
    let start = w * p.chunk;
    let end = min(start + p.chunk, p.n);
    var s = 0.0;
    for (var i = start + li; i < end; i += 256u) {
        let g = grads[i];
        s = fma(g, g, s);
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum(li);
    if (li == 0u && w < p.parts) {
        work[p.part_off + w] = red[0];
    }
}

// Stage 2: ‖g‖ = sqrt(Σ parts), the finiteness flag and the clipping scale, by one workgroup.
@compute @workgroup_size(256)
fn norm(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = li; i < p.parts; i += 256u) {
        s += work[p.part_off + i];
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum(li);
    if (li == 0u) {
        let nrm = sqrt(red[0]);
        let finite = !not_finite(nrm) && !not_finite(work[p.out_off]);
        var scale = 1.0;
        if (!is_nan(S.clip) && !not_finite(nrm) && nrm > S.clip) {
            scale = S.clip / nrm;
        }
        work[p.out_off + 2u] = nrm;
        work[p.out_off + 3u] = select(0.0, 1.0, finite);
        work[p.out_off + 4u] = scale;
        if (finite && p.counts == 1u) {
            work[p.out_off + 5u] = bitcast<f32>(bitcast<u32>(work[p.out_off + 5u]) + 1u);
        }
    }
}

// One Adam step per parameter: m = opt[0..P], v = opt[P..2P]. Skipped entirely (θ, m, v
// unchanged) when the finiteness flag is 0.
@compute @workgroup_size(256)
fn update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n || work[p.out_off + 3u] == 0.0) {
        return;
    }
    // t was advanced by `norm`: α_t is entry t - alpha_base - 1 of the host's table.
    let e = bitcast<u32>(work[p.out_off + 5u]) - S.alpha_base - 1u;
    let alpha = S.alphas[e / 4u][e % 4u];
    let g = grads[i] * work[p.out_off + 4u];
    let m = opt[i] + S.one_minus_b1 * (g - opt[i]);
    let v = opt[p.n + i] + S.one_minus_b2 * (g * g - opt[p.n + i]);
    opt[i] = m;
    opt[p.n + i] = v;
    params[i] = params[i] * (1.0 - S.decay) - alpha * m / (sqrt(v) + S.eps);
}
