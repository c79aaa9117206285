//! Ctrl-C and SIGTERM cancel the run; the runner then stops cleanly (children killed, locks
//! released, results written with status cancelled).

use hilt_hw::CancelToken;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Cancels `token` on the first SIGINT/SIGTERM. A second one exits at once with 130.
pub fn cancel_on_signals(token: &CancelToken) {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let token = token.clone();
    let _ = std::thread::Builder::new().name("hilt-signals".into()).spawn(move || {
        let mut seen = 0;
        for _ in signals.forever() {
            seen += 1;
            if seen == 1 {
                eprintln!("\ninterrupted: stopping the run cleanly (press Ctrl-C again to abort at once)");
                token.cancel();
            } else {
                std::process::exit(hilt_runner::classify::exit::INTERRUPTED);
            }
        }
    });
}
