//! The guest's global allocator: a bump allocator over an arena the module
//! already owns, then dlmalloc over grown memory.
//!
//! Every call runs in a fresh instance that is thrown away afterwards, so
//! memory a call frees need not be reused: bumping a pointer through a
//! zeroed arena in `.bss` is the cheapest allocator there is, and it keeps
//! a call's allocations on as few pages as possible. That matters to the
//! host, which resets every page a call dirtied before the next instance
//! reuses the slot. (dlmalloc alone also wrote its segment record at the
//! far end of the arena and kept its state on a page of its own.) The last
//! allocation is freed and grown in place, which covers a `Vec` or
//! `String` growing while nothing else is allocated.
//!
//! Memory never grows while the arena lasts: `std`'s allocator on
//! `wasm32-unknown-unknown` grows linear memory on the first allocation of
//! every fresh instance, which costs the host two system calls per call.
//! What does not fit in the arena goes to dlmalloc over `memory.grow`.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Bytes served by bumping before memory grows.
const ARENA_BYTES: usize = 512 * 1024;

/// A WebAssembly page.
const PAGE_BYTES: usize = 64 * 1024;

#[repr(C, align(65536))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: WebAssembly guests without the atomics feature are single
// threaded; the arena is only touched through `GuestAllocator`.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));

/// dlmalloc's source of memory once the arena is used up: fresh pages
/// from `memory.grow`.
struct Grown;

// SAFETY: every region returned is pages freshly added by `memory.grow`,
// which overlap nothing in use and are zeroed.
unsafe impl dlmalloc::Allocator for Grown {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
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

/// The arena's bookkeeping: offsets into it.
struct Bump {
    /// Where the next allocation may start.
    next: usize,
    /// The highest `next` ever reached: bytes past it are still zero.
    high: usize,
}

impl Bump {
    /// The offset of `size` bytes aligned to `align`, if they fit.
    fn take(&mut self, base: usize, size: usize, align: usize) -> Option<usize> {
        let start = (base + self.next).checked_next_multiple_of(align)? - base;
        let end = start.checked_add(size)?;
        if end > ARENA_BYTES {
            return None;
        }
        self.next = end;
        self.high = self.high.max(end);
        Some(start)
    }

    /// Gives back the allocation at `start` of `size` bytes if it is the
    /// last one; otherwise its bytes stay used until the instance ends.
    fn give_back(&mut self, start: usize, size: usize) {
        if start + size == self.next {
            self.next = start;
        }
    }

    /// Grows or shrinks the last allocation, at `start`, to `new_size`
    /// bytes in place, if it is the last one and fits.
    fn resize_last(&mut self, start: usize, old_size: usize, new_size: usize) -> bool {
        if start + old_size != self.next || start + new_size > ARENA_BYTES {
            return false;
        }
        self.next = start + new_size;
        self.high = self.high.max(self.next);
        true
    }
}

struct GuestAllocator {
    bump: UnsafeCell<Bump>,
    grown: UnsafeCell<dlmalloc::Dlmalloc<Grown>>,
}

// SAFETY: single threaded (see `Arena`).
unsafe impl Sync for GuestAllocator {}

#[global_allocator]
static ALLOCATOR: GuestAllocator = GuestAllocator {
    bump: UnsafeCell::new(Bump { next: 0, high: 0 }),
    grown: UnsafeCell::new(dlmalloc::Dlmalloc::new_with_allocator(Grown)),
};

fn arena_base() -> usize {
    ARENA.0.get() as usize
}

/// The offset of `ptr` in the arena, if it points into it.
fn in_arena(ptr: *mut u8) -> Option<usize> {
    (ptr as usize)
        .checked_sub(arena_base())
        .filter(|offset| *offset < ARENA_BYTES)
}

// SAFETY: an arena block is a range of the static arena that no other live
// block overlaps (offsets only grow, and only the last block is given back
// or resized); everything else is dlmalloc's, which upholds
// `GlobalAlloc`'s contract. The guest is single threaded, so no
// `UnsafeCell` is entered twice.
unsafe impl GlobalAlloc for GuestAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let bump = unsafe { &mut *self.bump.get() };
        match bump.take(arena_base(), layout.size(), layout.align()) {
            Some(start) => unsafe { ARENA.0.get().cast::<u8>().add(start) },
            None => unsafe { (*self.grown.get()).malloc(layout.size(), layout.align()) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let bump = unsafe { &mut *self.bump.get() };
        let high = bump.high;
        match bump.take(arena_base(), layout.size(), layout.align()) {
            Some(start) => {
                let block = unsafe { ARENA.0.get().cast::<u8>().add(start) };
                // Bytes past the high-water mark were never handed out.
                let used = high.saturating_sub(start).min(layout.size());
                unsafe { ptr::write_bytes(block, 0, used) };
                block
            }
            None => unsafe { (*self.grown.get()).calloc(layout.size(), layout.align()) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match in_arena(ptr) {
            Some(start) => unsafe { (*self.bump.get()).give_back(start, layout.size()) },
            None => unsafe { (*self.grown.get()).free(ptr, layout.size(), layout.align()) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(start) = in_arena(ptr) else {
            return unsafe {
                (*self.grown.get()).realloc(ptr, layout.size(), layout.align(), new_size)
            };
        };
        let bump = unsafe { &mut *self.bump.get() };
        if bump.resize_last(start, layout.size(), new_size) {
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `layout.align()` is a valid alignment and `new_size` is
        // non-zero and, rounded up to it, fits `isize` (realloc's contract).
        let grown = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let moved = unsafe { self.alloc(grown) };
        if !moved.is_null() {
            unsafe { ptr::copy_nonoverlapping(ptr, moved, layout.size()) };
            // Rewinds only if the old block is still the arena's last one
            // (the new one went to grown memory).
            unsafe { (*self.bump.get()).give_back(start, layout.size()) };
        }
        moved
    }
}
