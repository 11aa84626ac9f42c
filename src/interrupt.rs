//! Ctrl-C (and SIGTERM) during training: the handler only raises a flag, and the training loop
//! checks it after each step, saves where it is, and says how to resume.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler once per process. A second Ctrl-C while the first is being handled
/// (a save in progress) ends the process at once: the user insists.
pub fn install_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    });
}

/// Whether Ctrl-C was pressed since the last [`clear`].
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Forgets an earlier Ctrl-C (at the start of a run).
pub fn clear() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}
