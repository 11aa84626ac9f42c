//! Property tests of the two parsers that read files from outside: the checkpoint loader and
//! the ABC parser/checker. Bounded to a few seconds; `fuzz/` runs the same entry points for
//! as long as one likes (`cargo fuzz run checkpoint`, `cargo fuzz run abc`).

mod common;
use folklstm::checkpoint::{self, Checkpoint, TrainMeta};
use folklstm::corpus::Vocab;
use folklstm::model::{BatchConfig, ModelConfig, init_params};
use folklstm::optim::AdamState;
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// A small valid checkpoint (adam and a mid-epoch state included), as bytes.
fn valid() -> &'static (Checkpoint, Vec<u8>) {
    static V: OnceLock<(Checkpoint, Vec<u8>)> = OnceLock::new();
    V.get_or_init(|| {
        let cfg = ModelConfig { vocab: 4, embed: 3, hidden: 2, layers: 2, dropout: 0.1 };
        let params = init_params(&cfg, 1);
        let mut adam = AdamState::new(params.data.len());
        adam.step = 5;
        adam.m.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32 * 0.01);
        adam.v.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32 * 0.02);
        let batch = BatchConfig { batch: 2, seq: 3 };
        let ck = Checkpoint {
            params,
            vocab: Vocab::from_text("AB|\n"),
            adam: Some(adam),
            state: Some((vec![0.25; 8], vec![-0.25; 8])),
            meta: TrainMeta {
                epoch: 2,
                window: 1,
                step: 9,
                rng_seed: 3,
                batch,
                lr: 1e-3,
                clip: None,
                val_fraction: 0.0,
                corpus_fingerprint: "00".into(),
                corpus: "t.abc".into(),
                partial: Some(Default::default()),
                schedule: None,
                transpose: None,
                transpose_keys: Vec::new(),
                reflow: false,
                label_parts: false,
                line_bars: None,
                mark_lines: false,
                mark_last: false,
                restate_key: false,
                tonic: None,
                weight_decay: 0.0,
                weight_drop: 0.0,
                best: None,
            },
        };
        let bytes = checkpoint::to_bytes(&ck).unwrap();
        (ck, bytes)
    })
}

/// Loads, and if that succeeds, the result must be the original: damage is never silent.
fn load_is_safe(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(ck) = checkpoint::from_bytes(bytes, Path::new("p")) {
        prop_assert_eq!(&ck, &valid().0, "a damaged file loaded as something else");
    }
    Ok(())
}

/// ABC tunes to mutate: the shared corpus where present, else a built-in sample (a fallback
/// recorded as a skip of the real corpus, and a failure under FOLKLSTM_REQUIRE_DATA=1).
fn tunes() -> &'static Vec<String> {
    static T: OnceLock<Vec<String>> = OnceLock::new();
    T.get_or_init(|| {
        let jigs = common::shared_dir("data").map(|d| d.join("nottingham-jigs.abc"));
        let text = match jigs.as_deref().map(|p| (p, std::fs::read_to_string(p))) {
            Some((_, Ok(text))) => text,
            Some((p, Err(e))) => {
                let why = format!("cannot read {} ({e}); mutating the built-in sample tunes instead", p.display());
                common::skip(common::Need::Data, &why);
                common::hardening::corpus()
            }
            // shared_dir recorded the skip.
            None => common::hardening::corpus(),
        };
        let v: Vec<String> = folklstm::corpus::split_tunes(&text).into_iter().take(200).map(String::from).collect();
        assert!(!v.is_empty());
        v
    })
}

const ABC: &[char] = &[
    'A',
    'B',
    'c',
    'd',
    'z',
    'x',
    '|',
    ':',
    '[',
    ']',
    '1',
    '2',
    '3',
    '/',
    '^',
    '_',
    '=',
    ',',
    '\'',
    '(',
    ')',
    '<',
    '>',
    '"',
    '-',
    '~',
    '{',
    '}',
    '%',
    '\\',
    '\n',
    ' ',
    'X',
    'K',
    'M',
    'L',
    'Q',
    'P',
    'T',
    '!',
    '+',
    '0',
    '9',
    '#',
    '\u{e9}',
    '\u{1F3BB}',
    '\t',
];

/// One edit of a text: delete, insert, replace or duplicate a span (positions as fractions).
#[derive(Clone, Debug)]
enum Edit {
    Delete(f64, usize),
    Insert(f64, Vec<char>),
    Replace(f64, char),
    Duplicate(f64, usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0f64, 1..40usize).prop_map(|(p, n)| Edit::Delete(p, n)),
        (0.0..1.0f64, proptest::collection::vec(prop::sample::select(ABC), 1..12))
            .prop_map(|(p, s)| Edit::Insert(p, s)),
        (0.0..1.0f64, prop::sample::select(ABC)).prop_map(|(p, c)| Edit::Replace(p, c)),
        (0.0..1.0f64, 1..60usize).prop_map(|(p, n)| Edit::Duplicate(p, n)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut c: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
        match e {
            Edit::Delete(p, n) => {
                let i = at(*p, c.len());
                c.drain(i..(i + n).min(c.len()));
            }
            Edit::Insert(p, s) => {
                let i = at(*p, c.len());
                c.splice(i..i, s.iter().copied());
            }
            Edit::Replace(p, ch) => {
                if !c.is_empty() {
                    let i = at(*p, c.len() - 1);
                    c[i] = *ch;
                }
            }
            Edit::Duplicate(p, n) => {
                let i = at(*p, c.len());
                let span: Vec<char> = c[i..(i + n).min(c.len())].to_vec();
                c.splice(i..i, span);
            }
        }
    }
    c.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..common::prop_config(1000) })]

    /// Arbitrary bytes: an error, never a panic or a huge allocation.
    #[test]
    fn checkpoint_loader_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(checkpoint::from_bytes(&bytes, Path::new("p")).is_err());
    }

    /// Arbitrary bytes behind a plausible header length, so the JSON parser is reached.
    #[test]
    fn checkpoint_loader_survives_arbitrary_headers(
        json in proptest::collection::vec(prop::sample::select(b"{}[]\":,0123456789 _.aeFUI-__metadata__dtypeshapedata_offsets".to_vec()), 0..300),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut b = (json.len() as u64).to_le_bytes().to_vec();
        b.extend(&json);
        b.extend(&tail);
        prop_assert!(checkpoint::from_bytes(&b, Path::new("p")).is_err());
    }

    /// A valid file with a few bytes changed, cut short or grown: an error, or (if the change
    /// touched nothing that matters) exactly the original checkpoint.
    #[test]
    fn checkpoint_loader_never_returns_damaged_data(
        changes in proptest::collection::vec((0.0..1.0f64, 1..=255u8), 0..6),
        cut in proptest::option::of(0.0..1.0f64),
        grow in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let mut b = valid().1.clone();
        for (p, x) in &changes {
            let i = ((p * b.len() as f64) as usize).min(b.len() - 1);
            b[i] ^= x;
        }
        if let Some(p) = cut {
            b.truncate((p * b.len() as f64) as usize);
        }
        b.extend(&grow);
        load_is_safe(&b)?;
        if !changes.is_empty() || cut.is_some() || !grow.is_empty() {
            prop_assert!(checkpoint::from_bytes(&b, Path::new("p")).is_err(), "a damaged file loaded");
        }
    }

    /// Real tunes with random edits: the parser, the checker and the MIDI writer never panic,
    /// and the checker judges each tune on its own: the edited text joined to the unedited
    /// tune (either way round) gives the two reports joined.
    #[test]
    fn abc_parser_and_checker_survive_edited_tunes(
        pick in 0..200usize,
        edits in proptest::collection::vec(edit_strategy(), 0..8),
    ) {
        let tunes = tunes();
        let original = &tunes[pick % tunes.len()];
        let text = apply(original, &edits);
        if let Ok(t) = folklstm::abc::parse_tune(&text) {
            let _ = folklstm::abc::tune_to_midi(&t);
        }
        let edited = if text.starts_with("X:") { text.clone() } else { format!("X:1\n{text}") };
        let original = if original.starts_with("X:") { original.clone() } else { format!("X:1\n{original}") };
        joined_reports_are_the_reports_joined(&edited, &original)?;
        joined_reports_are_the_reports_joined(&original, &edited)?;
    }
}

#[test]
fn the_unmodified_valid_file_loads() {
    let (ck, bytes) = valid();
    assert_eq!(&checkpoint::from_bytes(bytes, Path::new("p")).unwrap(), ck);
}

/// `check_text(a + "\n" + b)` is `check_text(a)` then `check_text(b)` with b's tune indices moved
/// on by a's tune count and its `line:col:` positions by a's line count (whole-tune problems
/// have none); `count_valid` agrees. `a` and `b` must start with `X:` (else a's text is a
/// file header when joined, or b's first lines join a's last tune).
fn joined_reports_are_the_reports_joined(a: &str, b: &str) -> Result<(), TestCaseError> {
    use folklstm::abc::{check_text, count_valid};
    let (ra, rb) = (check_text(a), check_text(b));
    let joined = format!("{a}\n{b}");
    let by = a.split('\n').count();
    let shift = |p: &String| {
        let mut it = p.splitn(3, ':');
        match (
            it.next().and_then(|l| l.parse::<usize>().ok()),
            it.next().and_then(|c| c.parse::<usize>().ok()),
            it.next(),
        ) {
            (Some(l), Some(c), Some(rest)) => format!("{}:{c}:{rest}", l + by),
            _ => p.clone(),
        }
    };
    let mut want = ra.clone();
    for mut r in rb {
        r.index += ra.len();
        r.problems = r.problems.iter().map(shift).collect();
        want.push(r);
    }
    prop_assert_eq!(&check_text(&joined), &want, "joined:\n{}", joined);
    prop_assert_eq!(count_valid(&joined), (want.len(), want.iter().filter(|r| r.problems.is_empty()).count()));
    Ok(())
}
