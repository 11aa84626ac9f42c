//! Trains a small model on any UTF-8 text file (a poem collection, a novel, source code) for a
//! few epochs, printing each epoch's loss and accuracy, then writes a sample from it.
//!
//! ```sh
//! cargo run --release --example train_on_text -- poems.txt          # 10 epochs
//! cargo run --release --example train_on_text -- README.md 3        # 3 epochs
//! ```
//!
//! The model is small (embedding 32, one LSTM layer of 128) so that a few hundred kilobytes
//! train in seconds an epoch on a laptop; its checkpoints go to a temporary folder.

use folklstm::{Flow, Model, SampleOptions, Training};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        return Err("usage: train_on_text FILE [EPOCHS]  (FILE: any UTF-8 text)".into());
    };
    let epochs: u32 = args.next().map_or(Ok(10), |a| a.parse().map_err(|_| format!("EPOCHS {a:?}: not a number")))?;
    let run = tempfile::tempdir()?;
    let outcome = Training::new(&path, run.path())
        .sizes(32, 128, 1)
        .window(16, 64)
        .dropout(0.1)
        .learning_rate(3e-3)
        .epochs(epochs)
        .run(|e| {
            println!(
                "epoch {}/{}  loss {:.3} nats/char  accuracy {:.1}%",
                e.epoch,
                e.epochs,
                e.loss,
                100.0 * e.accuracy
            );
            Flow::Continue
        })?;
    let model = Model::load(outcome.checkpoint())?;
    // Prime with the text's first word, in the model's own characters.
    let text = std::fs::read_to_string(&path)?;
    let prime: String = text.split_whitespace().next().unwrap_or("").chars().take(20).collect();
    let opts = SampleOptions { seed_text: Some(prime), len: 400, temperature: 0.8, ..Default::default() };
    println!("\n{}", model.sample(&opts)?);
    Ok(())
}
