//! Subnormal floats read and written as zero while a run trains: the flush-to-zero
//! (FTZ) and denormals-are-zero (DAZ) bits of the x86 `MXCSR` register, set on every
//! thread of the run's own pool as it starts ([`crate::pool::training_pool`]; the
//! threads end with the run, so no other code sees the bits). PyTorch offers the same
//! switch as `torch.set_flush_denormal(True)`.
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
//! same config and seed give the same figures on every run, as before. On 64-bit Arm
//! the same is done with the FZ bit of `FPCR`; on other architectures the guard does
//! nothing.
//!
//! Rust and LLVM assume the default floating-point environment when they fold constants
//! at compile time; with these bits set, a float computed at run time can differ from
//! the same expression folded at compile time where the result is subnormal. Nothing
//! in the training code depends on such a value for anything but its arithmetic.
//!
//! ```
//! use std::hint::black_box;
//! use mnist_nn::subnormal::{flushing, set_flushing};
//!
//! let half_least_normal = || black_box(f32::MIN_POSITIVE) / black_box(2.0);
//! std::thread::spawn(move || {
//!     set_flushing(true);
//!     if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
//!         assert!(flushing());
//!         assert_eq!(half_least_normal(), 0.0); // FTZ: the subnormal result is zero
//!     }
//! })
//! .join()
//! .unwrap();
//! // Each thread has its own register: this one's is as it was.
//! assert!(!flushing());
//! assert_eq!(half_least_normal(), f32::MIN_POSITIVE / 2.0);
//! ```

/// Sets (`true`) or clears FTZ and DAZ on the calling thread: while set, subnormal
/// floats are read and made as zero there. A thread started from it afterwards starts
/// with the same bits (Linux copies the register into a new thread). See the
/// [module](self) documentation. On other architectures than x86-64 and 64-bit Arm it
/// does nothing.
pub fn set_flushing(on: bool) {
    fp_control::set_flush(on);
}

/// Whether subnormal floats are flushed to zero on the calling thread.
pub fn flushing() -> bool {
    fp_control::flush_bits() != 0
}

/// The floating-point control register of x86-64: `MXCSR`.
#[cfg(target_arch = "x86_64")]
mod fp_control {
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

/// The same switch on 64-bit Arm (Apple silicon, Graviton, Ampere): the FZ bit of
/// `FPCR`, which makes subnormal operands and results zero alike (FTZ and DAZ in one).
#[cfg(target_arch = "aarch64")]
mod fp_control {
    /// Flush to zero, for inputs and results of scalar and vector float operations.
    const FZ: u64 = 1 << 24;

    fn read() -> u64 {
        let value: u64;
        // SAFETY: `mrs` copies the floating-point control register into a general one.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) value, options(nomem, nostack, preserves_flags));
        }
        value
    }

    fn write(value: u64) {
        // SAFETY: `msr` loads the control register; only FZ differs from the value read
        // (rounding mode and trap enables are kept).
        unsafe {
            std::arch::asm!("msr fpcr, {}", in(reg) value, options(nomem, nostack, preserves_flags));
        }
    }

    /// The FZ bit of this thread's register.
    pub fn flush_bits() -> u64 {
        read() & FZ
    }

    /// Sets (or clears) FZ on this thread.
    pub fn set_flush(on: bool) {
        let value = read() & !FZ;
        write(if on { value | FZ } else { value });
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod fp_control {
    pub fn flush_bits() -> u32 {
        0
    }

    pub fn set_flush(_on: bool) {}
}
