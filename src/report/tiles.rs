//! The report's bitmaps: the first layer's weights as 28×28 tiles, and single digits
//! enlarged for the gallery of mistakes.

use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage, imageops};

use crate::error::{Error, Result};
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

fn save_error(path: &Path, e: image::ImageError) -> Error {
    Error::Figure {
        path: path.to_path_buf(),
        action: "write PNG",
        reason: e.to_string(),
    }
}

/// Each hidden unit's 784 input weights (a row of `W1`) as one 28×28 tile, in a grid,
/// on a diverging scale: blue negative, white zero, red positive, each tile scaled by
/// its own largest |weight| so that every unit's pattern shows. Tiles are enlarged by
/// `zoom`, with a 2-pixel grey gap.
pub fn weight_tiles(path: &Path, w1: &[f32], hidden: usize, zoom: u32) -> Result<()> {
    let img = weight_tiles_image(w1, hidden, zoom)?;
    img.save(path).map_err(|e| save_error(path, e))
}

/// [`weight_tiles`] as an image in memory.
pub fn weight_tiles_image(w1: &[f32], hidden: usize, zoom: u32) -> Result<RgbImage> {
    if w1.len() != hidden * IMAGE_PIXELS {
        return Err(Error::Shape {
            what: "W1",
            expected: format!("{hidden}·784 = {} values", hidden * IMAGE_PIXELS),
            found: format!("{} values", w1.len()),
        });
    }
    let cols = (hidden as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (hidden as u32).div_ceil(cols).max(1);
    let side = IMAGE_SIDE as u32 * zoom;
    let gap = 2;
    let mut img = RgbImage::from_pixel(
        cols * (side + gap) + gap,
        rows * (side + gap) + gap,
        Rgb([160, 160, 160]),
    );
    for (unit, weights) in w1.chunks_exact(IMAGE_PIXELS).take(hidden).enumerate() {
        let scale = weights
            .iter()
            .fold(0.0f32, |m, w| m.max(w.abs()))
            .max(1e-12);
        let (gx, gy) = (unit as u32 % cols, unit as u32 / cols);
        let (ox, oy) = (gap + gx * (side + gap), gap + gy * (side + gap));
        for (i, &w) in weights.iter().enumerate() {
            let v = (w / scale).clamp(-1.0, 1.0);
            let fade = (255.0 * (1.0 - v.abs())) as u8;
            let colour = if v >= 0.0 {
                Rgb([255, fade, fade])
            } else {
                Rgb([fade, fade, 255])
            };
            let (x, y) = ((i % IMAGE_SIDE) as u32, (i / IMAGE_SIDE) as u32);
            for dy in 0..zoom {
                for dx in 0..zoom {
                    img.put_pixel(ox + x * zoom + dx, oy + y * zoom + dy, colour);
                }
            }
        }
    }
    Ok(img)
}

/// One 28×28 image (values in `[0, 1]`, ink bright) as dark ink on white, enlarged by
/// `zoom` with nearest-neighbour pixels.
pub fn digit_png(path: &Path, pixels: &[f32], zoom: u32) -> Result<()> {
    if pixels.len() != IMAGE_PIXELS {
        return Err(Error::Shape {
            what: "a digit's pixels",
            expected: format!("{IMAGE_PIXELS} values"),
            found: format!("{} values", pixels.len()),
        });
    }
    let side = IMAGE_SIDE as u32;
    let img = GrayImage::from_fn(side, side, |x, y| {
        let v = pixels[(y * side + x) as usize].clamp(0.0, 1.0);
        Luma([(255.0 * (1.0 - v)) as u8])
    });
    let big = imageops::resize(
        &img,
        side * zoom,
        side * zoom,
        imageops::FilterType::Nearest,
    );
    big.save(path).map_err(|e| save_error(path, e))
}

/// Images (values in `[0, 1]`, ink bright) in a grid, one row per slice of `rows`, as
/// dark ink on white enlarged by `zoom`, with a 2-pixel grey gap; the first column is
/// set apart by a wider gap (the originals, beside what was made of them).
pub fn digit_grid(path: &Path, rows: &[Vec<[f32; IMAGE_PIXELS]>], zoom: u32) -> Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let side = IMAGE_SIDE as u32 * zoom;
    let (gap, apart) = (2, 8);
    let width = cols * (side + gap) + gap + apart;
    let height = rows.len() as u32 * (side + gap) + gap;
    let mut img = GrayImage::from_pixel(width.max(1), height.max(1), Luma([160]));
    for (r, row) in rows.iter().enumerate() {
        for (c, pixels) in row.iter().enumerate() {
            let ox = gap + c as u32 * (side + gap) + if c > 0 { apart } else { 0 };
            let oy = gap + r as u32 * (side + gap);
            for (i, &v) in pixels.iter().enumerate() {
                let shade = Luma([(255.0 * (1.0 - v.clamp(0.0, 1.0))) as u8]);
                let (x, y) = ((i % IMAGE_SIDE) as u32, (i / IMAGE_SIDE) as u32);
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        img.put_pixel(ox + x * zoom + dx, oy + y * zoom + dy, shade);
                    }
                }
            }
        }
    }
    img.save(path).map_err(|e| save_error(path, e))
}
