//! The `reel` binary. For now it only offers `reel chain` (see [`reel::chain_cli`]).

use std::io;
use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("chain") => match reel::chain_cli::run(io::stdin().lock(), io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("reel chain: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: reel chain < payloads.jsonl");
            ExitCode::from(2)
        }
    }
}
