//! The ABC parser, checker and MIDI writer on arbitrary text: never a panic, and the
//! checker's verdict agrees with its list of problems.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for r in folklstm::abc::check_text(&text) {
        assert_eq!(r.valid, r.problems.is_empty());
    }
    if let Ok(t) = folklstm::abc::parse_tune(&text) {
        let _ = folklstm::abc::tune_to_midi(&t);
    }
    let (n, valid) = folklstm::abc::count_valid(&text);
    assert!(valid <= n);
});
