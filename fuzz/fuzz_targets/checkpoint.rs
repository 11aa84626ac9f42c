//! The checkpoint loader on arbitrary bytes: it must return an error, never panic, abort or
//! allocate more than the input's size; and whatever it accepts must survive a round trip.
#![no_main]

use folklstm::checkpoint::{from_bytes, to_bytes};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fn check(bytes: &[u8]) {
    if let Ok(ck) = from_bytes(bytes, Path::new("fuzz.safetensors")) {
        let again = to_bytes(&ck).expect("a loaded checkpoint serialises");
        let back = from_bytes(&again, Path::new("fuzz.safetensors")).expect("a saved checkpoint loads");
        assert!(back == ck, "round trip changed the checkpoint");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // The same bytes behind a header length that fits them (the first two bytes choose where
    // the header ends), so that most inputs get past the length check into the JSON and the
    // tensors.
    if data.len() >= 2 {
        let rest = &data[2..];
        let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(rest.len());
        let mut b = (n as u64).to_le_bytes().to_vec();
        b.extend_from_slice(rest);
        check(&b);
    }
});
