//! Bilinear resampling: the output pixel `p` takes the source image's value at the
//! (fractional) position `s(p)`, interpolated between the four pixels around it, with
//! background (0) outside the image.

#[cfg(doc)]
use crate::data::pixel_value;
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// For every output pixel (row-major), the position in the source image it reads:
/// column `x`, row `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceGrid {
    /// Source columns.
    pub x: [f32; IMAGE_PIXELS],
    /// Source rows.
    pub y: [f32; IMAGE_PIXELS],
}

/// Background pixels around the source image on every side: positions are clamped to
/// `[−2, 28.99]`, where the four pixels around any of them are inside the padded image
/// and those beyond `[−1, 28)` are all background, so that the loop has no branch.
const BORDER: usize = 2;
/// Side of the padded source image.
const PADDED: usize = IMAGE_SIDE + 2 * BORDER;
/// The clamp's ends (see [`BORDER`]).
const LOWEST: f32 = -(BORDER as f32);
const HIGHEST: f32 = IMAGE_SIDE as f32 + 0.99;

/// `image` (784 bytes) read at `grid`'s positions, as values in `[0, 1]`: each output
/// is a convex combination of at most four source pixels (and background), so it stays
/// in `[0, 1]`; at whole-pixel positions it is exactly the source pixel
/// ([`pixel_value`]).
///
/// The source stays in bytes, and each pair of neighbours in a row (`p00`, `p01`) is
/// read as one 32-bit word from its first byte: two reads an output pixel rather than
/// four, which the compiler makes into gathers. On a 2-core Zen 5 the reads were about
/// 60% of an image's making as four gathers of floats.
#[inline(always)]
pub fn bilinear(image: &[u8], grid: &SourceGrid) -> [f32; IMAGE_PIXELS] {
    // Three bytes past the last row, so that a word read from its last pixel stays
    // inside (its upper bytes are never used).
    let mut source = [0u8; PADDED * PADDED + 3];
    for (row, bytes) in source
        .chunks_exact_mut(PADDED)
        .skip(BORDER)
        .zip(image.chunks_exact(IMAGE_SIDE))
    {
        row[BORDER..BORDER + IMAGE_SIDE].copy_from_slice(bytes);
    }
    let mut out = [0.0f32; IMAGE_PIXELS];
    for ((o, &sx), &sy) in out.iter_mut().zip(&grid.x).zip(&grid.y) {
        // `max` then `min` rather than `clamp`: a NaN position becomes −2 (background)
        // instead of staying NaN, which the unchecked conversions below must not see.
        #[allow(clippy::manual_clamp)]
        let (sx, sy) = (sx.max(LOWEST).min(HIGHEST), sy.max(LOWEST).min(HIGHEST));
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        // The index as an `i32`, sign-extended: the reads become gathers with 32-bit
        // indices, 16 to an instruction, where `usize` ones took two of 8.
        // SAFETY: x0 and y0 are whole numbers in [−2, 28] (finite: NaN was mapped to
        // −2 above), so shifted by 2 they convert exactly to integers in [0, 30]; then
        // `at` is at most 30·32 + 30 past the start, and the bottom word's last byte
        // `at + PADDED + 3` at most 1025, inside `source`'s 1027 bytes. Unchecked
        // conversions and reads are single vector instructions.
        let (top, bottom) = unsafe {
            let col = (x0 - LOWEST).to_int_unchecked::<i32>();
            let row = (y0 - LOWEST).to_int_unchecked::<i32>();
            let at = source.as_ptr().offset((row * PADDED as i32 + col) as isize);
            (
                at.cast::<u32>().read_unaligned(),
                at.add(PADDED).cast::<u32>().read_unaligned(),
            )
        };
        let (p00, p01) = ((top & 0xFF) as f32, ((top >> 8) & 0xFF) as f32);
        let (p10, p11) = ((bottom & 0xFF) as f32, ((bottom >> 8) & 0xFF) as f32);
        // On the bytes' scale (0–255), divided by 255 last: at a whole-pixel position
        // the sum is the byte itself, and the division is `pixel_value`'s.
        let top = p00 + fx * (p01 - p00);
        let bottom = p10 + fx * (p11 - p10);
        *o = ((top + fy * (bottom - top)) / 255.0).clamp(0.0, 1.0);
    }
    out
}
