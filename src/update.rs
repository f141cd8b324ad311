//! The two element-wise updates of manual mode, each computed in one pass:
//!
//! ```text
//! w − α·d                      (gradient descent: W −= α·dW)
//! v' = μ·v + d,  w − α·v'      (with momentum: v = μ·v + dW; W −= α·v)
//! ```
//!
//! On flex, when the parameter (and the velocity) is the only handle on its buffer,
//! the new values are written over the old ones, on Rayon's pool, in one pass over
//! the tensors. Written as Burn operations the same update takes two to four passes,
//! each on one thread (flex runs element-wise operations on the calling thread), and
//! allocates a new tensor where the velocity is shared (`configs/fast.toml`, hidden 512,
//! on a 2-core Xeon: epochs of 1.47–1.75 s before, 0.86–0.95 s after). The arithmetic is the same, operation for operation (`α`
//! and `μ` rounded to `f32`, a product then a sum, no fused multiply-add), so the
//! results are equal to the last bit; elsewhere (ndarray, wgpu, a shared buffer,
//! another float type) the Burn operations run.
//!
//! A velocity smaller in magnitude than the least normal `f32` (2⁻¹²⁶, about
//! 1.2·10⁻³⁸) is set to zero, on both paths. The velocity of a weight whose pixel is
//! rarely inked decays by `μ` at every step without a gradient, and after about 800
//! such steps it is subnormal: arithmetic on subnormal floats takes a microcode
//! assist on x86 CPUs, a hundred cycles or more each. In `configs/fast.toml`'s third
//! epoch 13,000 of `W1`'s 301,056 velocities were subnormal and the update took 0.43
//! ms a step against 0.13 ms in the first epoch (2-core Xeon); with the flush, 0.14 ms
//! in every epoch. The step dropped, `α·v`, is below `2⁻¹²⁶·α`: for `α ≤ 1` less than
//! half a unit in the last place of any weight of magnitude `2⁻¹⁰¹` (4·10⁻³¹) or more,
//! so such a weight comes out the same.
//!
//! ```
//! use burn::prelude::*;
//! use mnist_nn::update::minus_scaled;
//!
//! let device = mnist_nn::backend::BackendKind::Flex.device()?;
//! let w = Tensor::<1>::from_floats([1.0, 2.0], &device);
//! let d = Tensor::<1>::from_floats([4.0, -2.0], &device);
//! let w = minus_scaled(w, d, 0.5);
//! assert_eq!(w.into_data().try_into_vec::<f32>().unwrap(), vec![-1.0, 3.0]);
//! # Ok::<(), mnist_nn::Error>(())
//! ```

use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::{Flex, FlexTensor};

/// The most floats per task on Rayon's pool: 256 KiB of each operand, enough that a
/// task's work (about 20 µs) dwarfs handing it out.
const CHUNK: usize = 1 << 16;

/// Floats per task for a parameter of `len` floats: parts of at most [`CHUNK`], as many
/// as a multiple of the pool's threads, of equal length (a whole number of 64-byte
/// lines). Parts of exactly [`CHUNK`] left `W1` at hidden 384 (301,056 floats) in five
/// parts, three for one core and two for the other, so the update took the time of
/// three parts where two and a half would do. A parameter of at most [`CHUNK`] floats
/// (the biases, `W2`) is one part.
///
/// ```text
/// hidden 384, 2 threads: 6 parts of 50,176 floats    hidden 800: 10 parts of 62,720
/// ```
fn part_len(len: usize) -> usize {
    if len <= CHUNK {
        return CHUNK;
    }
    let threads = rayon::current_num_threads().max(1);
    let parts = len.div_ceil(CHUNK).div_ceil(threads) * threads;
    len.div_ceil(parts).next_multiple_of(16)
}

/// `w − α·d`: one step of gradient descent on a parameter `w` with gradient `d`.
///
/// # Panics
///
/// When `w` and `d` differ in shape.
pub fn minus_scaled<const D: usize>(w: Tensor<D>, d: Tensor<D>, alpha: f64) -> Tensor<D> {
    assert_eq!(
        w.dims(),
        d.dims(),
        "a parameter and its gradient differ in shape"
    );
    let w = match sole_flex(w) {
        Ok(mut w) => {
            let a = alpha as f32;
            let updated = contiguous_mut(&mut w).and_then(|w_values| {
                let part = part_len(w_values.len());
                with_flex_f32(&d, |d| {
                    let parts: Vec<_> = w_values.chunks_mut(part).zip(d.chunks(part)).collect();
                    crate::pool::for_each_by_thread(parts, |_, (w, d)| {
                        loops::minus_scaled(w, d, a)
                    });
                })
            });
            let w = Tensor::from_primitive::<Flex>(w);
            if updated.is_some() {
                return w;
            }
            w
        }
        Err(w) => w,
    };
    w - d.mul_scalar(alpha)
}

/// One step of gradient descent with momentum on a parameter `w` with gradient `d` and
/// velocity `v` (`None` for zero, before the first step): `v' = μ·v + d` (zero where
/// it is smaller in magnitude than [`f32::MIN_POSITIVE`], see the module's notes) and
/// `w − α·v'`. Returns the new `w` and `v'`.
///
/// # Panics
///
/// When `w`, `v` and `d` differ in shape.
pub fn momentum_step<const D: usize>(
    w: Tensor<D>,
    v: Option<Tensor<D>>,
    d: Tensor<D>,
    mu: f64,
    alpha: f64,
) -> (Tensor<D>, Tensor<D>) {
    let Some(v) = v else {
        // v' = μ·0 + d = d
        return (minus_scaled(w, d.clone(), alpha), d);
    };
    assert_eq!(
        w.dims(),
        d.dims(),
        "a parameter and its gradient differ in shape"
    );
    assert_eq!(
        v.dims(),
        d.dims(),
        "a velocity and its gradient differ in shape"
    );
    let (w, v) = match (sole_flex(w), sole_flex(v)) {
        (Ok(mut w), Ok(mut v)) => {
            let (a, m) = (alpha as f32, mu as f32);
            let updated = match (contiguous_mut(&mut w), contiguous_mut(&mut v)) {
                (Some(w_values), Some(v_values)) => with_flex_f32(&d, |d| {
                    let part = part_len(w_values.len());
                    let parts: Vec<_> = w_values
                        .chunks_mut(part)
                        .zip(v_values.chunks_mut(part))
                        .zip(d.chunks(part))
                        .collect();
                    crate::pool::for_each_by_thread(parts, |_, ((w, v), d)| {
                        loops::momentum(w, v, d, m, a)
                    });
                }),
                _ => None,
            };
            let (w, v) = (
                Tensor::from_primitive::<Flex>(w),
                Tensor::from_primitive::<Flex>(v),
            );
            if updated.is_some() {
                return (w, v);
            }
            (w, v)
        }
        (w, v) => (as_tensor(w), as_tensor(v)),
    };
    let v = v.mul_scalar(mu) + d;
    let subnormal = v.clone().abs().lower_elem(f32::MIN_POSITIVE);
    let v = v.mask_fill(subnormal, 0.0);
    (w - v.clone().mul_scalar(alpha), v)
}

/// `t`'s flex tensor when `t` is an `f32` tensor on flex that holds the only handle on
/// its buffer; else `t` as it was.
// The error is the tensor given back whole, moved once per parameter and step.
#[allow(clippy::result_large_err)]
fn sole_flex<const D: usize>(t: Tensor<D>) -> Result<FlexTensor, Tensor<D>> {
    if t.dtype() != DType::F32 {
        return Err(t);
    }
    // Through a second handle, so that `t` is given back whole when it is not flex's;
    // once `t` is dropped the primitive holds the handle `t` held.
    let Ok(flex) = t.clone().try_into_primitive::<Flex>() else {
        return Err(t);
    };
    drop(t);
    if flex.is_unique() {
        Ok(flex)
    } else {
        Err(Tensor::from_primitive::<Flex>(flex))
    }
}

/// The tensor again, from [`sole_flex`]'s answer either way.
fn as_tensor<const D: usize>(t: Result<FlexTensor, Tensor<D>>) -> Tensor<D> {
    match t {
        Ok(flex) => Tensor::from_primitive::<Flex>(flex),
        Err(t) => t,
    }
}

/// `f` on `t`'s values as one contiguous `f32` slice, read in place, when `t` is a
/// flex tensor laid out so; else `None`.
fn with_flex_f32<const D: usize, R>(t: &Tensor<D>, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let primitive = t.clone().try_into_primitive::<Flex>().ok()?;
    primitive.as_slice::<f32>().map(f)
}

/// The values of a flex tensor that holds the only handle on its buffer, to write in
/// place, when they are contiguous.
fn contiguous_mut(t: &mut FlexTensor) -> Option<&mut [f32]> {
    let (start, end) = t.layout().contiguous_offsets()?;
    let storage = t.try_storage_mut::<f32>()?;
    storage.get_mut(start..end)
}

/// The two loops, compiled for AVX-512F and for AVX2 besides plain x86-64 (whose
/// 128-bit vectors took 8% of `configs/fast.toml`'s samples); the widest that the CPU
/// runs is taken. No variant fuses the multiply-add (Rust never contracts `a * b + c`),
/// so all give the same bits.
mod loops {
    /// `w −= a·d`, element by element.
    pub fn minus_scaled(w: &mut [f32], d: &[f32], a: f32) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { minus_scaled_avx512(w, d, a) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { minus_scaled_avx2(w, d, a) };
            }
        }
        minus_scaled_body(w, d, a);
    }

    /// `v = v·m + d` (zero below the least normal float); `w −= a·v`, element by element.
    pub fn momentum(w: &mut [f32], v: &mut [f32], d: &[f32], m: f32, a: f32) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { momentum_avx512(w, v, d, m, a) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { momentum_avx2(w, v, d, m, a) };
            }
        }
        momentum_body(w, v, d, m, a);
    }

    #[inline(always)]
    fn minus_scaled_body(w: &mut [f32], d: &[f32], a: f32) {
        for (w, &d) in w.iter_mut().zip(d) {
            *w -= a * d;
        }
    }

    #[inline(always)]
    fn momentum_body(w: &mut [f32], v: &mut [f32], d: &[f32], m: f32, a: f32) {
        for ((w, v), &d) in w.iter_mut().zip(v.iter_mut()).zip(d) {
            let v_new = *v * m + d;
            // Compiled to a compare and a masked move: no branch.
            *v = if v_new.abs() < f32::MIN_POSITIVE {
                0.0
            } else {
                v_new
            };
            *w -= a * *v;
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn minus_scaled_avx512(w: &mut [f32], d: &[f32], a: f32) {
        minus_scaled_body(w, d, a);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn minus_scaled_avx2(w: &mut [f32], d: &[f32], a: f32) {
        minus_scaled_body(w, d, a);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn momentum_avx512(w: &mut [f32], v: &mut [f32], d: &[f32], m: f32, a: f32) {
        momentum_body(w, v, d, m, a);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn momentum_avx2(w: &mut [f32], v: &mut [f32], d: &[f32], m: f32, a: f32) {
        momentum_body(w, v, d, m, a);
    }
}
