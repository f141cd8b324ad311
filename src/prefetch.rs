//! A hint to the CPU to bring a slice into its first-level cache ahead of its use:
//! where a loop's next data lies at an address it cannot guess (a shuffled image's
//! bytes or lists), the hardware's own prefetcher only starts after the first miss.
//! It changes no result; on CPUs other than x86-64 it does nothing.
//!
//! ```no_run
//! let image = vec![0u8; 784];
//! mnist_nn::prefetch::prefetch(&image); // then some other work, then read `image`
//! ```

/// Asks for every 64-byte line of `slice` to be brought into the L1 cache.
#[inline(always)]
pub fn prefetch<T>(slice: &[T]) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slice;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let range = slice.as_ptr_range();
        let (mut line, last) = (range.start.cast::<u8>(), range.end.cast::<u8>());
        while line < last {
            // SAFETY: a prefetch only hints (it never faults); `line` lies within the
            // slice.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.cast::<i8>()) };
            line = line.wrapping_add(64);
        }
    }
}
