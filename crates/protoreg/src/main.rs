//! `protoreg`: the command line — build, breaking, rules, and the registry (serve, push,
//! pull, subjects, log, diff, check).

mod cli;
mod client;
mod project;
mod registry_cmds;

fn main() -> std::process::ExitCode {
    cli::main()
}
