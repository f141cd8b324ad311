//! Subnormal floats read and written as zero while a run trains: the flush-to-zero
//! (FTZ) and denormals-are-zero (DAZ) bits of the x86 `MXCSR` register, set on the
//! training thread and on every thread of Rayon's pool, and cleared when the last
//! [`FlushSubnormals`] alive is dropped. PyTorch offers the same switch as
//! `torch.set_flush_denormal(True)`.
//!
//! Why: a float below 2⁻¹²⁶ (about 1.2·10⁻³⁸) in magnitude is subnormal, and on x86
//! CPUs an operation that reads or makes one takes a microcode assist, a hundred cycles
//! or more instead of a fraction of one. Training makes such floats where nothing
//! pushes a value back up: the weights of a pixel that is blank in every training
//! image get no gradient from the loss, only an L2 penalty's, so under Adam they (and
//! their moments) shrink by a near-constant factor at every step, through the subnormal
//! range: 72,010 of `W1`'s 627,200 weights after `configs/adam.toml`'s 30 epochs,
//! 53,600 of them the 67 blank pixels' and the rest those of rarely inked ones. On a
//! 2-core Xeon, `configs/adam.toml`'s epochs took 2.9–4.3 s up to the fourth and 5.6–7.8 s from the
//! fifth on, with flex's multiply by a scalar (Adam's `β·m`) going from 17.7% to 45.8%
//! of the samples.
//!
//! What it changes: only values that would have been subnormal, which become zero. A
//! weight that small moves no logit by as much as a unit in the last place, so a run's
//! results stay the same as without the flush except where a subnormal was, and the
//! same config and seed give the same figures on every run, as before. On other
//! architectures the guard does nothing.
//!
//! Rust and LLVM assume the default floating-point environment when they fold constants
//! at compile time; with these bits set, a float computed at run time can differ from
//! the same expression folded at compile time where the result is subnormal. Nothing
//! in the training code depends on such a value for anything but its arithmetic.
//!
//! ```
//! use std::hint::black_box;
//! use mnist_nn::subnormal::{FlushSubnormals, flushing};
//!
//! let half_least_normal = || black_box(f32::MIN_POSITIVE) / black_box(2.0);
//! let pool = || rayon::broadcast(|_| flushing());
//! {
//!     let _flush = FlushSubnormals::on_pool();
//!     if cfg!(target_arch = "x86_64") {
//!         assert_eq!(half_least_normal(), 0.0); // FTZ: the subnormal result is zero
//!         assert!(pool().iter().all(|&f| f));
//!     }
//! }
//! assert_eq!(half_least_normal(), f32::MIN_POSITIVE / 2.0);
//! assert!(pool().iter().all(|&f| !f));
//! ```

use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

/// The guards alive, all threads together: the bits are set when the first is made and
/// cleared when the last is dropped, so that runs training at the same time (tests,
/// the page) do not clear each other's flush.
static ALIVE: Mutex<usize> = Mutex::new(0);

/// While alive, subnormal floats are read and made as zero on the thread that made it
/// and on Rayon's current pool. See the [module](self) documentation.
#[must_use = "the flush lasts as long as the guard"]
pub struct FlushSubnormals {
    /// The making thread's bits before: restored on drop (the pool's are cleared).
    before: u32,
    /// Dropped on the thread that made it, whose register it restores.
    _not_send: PhantomData<*const ()>,
}

impl FlushSubnormals {
    /// Sets FTZ and DAZ on this thread and on every thread of Rayon's current pool.
    /// Make it outside the pool: it waits for every pool thread while holding the
    /// count of guards.
    pub fn on_pool() -> Self {
        let before = mxcsr::flush_bits();
        mxcsr::set_flush(true);
        let mut alive = ALIVE.lock().unwrap_or_else(PoisonError::into_inner);
        if *alive == 0 {
            rayon::broadcast(|_| mxcsr::set_flush(true));
        }
        *alive += 1;
        FlushSubnormals {
            before,
            _not_send: PhantomData,
        }
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        let mut alive = ALIVE.lock().unwrap_or_else(PoisonError::into_inner);
        *alive -= 1;
        if *alive == 0 {
            rayon::broadcast(|_| mxcsr::set_flush(false));
        }
        mxcsr::set_flush(self.before != 0);
    }
}

/// Whether subnormal floats are flushed to zero on the calling thread.
pub fn flushing() -> bool {
    mxcsr::flush_bits() != 0
}

#[cfg(target_arch = "x86_64")]
mod mxcsr {
    /// Flush to zero: subnormal results are made zero.
    const FTZ: u32 = 1 << 15;
    /// Denormals are zero: subnormal operands are read as zero.
    const DAZ: u32 = 1 << 6;

    fn read() -> u32 {
        let mut value = 0u32;
        // SAFETY: `stmxcsr` stores the 32-bit register at the address of a local.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags));
        }
        value
    }

    fn write(value: u32) {
        // SAFETY: `ldmxcsr` loads the register from a local; only the FTZ and DAZ bits
        // differ from the value read (rounding and exception masks are kept).
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &value, options(nostack, readonly, preserves_flags));
        }
    }

    /// The FTZ and DAZ bits of this thread's register.
    pub fn flush_bits() -> u32 {
        read() & (FTZ | DAZ)
    }

    /// Sets (or clears) both bits on this thread.
    pub fn set_flush(on: bool) {
        let value = read() & !(FTZ | DAZ);
        write(if on { value | FTZ | DAZ } else { value });
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod mxcsr {
    pub fn flush_bits() -> u32 {
        0
    }

    pub fn set_flush(_on: bool) {}
}
