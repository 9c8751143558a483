//! What the server's two heaps hold. Rust code allocates through [`Counting`] (the global
//! allocator: mimalloc, counted); RocksDB's C++ allocates through the C library's `malloc`.
//! RSS cannot tell them apart, nor tell memory in use from memory an allocator keeps for
//! reuse: glibc keeps a flushed memtable's pages for the next one, so RSS follows the peak
//! of the memtables, not their size, and mimalloc keeps freed pages for a while too. These
//! figures answer "what does the server itself hold?" (queues, pushes, sessions) apart from
//! the engine, whose memory its options bound.
//!
//! The process picks its global allocator: the `tributary` binary installs [`Counting`];
//! where nothing does (a test harness), the server's figure stays at zero.
//!
//! The one module allowed `unsafe`: the allocator, and a foreign call that fills in numbers.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Each thread adds its allocations up locally and publishes them once they reach this
/// (either way), so the hot path touches no shared cache line: the figure is exact to
/// within this much per thread.
const PUBLISH_BYTES: isize = 256 << 10;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static UNPUBLISHED: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // A thread-local without a destructor is there until the thread's very end.
    let _ = UNPUBLISHED.try_with(|d| {
        let v = d.get() + delta;
        if v.abs() >= PUBLISH_BYTES {
            LIVE.fetch_add(v, Ordering::Relaxed);
            d.set(0);
        } else {
            d.set(v);
        }
    });
}

/// mimalloc, counting the bytes allocated and not yet freed.
pub struct Counting(mimalloc::MiMalloc);

impl Counting {
    pub const fn new() -> Self {
        Counting(mimalloc::MiMalloc)
    }
}

impl Default for Counting {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is passed to mimalloc unchanged; counting has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Bytes each heap holds now.
#[derive(Debug, Clone, Copy)]
pub struct Heaps {
    /// Allocated by the server's Rust code and not freed (see [`PUBLISH_BYTES`]).
    pub server_bytes: u64,
    /// Bytes in use through the C library's `malloc` (RocksDB: memtables, block cache,
    /// table readers, buffers), excluding free memory it keeps; `None` where the C library
    /// does not say (not glibc).
    pub engine_bytes: Option<u64>,
}

pub fn read() -> Heaps {
    Heaps {
        server_bytes: LIVE.load(Ordering::Relaxed).max(0) as u64,
        engine_bytes: libc_in_use(),
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn libc_in_use() -> Option<u64> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct; it locks each arena
    // while it reads it.
    let m = unsafe { libc::mallinfo2() };
    // In use: chunks handed out from the arenas, plus chunks served by their own mmap.
    Some((m.uordblks + m.hblkhd) as u64)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn libc_in_use() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_follow_allocations() {
        let before = super::read();
        // 64 MiB from Rust: counted while it lives, not after.
        let rust = std::hint::black_box(vec![1u8; 64 << 20]);
        let with_rust = super::read();
        assert!(
            with_rust.server_bytes >= before.server_bytes + (63 << 20),
            "{with_rust:?} {before:?}"
        );
        drop(rust);
        assert!(super::read().server_bytes < with_rust.server_bytes - (63 << 20));
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // 64 MiB from the C library's malloc, as RocksDB allocates.
            // SAFETY: a plain malloc, freed below.
            // (black_box: the compiler may otherwise drop an allocation nothing reads.)
            let c = std::hint::black_box(unsafe { libc::malloc(64 << 20) });
            assert!(!c.is_null());
            let with_c = super::read().engine_bytes.unwrap();
            assert!(
                with_c >= before.engine_bytes.unwrap() + (64 << 20),
                "{with_c} {before:?}"
            );
            // SAFETY: `c` came from malloc above and is freed once.
            unsafe { libc::free(c) };
            assert!(super::read().engine_bytes.unwrap() < with_c - (60 << 20));
        }
    }
}
