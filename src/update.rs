//! The element-wise updates of manual mode, each computed in one pass:
//!
//! ```text
//! w − α·d                      (gradient descent: W −= α·dW)
//! v' = μ·v + d,  w − α·v'      (with momentum: v = μ·v + dW; W −= α·v)
//! Adam's moments and step      (adam_step: as Burn's Adam, with or without an L2 penalty)
//! ```
//!
//! On flex and ndarray, when the parameter (and the velocity) is the only handle on its buffer,
//! the new values are written over the old ones, on Rayon's pool, in one pass over
//! the tensors. Written as Burn operations the same update takes two to four passes,
//! each on one thread (flex runs element-wise operations on the calling thread), and
//! allocates a new tensor where the velocity is shared (`configs/fast.toml`, hidden 512,
//! on a 2-core Xeon: epochs of 1.47–1.75 s before, 0.86–0.95 s after). The arithmetic is the same, operation for operation (`α`
//! and `μ` rounded to `f32`, a product then a sum, no fused multiply-add), so the
//! results are equal to the last bit; elsewhere (wgpu, a shared buffer, another float
//! type) the Burn operations run. On ndarray the pass replaced operations that already
//! reused a unique array, but one pass each: `configs/fast.toml` on
//! ndarray, 2-core Zen 4, epochs of 0.85–0.95 s before, 0.68–0.72 s after; `adam.toml
//! --mode manual` 1.70–1.89 s before, 1.28–1.45 s after (the same `metrics.csv`).
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

use std::cell::Cell;

use burn::prelude::*;
use burn::tensor::DType;
use burn_dispatch::DispatchDevice;
use burn_flex::{Flex, FlexTensor};
// ndarray is deprecated in Burn 0.22 in favour of flex, but it is still this crate's
// second CPU backend (the design card's); its updates are written in place as flex's.
#[allow(deprecated)]
use burn_ndarray::{NdArray, NdArrayTensor};

thread_local! {
    /// Updates written in place by this thread's calls (see [`passes_in_place`]).
    static PASSES_IN_PLACE: Cell<u64> = const { Cell::new(0) };
}

/// How many parameter updates this thread's calls of [`minus_scaled`],
/// [`momentum_step`] and [`adam_step`] have written in place, with this module's loops,
/// rather than as Burn operations. For the tests: Burn's own operations on flex and
/// ndarray also reuse a buffer that one tensor alone holds, so the buffer's address
/// after an update cannot tell the two ways apart.
#[doc(hidden)]
pub fn passes_in_place() -> u64 {
    PASSES_IN_PLACE.with(Cell::get)
}

/// One more update written in place, for [`passes_in_place`].
fn count_pass() {
    PASSES_IN_PLACE.with(|n| n.set(n.get() + 1));
}

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
    let w = match sole(w) {
        Ok(mut w) => {
            let a = alpha as f32;
            let updated = w.values_mut().and_then(|w_values| {
                let part = part_len(w_values.len());
                with_f32(&d, |d| {
                    let parts: Vec<_> = w_values.chunks_mut(part).zip(d.chunks(part)).collect();
                    crate::pool::for_each_by_thread(parts, |_, (w, d)| {
                        loops::minus_scaled(w, d, a)
                    });
                })
            });
            let w = w.into_tensor();
            if updated.is_some() {
                count_pass();
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
    let (w, v) = match (sole(w), sole(v)) {
        (Ok(mut w), Ok(mut v)) => {
            let (a, m) = (alpha as f32, mu as f32);
            let updated = match (w.values_mut(), v.values_mut()) {
                (Some(w_values), Some(v_values)) => with_f32(&d, |d| {
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
            let (w, v) = (w.into_tensor(), v.into_tensor());
            if updated.is_some() {
                count_pass();
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

/// The constants of one step of Adam, in `f32` as Burn's `Adam` computes them (its
/// `AdaptiveMomentum`): with `t` the step's number from 1,
/// `scale = √(1 − β2ᵗ) / (1 − β1ᵗ)` and `epsilon = ε·√(1 − β2ᵗ)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamCoefficients {
    /// The L2 penalty λ (`dW + λ·W`, Adam's `weight_decay`), if any.
    pub penalty: Option<f32>,
    /// β1, the first moment's decay.
    pub beta_1: f32,
    /// β2, the second moment's decay.
    pub beta_2: f32,
    /// `√(1 − β2ᵗ) / (1 − β1ᵗ)`: both bias corrections in one factor.
    pub scale: f32,
    /// `ε·√(1 − β2ᵗ)`, added to `√v`.
    pub epsilon: f32,
    /// The learning rate α.
    pub rate: f32,
}

/// One step of Adam on a parameter `w` with gradient `d` and moments `m`, `v` (zero
/// before the first step), in the order of Burn's `Adam`:
///
/// ```text
/// g = λ·w + d          (with an L2 penalty; else g = d)
/// m = β1·m + (1 − β1)·g
/// v = β2·v + (1 − β2)·g²
/// w = w − α·(scale·m / (√v + epsilon))
/// ```
///
/// Returns the new `w`, `m` and `v`. On flex and ndarray, where the three hold the only handles on
/// their buffers, in one pass written over them on Rayon's pool (Burn's Adam takes 13
/// to 15 passes on one thread, each into a new tensor); elsewhere as Burn operations.
/// The two ways give the same bits.
///
/// # Panics
///
/// When `w`, `m`, `v` and `d` differ in shape.
pub fn adam_step<const D: usize>(
    w: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    d: Tensor<D>,
    c: &AdamCoefficients,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    for (t, what) in [
        (&m, "first moment"),
        (&v, "second moment"),
        (&d, "gradient"),
    ] {
        assert_eq!(
            w.dims(),
            t.dims(),
            "a parameter and its {what} differ in shape"
        );
    }
    let (w, m, v) = match (sole(w), sole(m), sole(v)) {
        (Ok(mut w), Ok(mut m), Ok(mut v)) => {
            let updated = match (w.values_mut(), m.values_mut(), v.values_mut()) {
                (Some(w_values), Some(m_values), Some(v_values)) => with_f32(&d, |d| {
                    let part = part_len(w_values.len());
                    let parts: Vec<_> = w_values
                        .chunks_mut(part)
                        .zip(m_values.chunks_mut(part))
                        .zip(v_values.chunks_mut(part).zip(d.chunks(part)))
                        .collect();
                    crate::pool::for_each_by_thread(parts, |_, ((w, m), (v, d))| {
                        loops::adam(w, m, v, d, c)
                    });
                }),
                _ => None,
            };
            let (w, m, v) = (w.into_tensor(), m.into_tensor(), v.into_tensor());
            if updated.is_some() {
                count_pass();
                return (w, m, v);
            }
            (w, m, v)
        }
        (w, m, v) => (as_tensor(w), as_tensor(m), as_tensor(v)),
    };
    let g = match c.penalty {
        Some(penalty) => w.clone().mul_scalar(penalty).add(d),
        None => d,
    };
    let m = m
        .mul_scalar(c.beta_1)
        .add(g.clone().mul_scalar(1.0 - c.beta_1));
    let v = v
        .mul_scalar(c.beta_2)
        .add(g.square().mul_scalar(1.0 - c.beta_2));
    let u = m
        .clone()
        .mul_scalar(c.scale)
        .div(v.clone().sqrt().add_scalar(c.epsilon));
    (w - u.mul_scalar(c.rate), m, v)
}

/// An `f32` tensor of a CPU backend, held as that backend's own tensor while it is the
/// only handle on its buffer, so that its values may be written in place.
#[allow(deprecated)]
enum Sole {
    /// On flex.
    Flex(FlexTensor),
    /// On ndarray, whose `f32` tensors are an `ArcArray`, written only when unique.
    NdArray(NdArrayTensor),
}

#[allow(deprecated)]
impl Sole {
    /// The values, to write in place, when they are contiguous (on ndarray, in standard
    /// order).
    fn values_mut(&mut self) -> Option<&mut [f32]> {
        match self {
            Sole::Flex(t) => {
                let (start, end) = t.layout().contiguous_offsets()?;
                t.try_storage_mut::<f32>()?.get_mut(start..end)
            }
            // Unique (see `sole`), so owned: a view borrowed from a file is never unique,
            // and `ensure_owned` copies nothing.
            Sole::NdArray(NdArrayTensor::F32(storage)) => storage.ensure_owned().as_slice_mut(),
            Sole::NdArray(_) => None,
        }
    }

    /// The tensor again.
    fn into_tensor<const D: usize>(self) -> Tensor<D> {
        match self {
            Sole::Flex(t) => Tensor::from_primitive::<Flex>(t),
            Sole::NdArray(t) => Tensor::from_primitive::<NdArray>(t),
        }
    }
}

/// `t` as its backend's own tensor when `t` is an `f32` tensor on flex or ndarray that
/// holds the only handle on its buffer; else `t` as it was.
// The error is the tensor given back whole, moved once per parameter and step.
#[allow(clippy::result_large_err)]
#[allow(deprecated)]
fn sole<const D: usize>(t: Tensor<D>) -> Result<Sole, Tensor<D>> {
    if t.dtype() != DType::F32 {
        return Err(t);
    }
    // The device says which backend to unwrap, so that no conversion is tried that must
    // fail (a failed one formats its error message). Through a second handle, so that `t`
    // is given back whole if the conversion fails all the same; once `t` is dropped the
    // primitive holds the handle `t` held.
    match t.device().as_dispatch() {
        DispatchDevice::Flex(_) => {
            let Ok(flex) = t.clone().try_into_primitive::<Flex>() else {
                return Err(t);
            };
            drop(t);
            if flex.is_unique() {
                Ok(Sole::Flex(flex))
            } else {
                Err(Tensor::from_primitive::<Flex>(flex))
            }
        }
        DispatchDevice::NdArray(_) => {
            let Ok(array) = t.clone().try_into_primitive::<NdArray>() else {
                return Err(t);
            };
            drop(t);
            match &array {
                NdArrayTensor::F32(storage) if storage.is_unique() => Ok(Sole::NdArray(array)),
                _ => Err(Tensor::from_primitive::<NdArray>(array)),
            }
        }
        _ => Err(t),
    }
}

/// The tensor again, from [`sole`]'s answer either way.
fn as_tensor<const D: usize>(t: Result<Sole, Tensor<D>>) -> Tensor<D> {
    match t {
        Ok(sole) => sole.into_tensor(),
        Err(t) => t,
    }
}

/// `f` on `t`'s values as one contiguous `f32` slice, read in place, when `t` is a
/// flex or ndarray tensor laid out so; else `None`.
#[allow(deprecated)]
fn with_f32<const D: usize, R>(t: &Tensor<D>, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if t.dtype() != DType::F32 {
        return None;
    }
    match t.device().as_dispatch() {
        DispatchDevice::Flex(_) => t
            .clone()
            .try_into_primitive::<Flex>()
            .ok()?
            .as_slice::<f32>()
            .map(f),
        DispatchDevice::NdArray(_) => match t.clone().try_into_primitive::<NdArray>().ok()? {
            NdArrayTensor::F32(storage) => storage.view().as_slice().map(f),
            _ => None,
        },
        _ => None,
    }
}

/// The loops, compiled for AVX-512F and for AVX2 besides plain x86-64 (whose
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

    /// [`super::adam_step`]'s arithmetic, element by element.
    pub fn adam(
        w: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        d: &[f32],
        c: &super::AdamCoefficients,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { adam_avx512(w, m, v, d, c) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { adam_avx2(w, m, v, d, c) };
            }
        }
        adam_any(w, m, v, d, c);
    }

    /// [`adam`] for the penalty given, each loop free of its test.
    #[inline(always)]
    fn adam_any(
        w: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        d: &[f32],
        c: &super::AdamCoefficients,
    ) {
        match c.penalty {
            Some(penalty) => adam_body(w, m, v, d, c, |w, d| w * penalty + d),
            None => adam_body(w, m, v, d, c, |_, d| d),
        }
    }

    #[inline(always)]
    fn adam_body(
        w: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        d: &[f32],
        c: &super::AdamCoefficients,
        gradient: impl Fn(f32, f32) -> f32,
    ) {
        let (b1, b2) = (c.beta_1, c.beta_2);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        for ((w, m), (v, &d)) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut().zip(d)) {
            let g = gradient(*w, d);
            *m = *m * b1 + g * f1;
            *v = *v * b2 + g * g * f2;
            *w -= *m * c.scale / (v.sqrt() + c.epsilon) * c.rate;
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn adam_avx512(
        w: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        d: &[f32],
        c: &super::AdamCoefficients,
    ) {
        adam_any(w, m, v, d, c);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn adam_avx2(
        w: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        d: &[f32],
        c: &super::AdamCoefficients,
    ) {
        adam_any(w, m, v, d, c);
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
