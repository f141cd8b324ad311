//! Turning any picture of a digit into what the network was trained on, the way MNIST
//! itself was made: ink as bright pixels on black, the digit scaled so that its longer
//! side is 20 pixels (keeping its aspect ratio, grey levels from anti-aliasing), and
//! pasted into a 28×28 field so that its centre of mass is the field's centre.
//!
//! [`preprocess`] is the one function that does this; `predict` and the web page both
//! call it. Other IDX sets were made otherwise: Fashion-MNIST's pictures were trimmed,
//! their longer side scaled to 28 pixels and the shorter one padded to 28 around the
//! middle (Xiao, Rasul & Vollgraf 2017, §2). [`preprocess_as`] with [`Framing::Fit`]
//! does that, and `predict` picks it for any set but MNIST.

use std::path::Path;

use crate::error::{Error, Result};
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// Side of the box the digit is scaled into.
pub const DIGIT_BOX: usize = 20;

/// Ink below this fraction of the brightest ink does not count for the bounding box:
/// paper texture and JPEG noise (a few grey levels in 255) stay below it, while the
/// anti-aliased fringe of the strokes, which MNIST's own boxes include, mostly does not.
const INK_THRESHOLD: f32 = 0.05;

/// A grayscale picture: `width × height` values in `[0, 1]`, row-major, 0 = black.
#[derive(Debug, Clone, PartialEq)]
pub struct Gray {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Row-major brightness in `[0, 1]`.
    pub pixels: Vec<f32>,
}

impl Gray {
    /// Reads a PNG, JPEG or PGM/PBM/PPM file and converts it to grayscale.
    pub fn open(path: &Path) -> Result<Gray> {
        let reader = image::ImageReader::open(path)
            .map_err(|e| Error::io(path, e))?
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))?;
        decode(reader, image::Limits::default()).map_err(|message| Error::Image {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Decodes a PNG, JPEG or PGM/PBM/PPM image held in memory (e.g. a request body) and
    /// converts it to grayscale, refusing images wider or taller than `max_side` pixels
    /// before decoding their pixels.
    pub fn decode(bytes: &[u8], max_side: u32) -> std::result::Result<Gray, PreprocessError> {
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| PreprocessError::Decode(e.to_string()))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(max_side);
        limits.max_image_height = Some(max_side);
        decode(reader, limits).map_err(PreprocessError::Decode)
    }
}

/// The grayscale pixels of the image `reader` holds, or what is wrong with it.
fn decode<R: std::io::BufRead + std::io::Seek>(
    mut reader: image::ImageReader<R>,
    limits: image::Limits,
) -> std::result::Result<Gray, String> {
    if reader.format().is_none() {
        return Err("not a PNG, JPEG or PGM/PPM/PBM image (unrecognised content)".into());
    }
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| format!("cannot decode: {e}"))?;
    let luma = picture.to_luma32f();
    let (width, height) = (luma.width() as usize, luma.height() as usize);
    if width == 0 || height == 0 {
        return Err("the image has no pixels".into());
    }
    Ok(Gray {
        width,
        height,
        pixels: luma
            .into_raw()
            .into_iter()
            .map(|v| v.clamp(0.0, 1.0))
            .collect(),
    })
}

/// Why a picture could not be turned into a network input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    /// The pixel buffer does not match the stated size.
    #[error("{found} pixel values for a {width}×{height} image (expected {expected})")]
    Size {
        /// Pixels per row.
        width: usize,
        /// Rows.
        height: usize,
        /// `width × height`.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// Nothing stands out from the background.
    #[error("the image is blank: no ink stands out from the background")]
    Blank,
    /// The bytes are not an image this program reads, or are too large.
    #[error("{0}")]
    Decode(String),
}

/// How a cropped picture is placed in the 28×28 field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// MNIST's digits: the longer side scaled to 20 pixels, the centre of mass at the
    /// field's centre.
    Digit,
    /// Fashion-MNIST's way: the longer side scaled to 28 pixels, the picture in the
    /// middle of the field.
    Fit,
}

impl Framing {
    /// The framing a data set (as `data.dataset` names it) was made with.
    pub fn for_dataset(dataset: &str) -> Self {
        if crate::data::classes::is_digits(dataset) {
            Framing::Digit
        } else {
            Framing::Fit
        }
    }

    /// What it does, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Framing::Digit => "cropped, longer side 20 px, centre of mass at the centre",
            Framing::Fit => "cropped, longer side 28 px, centred",
        }
    }
}

/// The 784 network inputs (row-major 28×28, ink = 1, background = 0) for a picture of
/// one digit, dark-on-light or light-on-dark, of any size.
pub fn preprocess(picture: &Gray) -> std::result::Result<[f32; IMAGE_PIXELS], PreprocessError> {
    preprocess_as(picture, Framing::Digit)
}

/// [`preprocess`] with the given framing: the same cropping and polarity, then the
/// picture scaled and placed as `framing` says.
pub fn preprocess_as(
    picture: &Gray,
    framing: Framing,
) -> std::result::Result<[f32; IMAGE_PIXELS], PreprocessError> {
    let expected = picture.width * picture.height;
    if picture.pixels.len() != expected || expected == 0 {
        return Err(PreprocessError::Size {
            width: picture.width,
            height: picture.height,
            expected,
            found: picture.pixels.len(),
        });
    }
    let ink = ink(picture);
    let (x0, y0, x1, y1) = bounding_box(&ink, picture.width).ok_or(PreprocessError::Blank)?;
    let (w, h) = (x1 - x0, y1 - y0);
    let cropped: Vec<f32> = (y0..y1)
        .flat_map(|y| ink[y * picture.width + x0..y * picture.width + x1].to_vec())
        .collect();
    // Longer side to the box (20 px for a digit, 28 to fit), keeping the aspect ratio.
    let side = match framing {
        Framing::Digit => DIGIT_BOX,
        Framing::Fit => IMAGE_SIDE,
    };
    let scale = side as f64 / w.max(h) as f64;
    let new_w = ((w as f64 * scale).round() as usize).clamp(1, side);
    let new_h = ((h as f64 * scale).round() as usize).clamp(1, side);
    let resized = resize_area(&cropped, w, h, new_w, new_h);
    Ok(match framing {
        Framing::Digit => paste_centred_by_mass(&resized, new_w, new_h),
        Framing::Fit => paste_in_the_middle(&resized, new_w, new_h),
    })
}

/// Places a `w × h` picture (at most 28 a side) in the middle of the 28×28 field.
fn paste_in_the_middle(picture: &[f32], w: usize, h: usize) -> [f32; IMAGE_PIXELS] {
    let (dx, dy) = (
        (IMAGE_SIDE - w.min(IMAGE_SIDE)) / 2,
        (IMAGE_SIDE - h.min(IMAGE_SIDE)) / 2,
    );
    let mut out = [0.0f32; IMAGE_PIXELS];
    for (i, &v) in picture.iter().enumerate() {
        let (x, y) = (i % w + dx, i / w + dy);
        if x < IMAGE_SIDE && y < IMAGE_SIDE {
            out[y * IMAGE_SIDE + x] = v;
        }
    }
    out
}

/// Ink intensity in `[0, 1]`: inverted when the border (the background) is light, then
/// stretched so the background is 0 and the brightest ink is 1.
fn ink(picture: &Gray) -> Vec<f32> {
    let (w, h) = (picture.width, picture.height);
    let p = &picture.pixels;
    let border: Vec<f32> = (0..w)
        .flat_map(|x| [p[x], p[(h - 1) * w + x]])
        .chain((0..h).flat_map(|y| [p[y * w], p[y * w + w - 1]]))
        .collect();
    let light_background = median(border.clone()) > 0.5;
    let ink: Vec<f32> = if light_background {
        p.iter().map(|v| 1.0 - v).collect()
    } else {
        p.clone()
    };
    let background = median(if light_background {
        border.iter().map(|v| 1.0 - v).collect()
    } else {
        border
    });
    let peak = ink.iter().copied().fold(0.0f32, f32::max);
    if peak - background <= f32::EPSILON {
        return vec![0.0; ink.len()];
    }
    ink.iter()
        .map(|v| ((v - background) / (peak - background)).clamp(0.0, 1.0))
        .collect()
}

fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

/// The half-open box `(x0, y0, x1, y1)` around the pixels with ink above the threshold.
fn bounding_box(ink: &[f32], width: usize) -> Option<(usize, usize, usize, usize)> {
    let mut bbox: Option<(usize, usize, usize, usize)> = None;
    for (i, _) in ink.iter().enumerate().filter(|(_, v)| **v > INK_THRESHOLD) {
        let (x, y) = (i % width, i / width);
        bbox = Some(match bbox {
            None => (x, y, x + 1, y + 1),
            Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)),
        });
    }
    bbox
}

/// Resamples a `w × h` image to `new_w × new_h` by area averaging: each output pixel is
/// the mean of the input area it covers (fractional pixels weighted by their overlap).
fn resize_area(src: &[f32], w: usize, h: usize, new_w: usize, new_h: usize) -> Vec<f32> {
    let (sx, sy) = (w as f64 / new_w as f64, h as f64 / new_h as f64);
    let mut out = vec![0.0f32; new_w * new_h];
    for oy in 0..new_h {
        let (ya, yb) = (oy as f64 * sy, (oy + 1) as f64 * sy);
        for ox in 0..new_w {
            let (xa, xb) = (ox as f64 * sx, (ox + 1) as f64 * sx);
            let mut sum = 0.0f64;
            for y in ya.floor() as usize..(yb.ceil() as usize).min(h) {
                let wy = (yb.min(y as f64 + 1.0) - ya.max(y as f64)).max(0.0);
                for x in xa.floor() as usize..(xb.ceil() as usize).min(w) {
                    let wx = (xb.min(x as f64 + 1.0) - xa.max(x as f64)).max(0.0);
                    sum += wx * wy * f64::from(src[y * w + x]);
                }
            }
            out[oy * new_w + ox] = (sum / (sx * sy)) as f32;
        }
    }
    out
}

/// Places a `w × h` digit in the 28×28 field with its centre of mass at pixel index
/// (14, 14), shifted by whole pixels. That is where MNIST's digits have it: over the
/// 10,000 test images the mean centre of mass is (14.01, 13.99) in index coordinates.
fn paste_centred_by_mass(digit: &[f32], w: usize, h: usize) -> [f32; IMAGE_PIXELS] {
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in digit.iter().enumerate() {
        let v = f64::from(v);
        mass += v;
        mx += v * (i % w) as f64;
        my += v * (i / w) as f64;
    }
    let centre = IMAGE_SIDE as f64 / 2.0;
    let (cx, cy) = if mass > 0.0 {
        (mx / mass, my / mass)
    } else {
        ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0)
    };
    let dx = (centre - cx).round() as i64;
    let dy = (centre - cy).round() as i64;
    let mut out = [0.0f32; IMAGE_PIXELS];
    for (i, &v) in digit.iter().enumerate() {
        let x = (i % w) as i64 + dx;
        let y = (i / w) as i64 + dy;
        if (0..IMAGE_SIDE as i64).contains(&x) && (0..IMAGE_SIDE as i64).contains(&y) {
            out[y as usize * IMAGE_SIDE + x as usize] = v;
        }
    }
    out
}

/// The centre of mass `(x, y)` of a 28×28 image in pixel-index coordinates.
pub fn centre_of_mass(image: &[f32; IMAGE_PIXELS]) -> Option<(f64, f64)> {
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in image.iter().enumerate() {
        let v = f64::from(v);
        mass += v;
        mx += v * (i % IMAGE_SIDE) as f64;
        my += v * (i / IMAGE_SIDE) as f64;
    }
    (mass > 0.0).then(|| (mx / mass, my / mass))
}
