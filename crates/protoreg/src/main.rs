//! `protoreg`: the command line — build, breaking, rules.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
