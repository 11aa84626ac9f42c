//! The corpus: loading ABC text, the vocabulary, the train/validation split by tune, and the
//! stateful batching of the reference design.
//!
//! Batching: the text (as token ids) is cut into `B` contiguous streams of `len / B` characters;
//! window `k` holds, in row `b`, the characters `[b*len/B + k*T, b*len/B + (k+1)*T)` and the
//! targets one character further on. So row `b` of window `k+1` continues row `b` of window `k`,
//! and the (h, c) a window ends with is the right start for the next.

use crate::error::{Error, Result};
use crate::model::BatchConfig;
use crate::rng::{Key, stream};
use std::path::{Path, PathBuf};

/// The characters a model reads and writes; a token id is an index into [`Vocab::chars`].
///
/// A vocabulary built from text is sorted ([`Vocab::from_text`]); one that comes with a model
/// from elsewhere (a PyTorch state dict, [`crate::torch`]) keeps that model's order
/// ([`Vocab::from_ordered`]), since its token ids are positions in that order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    /// The characters, in id order.
    chars: Vec<char>,
    /// `(char, id)` sorted by character, for lookups.
    index: Vec<(char, u32)>,
}

impl Vocab {
    /// The sorted set of characters of `text`.
    pub fn from_text(text: &str) -> Self {
        Self::from_chars(text.chars())
    }

    /// A vocabulary from an explicit list (sorted and deduplicated here).
    pub fn from_chars(chars: impl IntoIterator<Item = char>) -> Self {
        let mut chars: Vec<char> = chars.into_iter().collect();
        chars.sort_unstable();
        chars.dedup();
        Self::indexed(chars)
    }

    /// A vocabulary whose ids are the positions in `chars`, in the order given (a model trained
    /// elsewhere numbers its characters its own way). None when a character repeats.
    pub fn from_ordered(chars: impl IntoIterator<Item = char>) -> Option<Self> {
        let v = Self::indexed(chars.into_iter().collect());
        v.index.windows(2).all(|w| w[0].0 != w[1].0).then_some(v)
    }

    fn indexed(chars: Vec<char>) -> Self {
        let mut index: Vec<(char, u32)> = chars.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
        index.sort_unstable();
        Vocab { chars, index }
    }

    /// True when the ids follow the characters' order (every vocabulary built from text).
    pub fn is_sorted(&self) -> bool {
        self.chars.is_sorted()
    }

    /// Whether every character of `other` is also in `self`.
    pub fn covers(&self, other: &Vocab) -> bool {
        other.chars.iter().all(|&c| self.id(c).is_some())
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// True for an empty vocabulary.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters, in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<u32> {
        self.index.binary_search_by(|&(x, _)| x.cmp(&c)).ok().map(|k| self.index[k].1)
    }

    /// The character of id `i`.
    pub fn char(&self, i: u32) -> char {
        self.chars[i as usize]
    }

    /// Token ids of `text`; characters outside the vocabulary are an error naming them.
    pub fn encode(&self, text: &str, what: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len());
        let mut missing = Vec::new();
        for c in text.chars() {
            match self.id(c) {
                Some(i) => ids.push(i),
                None if !missing.contains(&c) => missing.push(c),
                None => {}
            }
        }
        if missing.is_empty() {
            Ok(ids)
        } else {
            let chars = missing.iter().map(|c| format!("{:?}", c)).collect::<Vec<_>>().join(", ");
            Err(Error::OutOfVocabulary { what: what.into(), chars })
        }
    }

    /// Token ids of `text`, with characters outside the vocabulary dropped and counted.
    pub fn encode_lossy(&self, text: &str) -> (Vec<u32>, usize) {
        let mut unknown = 0;
        let ids = text
            .chars()
            .filter_map(|c| {
                let id = self.id(c);
                unknown += id.is_none() as usize;
                id
            })
            .collect();
        (ids, unknown)
    }

    /// Whether a model with this vocabulary can write ABC: it holds every character each tune
    /// needs ([`ABC_CHARS`]: the `X:`, `T:` and `K:` header fields, bar lines, line breaks).
    /// A model of other text (prose, verse, code) almost never has them all.
    pub fn looks_like_abc(&self) -> bool {
        self.missing_for_abc().is_empty()
    }

    /// The characters of [`ABC_CHARS`] this vocabulary lacks.
    pub fn missing_for_abc(&self) -> Vec<char> {
        ABC_CHARS.chars().filter(|&c| self.id(c).is_none()).collect()
    }

    /// The text of a sequence of ids.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter().map(|&i| self.char(i)).collect()
    }
}

/// The characters every ABC tune is written with; see [`Vocab::looks_like_abc`].
pub const ABC_CHARS: &str = "XTK:|\n";

/// The largest corpus [`load_text`] reads: 1 GiB of text (4 GiB as token ids).
pub const MAX_CORPUS_BYTES: u64 = 1 << 30;

/// Why `text` is not text: a control character other than tab and line breaks (what
/// binary files that happen to be valid UTF-8 are made of), with its line.
fn binary_reason(text: &str) -> Option<String> {
    let (i, c) = text.char_indices().find(|&(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))?;
    let line = text[..i].matches('\n').count() + 1;
    Some(if c == '\0' {
        format!("contains NUL bytes (the first on line {line}): a binary file, not text")
    } else {
        format!("contains the control character U+{:04X} on line {line}: a binary file, not text", c as u32)
    })
}

/// Reads a corpus: one file of any UTF-8 text (ABC tunes, or prose, verse, code), or every
/// `.abc` file of a folder in name order, concatenated.
/// Line endings are normalised to `\n` (a model should not learn `\r`), and a leading
/// byte-order mark is dropped. Binary files (invalid UTF-8, NUL or other control characters),
/// empty corpora and corpora over [`MAX_CORPUS_BYTES`] are refused with the reason.
/// Returns the text and the files it came from.
pub fn load_text(path: &Path) -> Result<(String, Vec<PathBuf>)> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::CorpusMissing { path: path.to_path_buf() });
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let files = if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("abc")))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::Corpus {
                path: path.to_path_buf(),
                reason: "the folder holds no .abc files (a corpus folder is read for files ending in .abc; pass \
                         any other text as one file)"
                    .into(),
            });
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut total = 0u64;
    for f in &files {
        total += std::fs::metadata(f).map_err(|e| Error::io(f, e))?.len();
    }
    if total > MAX_CORPUS_BYTES {
        return Err(Error::Corpus {
            path: path.to_path_buf(),
            reason: format!(
                "is {} MiB; the most folklstm reads is {} MiB (training on it would need several times that in memory)",
                total >> 20,
                MAX_CORPUS_BYTES >> 20
            ),
        });
    }
    let mut text = String::new();
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        let s = String::from_utf8(bytes).map_err(|e| Error::Corpus {
            path: f.clone(),
            reason: format!(
                "not UTF-8 text (invalid byte at offset {}); is this really a text file?",
                e.utf8_error().valid_up_to()
            ),
        })?;
        if let Some(reason) = binary_reason(&s) {
            return Err(Error::Corpus { path: f.clone(), reason });
        }
        let s = s.strip_prefix('\u{feff}').unwrap_or(&s);
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if s.contains('\r') {
            text.push_str(&s.replace("\r\n", "\n").replace('\r', "\n"));
        } else {
            text.push_str(s);
        }
    }
    if text.is_empty() {
        return Err(Error::Corpus { path: path.to_path_buf(), reason: "the corpus is empty".into() });
    }
    Ok((text, files))
}

/// Reads a corpus of several parts ([`load_text`] each: files of any text, folders of `.abc`
/// files), in the order given, as one text: each part starts on a new line, so a tune never
/// runs into the next file's first tune. A file named twice (directly or through its folder)
/// is refused, as it would count twice. One part gives exactly [`load_text`]'s text.
pub fn load_texts(paths: &[PathBuf]) -> Result<(String, Vec<PathBuf>)> {
    let Some(first) = paths.first() else {
        return Err(Error::Config("no corpus given: name a file or folder with --data".into()));
    };
    let (mut text, mut files) = load_text(first)?;
    // Each file's canonical path, resolved once: the duplicate check compares these.
    let mut seen: Vec<Option<PathBuf>> = files.iter().map(|f| std::fs::canonicalize(f).ok()).collect();
    for p in &paths[1..] {
        let (more, more_files) = load_text(p)?;
        for f in &more_files {
            let canonical = std::fs::canonicalize(f).ok();
            if seen.contains(&canonical) {
                return Err(Error::Corpus {
                    path: f.clone(),
                    reason: "is named twice in the corpus (directly or through its folder); name each file once".into(),
                });
            }
        }
        if (text.len() as u64).saturating_add(more.len() as u64) > MAX_CORPUS_BYTES {
            return Err(Error::Corpus {
                path: p.clone(),
                reason: format!("takes the corpus past the {} MiB folklstm reads", MAX_CORPUS_BYTES >> 20),
            });
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&more);
        seen.extend(more_files.iter().map(|f| std::fs::canonicalize(f).ok()));
        files.extend(more_files);
    }
    Ok((text, files))
}

/// Splits ABC text into tunes: each tune starts at a line beginning with `X:`. Text before the
/// first `X:` line (a file header) is kept with the first tune. Concatenating the pieces gives
/// the text back.
pub fn split_tunes(text: &str) -> Vec<&str> {
    let starts = crate::abc::parse::tune_starts(text);
    // The first tune keeps the file header before it, so the pieces join back to `text`.
    let mut bounds: Vec<usize> = std::iter::once(0).chain(starts.into_iter().skip(1)).collect();
    bounds.push(text.len());
    bounds.windows(2).map(|w| &text[w[0]..w[1]]).filter(|s| !s.is_empty()).collect()
}

/// Splits text into the pieces the validation split draws whole: tunes for ABC text (text
/// with a line starting `X:`), else paragraphs (a piece ends where a line follows blank
/// lines), else lines. Concatenating the pieces gives the text back.
pub fn split_units(text: &str) -> Vec<&str> {
    if !crate::abc::parse::tune_starts(text).is_empty() {
        return split_tunes(text);
    }
    let mut paragraphs = Vec::new();
    let (mut start, mut pos, mut after_blank) = (0, 0, false);
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        if !blank && after_blank && pos > start {
            paragraphs.push(&text[start..pos]);
            start = pos;
        }
        after_blank = blank;
        pos += line.len();
    }
    paragraphs.push(&text[start..]);
    if paragraphs.len() >= 2 { paragraphs } else { text.split_inclusive('\n').collect() }
}

/// Splits whole tunes (or paragraphs or lines of other text: [`split_units`]) into (train,
/// validation) texts. About `fraction` of the pieces go to validation, chosen by a seeded hash
/// of the piece's position; at least one piece stays in training. `fraction` 0 puts
/// everything in training.
pub fn split_train_val(text: &str, fraction: f64, seed: u64) -> (String, String) {
    let tunes = split_units(text);
    let (mut train, mut val) = (String::new(), String::new());
    if fraction <= 0.0 || tunes.len() < 2 {
        return (text.to_string(), val);
    }
    let key = Key::new(seed);
    let mut n_val = 0;
    for (i, t) in tunes.iter().enumerate() {
        let to_val = (key.uniform(0, stream::SPLIT, i as u32) as f64) < fraction;
        if to_val && n_val + 1 < tunes.len() {
            val.push_str(t);
            n_val += 1;
        } else {
            train.push_str(t);
        }
    }
    (train, val)
}

/// A 64-bit FNV-1a fingerprint of a text, stored in checkpoints to notice a changed corpus.
pub fn fingerprint(text: &str) -> u64 {
    crate::hash::fnv1a(crate::hash::FNV1A_START, text.as_bytes())
}

/// Checks one window of token ids, `x` and (when training or evaluating) `y`, both `[B, T]`
/// batch-major, against the window's shape and the vocabulary, and writes them time-major
/// (`[T, B]`, row `t*B + b`) into `xt` and `yt`: the rule every engine applies to a window
/// before its first step.
pub fn window_time_major(
    x: &[u32],
    y: Option<&[u32]>,
    window: BatchConfig,
    vocab: usize,
    xt: &mut [u32],
    mut yt: Option<&mut [u32]>,
) -> Result<()> {
    let (b, t) = (window.batch, window.seq);
    let n = b * t;
    if x.len() != n || y.is_some_and(|y| y.len() != n) {
        return Err(Error::Shape(format!(
            "window has {} inputs and {} targets, the engine expects batch*seq = {b}*{t} = {n}",
            x.len(),
            y.map_or(0, |y| y.len())
        )));
    }
    for (name, ids) in [("input", Some(x)), ("target", y)] {
        if let Some(bad) = ids.and_then(|ids| ids.iter().find(|&&i| i as usize >= vocab)) {
            return Err(Error::Shape(format!("{name} token id {bad} is outside the vocabulary of {vocab}")));
        }
    }
    for bi in 0..b {
        for ti in 0..t {
            xt[ti * b + bi] = x[bi * t + ti];
            if let (Some(y), Some(yt)) = (y, yt.as_deref_mut()) {
                yt[ti * b + bi] = y[bi * t + ti];
            }
        }
    }
    Ok(())
}

/// The stateful windows of the reference design over one token sequence.
#[derive(Clone, Debug)]
pub struct Batches {
    ids: Vec<u32>,
    cfg: BatchConfig,
    stream_len: usize,
    steps: usize,
}

impl Batches {
    /// Windows over `ids`. Needs at least `B * (T + 1)` tokens for one window.
    pub fn new(ids: Vec<u32>, cfg: BatchConfig) -> Result<Self> {
        cfg.validate()?;
        let stream_len = ids.len() / cfg.batch;
        // As the reference: window starts are range(0, stream_len - T, T).
        let steps = if stream_len > cfg.seq { (stream_len - cfg.seq).div_ceil(cfg.seq) } else { 0 };
        if steps == 0 {
            return Err(Error::Config(format!(
                "{} characters make no window: needs at least batch*(seq+1) = {}*{} = {}",
                ids.len(),
                cfg.batch,
                cfg.seq + 1,
                cfg.batch * (cfg.seq + 1)
            )));
        }
        Ok(Batches { ids, cfg, stream_len, steps })
    }

    /// Number of windows in an epoch.
    pub fn len(&self) -> usize {
        self.steps
    }

    /// Always false: construction refuses a corpus with no window.
    pub fn is_empty(&self) -> bool {
        self.steps == 0
    }

    /// The batch shape.
    pub fn config(&self) -> BatchConfig {
        self.cfg
    }

    /// Characters per stream (`len / B`).
    pub fn stream_len(&self) -> usize {
        self.stream_len
    }

    /// Window `k`: inputs and targets, both `[B, T]` row-major.
    pub fn window(&self, k: usize, x: &mut Vec<u32>, y: &mut Vec<u32>) {
        let (b, t) = (self.cfg.batch, self.cfg.seq);
        assert!(k < self.steps, "window {k} of {}", self.steps);
        x.clear();
        y.clear();
        for row in 0..b {
            let o = row * self.stream_len + k * t;
            x.extend_from_slice(&self.ids[o..o + t]);
            y.extend_from_slice(&self.ids[o + 1..o + t + 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_is_sorted_and_round_trips() {
        let v = Vocab::from_text("cabbage");
        assert_eq!(v.chars(), &['a', 'b', 'c', 'e', 'g']);
        let ids = v.encode("bag", "test").unwrap();
        assert_eq!(ids, vec![1, 0, 4]);
        assert_eq!(v.decode(&ids), "bag");
        let err = v.encode("bXgY", "seed text").unwrap_err().to_string();
        assert!(err.contains("'X'") && err.contains("'Y'"), "{err}");
        assert_eq!(v.encode_lossy("bXgY"), (vec![1, 4], 2));
    }

    #[test]
    fn an_ordered_vocabulary_keeps_its_ids() {
        let v = Vocab::from_ordered("cab2".chars()).unwrap();
        assert_eq!(v.chars(), &['c', 'a', 'b', '2']);
        assert!(!v.is_sorted() && Vocab::from_text("cab").is_sorted());
        assert_eq!(v.encode("a2c", "test").unwrap(), vec![1, 3, 0]);
        assert_eq!(v.decode(&[3, 2]), "2b");
        assert_eq!(v.id('x'), None);
        assert!(v.covers(&Vocab::from_text("abc")) && !v.covers(&Vocab::from_text("abcd")));
        assert!(Vocab::from_ordered("abca".chars()).is_none(), "a repeated character");
    }

    #[test]
    fn split_tunes_keeps_all_text() {
        let text = "% header\nX:1\nT:a\nabc\n\nX:2\nT:b\ndef\n\nX:3\nggg\n";
        let tunes = split_tunes(text);
        assert_eq!(tunes.len(), 3);
        assert!(tunes[0].starts_with("% header\nX:1"));
        assert!(tunes[1].starts_with("X:2"));
        assert_eq!(tunes.concat(), text);
        let (tr, va) = split_train_val(text, 0.5, 7);
        assert!(!tr.is_empty());
        assert_eq!(tr.len() + va.len(), text.len());
        assert_eq!(split_train_val(text, 0.0, 7).0, text);
    }

    #[test]
    fn other_text_is_split_by_paragraph_then_by_line() {
        let poem = "Roses are red,\nviolets blue.\n\n\nSugar is sweet\n\nand so are you.\n";
        assert_eq!(
            split_units(poem),
            ["Roses are red,\nviolets blue.\n\n\n", "Sugar is sweet\n\n", "and so are you.\n"]
        );
        assert_eq!(split_units("one\ntwo\nthree"), ["one\n", "two\n", "three"]);
        let (tr, va) = split_train_val(poem, 0.5, 3);
        assert!(!tr.is_empty() && !va.is_empty() && tr.len() + va.len() == poem.len(), "{tr:?} {va:?}");
        assert!(Vocab::from_text(&corpus_like()).looks_like_abc() && !Vocab::from_text(poem).looks_like_abc());
        assert_eq!(Vocab::from_text(poem).missing_for_abc(), ['X', 'T', 'K', ':', '|']);
    }

    fn corpus_like() -> String {
        "X: 1\nT:a\nK:G\n|abc|\n".into()
    }

    #[test]
    fn too_short_corpus_names_the_numbers() {
        let err = Batches::new(vec![0; 100], BatchConfig { batch: 16, seq: 64 }).unwrap_err().to_string();
        assert!(err.contains("100") && err.contains("1040"), "{err}");
    }
}
