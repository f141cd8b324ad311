//! Simard's elastic distortion (Simard, Steinkraus & Platt, ICDAR 2003, §2): a random
//! displacement for every pixel,
//!
//! ```text
//! Δx = α·(G_σ ∗ U_x),  Δy = α·(G_σ ∗ U_y),   U ~ uniform(−1, 1) per pixel
//! ```
//!
//! where `G_σ` is a normalised Gaussian of standard deviation `σ`, over noise wide
//! enough that every output pixel's displacement is a full weighted sum.
//!
//! The field is drawn from its law rather than by smoothing noise. On the image, the
//! smoothed noise is `G·U·Gᵀ`, with `G` the 28 × (28 + 2r) matrix of the 1-D kernel's
//! shifts and `U` the noise grid, so each component has the covariance
//! `⅓·(C ⊗ C)` with `C = G·Gᵀ`, 28×28. With `C = Σ λ_k·u_k·u_kᵀ` (largest first) and
//! `B` the matrix of columns `√λ_k·u_k`, the field `α·B·Z·Bᵀ`, `Z` a square matrix of
//! independent draws of mean 0 and variance ⅓, has the covariance `(α²/3)·(BBᵀ ⊗ BBᵀ)`:
//! the smoothed noise's own, less the eigenvalues left out. A Gaussian is smooth, so
//! few are kept ([`FieldBasis`]: 10 of 28 at σ = 4), and a component costs two small
//! products and 4·10² uniform draws where the smoothing took two passes over
//! (28 + 2r)² draws. Each entry of `Z` is a sum of four uniform draws, halved: variance
//! ⅓ and near-normal, as are the sums of hundreds of draws it stands for.

use super::jacobi::symmetric_eigen;
use super::{ImageRng, SourceGrid};
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// The 1-D Gaussian of standard deviation `sigma`, cut at `3σ` (where it holds 99.7% of
/// its weight) and normalised to sum 1; the 2-D kernel is its outer product with itself.
/// (It was cut at 2σ while the field was made by smoothing, where 3σ made the field a
/// third dearer; drawn through [`FieldBasis`] the cut costs nothing.)
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil().max(1.0) as i32;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
}

/// The autocorrelation of `kernel` at `lag`: `Σ_t g(t)·g(t + lag)`. Noise smoothed by
/// the kernel has this covariance between two values `lag` apart along an axis, over
/// the variance of one noise value.
pub fn autocorrelation(kernel: &[f32], lag: usize) -> f64 {
    kernel
        .iter()
        .zip(kernel.iter().skip(lag))
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Lanes of a row: the 28 values of an image row and 4 more, so that a row is two
/// 16-lane vectors on AVX-512 (28 took a 16-, an 8- and a 4-lane operation). The
/// extra lanes hold zeros and are dropped.
const LANES: usize = 32;

/// The part of `C`'s trace (the variance along one axis) that the basis may leave out:
/// in two dimensions about twice that of the field's variance, so the dropped
/// displacement has a standard deviation of 0.45% of the field's (0.006 px at σ = 4,
/// α = 34).
const DROPPED: f64 = 1e-5;

/// The leading scaled eigenvectors `√λ_k·u_k` of the smoothed noise's covariance `C`
/// along one axis (see the module's doc): the columns of `B`.
#[derive(Debug, Clone)]
pub struct FieldBasis {
    columns: Vec<[f32; LANES]>,
}

impl FieldBasis {
    /// The basis for a Gaussian of standard deviation `sigma` ([`gaussian_kernel`]):
    /// as few columns as leave out at most 10⁻⁵ of `C`'s trace.
    pub fn new(sigma: f32) -> Self {
        let kernel = gaussian_kernel(sigma);
        // G's rows are the kernel's shifts, so C_ij is the kernel's autocorrelation at
        // lag |i − j|.
        let n = IMAGE_SIDE;
        let covariance = (0..n * n)
            .map(|i| autocorrelation(&kernel, (i / n).abs_diff(i % n)))
            .collect();
        let eigen = symmetric_eigen(covariance, n);
        let total: f64 = eigen.values.iter().sum();
        let mut rank = 0;
        let mut kept = 0.0;
        while rank < n && total - kept > DROPPED * total {
            kept += eigen.values[rank];
            rank += 1;
        }
        let columns = eigen.values[..rank.max(1)]
            .iter()
            .zip(&eigen.vectors)
            .map(|(&lambda, u)| {
                let mut column = [0.0f32; LANES];
                for (c, &x) in column.iter_mut().zip(u) {
                    *c = (lambda.max(0.0).sqrt() * x) as f32;
                }
                column
            })
            .collect();
        Self { columns }
    }

    /// How many eigenvectors the basis keeps.
    pub fn rank(&self) -> usize {
        self.columns.len()
    }
}

/// The displacement of every pixel (row-major), in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplacementField {
    /// Column displacements `Δx`.
    pub dx: Vec<f32>,
    /// Row displacements `Δy`.
    pub dy: Vec<f32>,
}

impl DisplacementField {
    /// A field drawn from `rng`: smoothed uniform noise, drawn through `basis`
    /// ([`FieldBasis`]), scaled by `alpha`.
    #[inline(always)]
    pub fn draw(rng: &mut ImageRng, alpha: f32, basis: &FieldBasis) -> Self {
        Self {
            dx: component(rng, alpha, basis),
            dy: component(rng, alpha, basis),
        }
    }

    /// Adds the displacement to every source position of `grid`.
    #[inline(always)]
    pub fn add_to(&self, grid: &mut SourceGrid) {
        for (s, d) in grid.x.iter_mut().zip(&self.dx) {
            *s += d;
        }
        for (s, d) in grid.y.iter_mut().zip(&self.dy) {
            *s += d;
        }
    }
}

/// One component, `α·B·Z·Bᵀ` (row-major), with `Z`'s `n²` entries each half the sum of
/// four uniform draws in `(−1, 1)`: variance ⅓, as the noise it stands for.
#[inline(always)]
fn component(rng: &mut ImageRng, alpha: f32, basis: &FieldBasis) -> Vec<f32> {
    let b = &basis.columns;
    let n = b.len();
    let draws = n * n;
    let mut noise = vec![0.0f32; 4 * draws];
    rng.fill_symmetric(&mut noise);
    // Plain loops over arrays, no iterator adaptors: they are inlined into the vector
    // versions of the image's making (`EpochAugmenter::image`), where the adaptors'
    // folds were left as calls compiled for the baseline.
    // Column k of α·B·Z, over the image's rows: Σ_j z_jk·B_j.
    let mut t = [[0.0f32; LANES]; IMAGE_SIDE];
    for (k, tk) in t.iter_mut().enumerate().take(n) {
        let mut column = [0.0f32; LANES];
        for (j, bj) in b.iter().enumerate() {
            let i = j * n + k;
            let z = 0.5
                * alpha
                * (noise[i] + noise[draws + i] + noise[2 * draws + i] + noise[3 * draws + i]);
            column = add_scaled(column, z, bj);
        }
        *tk = column;
    }
    // Row y of α·B·Z·Bᵀ: Σ_k (α·B·Z)_yk·B_k.
    let mut field = vec![0.0f32; IMAGE_PIXELS];
    for (y, out) in field.chunks_exact_mut(IMAGE_SIDE).enumerate() {
        let mut row = [0.0f32; LANES];
        for (tk, bk) in t.iter().zip(b) {
            row = add_scaled(row, tk[y], bk);
        }
        out.copy_from_slice(&row[..IMAGE_SIDE]);
    }
    field
}

/// `sum + w · row`, on rows of fixed size held by value (so that nothing can alias
/// them), which the compiler unrolls and vectorises.
#[inline(always)]
fn add_scaled(mut sum: [f32; LANES], w: f32, row: &[f32; LANES]) -> [f32; LANES] {
    for i in 0..LANES {
        sum[i] += w * row[i];
    }
    sum
}
