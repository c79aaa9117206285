//! `hilt`: the command-line front end. Argument parsing, calling the libraries, printing,
//! and mapping outcomes to exit codes; no test logic lives here.

mod cli;
mod client;
mod cmd;
mod demo;
mod pipe;
mod progress;
mod render;
mod server_cli;
mod signals;

use clap::Parser;

use hilt_runner::classify::exit;

fn main() {
    askpass();
    pipe::install();
    let args = cli::Cli::parse();
    let code = match cmd::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::INTERNAL
        }
    };
    std::process::exit(code);
}

/// `hilt` as OpenSSH's askpass program for `password_env` logins: ssh runs it with the
/// prompt as its only argument and `HILT_ASKPASS_ENV` naming the variable that holds the
/// password (set by hilt's ssh driver only). Only password prompts are answered, so a
/// host-key question can never be answered with a password.
fn askpass() {
    let Some(var) = std::env::var_os(hilt_hw::ssh::ASKPASS_VAR) else {
        return;
    };
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() != 2 {
        return;
    }
    let prompt = args[1].to_string_lossy().to_ascii_lowercase();
    let code = match std::env::var(&var) {
        Ok(pw) if prompt.contains("password") => {
            println!("{pw}");
            0
        }
        _ => 1,
    };
    std::process::exit(code);
}
