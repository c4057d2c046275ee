//! The subscriber's own aligned copy buffer (`Overwrite` topics).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// A zeroed heap buffer of whole `u64` words with a chosen alignment (at least 16, as rkyv
/// needs), allocated once at attach time: the receive path never allocates. Allocation is
/// fallible: a slot too large for the process's memory is an error at attach, never an
/// abort.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u64>,
    words: usize,
    layout: Layout,
}

// SAFETY: the buffer is uniquely owned plain memory.
unsafe impl Send for AlignedBuf {}
// SAFETY: `&AlignedBuf` only reads the owned memory.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A buffer of at least `bytes` (at least one word), or `None` if it cannot be had.
    pub(crate) fn new(bytes: usize, align: usize) -> Option<Self> {
        let words = bytes.div_ceil(8).max(1);
        let layout = Layout::from_size_align(words.checked_mul(8)?, align.max(16)).ok()?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) } as *mut u64;
        let ptr = NonNull::new(raw)?;
        Some(AlignedBuf { ptr, words, layout })
    }

    /// The smallest buffer (one word), to stand in for one given away.
    pub(crate) fn empty() -> Self {
        // A one-word, 16-aligned layout is always valid; only a failing allocator says no.
        Self::new(0, 16).expect("allocating 8 bytes")
    }

    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: `ptr` is an owned, initialized (zeroed) allocation of `words` u64s.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.words) }
    }

    pub(crate) fn bytes(&self, len: usize) -> &[u8] {
        assert!(len <= self.words * 8);
        // SAFETY: `len` bytes lie inside the owned, initialized allocation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const u8, len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { dealloc(self.ptr.as_ptr() as *mut u8, self.layout) }
    }
}
