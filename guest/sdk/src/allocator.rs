//! The guest's global allocator: dlmalloc over an arena the module already
//! owns, then over grown memory.
//!
//! `std`'s allocator on `wasm32-unknown-unknown` grows linear memory on the
//! first allocation of every fresh instance. Growing costs the host two
//! system calls per call (an `mprotect` at the grow and another when the
//! pool slot is shrunk back for the next instance), which made a call about
//! 1.5× slower than a WASI guest's. Serving first from a zeroed arena in
//! `.bss` avoids the grow for any call that fits in the arena; its pages
//! cost nothing until touched. Bigger calls still grow memory as usual.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes served before memory grows.
const ARENA_BYTES: usize = 512 * 1024;

/// A WebAssembly page.
const PAGE_BYTES: usize = 64 * 1024;

#[repr(C, align(65536))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: the arena is handed out once, to dlmalloc, which owns it from
// then on; WebAssembly guests without the atomics feature are single
// threaded.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));

/// dlmalloc's source of memory: the arena first, then `memory.grow`.
struct ArenaFirst {
    arena_given: AtomicBool,
}

// SAFETY: regions returned are either the static arena (given exactly
// once) or pages freshly added by `memory.grow`; neither overlaps memory
// in use, and both are zeroed.
unsafe impl dlmalloc::Allocator for ArenaFirst {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        if size <= ARENA_BYTES && !self.arena_given.swap(true, Ordering::Relaxed) {
            return (ARENA.0.get().cast::<u8>(), ARENA_BYTES, 0);
        }
        let pages = size.div_ceil(PAGE_BYTES);
        let previous = core::arch::wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return (ptr::null_mut(), 0, 0);
        }
        ((previous * PAGE_BYTES) as *mut u8, pages * PAGE_BYTES, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE_BYTES
    }
}

struct GuestAllocator(UnsafeCell<dlmalloc::Dlmalloc<ArenaFirst>>);

// SAFETY: single threaded (see `Arena`).
unsafe impl Sync for GuestAllocator {}

#[global_allocator]
static ALLOCATOR: GuestAllocator = GuestAllocator(UnsafeCell::new(
    dlmalloc::Dlmalloc::new_with_allocator(ArenaFirst {
        arena_given: AtomicBool::new(false),
    }),
));

// SAFETY: forwards to dlmalloc, which upholds `GlobalAlloc`'s contract; the
// guest is single threaded, so the `UnsafeCell` is never entered twice.
unsafe impl GlobalAlloc for GuestAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { (*self.0.get()).free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { (*self.0.get()).realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}
