//! Under load, the program stays within the memory it announces: `sample --count 256 --len
//! 2000` and `train --batch 64` print "needs about N MiB" before they start, and their peak
//! resident memory (measured by the kernel, `wait4`) is below it.

mod common;
use common::hardening::*;

const MIB: f64 = 1024.0 * 1024.0;

fn check(what: &str, cmd: std::process::Command) {
    let (o, peak) = output_with_peak_rss(cmd);
    assert_ok(&o);
    let text = all_output(&o);
    let need = announced_need(&text).unwrap_or_else(|| panic!("{what}: no 'needs about N MiB' in {text}"));
    eprintln!("{what}: announced {:.0} MiB, peak {:.1} MiB", need as f64 / MIB, peak as f64 / MIB);
    assert!(peak <= need, "{what}: peak {peak} bytes above the announced {need}");
    // And the announcement means something: not a blanket figure far above the real need.
    assert!(need as f64 <= 3.0 * peak as f64 + 32.0 * MIB, "{what}: announced {need} for a peak of {peak}");
}

#[test]
fn sampling_256_tunes_of_2000_characters_stays_within_the_announced_memory() {
    let dir = setup();
    let d = dir.path();
    let mid = ["--embed", "64", "--hidden", "128", "--layers", "2", "--threads", "2"];
    let o = folk(d).args(["train", "--data", "tunes.abc", "--epochs", "1"]).args(mid).output().unwrap();
    assert_ok(&o);
    let mut c = folk(d);
    c.args(["sample", "1", "--count", "256", "--len", "2000", "--rng-seed", "1", "--threads", "2"]);
    check("sample --count 256 --len 2000", c);
}

#[test]
fn training_with_batch_64_stays_within_the_announced_memory() {
    // The reference model (E 512, H 256, 3 layers) on windows of 64 x 64: 1.9 M parameters
    // and about 130 MiB of window buffers; three windows, one checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tunes.abc"), corpus().repeat(4)).unwrap();
    let mut c = folk(d);
    c.args(["train", "--data", "tunes.abc", "--epochs", "1", "--batch", "64", "--threads", "2"]);
    check("train --batch 64", c);
}
