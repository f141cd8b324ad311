//! `X` as a sparse matrix: the two products it takes part in, `W1·X` (the forward's
//! `Z1`) and `dZ1·Xᵀ` (the backward's `dW1`), summed over its nonzero pixels only.
//!
//! An MNIST digit is ink on a black background: on average 150 of an image's 784
//! pixels are nonzero (19%). A dense product multiplies the other 81% by zero; here
//! `Z1`'s column for image `i` is `Σ_k x_ki·W1[:, k]` over that image's nonzero pixels
//! `k`, and `dW1`'s column for pixel `k` is `Σ_i x_ki·dZ1[:, i]` over the images in which
//! `k` is nonzero. The sums are the dense products' terms without the zero ones, so the
//! results equal the dense products' up to the order of the float additions.
//!
//! The loops run over blocks of [`ROWS`] rows of `W1` (or `dZ1`), one block per task on
//! Rayon's pool: a block's rows are first laid out pixel by pixel (image by image for
//! `dZ1`), so that each nonzero `x_ki` adds one contiguous run of [`ROWS`] floats, and
//! its sums are kept in vector registers. The loops are compiled for AVX-512, for AVX2
//! and FMA, and as plain Rust; the widest that the CPU runs is chosen at run time
//! ([`Kernels`]).
//!
//! ```
//! use burn::prelude::*;
//! use mnist_nn::sparse::SparseX;
//!
//! let device = mnist_nn::backend::BackendKind::Flex.device()?;
//! // Two images (rows), one nonzero pixel each: pixel 3 of image 0, pixel 700 of image 1.
//! let mut images = vec![0.0f32; 2 * 784];
//! images[3] = 0.5;
//! images[784 + 700] = 1.0;
//! let x = SparseX::from_images(&images, 2);
//! assert_eq!(x.nonzeros(), 2);
//! // W1 with W1[r, k] = k: W1·X picks column 3 (times 0.5) and column 700.
//! let w: Vec<f32> = (0..4 * 784).map(|i| (i % 784) as f32).collect();
//! let w = Tensor::<2>::from_data(TensorData::new(w, [4, 784]), &device);
//! let z = x.left_product(w).into_data().try_into_vec::<f32>().unwrap();
//! assert_eq!(&z[..2], &[1.5, 700.0]);
//! # Ok::<(), mnist_nn::Error>(())
//! ```

use std::mem::MaybeUninit;

use burn::prelude::*;
use burn_flex::Flex;

use crate::IMAGE_PIXELS;

/// Rows of `W1` (or `dZ1`) per block: 64 floats, eight 256-bit registers of sums.
pub const ROWS: usize = 64;

/// The most images a [`SparseX`] holds: its lists index up to `784·m` entries with
/// `u32` (5.4 million images, a hundred times MNIST's training set).
pub const MAX_IMAGES: usize = u32::MAX as usize / IMAGE_PIXELS;

/// Pixels whose `dW1` columns are summed before they are written out together: 16
/// floats, a 64-byte cache line of each row of `dW1`.
const PIXEL_RUN: usize = 16;

/// The nonzeros of consecutive images, image by image: `(pixel, value)` pairs, and
/// where each image's start (one more entry than images, the first 0).
pub(crate) type ImageLists = (Vec<(u32, f32)>, Vec<u32>);

/// `X` `(784, m)` by its nonzero entries, listed both by image (column) and by pixel
/// (row).
#[derive(Debug, Clone, PartialEq)]
pub struct SparseX {
    /// Images (columns of `X`).
    m: usize,
    /// Image `i`'s nonzero pixels are `by_image[image_start[i]..image_start[i + 1]]`.
    image_start: Vec<u32>,
    /// `(pixel, value)` of each nonzero, image by image.
    by_image: Vec<(u32, f32)>,
    /// Pixel `k`'s nonzero images are `by_pixel[pixel_start[k]..pixel_start[k + 1]]`.
    pixel_start: Vec<u32>,
    /// `(image, value)` of each nonzero, pixel by pixel.
    by_pixel: Vec<(u32, f32)>,
}

impl SparseX {
    /// `X` from `m` images given as rows of 784 pixels (`images.len() == 784·m`, so the
    /// `(m, 784)` matrix `Xᵀ` in row-major order).
    ///
    /// # Panics
    ///
    /// When `images` does not hold `784·m` values, or more than `u32::MAX` (the lists
    /// index their entries with `u32`; [`MAX_IMAGES`] images).
    pub fn from_images(images: &[f32], m: usize) -> Self {
        assert_eq!(
            images.len(),
            IMAGE_PIXELS * m,
            "images must be m rows of 784"
        );
        assert!(m <= MAX_IMAGES, "too many images for one sparse X");
        // The two halves of the batch are scanned side by side.
        let half = m.div_ceil(2) * IMAGE_PIXELS;
        let (first, second) = rayon::join(
            || nonzeros_of(&images[..half]),
            || nonzeros_of(&images[half..]),
        );
        Self::from_parts(vec![first, second])
    }

    /// `X` from the lists of consecutive groups of images, each as [`nonzeros_of`]
    /// gives them (`(pixel, value)` pairs, and each image's start with the end last).
    ///
    /// # Panics
    ///
    /// As [`SparseX::from_by_image`], or when there are more than [`MAX_IMAGES`] images.
    pub(crate) fn from_parts(parts: Vec<ImageLists>) -> Self {
        let total = parts.iter().map(|(list, _)| list.len()).sum();
        let mut by_image = Vec::with_capacity(total);
        let mut image_start = vec![0u32];
        for (list, starts) in parts {
            let offset = by_image.len() as u32;
            image_start.extend(starts.iter().skip(1).map(|s| s + offset));
            by_image.extend_from_slice(&list);
        }
        assert!(
            image_start.len() - 1 <= MAX_IMAGES,
            "too many images for one sparse X"
        );
        Self::from_by_image(image_start, by_image)
    }

    /// `X` from its nonzeros listed image by image: image `i`'s `(pixel, value)` pairs
    /// are `by_image[image_start[i]..image_start[i + 1]]` (`image_start` has one entry
    /// more than there are images, the first 0). The list by pixel is made from it.
    ///
    /// # Panics
    ///
    /// When `image_start` is empty or does not end at `by_image.len()`, or a pixel is
    /// 784 or more.
    pub(crate) fn from_by_image(image_start: Vec<u32>, by_image: Vec<(u32, f32)>) -> Self {
        assert_eq!(
            image_start.last().map(|&s| s as usize),
            Some(by_image.len()),
            "image_start must end at the number of nonzeros"
        );
        let mut per_pixel = vec![0u32; IMAGE_PIXELS + 1];
        for &(k, _) in &by_image {
            per_pixel[k as usize + 1] += 1;
        }
        // Counting sort by pixel: each pixel's images come out in image order.
        for k in 0..IMAGE_PIXELS {
            per_pixel[k + 1] += per_pixel[k];
        }
        let pixel_start = per_pixel.clone();
        let mut next = per_pixel;
        let mut by_pixel = vec![(0u32, 0.0f32); by_image.len()];
        for (i, range) in image_start.windows(2).enumerate() {
            for &(k, value) in &by_image[range[0] as usize..range[1] as usize] {
                let slot = &mut next[k as usize];
                by_pixel[*slot as usize] = (i as u32, value);
                *slot += 1;
            }
        }
        Self {
            m: image_start.len() - 1,
            image_start,
            by_image,
            pixel_start,
            by_pixel,
        }
    }

    /// `X` from a `(784, m)` tensor: its values read back to the host.
    pub fn from_tensor(x: &Tensor<2>) -> Self {
        let [_, m] = x.dims();
        // Xᵀ `(m, 784)`: the training batch is stored that way, so this reads it in order.
        with_host_f32(x.clone().transpose(), |rows| Self::from_images(rows, m))
    }

    /// Images (columns of `X`).
    pub fn images(&self) -> usize {
        self.m
    }

    /// Nonzero entries of `X`.
    pub fn nonzeros(&self) -> usize {
        self.by_image.len()
    }

    /// The fraction of `X`'s entries that are nonzero.
    pub fn density(&self) -> f64 {
        self.nonzeros() as f64 / (IMAGE_PIXELS * self.m).max(1) as f64
    }

    /// `W·X` for `w` `(rows, 784)`: `(rows, m)`, on `w`'s device, as `f32`.
    pub fn left_product(&self, w: Tensor<2>) -> Tensor<2> {
        self.left_product_with(w, Kernels::preferred())
    }

    /// [`SparseX::left_product`] by the given loops.
    ///
    /// # Panics
    ///
    /// When this CPU cannot run `loops` ([`Kernels::runs_here`]).
    pub fn left_product_with(&self, w: Tensor<2>, loops: Kernels) -> Tensor<2> {
        loops.assert_runs_here();
        let device = w.device();
        let [rows, _] = w.dims();
        let z = if self.m == 0 {
            Vec::new()
        } else {
            with_host_f32(w, |w| {
                filled_by_blocks(rows * self.m, ROWS * self.m, |block, z_rows| {
                    let rows_here = z_rows.len() / self.m;
                    let w_rows = &w[block * ROWS * IMAGE_PIXELS..][..rows_here * IMAGE_PIXELS];
                    with_scratch(IMAGE_PIXELS * ROWS, |packed| {
                        transpose_into(w_rows, rows_here, IMAGE_PIXELS, packed);
                        kernels::w_times_x(loops, packed, self, z_rows, rows_here);
                    });
                })
            })
        };
        Tensor::from_data(TensorData::new(z, [rows, self.m]), &device)
    }

    /// `D·Xᵀ` for `d` `(rows, m)`: `(rows, 784)`, on `d`'s device, as `f32`.
    pub fn right_product_t(&self, d: Tensor<2>) -> Tensor<2> {
        self.right_product_t_with(d, Kernels::preferred())
    }

    /// [`SparseX::right_product_t`] by the given loops.
    ///
    /// # Panics
    ///
    /// When this CPU cannot run `loops` ([`Kernels::runs_here`]).
    pub fn right_product_t_with(&self, d: Tensor<2>, loops: Kernels) -> Tensor<2> {
        loops.assert_runs_here();
        let device = d.device();
        let [rows, _] = d.dims();
        let out = if self.m == 0 {
            vec![0.0; rows * IMAGE_PIXELS]
        } else {
            with_host_f32(d, |d| {
                filled_by_blocks(
                    rows * IMAGE_PIXELS,
                    ROWS * IMAGE_PIXELS,
                    |block, out_rows| {
                        let rows_here = out_rows.len() / IMAGE_PIXELS;
                        let d_rows = &d[block * ROWS * self.m..][..rows_here * self.m];
                        with_scratch(self.m * ROWS, |packed| {
                            transpose_into(d_rows, rows_here, self.m, packed);
                            kernels::d_times_xt(loops, packed, self, out_rows, rows_here);
                        });
                    },
                )
            })
        };
        Tensor::from_data(TensorData::new(out, [rows, IMAGE_PIXELS]), &device)
    }
}

/// The compiled variants of the products' loops. The loops are the same Rust; each
/// variant is compiled for one set of vector instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// For any CPU.
    Plain,
    /// AVX2 and FMA (x86-64): a run of [`ROWS`] sums is eight 256-bit registers.
    Avx2,
    /// AVX-512F (x86-64): a run is four 512-bit registers, and two runs are summed side by
    /// side so that eight independent chains of fused multiply-adds keep both of the
    /// CPU's vector units busy (four would wait on each addition's latency).
    Avx512,
}

/// [`Kernels::preferred`]'s choice, as [`Kernels::code`]; 0 until first asked.
static PREFERRED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

impl Kernels {
    /// Every variant, narrowest first.
    pub const ALL: [Kernels; 3] = [Kernels::Plain, Kernels::Avx2, Kernels::Avx512];

    /// The instructions this variant needs, as a person would name them.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Plain => "no vector extension",
            Kernels::Avx2 => "AVX2 and FMA",
            Kernels::Avx512 => "AVX-512F",
        }
    }

    /// Whether this CPU runs the variant.
    pub fn runs_here(self) -> bool {
        match self {
            Kernels::Plain => true,
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 => {
                Kernels::Avx2.runs_here() && std::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Panics, naming what is missing, when this CPU cannot run the variant.
    fn assert_runs_here(self) {
        assert!(
            self.runs_here(),
            "{self:?} loops need a CPU with {}",
            self.name()
        );
    }

    /// The widest variant this CPU runs.
    pub fn widest() -> Self {
        Self::ALL
            .into_iter()
            .rev()
            .find(|k| k.runs_here())
            .unwrap_or(Kernels::Plain)
    }

    /// What [`SparseX::left_product`] and [`SparseX::right_product_t`] run: the widest
    /// variant, unless [`Kernels::prefer`] chose another.
    pub fn preferred() -> Self {
        use std::sync::atomic::Ordering;
        match Self::from_code(PREFERRED.load(Ordering::Relaxed)) {
            Some(k) => k,
            None => {
                let k = Self::widest();
                PREFERRED.store(k.code(), Ordering::Relaxed);
                k
            }
        }
    }

    /// Makes `self` the variant every later product runs (in this process: the bench
    /// compares them this way). A variant this CPU cannot run is refused: `false`.
    pub fn prefer(self) -> bool {
        if self.runs_here() {
            PREFERRED.store(self.code(), std::sync::atomic::Ordering::Relaxed);
        }
        self.runs_here()
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// The nonzeros of `images` (rows of 784 pixels), image by image, and where each
/// image's start (one more entry than images, the first 0).
pub(crate) fn nonzeros_of(images: &[f32]) -> ImageLists {
    let mut by_image = Vec::with_capacity(images.len() / 4);
    let mut start = Vec::with_capacity(images.len() / IMAGE_PIXELS + 1);
    start.push(0);
    for image in images.chunks_exact(IMAGE_PIXELS) {
        kernels::push_nonzeros(image, &mut by_image);
        start.push(by_image.len() as u32);
    }
    (by_image, start)
}

/// A vector of `len` floats made block by block on Rayon's pool, the blocks split by
/// thread ([`crate::pool`]): `fill(b, block)` writes every float of the `b`-th run of
/// `per_block` (the last may be shorter). The vector is not zeroed first: at hidden
/// 384 that pass over `dW1` took 4% of a step.
fn filled_by_blocks(
    len: usize,
    per_block: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    let blocks: Vec<&mut [MaybeUninit<f32>]> = v.spare_capacity_mut()[..len]
        .chunks_mut(per_block)
        .collect();
    crate::pool::for_each_by_thread(blocks, fill);
    // SAFETY: the first `len` floats are written: `fill` writes every float of its
    // block (both products' loops write each of their rows for every image or pixel).
    // Had a `fill` panicked, the length would still be 0.
    unsafe { v.set_len(len) };
    v
}

/// Floats in a 64-byte cache line.
const LINE_FLOATS: usize = 16;

/// `f` on a scratch buffer of at least `len` floats kept by the calling thread (the
/// packed block of a product), so that no step allocates or zeroes one.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| {
        let mut buffer = cell.borrow_mut();
        // Room to start on a 64-byte boundary: a run's vector loads then never straddle
        // two cache lines (a split load costs about two).
        if buffer.len() < len + LINE_FLOATS {
            buffer.resize(len + LINE_FLOATS, 0.0);
        }
        let start = buffer.as_ptr().align_offset(64).min(LINE_FLOATS);
        f(&mut buffer[start..start + len])
    })
}

/// `f` on a tensor's values as `f32` in row-major order: flex's own buffer when the
/// tensor is a contiguous `f32` flex tensor (no copy), else a copy read back.
fn with_host_f32<R>(t: Tensor<2>, f: impl FnOnce(&[f32]) -> R) -> R {
    if let Ok(flex) = t.clone().try_into_primitive::<Flex>()
        && let Some(values) = flex.as_slice::<f32>()
    {
        return f(values);
    }
    let data = t.into_data().convert::<f32>();
    let values = data
        .as_slice::<f32>()
        .unwrap_or_else(|_| unreachable!("converted to f32 just before"));
    f(values)
}

/// `src` `(rows, cols)` (`rows ≤ ROWS`) transposed into `dst` `(cols, ROWS)`, the
/// columns past `rows` zero. In 8×8 tiles.
fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const T: usize = 8;
    let dst = kernels::as_uninit(dst);
    let (full_rows, full_cols) = (rows / T * T, cols / T * T);
    for c0 in (0..full_cols).step_by(T) {
        for r0 in (0..full_rows).step_by(T) {
            kernels::transpose_tile(
                &src[r0 * cols + c0..],
                cols,
                &mut dst[c0 * ROWS + r0..],
                ROWS,
            );
        }
    }
    // The edges, one by one.
    for r in 0..rows {
        let first = if r < full_rows { full_cols } else { 0 };
        for c in first..cols {
            dst[c * ROWS + r].write(src[r * cols + c]);
        }
    }
    if rows < ROWS {
        for c in 0..cols {
            for d in &mut dst[c * ROWS + rows..(c + 1) * ROWS] {
                d.write(0.0);
            }
        }
    }
}

/// The loops, and their variants compiled for AVX2 + FMA and for AVX-512.
mod kernels {
    use std::mem::MaybeUninit;

    use super::{IMAGE_PIXELS, Kernels, PIXEL_RUN, ROWS, SparseX};

    /// Appends `(k, image[k])` to `out` for each nonzero pixel `k` of `image`.
    pub fn push_nonzeros(image: &[f32], out: &mut Vec<(u32, f32)>) {
        #[cfg(target_arch = "x86_64")]
        if Kernels::Avx512.runs_here() {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { push_nonzeros_avx512(image, out) };
        }
        #[cfg(target_arch = "x86_64")]
        if Kernels::Avx2.runs_here() {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { push_nonzeros_avx(image, out) };
        }
        for (k, &value) in image.iter().enumerate() {
            if value != 0.0 {
                out.push((k as u32, value));
            }
        }
    }

    /// `(u32, f32)` laid out as two 4-byte words, index first: what
    /// [`push_nonzeros_avx512`] writes (Rust does not promise a tuple's layout, so it
    /// is checked where the code is built).
    #[cfg(target_arch = "x86_64")]
    const _PAIR_LAYOUT: () = assert!(
        std::mem::size_of::<(u32, f32)>() == 8
            && std::mem::offset_of!((u32, f32), 0) == 0
            && std::mem::offset_of!((u32, f32), 1) == 4
    );

    /// Sixteen pixels compared at a time, without a branch per nonzero: the nonzero
    /// values and their indices are packed to the front of two registers, interleaved
    /// into pairs and stored whole, and the list grows by their count. An augmented
    /// image's ink is spread over a quarter of its pixels in short runs, where
    /// [`push_nonzeros_avx`]'s branch per nonzero mispredicts.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn push_nonzeros_avx512(image: &[f32], out: &mut Vec<(u32, f32)>) {
        use std::arch::x86_64::*;
        // Every pixel could be nonzero; and a store writes 16 pairs wherever it
        // starts, at most 16 pixels before the end.
        out.reserve(image.len() + 16);
        let start = out.len();
        let mut written = 0usize;
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        // Pairs (index j, value j) for j in 0..8, then 8..16: lane 2j of the first
        // register, lane 2j + 16 (16 + j) of the second.
        let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let mut chunks = image.chunks_exact(16);
        for (c, chunk) in chunks.by_ref().enumerate() {
            // SAFETY: `chunk` holds 16 floats.
            let v = unsafe { _mm512_loadu_ps(chunk.as_ptr()) };
            // Unordered counts as nonzero, as `value != 0.0` does for a NaN.
            let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps());
            if nonzero == 0 {
                continue;
            }
            let index = _mm512_add_epi32(lanes, _mm512_set1_epi32((c * 16) as i32));
            let index = _mm512_maskz_compress_epi32(nonzero, index);
            let value = _mm512_castps_si512(_mm512_maskz_compress_ps(nonzero, v));
            // SAFETY: `written` ≤ 16·c, so the 16 pairs stored from it end within the
            // `image.len() + 16` reserved past `start`. The pairs' layout is checked
            // (`_PAIR_LAYOUT`); only the first `written` are kept as the list's.
            unsafe {
                let at = out.as_mut_ptr().add(start + written).cast::<__m512i>();
                _mm512_storeu_si512(at, _mm512_permutex2var_epi32(index, low, value));
                _mm512_storeu_si512(at.add(1), _mm512_permutex2var_epi32(index, high, value));
            }
            written += nonzero.count_ones() as usize;
        }
        // SAFETY: the first `written` pairs past `start` were stored above.
        unsafe { out.set_len(start + written) };
        let done = image.len() - chunks.remainder().len();
        for (j, &value) in chunks.remainder().iter().enumerate() {
            if value != 0.0 {
                out.push(((done + j) as u32, value));
            }
        }
    }

    /// Eight pixels compared at a time: a digit's background comes in long runs of
    /// zeros, which are skipped eight by eight.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn push_nonzeros_avx(image: &[f32], out: &mut Vec<(u32, f32)>) {
        use std::arch::x86_64::*;
        let mut chunks = image.chunks_exact(8);
        for (c, chunk) in chunks.by_ref().enumerate() {
            // SAFETY: `chunk` holds 8 floats.
            let v = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
            let zero = _mm256_cmp_ps::<_CMP_EQ_OQ>(v, _mm256_setzero_ps());
            let mut nonzero = !(_mm256_movemask_ps(zero) as u32) & 0xff;
            while nonzero != 0 {
                let j = nonzero.trailing_zeros() as usize;
                out.push(((c * 8 + j) as u32, chunk[j]));
                nonzero &= nonzero - 1;
            }
        }
        let done = image.len() - chunks.remainder().len();
        for (j, &value) in chunks.remainder().iter().enumerate() {
            if value != 0.0 {
                out.push(((done + j) as u32, value));
            }
        }
    }

    /// `z_rows` `(rows, m)` `= W·X` for a block of `W` given as `packed` `(784, ROWS)`.
    /// The caller checked that the CPU runs `loops`.
    pub fn w_times_x(
        loops: Kernels,
        packed: &[f32],
        x: &SparseX,
        z_rows: &mut [MaybeUninit<f32>],
        rows: usize,
    ) {
        match loops {
            // SAFETY: the caller checked that the CPU has these loops' extensions.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 => unsafe { w_times_x_avx512(packed, x, z_rows, rows) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { w_times_x_avx2(packed, x, z_rows, rows) },
            _ => w_times_x_body::<false, 1>(packed, x, z_rows, rows),
        }
    }

    /// `out_rows` `(rows, 784)` `= D·Xᵀ` for a block of `D` given as `packed` `(m, ROWS)`.
    /// The caller checked that the CPU runs `loops`.
    pub fn d_times_xt(
        loops: Kernels,
        packed: &[f32],
        x: &SparseX,
        out_rows: &mut [MaybeUninit<f32>],
        rows: usize,
    ) {
        match loops {
            // SAFETY: the caller checked that the CPU has these loops' extensions.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 => unsafe { d_times_xt_avx512(packed, x, out_rows, rows) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { d_times_xt_avx2(packed, x, out_rows, rows) },
            _ => d_times_xt_body::<false, 1>(packed, x, out_rows, rows),
        }
    }

    /// `values` as floats that may be overwritten with any float: every `f32` is a valid
    /// `MaybeUninit<f32>`, and the loops that take such slices only ever write floats.
    pub fn as_uninit(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
        // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and nothing written through the
        // view leaves a float uninitialised (the loops write only `f32` values).
        unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
    }

    /// The 8×8 tile at the start of `src` (rows `stride` apart) transposed into `dst`
    /// (rows `dst_stride` apart).
    #[inline(always)]
    pub fn transpose_tile(
        src: &[f32],
        stride: usize,
        dst: &mut [MaybeUninit<f32>],
        dst_stride: usize,
    ) {
        assert!(src.len() >= 7 * stride + 8 && dst.len() >= 7 * dst_stride + 8);
        #[cfg(target_arch = "x86_64")]
        if Kernels::Avx2.runs_here() {
            // SAFETY: the CPU has AVX2 (checked just above), and both slices hold the
            // tile (asserted above).
            return unsafe { transpose_tile_avx(src, stride, dst, dst_stride) };
        }
        for r in 0..8 {
            for c in 0..8 {
                dst[c * dst_stride + r].write(src[r * stride + c]);
            }
        }
    }

    /// The usual three rounds of shuffles: pairs, quads, then 128-bit halves. The caller
    /// checks that rows 0..8 of 8 floats lie within `src` (`stride` apart) and within
    /// `dst` (`dst_stride` apart).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn transpose_tile_avx(
        src: &[f32],
        stride: usize,
        dst: &mut [MaybeUninit<f32>],
        dst_stride: usize,
    ) {
        use std::arch::x86_64::*;
        // SAFETY (whole body): the caller checked that the tile lies within both slices.
        unsafe {
            let p = src.as_ptr();
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(p.add(i * stride)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            let q = dst.as_mut_ptr().cast::<f32>();
            for (c, v) in out.into_iter().enumerate() {
                _mm256_storeu_ps(q.add(c * dst_stride), v);
            }
        }
    }

    // One wrapper per loop and variant: the same body, compiled for the extensions.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn w_times_x_avx2(packed: &[f32], x: &SparseX, z_rows: &mut [MaybeUninit<f32>], rows: usize) {
        w_times_x_body::<true, 1>(packed, x, z_rows, rows);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn d_times_xt_avx2(
        packed: &[f32],
        x: &SparseX,
        out_rows: &mut [MaybeUninit<f32>],
        rows: usize,
    ) {
        d_times_xt_body::<true, 1>(packed, x, out_rows, rows);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn w_times_x_avx512(packed: &[f32], x: &SparseX, z_rows: &mut [MaybeUninit<f32>], rows: usize) {
        w_times_x_body::<true, 2>(packed, x, z_rows, rows);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn d_times_xt_avx512(
        packed: &[f32],
        x: &SparseX,
        out_rows: &mut [MaybeUninit<f32>],
        rows: usize,
    ) {
        d_times_xt_body::<true, 2>(packed, x, out_rows, rows);
    }

    /// `sum += v·run`, fused where the CPU has FMA (a plain `mul_add` without it would
    /// be a library call per element).
    #[inline(always)]
    fn add_scaled<const FMA: bool>(sum: &mut [f32; ROWS], v: f32, run: &[f32; ROWS]) {
        for (s, &r) in sum.iter_mut().zip(run) {
            *s = if FMA { r.mul_add(v, *s) } else { r * v + *s };
        }
    }

    /// Row `index` of a `(_, ROWS)` matrix.
    #[inline(always)]
    fn run_at(packed: &[f32], index: usize) -> &[f32; ROWS] {
        let start = index * ROWS;
        packed[start..start + ROWS]
            .try_into()
            .unwrap_or_else(|_| unreachable!("a run is ROWS floats"))
    }

    /// `Σ v·packed[j]` over the `(j, v)` of `terms`: in `CHAINS` sums of alternate
    /// terms, added at the end (independent chains of additions for wide CPUs).
    #[inline(always)]
    fn sum_of_runs<const FMA: bool, const CHAINS: usize>(
        packed: &[f32],
        terms: &[(u32, f32)],
    ) -> [f32; ROWS] {
        let mut chains = [[0.0f32; ROWS]; CHAINS];
        let mut groups = terms.chunks_exact(CHAINS);
        for group in groups.by_ref() {
            for (chain, &(j, v)) in chains.iter_mut().zip(group) {
                add_scaled::<FMA>(chain, v, run_at(packed, j as usize));
            }
        }
        for &(j, v) in groups.remainder() {
            add_scaled::<FMA>(&mut chains[0], v, run_at(packed, j as usize));
        }
        let mut sum = chains[0];
        for chain in &chains[1..] {
            for (s, &c) in sum.iter_mut().zip(chain) {
                *s += c;
            }
        }
        sum
    }

    #[inline(always)]
    fn w_times_x_body<const FMA: bool, const CHAINS: usize>(
        packed: &[f32],
        x: &SparseX,
        z_rows: &mut [MaybeUninit<f32>],
        rows: usize,
    ) {
        let m = x.m;
        for (i, range) in x.image_start.windows(2).enumerate() {
            let terms = &x.by_image[range[0] as usize..range[1] as usize];
            let sum = sum_of_runs::<FMA, CHAINS>(packed, terms);
            for (r, &s) in sum[..rows].iter().enumerate() {
                z_rows[r * m + i].write(s);
            }
        }
    }

    #[inline(always)]
    fn d_times_xt_body<const FMA: bool, const CHAINS: usize>(
        packed: &[f32],
        x: &SparseX,
        out_rows: &mut [MaybeUninit<f32>],
        rows: usize,
    ) {
        let mut sums = [[0.0f32; ROWS]; PIXEL_RUN];
        for k0 in (0..IMAGE_PIXELS).step_by(PIXEL_RUN) {
            for (dk, sum) in sums.iter_mut().enumerate() {
                let k = k0 + dk;
                let terms = &x.by_pixel[x.pixel_start[k] as usize..x.pixel_start[k + 1] as usize];
                // Summed in registers, then stored once.
                *sum = sum_of_runs::<FMA, CHAINS>(packed, terms);
            }
            // Written out row by row of `dW1`: 8×8 tiles of the sums transposed.
            let tiled = rows / 8 * 8;
            for r0 in (0..tiled).step_by(8) {
                for dk0 in (0..PIXEL_RUN).step_by(8) {
                    let src = &sums.as_flattened()[dk0 * ROWS + r0..];
                    let dst = &mut out_rows[r0 * IMAGE_PIXELS + k0 + dk0..];
                    transpose_tile(src, ROWS, dst, IMAGE_PIXELS);
                }
            }
            for r in tiled..rows {
                let out = &mut out_rows[r * IMAGE_PIXELS + k0..][..PIXEL_RUN];
                for (o, sum) in out.iter_mut().zip(&sums) {
                    o.write(sum[r]);
                }
            }
        }
    }
}

// 784 pixels are a whole number of runs.
const _: () = assert!(IMAGE_PIXELS.is_multiple_of(PIXEL_RUN));
