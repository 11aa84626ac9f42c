//! Faults while training: a full disk, a file size limit, a read-only model folder, and a run
//! that diverges.

mod common;
use common::hardening::*;
use folklstm::checkpoint;
use std::path::Path;

/// `train` with the model folder at `model` (logs stay in `dir`).
fn train_into(dir: &Path, model: &Path, extra: &[&str]) -> std::process::Output {
    let m = model.to_str().unwrap();
    train(dir, &[&["--model-dir", m, "--rng-seed", "2"], extra].concat())
}

/// The reference: 3 uninterrupted epochs.
fn reference() -> checkpoint::Checkpoint {
    let dir = setup();
    let model = dir.path().join("model");
    assert_ok(&train_into(dir.path(), &model, &["--epochs", "3"]));
    checkpoint::load(&model.join("weights.3.safetensors")).unwrap()
}

/// After a failed save: the previous checkpoint loads, nothing half-written is left, and
/// resuming (once the fault is gone) ends exactly where an uninterrupted run ends.
fn recover(dir: &Path, model: &Path, fault_gone: impl FnOnce()) {
    assert_eq!(temp_files(model), Vec::<String>::new(), "a half-written file was left behind");
    let listed: Vec<_> = folklstm::run::list(model).unwrap().into_iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(listed, vec!["1"]);
    assert_eq!(checkpoint::load(&model.join("weights.1.safetensors")).unwrap().meta.epoch, 1);
    fault_gone();
    assert_ok(&train_into(dir, model, &["--epochs", "3", "--resume"]));
    let end = checkpoint::load(&model.join("weights.3.safetensors")).unwrap();
    let want = reference();
    assert_eq!(end.params.data, want.params.data, "training state was corrupted by the failed save");
    assert_eq!(end.adam, want.adam);
}

#[test]
fn a_full_disk_while_saving_keeps_the_previous_checkpoint() {
    // 25 pages: the lock file and one 56 KB checkpoint fit, a second one does not.
    let Some(fs) = Tmpfs::mount(100 * 1024) else { return };
    let dir = setup();
    let model = fs.path.join("model");
    let o = train_into(dir.path(), &model, &["--epochs", "3"]);
    assert_error(
        &o,
        &[
            "could not save checkpoint",
            "weights.2.safetensors",
            "No space left on device",
            "weights.1.safetensors, is intact",
            "folklstm train --resume",
        ],
    );
    eprintln!("{}", stderr(&o));
    recover(dir.path(), &model, || fs.remount("size=4m"));
}

#[test]
fn a_file_size_limit_while_saving_keeps_the_previous_checkpoint() {
    // Works without root: RLIMIT_FSIZE below a checkpoint's size makes its write fail with
    // EFBIG (SIGXFSZ ignored, as a shell's `ulimit -f` user would have it).
    use std::os::unix::process::CommandExt;
    let dir = setup();
    let model = dir.path().join("model");
    assert_ok(&train_into(dir.path(), &model, &["--epochs", "1"]));
    let mut c = folk(dir.path());
    c.args(["train", "--data", "tunes.abc", "--freq", "1", "--epochs", "3", "--resume", "--rng-seed", "2"]);
    c.args(SMALL).args(["--model-dir", model.to_str().unwrap()]);
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: 20_000, rlim_max: libc::RLIM_INFINITY };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_error(&o, &["could not save checkpoint", "weights.2.safetensors", "File too large", "is intact"]);
    recover(dir.path(), &model, || {});
}

#[test]
fn a_read_only_model_folder_is_a_clear_error() {
    let dir = setup();
    // Root ignores permissions: only a read-only filesystem stops it.
    let fs = if is_root() {
        match Tmpfs::mount(4 << 20) {
            Some(m) => Some(m),
            None => return,
        }
    } else {
        None
    };
    let model = fs.as_ref().map_or(dir.path().join("model"), |f| f.path.join("model"));
    assert_ok(&train_into(dir.path(), &model, &["--epochs", "1"]));
    let before = std::fs::read(model.join("weights.1.safetensors")).unwrap();
    if let Some(fs) = &fs {
        fs.remount("ro");
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&model, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let o = train_into(dir.path(), &model, &["--epochs", "2", "--resume"]);
    assert_error(&o, &["cannot write in the model folder", model.to_str().unwrap(), "--model-dir"]);
    assert!(stderr(&o).contains("Read-only file system") || stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    assert_eq!(std::fs::read(model.join("weights.1.safetensors")).unwrap(), before);
    // Sampling only reads: it works from a read-only folder.
    let o = folk(dir.path())
        .args(["sample", "1", "--model-dir", model.to_str().unwrap(), "--len", "20", "--rng-seed", "1"])
        .output()
        .unwrap();
    assert_ok(&o);
    // A model folder that is a file.
    std::fs::write(dir.path().join("afile"), "x").unwrap();
    let o = train(dir.path(), &["--epochs", "1", "--model-dir", "afile"]);
    assert_error(&o, &["cannot write in the model folder", "afile"]);
}

#[test]
fn divergence_stops_at_the_step_keeps_the_last_good_checkpoint_and_clip_lets_the_run_finish() {
    // With Adam, --lr 1e6 on this model drives the gradient norm past f32's square root within a
    // few epochs (Adam's f32 v would overflow there, so the step counts as divergent). Clipping
    // the gradient keeps it below.
    let dir = setup();
    let model = dir.path().join("model");
    let o = train(dir.path(), &["--epochs", "12", "--lr", "1e6"]);
    assert_error(&o, &["training diverged at epoch", "step", "--clip", "smaller --lr", "folklstm train --resume"]);
    let e = stderr(&o);
    eprintln!("{e}");
    let epoch: u32 = e.split("diverged at epoch ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(epoch >= 2, "diverged in epoch {epoch}, before any checkpoint: {e}");
    // Every checkpoint of the good epochs is there and loads; nothing of the diverged epoch.
    let listed: Vec<u32> = folklstm::run::list(&model).unwrap().iter().map(|(id, _)| id.epoch).collect();
    assert_eq!(listed, (1..epoch).collect::<Vec<_>>());
    let good = format!("weights.{}.safetensors", epoch - 1);
    assert!(e.contains(&good), "the message does not name {good}: {e}");
    for (_, p) in folklstm::run::list(&model).unwrap() {
        let ck = checkpoint::load(&p).unwrap();
        assert!(ck.adam.unwrap().v.iter().all(|x| x.is_finite()));
    }
    // The advice works: the same run, resumed with --clip, finishes.
    let o = train(dir.path(), &["--epochs", "12", "--lr", "1e6", "--resume", "--clip", "1"]);
    assert_ok(&o);
    assert_eq!(checkpoint::load(&model.join("weights.12.safetensors")).unwrap().meta.epoch, 12);
    // And so does the whole run with --clip from the start.
    let fresh = setup();
    assert_ok(&train(fresh.path(), &["--epochs", "12", "--lr", "1e6", "--clip", "1"]));
}

#[test]
fn a_run_that_diverges_at_an_epoch_end_never_leaves_a_checkpoint_that_cannot_resume() {
    // On these seeds (on an AVX-512 machine) the gradient norm passes f32's square root late in
    // epoch 1 while the loss is still finite. Had that update been applied, Adam's v would hold
    // inf, and a checkpoint written at the epoch's end would fail to load. Whatever the exact
    // numbers on another machine, every file left behind must load and resume.
    for seed in ["19", "24", "28"] {
        let dir = setup();
        let model = dir.path().join("model");
        let o = train(dir.path(), &["--epochs", "6", "--lr", "3e6", "--rng-seed", seed]);
        assert_error(&o, &["training diverged at epoch", "--clip"]);
        eprintln!("seed {seed}: {}", stderr(&o).lines().next().unwrap_or_default());
        for (_, p) in folklstm::run::list(&model).unwrap() {
            let ck = checkpoint::load(&p).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let adam = ck.adam.unwrap();
            assert!(adam.m.iter().chain(&adam.v).all(|x| x.is_finite()), "seed {seed}: {} holds inf", p.display());
        }
    }
}
