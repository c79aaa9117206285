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
