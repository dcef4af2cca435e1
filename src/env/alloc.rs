//! Process memory accounting, as Redis's zmalloc keeps `used_memory`: every allocation and
//! free adjusts one counter by the allocator's size class, so eviction can read the current
//! figure after each deletion for the cost of an atomic load. jemalloc's own statistics
//! (`stats.allocated`, `stats.active`, `stats.resident`) are read for INFO's allocator fields.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

static USED: AtomicUsize = AtomicUsize::new(0);

/// jemalloc's usable size for a request: 8, then multiples of 16 up to 128, then four
/// classes per doubling.
pub const fn size_class(size: usize) -> usize {
    if size <= 8 {
        8
    } else if size <= 128 {
        (size + 15) & !15
    } else {
        let lg = usize::BITS - 1 - (size - 1).leading_zeros();
        let spacing = 1usize << (lg - 2);
        (size + spacing - 1) & !(spacing - 1)
    }
}

/// Bytes currently allocated by the process, counted at jemalloc size classes.
pub fn used_memory() -> usize {
    USED.load(Ordering::Relaxed)
}

pub struct Counting<A>(pub A);

// SAFETY: forwards to the inner allocator unchanged; only adds bookkeeping.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            USED.fetch_add(size_class(layout.size()), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            USED.fetch_add(size_class(layout.size()), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        USED.fetch_sub(size_class(layout.size()), Ordering::Relaxed);
        self.0.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            USED.fetch_sub(size_class(layout.size()), Ordering::Relaxed);
            USED.fetch_add(size_class(new_size), Ordering::Relaxed);
        }
        p
    }
}

/// jemalloc's (allocated, active, resident) bytes, where jemalloc is the allocator.
#[cfg(not(target_env = "msvc"))]
pub fn allocator_stats() -> Option<(u64, u64, u64)> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some((
        stats::allocated::read().ok()? as u64,
        stats::active::read().ok()? as u64,
        stats::resident::read().ok()? as u64,
    ))
}

#[cfg(target_env = "msvc")]
pub fn allocator_stats() -> Option<(u64, u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_match_jemalloc() {
        let expect =
            [(1, 8), (8, 8), (9, 16), (17, 32), (100, 112), (129, 160), (257, 320), (1025, 1280), (16385, 20480)];
        for (req, class) in expect {
            assert_eq!(size_class(req), class, "request {req}");
        }
    }
}
