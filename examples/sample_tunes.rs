//! Five new tunes from the shipped model, one per meter: each is primed with a header in the
//! corpus's own format (`X: 1`, a title, the database line, the meter, the key) and stopped
//! where the next tune would begin; the ABC checker says whether it came out well formed.
//!
//! ```sh
//! cargo run --release --example sample_tunes                # up to 1000 characters a tune
//! cargo run --release --example sample_tunes -- 400 7       # up to 400, --rng-seed 7
//! ```
//!
//! The shipped model learnt 340 jigs (almost all in 6/8), so the other meters test how far a
//! prime can steer it; expect the checker to object more often there.

use folklstm::{Model, SampleOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let len: usize = args.next().map_or(Ok(1000), |a| a.parse().map_err(|_| format!("LEN {a:?}: not a number")))?;
    let rng_seed: u64 = args.next().map_or(Ok(1), |a| a.parse().map_err(|_| format!("SEED {a:?}: not a number")))?;
    let model = Model::shipped()?;
    for (meter, kind) in [("6/8", "Jig"), ("9/8", "Slip Jig"), ("4/4", "Reel"), ("3/4", "Waltz"), ("2/4", "Polka")] {
        let prime = format!("X: 1\nT:A folklstm {kind}\n% Nottingham Music Database\nM:{meter}\nK:G\n");
        let opts = SampleOptions { seed_text: Some(prime), len, temperature: 0.8, rng_seed, ..Default::default() };
        let tune = model.tunes(&opts)?.next().ok_or("no tune")??;
        let (_, valid) = folklstm::abc::count_valid(&tune);
        println!("{tune}");
        println!(
            "% {meter}: {}\n",
            if valid == 1 { "the checker calls it valid" } else { "the checker finds problems" }
        );
    }
    Ok(())
}
