//! The affine part of a distortion: where each output pixel reads the source image,
//!
//! ```text
//! s(p) = A·(p − c) + c − t,   A = R(θ) · [[1, k], [0, 1]] · diag(1/z_x, 1/z_y)
//! ```
//!
//! so the content is zoomed by `z`, slanted by `k`, turned by `θ` and moved by `t`.

use super::SourceGrid;
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// The centre of the image, in pixel coordinates (pixel `i` covers `[i − ½, i + ½]`).
const CENTRE: f32 = (IMAGE_SIDE as f32 - 1.0) / 2.0;

/// `s(p) = A·(p − c) + c − t` (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// `A`, row-major.
    pub a: [[f32; 2]; 2],
    /// `t`.
    pub shift: [f32; 2],
}

impl Affine {
    /// The map of a shift `t`, rotation `θ` (radians), zoom `z` (0 read as 1) and shear `k`.
    pub fn new(shift: [f32; 2], rotation: f32, zoom: [f32; 2], shear: f32) -> Self {
        let inverse = |z: f32| if z == 0.0 { 1.0 } else { 1.0 / z };
        let (zx, zy) = (inverse(zoom[0]), inverse(zoom[1]));
        // S·Z = [[1, k], [0, 1]] · diag(1/z_x, 1/z_y)
        let sz = [[zx, shear * zy], [0.0, zy]];
        let (sin, cos) = rotation.sin_cos();
        let r = [[cos, -sin], [sin, cos]];
        let mut a = [[0.0; 2]; 2];
        for (i, row) in a.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = r[i][0] * sz[0][j] + r[i][1] * sz[1][j];
            }
        }
        Self { a, shift }
    }

    /// Where output pixel (`x`, `y`) reads the source.
    pub fn source_of(&self, x: f32, y: f32) -> [f32; 2] {
        let (dx, dy) = (x - CENTRE, y - CENTRE);
        [
            self.a[0][0] * dx + self.a[0][1] * dy + CENTRE - self.shift[0],
            self.a[1][0] * dx + self.a[1][1] * dy + CENTRE - self.shift[1],
        ]
    }

    /// [`Affine::source_of`] for every output pixel.
    #[inline(always)]
    pub fn source_grid(&self) -> SourceGrid {
        let mut grid = SourceGrid {
            x: [0.0; IMAGE_PIXELS],
            y: [0.0; IMAGE_PIXELS],
        };
        for row in 0..IMAGE_SIDE {
            for col in 0..IMAGE_SIDE {
                let [sx, sy] = self.source_of(col as f32, row as f32);
                grid.x[row * IMAGE_SIDE + col] = sx;
                grid.y[row * IMAGE_SIDE + col] = sy;
            }
        }
        grid
    }
}
