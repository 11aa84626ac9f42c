//! Crashes and concurrent runs: `kill -9` at random moments of training (some in the middle of a
//! checkpoint write), and two trainings into one model folder.

mod common;
use common::hardening::*;
use folklstm::checkpoint;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A model big enough that a checkpoint write takes a while (730 KB files), small enough that an
/// epoch takes tens of milliseconds.
const MID: &[&str] =
    &["--embed", "32", "--hidden", "64", "--layers", "2", "--batch", "4", "--seq", "16", "--threads", "1"];
const EPOCHS: &str = "80";

fn spawn_train(dir: &Path, resume: bool) -> Child {
    let mut c = folk(dir);
    c.args(["train", "--data", "tunes.abc", "--freq", "1", "--epochs", EPOCHS, "--rng-seed", "11"]).args(MID);
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

fn kill9(child: &mut Child) {
    // SAFETY: kill has no memory preconditions; the pid is our own child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
}

/// Every checkpoint listed loads (so the newest does), and no temporary file is listed.
fn check_model_dir(model: &Path, round: usize) {
    for (id, path) in folklstm::run::list(model).unwrap() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp") && !name.starts_with('.'), "round {round}: listed {name}");
        let ck = checkpoint::load(&path).unwrap_or_else(|e| panic!("round {round}: {name} does not load: {e}"));
        assert_eq!((ck.meta.epoch, ck.meta.window), (id.epoch, id.window), "round {round}: {name}");
    }
}

/// The loss and accuracy columns of the CSV log (the time columns differ between runs).
fn csv_numbers(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",")).collect()
}

#[test]
fn kill_9_at_twenty_points_never_loses_a_checkpoint_and_resume_is_exact() {
    // The uninterrupted run.
    let straight = setup();
    let mut c = spawn_train(straight.path(), false);
    assert!(c.wait().unwrap().success());
    let reference = checkpoint::load(&straight.path().join(format!("model/weights.{EPOCHS}.safetensors"))).unwrap();

    let dir = setup();
    let model = dir.path().join("model");
    let mut rng = Rng::new(7);
    let (mut kills, mut in_write, mut rounds) = (0, 0, 0);
    while kills < 20 {
        rounds += 1;
        assert!(
            rounds < 200,
            "could not place 20 kills: no temporary file was seen during saves (are they still atomic?)"
        );
        let resume = !folklstm::run::list(&model).unwrap().is_empty();
        let mut child = spawn_train(dir.path(), resume);
        let t0 = Instant::now();
        if kills % 2 == 0 {
            // Aim at a checkpoint write: kill as soon as a temporary file shows up.
            let mut hit = false;
            while t0.elapsed() < Duration::from_secs(20) && child.try_wait().unwrap().is_none() {
                if !temp_files(&model).is_empty() {
                    hit = true;
                    break;
                }
            }
            if !hit {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
        } else {
            // Anywhere: start-up, loading, the corpus, a step, a save, the CSV, the plot.
            std::thread::sleep(Duration::from_micros(rng.below(150_000)));
        }
        kill9(&mut child);
        let status = child.wait().unwrap();
        assert!(status.code().is_none() || status.success(), "the run failed by itself: {status:?}");
        if status.success() {
            panic!("the run finished before 20 kills; raise EPOCHS");
        }
        kills += 1;
        if !temp_files(&model).is_empty() {
            in_write += 1;
        }
        check_model_dir(&model, kills);
    }
    eprintln!("{kills} kills in {rounds} rounds, {in_write} left a half-written checkpoint behind");
    assert!(in_write >= 1, "no kill landed during a checkpoint write");
    // Resume to the end: the same weights, optimizer state and log as the uninterrupted run.
    let mut child = spawn_train(dir.path(), !folklstm::run::list(&model).unwrap().is_empty());
    assert!(child.wait().unwrap().success());
    check_model_dir(&model, kills + 1);
    let end = checkpoint::load(&model.join(format!("weights.{EPOCHS}.safetensors"))).unwrap();
    assert_eq!(end.params.data, reference.params.data, "weights differ after 20 kills and resumes");
    assert_eq!(end.adam, reference.adam, "optimizer state differs");
    assert_eq!(
        csv_numbers(&dir.path().join("logs/training_log.csv")),
        csv_numbers(&straight.path().join("logs/training_log.csv")),
        "the log differs"
    );
    // The debris of killed saves was cleaned up by the runs that followed.
    assert_eq!(temp_files(&model), Vec::<String>::new());
}

#[test]
fn a_second_training_into_the_same_folder_is_refused_and_a_dead_one_does_not_block() {
    let dir = setup();
    let model = dir.path().join("model");
    let mut first = folk(dir.path())
        .args(["train", "--data", "tunes.abc", "--freq", "1", "--epochs", "100000"])
        .args(SMALL)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !model.join("weights.1.safetensors").exists() {
        assert!(t0.elapsed() < Duration::from_secs(60), "the first run saved nothing");
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Fresh or resuming, a second run into the folder is refused, naming the holder.
    let pid = first.id().to_string();
    for extra in [&[][..], &["--resume"][..]] {
        let o = train(dir.path(), &[&["--epochs", "100000"], extra].concat());
        assert_error(&o, &["in use by another training run", &pid, "--model-dir"]);
    }
    assert!(first.try_wait().unwrap().is_none(), "the refusal disturbed the first run");
    // The first run dies without cleaning up: its lock file stays, naming a dead pid, but
    // the lock itself died with it.
    kill9(&mut first);
    first.wait().unwrap();
    assert!(model.join(".folklstm.lock").exists());
    let latest = folklstm::run::list(&model).unwrap().last().unwrap().0.epoch;
    let o = train(dir.path(), &["--resume", "--epochs", &(latest + 1).to_string()]);
    assert_ok(&o);
    // Nor does a lock file naming a live process that holds no lock (pid 1, recycled pids).
    std::fs::write(model.join(".folklstm.lock"), "1\n").unwrap();
    let o = train(dir.path(), &["--resume", "--epochs", &(latest + 2).to_string()]);
    assert_ok(&o);
}

#[test]
fn the_lock_is_exclusive_within_one_process_too() {
    let dir = tempfile::tempdir().unwrap();
    let a = folklstm::run::DirLock::acquire(dir.path()).unwrap();
    let e = folklstm::run::DirLock::acquire(dir.path()).unwrap_err().to_string();
    assert!(e.contains("in use by another training run") && e.contains(&std::process::id().to_string()), "{e}");
    drop(a);
    folklstm::run::DirLock::acquire(dir.path()).unwrap();
}

#[test]
fn stale_temp_files_are_removed_only_for_dead_processes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // A pid that does not run: a child that has exited and been reaped.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let me = std::process::id();
    for n in [
        format!(".weights.3.safetensors.{dead_pid}.tmp"),
        format!(".weights.4.safetensors.{me}.tmp"),
        ".weights.5.safetensors.1.tmp".into(),
        format!(".other.{dead_pid}.tmp"),
        "weights.2.safetensors".into(),
        format!("weights.6.safetensors.{dead_pid}.tmp"),
    ] {
        std::fs::write(p.join(n), b"x").unwrap();
    }
    let removed = folklstm::files::remove_stale_temp_files(p, |n| n.starts_with("weights."));
    assert_eq!(removed, vec![p.join(format!(".weights.3.safetensors.{dead_pid}.tmp"))]);
    assert_eq!(names(p).len(), 5);
    // None of them is ever taken for a checkpoint.
    let listed: Vec<_> = folklstm::run::list(p).unwrap().into_iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(listed, vec!["2"]);
}
