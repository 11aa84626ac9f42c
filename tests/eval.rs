//! `folklstm::eval::evaluate` against numbers known without it: a fake sampler whose logits are
//! chosen so that nats/char and accuracy can be worked out by hand, and the real CPU sampler
//! against the training engine's own loss (`cpu::forward`, dropout off) over the same windows.

mod common;
use folklstm::backend::Sampler;
use folklstm::corpus::Vocab;
use folklstm::cpu::{CpuSampler, State, Workspace, forward};
use folklstm::error::Result;
use folklstm::eval::evaluate;
use folklstm::model::{ModelConfig, Params, init_params};

/// A bigram "model": the logits depend only on the last token fed, from a fixed table, and every
/// call is recorded so the test can see what `evaluate` fed and when it reset.
struct Bigram {
    cfg: ModelConfig,
    /// Logits after token `a`: `table[a]`, `[V]`.
    table: Vec<Vec<f32>>,
    resets: Vec<usize>,
    fed: Vec<Vec<u32>>,
}

impl Sampler for Bigram {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }
    fn reset(&mut self, count: usize) -> Result<()> {
        self.resets.push(count);
        Ok(())
    }
    fn step(&mut self, tokens: &[u32], logits: &mut [f32]) -> Result<()> {
        let v = self.cfg.vocab;
        assert_eq!(logits.len(), tokens.len() * v);
        for (s, &t) in tokens.iter().enumerate() {
            logits[s * v..(s + 1) * v].copy_from_slice(&self.table[t as usize]);
        }
        self.fed.push(tokens.to_vec());
        Ok(())
    }
}

#[test]
fn a_bigram_sampler_with_chosen_probabilities_gives_the_hand_computed_nats_and_accuracy() {
    // Vocabulary a, b, c (ids 0, 1, 2). Probabilities of the next character:
    //   after a: (1/4, 1/2, 1/4)   argmax b
    //   after b: (0.2, 0.2, 0.6)   argmax c
    //   after c: (1/3, 1/3, 1/3)   a three-way tie: argmax is the first, a
    // The logits are ln p plus a different constant per row (softmax ignores it), so a wrong
    // log-sum-exp, or reading the logits as probabilities, shows.
    let probs = [[0.25f64, 0.5, 0.25], [0.2, 0.2, 0.6], [1.0 / 3.0; 3]];
    let table: Vec<Vec<f32>> =
        probs.iter().zip([7.0, -3.0, 0.5]).map(|(row, k)| row.iter().map(|p| (p.ln() + k) as f32).collect()).collect();
    let cfg = ModelConfig { vocab: 3, embed: 1, hidden: 1, layers: 1, dropout: 0.0 };
    let mut fake = Bigram { cfg, table, resets: vec![], fed: vec![] };
    let vocab = Vocab::from_chars("abc".chars());
    // Known characters: a b c b | c a a b | c (the ? is outside the vocabulary: skipped, counted).
    // Two streams of 9 / 2 = 4 characters; the ninth is left over and never read.
    //   stream 0: a→b  b→c  c→b        stream 1: c→a  a→a  a→b
    let r = evaluate(&mut fake, &vocab, "ab?cbcaabc", 2).unwrap();
    assert_eq!(fake.resets, vec![2], "one reset, for two streams, before any step");
    assert_eq!(fake.fed, vec![vec![0, 2], vec![1, 0], vec![2, 0]], "characters 0..3 of each stream, in step");
    let (l2, l3) = (2f64.ln(), 3f64.ln());
    //        a→b   b→c         c→b  c→a  a→a     a→b
    let nats = [l2, -(0.6f64.ln()), l3, l3, 2.0 * l2, l2];
    let want = nats.iter().sum::<f64>() / 6.0;
    // Correct: a→b yes, b→c yes, c→b no (the tie goes to a), c→a yes, a→a no, a→b yes: 4 of 6.
    // Tolerance: the logits are ln p rounded to f32 (≤ 4e-7 absolute each, with the offsets up
    // to 7), and a log-sum-exp of three of them moves by at most the same: 1e-6 per position.
    assert!((r.nats - want).abs() <= 1e-6, "nats {} want {want}", r.nats);
    assert!((r.bits - want / 2f64.ln()).abs() <= 2e-6, "bits {}", r.bits);
    assert_eq!(r.accuracy, 4.0 / 6.0);
    assert_eq!((r.scored, r.unknown, r.streams), (6, 1, 2));

    // One stream: the whole text in order, 8 pairs:
    //   a→b b→c c→b b→c c→a a→a a→b b→c
    let mut fake = Bigram { cfg, table: fake.table, resets: vec![], fed: vec![] };
    let r = evaluate(&mut fake, &vocab, "ab?cbcaabc", 1).unwrap();
    let nats = [l2, -(0.6f64.ln()), l3, -(0.6f64.ln()), l3, 2.0 * l2, l2, -(0.6f64.ln())];
    let want = nats.iter().sum::<f64>() / 8.0;
    assert!((r.nats - want).abs() <= 1e-6, "one stream: nats {} want {want}", r.nats);
    // Correct: yes yes no yes yes no yes yes: 6 of 8.
    assert_eq!(r.accuracy, 6.0 / 8.0);
    assert_eq!((r.scored, r.unknown, r.streams), (8, 1, 1));
}

/// A small model with every weight non-trivial (Keras init plus noise) and a dense layer scaled
/// up, so that its predictions are confident and depend on the input: a character fed or scored
/// at the wrong place changes the loss visibly.
fn model(vocab: usize) -> Params<f32> {
    let cfg = ModelConfig { vocab, embed: 8, hidden: 24, layers: 2, dropout: 0.2 };
    let mut p = init_params(&cfg, 31);
    let nz = common::noise(p.data.len(), 32);
    for (x, n) in p.data.iter_mut().zip(nz) {
        *x += 0.5 * n as f32;
    }
    for w in p.by_name_mut("dense.w").unwrap() {
        *w *= 6.0;
    }
    p
}

#[test]
fn eval_equals_the_training_loss_without_dropout_over_the_same_windows() {
    let text = common::corpus();
    let vocab = Vocab::from_text(&text);
    let p = model(vocab.len());
    let streams = 4;
    let mut sampler = CpuSampler::new(&p, Some(1)).unwrap();
    let r = evaluate(&mut sampler, &vocab, &text, streams).unwrap();

    // What evaluate scores (src/eval.rs): the ids cut into `streams` pieces of len = N / streams,
    // each read from a zero state; in piece s, character k + 1 is predicted from characters
    // 0..=k, for k < len - 1. That is one window of B = streams rows and T = len - 1 steps,
    // x[s, k] = ids[s·len + k], y[s, k] = ids[s·len + k + 1], from a zero state, no dropout.
    let ids = vocab.encode(&text, "test").unwrap();
    let len = ids.len() / streams;
    let t = len - 1;
    let mut x = Vec::with_capacity(streams * t);
    let mut y = Vec::with_capacity(streams * t);
    for s in 0..streams {
        x.extend_from_slice(&ids[s * len..s * len + t]);
        y.extend_from_slice(&ids[s * len + 1..s * len + t + 1]);
    }
    assert_eq!(r.scored as usize, streams * t);
    assert_eq!((r.unknown, r.streams), (0, streams));

    // The training engine's own loss in f32 (what `train` logs, here with dropout off), and the
    // same pass in f64 as the truth both f32 paths are measured against.
    let cfg = p.config;
    let mut ws = Workspace::<f32>::new(&cfg, streams, t);
    let mut st = State::zeros(&cfg, streams);
    let l32 = forward(&p, &mut ws, &x, &y, &mut st, None).unwrap();
    let p64 = p.map(|v| v as f64);
    let mut ws64 = Workspace::<f64>::new(&cfg, streams, t);
    let mut st64 = State::zeros(&cfg, streams);
    let l64 = forward(&p64, &mut ws64, &x, &y, &mut st64, None).unwrap();
    eprintln!(
        "eval {:.9} nats, acc {:.6}; forward f32 {:.9} ({} correct), f64 {:.12} ({} correct) of {}",
        r.nats, r.accuracy, l32.loss, l32.correct, l64.loss, l64.correct, r.scored
    );
    // Tolerance: both f32 paths (the sampler's matrix-vector kernel, the engine's GEMMs) round
    // each dot product of ≤ 4H = 96 terms to at worst K·u ≈ 6e-6 relative (typically
    // sqrt(K)·u ≈ 6e-7); the LSTM's gates (slopes ≤ 1, forget gates < 1) keep that from growing
    // along the 964 steps, and the mean over 3,856 cross-entropies averages it. 1e-5 relative
    // to f64 covers the worst case (observed: 7e-8). A wrong window is far outside it: feeding
    // each stream one character late, or scoring one character early, moved the mean by 1e-3
    // to 2e-3 relative when this test was written.
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    assert!(rel(r.nats, l64.loss) <= 1e-5, "eval {} vs f64 forward {}", r.nats, l64.loss);
    assert!(rel(l32.loss, l64.loss) <= 1e-5, "f32 forward {} vs f64 {}", l32.loss, l64.loss);
    assert!(rel(r.nats, l32.loss) <= 2e-5, "eval {} vs f32 forward {}", r.nats, l32.loss);
    assert!((r.bits - r.nats / std::f64::consts::LN_2).abs() <= 1e-12);
    // Accuracy: an argmax can only differ where the two largest logits are closer than the
    // f32 rounding; count those positions in f64 (gap < 1e-4, far above rounding) and allow
    // exactly that many differences.
    let v = cfg.vocab;
    let ambiguous = ws64
        .logits_bt()
        .chunks_exact(v)
        .filter(|row| {
            let mut s: Vec<f64> = row.to_vec();
            s.sort_by(|a, b| b.total_cmp(a));
            s[0] - s[1] < 1e-4
        })
        .count();
    let correct = (r.accuracy * r.scored as f64).round() as i64;
    let diff = (correct - l64.correct as i64).unsigned_abs() as usize;
    assert!(diff <= ambiguous, "eval {correct} correct vs forward {}; {ambiguous} near-ties", l64.correct);
    eprintln!("near-ties: {ambiguous}");
}
