//! `protoreg`: the command line — build, breaking, rules, and the registry (serve, push,
//! pull, subjects, log, diff, check).

/// mimalloc: compiling large module sets allocates and frees millions of small objects;
/// glibc's allocator spent a quarter of `build`'s time on it (see README, benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod client;
mod deploy_cmds;
mod project;
mod registry_cmds;

fn main() -> std::process::ExitCode {
    cli::main()
}
