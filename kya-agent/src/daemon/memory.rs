//! What the daemon does to keep its resident memory small: it runs for the host's lifetime, so
//! what start-up needed (the kernel's BTF, the parsed kernel object, the policy's compilation)
//! must not stay resident after it.
//!
//! Measured in the test VMs (Debian 6.1 and 6.12 kernels, release build, the benchmark's
//! config): the kernels back the heap with transparent huge pages, so a heap that once grew
//! past 2 MiB stays resident in 2 MiB pieces however little of it is in use; glibc keeps the
//! pages freed after start-up; and the embedded kernel object's pages, read once to load it,
//! stay mapped.

/// Before anything big is allocated: no transparent huge pages for this process. Its heap is
/// small and long-lived, and a huge page there mostly holds free space (measured: 1.5 MiB more
/// at rest with them). A cap on glibc's arenas (`M_ARENA_MAX`) was measured too and did not pay
/// once the heap is trimmed.
pub fn at_start() {
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %error, "cannot turn transparent huge pages off");
    }
}

/// Once start-up is done: the kernel object's pages are unmapped and the heap's free pages
/// are handed back to the kernel.
pub fn after_start_up() {
    crate::kernel::release_object_pages();
    release_free_heap();
}

/// Hands the heap's free pages back to the kernel (after start-up and after a reload, which
/// build and drop large tables).
pub fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of glibc's heap to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
