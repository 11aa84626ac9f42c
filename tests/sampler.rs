//! The CPU sampler's two paths (batch-1 packed GEMV, batch-N GEMM) against the readable
//! reference forward run one step at a time with carried state.

mod common;
use folklstm::backend::Sampler;
use folklstm::cpu::CpuSampler;
use folklstm::model::{ModelConfig, init_params, reference};

#[test]
fn batch_one_and_batch_n_match_the_reference_step_by_step() {
    // H = 40 is not a multiple of the 32-unit packing, so the padded tail is exercised.
    for hidden in [40usize, 64] {
        let cfg = ModelConfig { vocab: 11, embed: 12, hidden, layers: 3, dropout: 0.2 };
        let mut params = init_params(&cfg, 5);
        // Non-zero biases everywhere, so a bias that is dropped or doubled shows.
        let nz = common::noise(params.data.len(), 6);
        params.data.iter_mut().zip(nz).for_each(|(p, n)| *p += 0.1 * n as f32);
        let p64 = params.map(|x| x as f64);
        let n = 3;
        let streams: Vec<Vec<u32>> = (0..n).map(|s| (0..12).map(|k| ((k * 7 + s * 3) % 11) as u32).collect()).collect();
        let zeros = vec![0.0f64; cfg.layers * cfg.hidden];
        let v = cfg.vocab;
        // Reference: each stream alone, the whole sequence at once (logits of every step).
        let want: Vec<Vec<f64>> =
            streams.iter().map(|s| reference::forward(&p64, s, 1, &zeros, &zeros).logits).collect();
        let mut one = CpuSampler::new(&params, Some(2)).unwrap();
        let mut many = CpuSampler::new(&params, Some(2)).unwrap();
        many.reset(n).unwrap();
        let mut lg1 = vec![0.0f32; v];
        let mut lgn = vec![0.0f32; n * v];
        for (s, stream) in streams.iter().enumerate() {
            one.reset(1).unwrap();
            for (k, &t) in stream.iter().enumerate() {
                one.step(&[t], &mut lg1).unwrap();
                for j in 0..v {
                    // f32 against f64 on O(1) values through 3 layers and 12 steps: 1e-5.
                    let d = (lg1[j] as f64 - want[s][k * v + j]).abs();
                    assert!(d < 1e-5, "H={hidden} batch-1 stream {s} step {k} logit {j}: {d:e}");
                }
            }
        }
        for k in 0..12 {
            let toks: Vec<u32> = streams.iter().map(|s| s[k]).collect();
            many.step(&toks, &mut lgn).unwrap();
            for s in 0..n {
                for j in 0..v {
                    let d = (lgn[s * v + j] as f64 - want[s][k * v + j]).abs();
                    assert!(d < 1e-5, "H={hidden} batch-{n} stream {s} step {k} logit {j}: {d:e}");
                }
            }
        }
        assert!(one.step(&[11], &mut lg1).is_err(), "token outside the vocabulary");
    }
}
