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

/// `mi_option_purge_delay` in mimalloc's `mi_option_e`.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

unsafe extern "C" {
    /// mimalloc's own option setter (the crate links the library; it has no safe wrapper).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// A one-shot command keeps the memory it freed instead of giving it back to the kernel
/// within milliseconds and faulting it in again zeroed: on googleapis that was a quarter of
/// `breaking`'s time, in the kernel. The server (long-running) keeps mimalloc's default.
pub(crate) fn keep_freed_memory() {
    // SAFETY: sets an integer option; mimalloc allows it at any time, from any thread.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

fn main() -> std::process::ExitCode {
    cli::main()
}
