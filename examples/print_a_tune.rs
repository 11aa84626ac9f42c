use folklstm::{Model, SampleOptions};

fn main() -> folklstm::Result<()> {
    // The model this repository ships: 100 epochs on the Nottingham jigs.
    let model = Model::shipped()?;
    let opts = SampleOptions {
        seed_text: Some("X: 1\nT:A New Jig\nM:6/8\nK:G\n".into()), // prime it with a header
        temperature: 0.8,
        len: 1000, // the most it writes: a tune ends where the next one would begin
        rng_seed: 7,
        ..Default::default()
    };
    for tune in model.tunes(&opts)?.take(1) {
        println!("{}", tune?);
    }
    Ok(())
}
