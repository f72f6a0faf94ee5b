//! kya's kernel programs: BPF LSM hooks, tracepoints and task iterators that tag agent tasks.
//!
//! Layout: `maps` owns every map, `kernel` reads kernel structs through offsets the daemon
//! resolved from BTF, `tagging` holds the shared tag/match decisions, `hooks/` has one file per
//! attached program and `iters/` one file per task iterator.
#![no_std]
#![no_main]

mod cgroupfs;
mod cmdline;
mod decision;
mod events;
mod facilities;
mod grants;
mod hooks;
mod iters;
mod kernel;
mod keys;
mod maps;
mod mounts;
mod net;
mod peer;
mod protect;
mod tagging;
mod terminals;
mod unix;
mod verdicts;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach a panic, so this is never executed.
    loop {}
}

/// GPL-compatible, required for `bpf_probe_read_kernel` and the LSM attach type.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
