//! Simard's elastic distortion (Simard, Steinkraus & Platt, ICDAR 2003, §2): a random
//! displacement for every pixel,
//!
//! ```text
//! Δx = α·(G_σ ∗ U_x),  Δy = α·(G_σ ∗ U_y),   U ~ uniform(−1, 1) per pixel
//! ```
//!
//! where `G_σ` is a normalised Gaussian of standard deviation `σ`. Each component has
//! mean 0 and standard deviation `α·‖G_σ‖₂/√3` (a sum of independent uniforms of
//! variance ⅓), the same at every pixel.
//!
//! The field of one image is a 28×28 window of an epoch's [`ElasticSheet`]: two
//! smoothed noise fields of [`SHEET_SIDE`]² pixels, drawn once an epoch, each pixel of
//! them a full weighted sum of the noise around it. Every window of such a field is
//! distributed exactly as a field drawn for the image alone (each of its values is the
//! same weighted sum of independent uniforms), at a fraction of the cost: smoothing a
//! 28×28 field of its own took 2.6 of the 4.3 µs that an image with every distortion
//! cost on a 2-core Zen 5. Windows at random places make the fields of different images
//! overlap now and then; within a batch of 128 they cover about a twentieth of the
//! sheet, and the sheet is new every epoch.

use rayon::prelude::*;

use super::{ImageRng, SourceGrid, image_rng};
use crate::prefetch::prefetch;
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// Side of an epoch's [`ElasticSheet`], in pixels: 485² places for a 28×28 window, and
/// the two fields 2 MiB together, within a core's second-level cache.
pub const SHEET_SIDE: usize = 256;

/// Places for a window along each side of the sheet.
const PLACES: u64 = (SHEET_SIDE - IMAGE_SIDE + 1) as u64;

/// Mixed into the run's seed for the sheet's noise, so that its rows' generators are
/// not those of any image.
const SHEET_STREAM: u64 = 0x5EE7_0F_E1A5_71C5;

/// The 1-D Gaussian of standard deviation `sigma`, cut at `2σ` (where it holds 95% of
/// its weight) and normalised to sum 1; the 2-D kernel is its outer product with itself.
/// Cutting at 3σ instead made the field a third dearer (an epoch of hidden 800 with
/// every distortion on went from +16% to +30% against a plain one) for the last 4%.
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let radius = (2.0 * sigma).ceil().max(1.0) as i32;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
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
    /// The window of `sheet` at `place` (see [`ElasticSheet::place`]).
    pub fn window(sheet: &ElasticSheet, place: WindowPlace) -> Self {
        let mut grid = SourceGrid {
            x: [0.0; IMAGE_PIXELS],
            y: [0.0; IMAGE_PIXELS],
        };
        sheet.add_window(place, &mut grid);
        Self {
            dx: grid.x.to_vec(),
            dy: grid.y.to_vec(),
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

/// Where an image's field lies in the sheet: the top-left corner (column, row) of its
/// `Δx` window and of its `Δy` window, drawn apart so that the two stay independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlace {
    /// Corner of the `Δx` window in the sheet's `Δx` field.
    pub x: [usize; 2],
    /// Corner of the `Δy` window in the sheet's `Δy` field.
    pub y: [usize; 2],
}

/// An epoch's two displacement fields, `Δx` and `Δy`, each [`SHEET_SIDE`]² pixels
/// (row-major) of uniform noise smoothed by the Gaussian and scaled by `α`; an image's
/// field is a window of it (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ElasticSheet {
    dx: Vec<f32>,
    dy: Vec<f32>,
}

impl ElasticSheet {
    /// The sheet of `epoch` in a run seeded with `seed`, for `alpha` and `kernel` (from
    /// [`gaussian_kernel`]): the same numbers always give the same sheet. Its rows are
    /// drawn and smoothed in parallel on the current Rayon pool (about half a
    /// millisecond on two cores).
    pub fn draw(seed: u64, epoch: usize, alpha: f32, kernel: &[f32]) -> Self {
        Self {
            dx: smoothed_sheet(seed, epoch, 0, alpha, kernel),
            dy: smoothed_sheet(seed, epoch, 1, alpha, kernel),
        }
    }

    /// A place for an image's windows, drawn from the image's generator: each corner
    /// uniform over the sheet's 485 columns and rows where a window fits.
    #[inline(always)]
    pub fn place(rng: &mut ImageRng) -> WindowPlace {
        let mut corner = || {
            let bits = rng.next_u64();
            // Two 32-bit halves, each mapped to 0..PLACES by a multiply (Lemire): a
            // bias of 485/2³² at most.
            let at = |half: u64| ((half & 0xFFFF_FFFF) * PLACES >> 32) as usize;
            [at(bits), at(bits >> 32)]
        };
        WindowPlace {
            x: corner(),
            y: corner(),
        }
    }

    /// Asks the CPU to bring the windows at `place` into its first-level cache (a hint,
    /// no effect on the results): they lie anywhere in the 2 MiB sheet.
    #[inline(always)]
    pub fn prefetch_window(&self, place: WindowPlace) {
        for (field, [col, row]) in [(&self.dx, place.x), (&self.dy, place.y)] {
            for r in row..row + IMAGE_SIDE {
                let at = r * SHEET_SIDE + col;
                prefetch(&field[at..at + IMAGE_SIDE]);
            }
        }
    }

    /// Adds the displacement windows at `place` to every source position of `grid`.
    ///
    /// # Panics
    /// If a corner is past the last place where a window fits.
    #[inline(always)]
    pub fn add_window(&self, place: WindowPlace, grid: &mut SourceGrid) {
        add_rows(&self.dx, place.x, &mut grid.x);
        add_rows(&self.dy, place.y, &mut grid.y);
    }
}

/// `out`'s 28 rows plus the 28×28 window of `field` (a sheet's) at `corner`.
#[inline(always)]
fn add_rows(field: &[f32], [col, row]: [usize; 2], out: &mut [f32; IMAGE_PIXELS]) {
    let rows = field[row * SHEET_SIDE..].chunks(SHEET_SIDE);
    for (dst, src) in out.chunks_exact_mut(IMAGE_SIDE).zip(rows) {
        let src: &[f32; IMAGE_SIDE] = src[col..]
            .first_chunk()
            .expect("a window's corner leaves 28 columns of the sheet");
        for (d, s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}

/// Rows of the sheet drawn and smoothed per task on Rayon's pool.
const SHEET_ROWS_PER_TASK: usize = 32;

/// One component of a sheet: noise on a `(S + 2r)²` grid (`S` the sheet's side, `r`
/// the kernel's radius), each row from its own generator, smoothed along rows then
/// columns by the separable kernel, the inner `S²` kept, times `alpha`.
fn smoothed_sheet(
    seed: u64,
    epoch: usize,
    component: usize,
    alpha: f32,
    kernel: &[f32],
) -> Vec<f32> {
    let taps = kernel.len();
    let wide = SHEET_SIDE + taps - 1;
    // Along rows: each of the `wide` noise rows gives `S` sums.
    let mut rows = vec![0.0f32; wide * SHEET_SIDE];
    rows.par_chunks_mut(SHEET_ROWS_PER_TASK * SHEET_SIDE)
        .enumerate()
        .for_each(|(task, out)| {
            let mut noise = vec![0.0f32; wide];
            for (i, out) in out.chunks_exact_mut(SHEET_SIDE).enumerate() {
                let row = task * SHEET_ROWS_PER_TASK + i;
                let stream = (component * wide + row) as usize;
                image_rng(seed ^ SHEET_STREAM, epoch, stream).fill_symmetric(&mut noise);
                smooth_row(&noise, kernel, out);
            }
        });
    // Along columns: output row `y` sums rows `y..y + taps` of the row-smoothed grid.
    let mut field = vec![0.0f32; SHEET_SIDE * SHEET_SIDE];
    field
        .par_chunks_mut(SHEET_ROWS_PER_TASK * SHEET_SIDE)
        .enumerate()
        .for_each(|(task, out)| {
            for (i, out) in out.chunks_exact_mut(SHEET_SIDE).enumerate() {
                let y = task * SHEET_ROWS_PER_TASK + i;
                for (&w, src) in kernel.iter().zip(rows[y * SHEET_SIDE..].chunks(SHEET_SIDE)) {
                    for (o, s) in out.iter_mut().zip(src) {
                        *o += w * s;
                    }
                }
                for o in out.iter_mut() {
                    *o *= alpha;
                }
            }
        });
    field
}

/// `out[j] = Σ_k kernel[k]·noise[j + k]`: one noise row smoothed.
fn smooth_row(noise: &[f32], kernel: &[f32], out: &mut [f32]) {
    for (k, &w) in kernel.iter().enumerate() {
        for (o, n) in out.iter_mut().zip(&noise[k..]) {
            *o += w * n;
        }
    }
}
