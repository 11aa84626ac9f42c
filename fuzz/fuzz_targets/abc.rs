//! The ABC parser, checker and MIDI writer on arbitrary text: never a panic, and the checker
//! judges each tune on its own: the input split in two, each half made a tune, and the halves
//! checked joined give the two reports joined (b's tune indices and `line:col:` positions
//! moved on by a's).
#![no_main]

use folklstm::abc::{check_text, count_valid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = folklstm::abc::parse_tune(&text) {
        let _ = folklstm::abc::tune_to_midi(&t);
    }
    // Both halves start with `X:` (else a's text is a file header when joined, or b's first
    // lines join a's last tune); the first byte picks where to split.
    let chars: Vec<char> = text.chars().collect();
    let cut = data.first().map_or(0, |&b| b as usize * chars.len() / 256);
    let a = format!("X:{}", chars[..cut].iter().collect::<String>());
    let b = format!("X:{}", chars[cut..].iter().collect::<String>());
    let (ra, rb) = (check_text(&a), check_text(&b));
    let joined = format!("{a}\n{b}");
    let by = a.split('\n').count();
    let mut want = ra.clone();
    for mut r in rb {
        r.index += ra.len();
        r.problems = r
            .problems
            .iter()
            .map(|p| {
                let mut it = p.splitn(3, ':');
                let (l, c, rest) = (it.next(), it.next(), it.next());
                match (l.and_then(|l| l.parse::<usize>().ok()), c.and_then(|c| c.parse::<usize>().ok()), rest) {
                    (Some(l), Some(c), Some(rest)) => format!("{}:{c}:{rest}", l + by),
                    _ => p.clone(),
                }
            })
            .collect();
        want.push(r);
    }
    assert_eq!(check_text(&joined), want, "joined:\n{joined}");
    assert_eq!(count_valid(&joined), (want.len(), want.iter().filter(|r| r.problems.is_empty()).count()));
});
