//! How freed memory is kept: by this process, and by the embedded PostgreSQL's processes.
//!
//! Why: glibc returns large blocks to the kernel when they are freed (each block over its
//! mmap threshold, and the free top of a heap past its trim threshold). The next C-CDA send
//! then faults in and zeroes fresh pages for its body, its decoded attachment and its MIME,
//! and a PostgreSQL backend does the same for each batch of them. On the bench's virtual
//! machine a fresh page costs far more than zeroing it: memory freed to the kernel goes back
//! to the hypervisor (free page reporting), and its next use waits for it (README). After a
//! short stall, the backlog's bigger batches and bodies spent a third of the machine's CPU in
//! page faults for up to a second, and the stall grew (send_ccda bench, perf; BENCHMARKS.md).
//! With freed memory kept, a process stays at the size of its busiest moment and reuses it.

/// Blocks up to this size come from the heap, not from a mapping of their own (glibc's
/// largest allowed value; its default starts at 128 KiB).
const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory at the top of a heap is returned past this size only.
const TRIM_THRESHOLD: usize = 512 << 20;

/// One heap per core rather than glibc's eight per core: every heap keeps its own freed memory and
/// faults in its own pages, and the many short-lived threads of the blocking pool would
/// otherwise spread one request's buffers over many of them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn arenas() -> libc::c_int {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(64) as libc::c_int)
}

/// Sets this process's allocator to keep freed memory. Call first thing in `main`, before
/// other threads start.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    set();
}

/// Whether glibc took every setting.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set() -> bool {
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
            && libc::mallopt(libc::M_ARENA_MAX, arenas()) == 1
    }
}

/// The same settings for a child process (the embedded PostgreSQL), as glibc reads them at
/// start from the `GLIBC_TUNABLES` environment variable; other C libraries ignore it.
pub fn glibc_tunables() -> String {
    format!(
        "glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"
    )
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// glibc marks a block that got a mapping of its own with bit 1 of the size word just
    /// before it (IS_MMAPPED); such a block goes back to the kernel when freed.
    fn has_own_mapping(block: *mut libc::c_void) -> bool {
        // SAFETY: glibc keeps a size word before every block it returns.
        unsafe { *(block as *const usize).sub(1) & 2 != 0 }
    }

    #[test]
    fn glibc_takes_the_settings_and_serves_large_blocks_from_the_heap() {
        assert!(super::set());
        // SAFETY: plain malloc/free of blocks this test owns.
        unsafe {
            let large = libc::malloc(24 << 20);
            assert!(!large.is_null());
            let mapped = has_own_mapping(large);
            libc::free(large);
            assert!(!mapped, "24 MiB is under the threshold: from the heap");
            let huge = libc::malloc(40 << 20);
            assert!(!huge.is_null());
            let mapped = has_own_mapping(huge);
            libc::free(huge);
            assert!(mapped, "40 MiB is over it: a mapping of its own");
        }
    }
}
