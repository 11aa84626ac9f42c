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

/// A model whose hidden size splits unevenly over 3 and 5 threads: H = 219 is 7 blocks of 32
/// units (the last one 27 wide), so the batch-1 team gets 2+2+3 and 1+1+1+2+2 blocks; the
/// batch-5 GEMMs ([5, 219] x [219, 876], above the parallel threshold of 2^18 multiply-adds)
/// split their 876 columns into 304+304+268 and 4x176+172; so does the layer-0 table
/// ([V, 17] x [17, 876]) built when the sampler is made.
fn uneven_model() -> (folklstm::corpus::Vocab, folklstm::model::Params<f32>) {
    let vocab = folklstm::corpus::Vocab::from_text(&common::corpus());
    let cfg = ModelConfig { vocab: vocab.len(), embed: 17, hidden: 219, layers: 2, dropout: 0.0 };
    let mut params = init_params(&cfg, 8);
    let nz = common::noise(params.data.len(), 9);
    params.data.iter_mut().zip(nz).for_each(|(p, n)| *p += 0.1 * n as f32);
    (vocab, params)
}

/// Every logit of 40 steps, as bits, of a sampler with `threads` threads and `n` streams.
fn logit_bits(params: &folklstm::model::Params<f32>, threads: usize, n: usize) -> Vec<u32> {
    let v = params.config.vocab;
    let mut s = CpuSampler::new(params, Some(threads)).unwrap();
    s.reset(n).unwrap();
    let mut logits = vec![0.0f32; n * v];
    let mut out = Vec::new();
    for k in 0..40 {
        let toks: Vec<u32> = (0..n).map(|j| ((k * 7 + j * 5) % v) as u32).collect();
        s.step(&toks, &mut logits).unwrap();
        out.extend(logits.iter().map(|x| x.to_bits()));
    }
    out
}

#[test]
fn sampler_logits_are_identical_with_one_two_three_and_five_threads() {
    let (_, params) = uneven_model();
    for n in [1usize, 5] {
        let one = logit_bits(&params, 1, n);
        assert!(one.iter().any(|&b| f32::from_bits(b) != 0.0), "all logits zero");
        for threads in [2, 3, 5] {
            let other = logit_bits(&params, threads, n);
            if let Some(i) = one.iter().zip(&other).position(|(a, b)| a != b) {
                let v = params.config.vocab;
                let (step, stream, symbol) = (i / (n * v), i / v % n, i % v);
                let (a, b) = (f32::from_bits(one[i]), f32::from_bits(other[i]));
                panic!(
                    "batch {n}, {threads} threads: step {step} stream {stream} logit {symbol}: {a:e} vs {b:e} with 1"
                );
            }
        }
    }
}

#[test]
fn eval_is_identical_with_one_two_three_and_five_threads() {
    let (vocab, params) = uneven_model();
    // The first 600 characters (a few tunes): 600 batch-1 steps, 85 steps of 7 streams.
    let text: String = common::corpus().chars().take(600).collect();
    for streams in [1usize, 7] {
        let run = |threads| {
            let mut s = CpuSampler::new(&params, Some(threads)).unwrap();
            folklstm::eval::evaluate(&mut s, &vocab, &text, streams).unwrap()
        };
        let one = run(1);
        assert_eq!(one.streams, streams);
        for threads in [2, 3, 5] {
            let other = run(threads);
            assert_eq!(
                one.nats.to_bits(),
                other.nats.to_bits(),
                "{streams} streams, {threads} threads: {one:?} vs {other:?}"
            );
            assert_eq!(one, other, "{streams} streams, {threads} threads");
        }
    }
}
