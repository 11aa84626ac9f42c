//! The shipped model into PyTorch's format and back: export it as the state dict of the
//! `CharLSTM` module (`../shared/anchors/torch_anchor.py`), import that file again, and check
//! that nothing changed: the same weights, bit for bit, and the same tune from the same seed.
//!
//! ```sh
//! cargo run --release --example pytorch_roundtrip                    # into a temporary folder
//! cargo run --release --example pytorch_roundtrip -- charlstm.safetensors
//! ```
//!
//! The README shows the Python that loads the file into `CharLSTM`.

use folklstm::{Model, SampleOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let path = std::env::args().nth(1).map_or_else(|| tmp.path().join("charlstm.safetensors"), Into::into);
    let model = Model::shipped()?;
    model.export_torch(&path)?;
    let c = model.config();
    println!("wrote {} (V={} E={} H={} L={})", path.display(), c.vocab, c.embed, c.hidden, c.layers);

    let back = Model::import_torch(&path)?;
    if back.params().data != model.params().data || back.vocab() != model.vocab() {
        return Err("the imported model differs from the exported one".into());
    }
    let opts = SampleOptions { seed_text: Some("X: 1\n".into()), len: 200, rng_seed: 3, ..Default::default() };
    let (a, b) = (model.sample(&opts)?, back.sample(&opts)?);
    if a != b {
        return Err("the same seed gave different tunes".into());
    }
    println!("imported it back: the same {} weights, bit for bit, and the same tune:\n\n{a}", c.vocab);

    // As a checkpoint that `folklstm sample 0 --model-dir DIR` reads.
    let dir = tmp.path().join("imported");
    std::fs::create_dir_all(&dir)?;
    back.save(dir.join("weights.0.safetensors"))?;
    println!("\nsaved as a folklstm checkpoint too: {}", dir.join("weights.0.safetensors").display());
    Ok(())
}
