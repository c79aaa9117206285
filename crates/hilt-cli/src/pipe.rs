//! A closed stdout or stderr (`hilt … | head -1`) ends the process quietly.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe returns `EPIPE` and `println!` panics
//! with "failed printing to stdout: Broken pipe". Every output path of the binary goes
//! through `print!`/`println!`/`eprintln!`, so the panic hook is the one place that sees
//! them all: it exits with 141 (128 + SIGPIPE, what a shell reports for a program killed by
//! a broken pipe) without a message; any other panic keeps the default report.

/// What a shell reports for a process ended by SIGPIPE.
pub const BROKEN_PIPE_EXIT: i32 = 128 + 13;

pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_pipe(msg) {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

fn is_broken_pipe(msg: &str) -> bool {
    let broken = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
    msg.starts_with("failed printing to std")
        && (msg.contains("Broken pipe") || msg.contains(&broken.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn recognises_the_std_message() {
        let e = std::io::Error::from_raw_os_error(32);
        assert!(super::is_broken_pipe(&format!(
            "failed printing to stdout: {e}"
        )));
        assert!(super::is_broken_pipe(&format!(
            "failed printing to stderr: {e}"
        )));
        assert!(!super::is_broken_pipe("index out of bounds"));
        let other = std::io::Error::from_raw_os_error(28);
        assert!(!super::is_broken_pipe(&format!(
            "failed printing to stdout: {other}"
        )));
    }
}
