//! Turning any picture of a digit into what the network was trained on, the way MNIST
//! itself was made: ink as bright pixels on black, the digit scaled so that its longer
//! side is 20 pixels (keeping its aspect ratio, grey levels from anti-aliasing), and
//! pasted into a 28×28 field so that its centre of mass is the field's centre.
//!
//! A photograph is not a scan: its paper is lit unevenly and grainy. The paper under
//! the ink is taken as a plane fitted to the picture's edges with a bowl for darker
//! corners, values within the border's grain count as paper, and specks of ink far
//! smaller than the digit's strokes stay out of its box.
//!
//! [`preprocess`] is the one function that does this; `predict` and the web page both
//! call it. Other IDX sets were made otherwise: Fashion-MNIST's pictures were trimmed,
//! their longer side scaled to 28 pixels and the shorter one padded to 28 around the
//! middle (Xiao, Rasul & Vollgraf 2017, §2). [`preprocess_as`] with [`Framing::Fit`]
//! does that, and `predict` picks it for any set but MNIST.

use std::path::Path;

use image::ImageDecoder;

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

/// Widest and tallest image file `predict` reads, in pixels: a 108-megapixel phone
/// photograph (12,000 × 9,000) fits. Decoding and preprocessing take about 12 bytes
/// a pixel, so a 30,000 × 30,000 PNG of blank paper (under 1 MB) once took 10.5 GB.
pub const MAX_FILE_SIDE: u32 = 12_000;

impl Gray {
    /// Reads a PNG, JPEG or PGM/PBM/PPM file and converts it to grayscale, refusing
    /// images wider or taller than [`MAX_FILE_SIDE`] before decoding their pixels.
    pub fn open(path: &Path) -> Result<Gray> {
        let reader = image::ImageReader::open(path)
            .map_err(|e| Error::io(path, e))?
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))?;
        decode(reader, MAX_FILE_SIDE).map_err(|message| Error::Image {
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
        decode(reader, max_side).map_err(PreprocessError::Decode)
    }
}

/// The grayscale pixels of the image `reader` holds, or what is wrong with it; an
/// image wider or taller than `max_side` is refused from its header, before its pixels
/// are allocated.
fn decode<R: std::io::BufRead + std::io::Seek>(
    reader: image::ImageReader<R>,
    max_side: u32,
) -> std::result::Result<Gray, String> {
    if reader.format().is_none() {
        return Err("not a PNG, JPEG or PGM/PPM/PBM image (unrecognised content)".into());
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot decode: {e}"))?;
    let (width, height) = decoder.dimensions();
    if width > max_side || height > max_side {
        return Err(format!(
            "the image is {width}×{height} pixels; at most {max_side} on a side"
        ));
    }
    // A phone stores a photograph as its sensor saw it and says in the Exif data how to
    // turn it upright; a digit read sideways would be another digit, or none.
    let upright = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture =
        image::DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode: {e}"))?;
    picture.apply_orientation(upright);
    let (width, height) = (picture.width() as usize, picture.height() as usize);
    if width == 0 || height == 0 {
        return Err("the image has no pixels".into());
    }
    let pixels = if picture.color().has_alpha() {
        flatten(&picture.to_luma_alpha32f().into_raw())
    } else {
        picture.to_luma32f().into_raw()
    };
    Ok(Gray {
        width,
        height,
        pixels: pixels.into_iter().map(|v| v.clamp(0.0, 1.0)).collect(),
    })
}

/// The brightness of a picture with transparency (`(luma, alpha)` pairs), laid over a
/// background that contrasts with what is drawn: a digit drawn on a transparent canvas
/// keeps its strokes' colour only, the same black or white everywhere, so without it
/// the picture is blank. The background is white under dark strokes and black under
/// light ones, judged by the opaque pixels' mean brightness; an opaque picture is
/// unchanged.
fn flatten(luma_alpha: &[f32]) -> Vec<f32> {
    let pairs = luma_alpha.chunks_exact(2);
    let (ink, opacity) = pairs.clone().fold((0.0f64, 0.0f64), |(i, o), p| {
        (i + f64::from(p[0] * p[1]), o + f64::from(p[1]))
    });
    let background = if opacity > 0.0 && ink / opacity > 0.5 {
        0.0
    } else {
        1.0
    };
    pairs
        .map(|p| p[1] * p[0] + (1.0 - p[1]) * background)
        .collect()
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
/// the paper subtracted and the rest stretched so that the brightest ink is 1.
///
/// The paper is a plane fitted to the border ([`Paper::fit`]), so a photograph
/// lit from one side loses its gradient along with the paper, and its grain: values
/// within [`NOISE_SIGMAS`] of the paper's own spread are taken as paper too. A clean
/// picture's border is flat and still, and then this is the plain stretch from the
/// border's level to the brightest ink.
fn ink(picture: &Gray) -> Vec<f32> {
    let (w, h) = (picture.width, picture.height);
    let border = border_indices(w, h);
    let p = &picture.pixels;
    let light_background = median(border.iter().map(|&i| p[i]).collect()) > 0.5;
    let ink: Vec<f32> = if light_background {
        p.iter().map(|v| 1.0 - v).collect()
    } else {
        p.clone()
    };
    let paper = Paper::fit(&ink, w, h, &border);
    let residual: Vec<f32> = ink
        .iter()
        .enumerate()
        .map(|(i, v)| v - paper.level(i % w, i / w))
        .collect();
    let floor = NOISE_SIGMAS * paper.spread;
    let peak = residual.iter().copied().fold(0.0f32, f32::max);
    if peak - floor <= f32::EPSILON {
        return vec![0.0; ink.len()];
    }
    residual
        .iter()
        .map(|r| ((r - floor) / (peak - floor)).clamp(0.0, 1.0))
        .collect()
}

/// Paper within this many of its standard deviations of its fitted level counts as
/// paper: a photograph's grain is gone from the input, and isolated specks of it do not
/// stretch the digit's bounding box (at 4σ, about 3 pixels in 100,000 of Gaussian
/// grain pass).
const NOISE_SIGMAS: f32 = 4.0;

/// The indices of a `w × h` picture's border pixels (corners once).
fn border_indices(w: usize, h: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..w).flat_map(|x| [x, (h - 1) * w + x]).collect();
    idx.extend((1..h.saturating_sub(1)).flat_map(|y| [y * w, y * w + w - 1]));
    idx.sort_unstable();
    idx.dedup();
    idx
}

/// The paper under the ink: a plane through the medians of the picture's four edges,
/// bent by a bowl for the corners (a lens darkens them), and the spread (standard
/// deviation) of the border around it. A median is the paper's level at its edge's
/// middle however its light falls along the edge, and ink that reaches less than half
/// of an edge does not move it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Paper {
    /// The level at the middle of the edges (the plane's level at the centre).
    centre: f32,
    /// The change from one column to the next.
    per_column: f32,
    /// The change from one row to the next.
    per_row: f32,
    /// How much more the level is at a corner than at an edge's middle, growing as
    /// `q − 1` with `q` the squared distance from the centre in half-sides (1 at an
    /// edge's middle, 2 at a corner, 0 at the centre).
    bowl: f32,
    /// The centre's coordinates, which are also the half-sides.
    mid: (f32, f32),
    /// 1.4826 × the border's median absolute deviation from the paper: the standard
    /// deviation of Gaussian grain, unmoved by the few border pixels that are ink.
    spread: f32,
}

impl Paper {
    /// The paper of `values`, a picture `w × h`, seen at its `border` pixels.
    fn fit(values: &[f32], w: usize, h: usize, border: &[usize]) -> Paper {
        let edge = |indices: Vec<usize>| median(indices.iter().map(|&i| values[i]).collect());
        let top = edge((0..w).collect());
        let bottom = edge((0..w).map(|x| (h - 1) * w + x).collect());
        let left = edge((0..h).map(|y| y * w).collect());
        let right = edge((0..h).map(|y| y * w + w - 1).collect());
        let step = |from: f32, to: f32, n: usize| {
            if n > 1 {
                (to - from) / (n - 1) as f32
            } else {
                0.0
            }
        };
        let mut paper = Paper {
            centre: (top + bottom + left + right) / 4.0,
            per_column: step(left, right, w),
            per_row: step(top, bottom, h),
            bowl: 0.0,
            mid: ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0),
            spread: 0.0,
        };
        // The bowl from the border's outer halves, where q − 1 is at least ½.
        let cornered: Vec<f32> = border
            .iter()
            .filter_map(|&i| {
                let bend = paper.q(i % w, i / w) - 1.0;
                (bend >= 0.5).then(|| (values[i] - paper.level(i % w, i / w)) / bend)
            })
            .collect();
        if !cornered.is_empty() {
            paper.bowl = median(cornered);
        }
        let residuals: Vec<f32> = border
            .iter()
            .map(|&i| values[i] - paper.level(i % w, i / w))
            .collect();
        paper.spread = 1.4826 * median(residuals.iter().map(|r| r.abs()).collect());
        paper
    }

    /// The squared distance of pixel `(x, y)` from the centre, in half-sides (0 along a
    /// side only one pixel long).
    fn q(&self, x: usize, y: usize) -> f32 {
        let along = |at: usize, half: f32| {
            if half > 0.0 {
                ((at as f32 - half) / half).powi(2)
            } else {
                0.0
            }
        };
        along(x, self.mid.0) + along(y, self.mid.1)
    }

    /// The paper's level at pixel `(x, y)`.
    fn level(&self, x: usize, y: usize) -> f32 {
        self.centre
            + self.per_column * (x as f32 - self.mid.0)
            + self.per_row * (y as f32 - self.mid.1)
            + self.bowl * (self.q(x, y) - 1.0)
    }
}

fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

/// A piece of ink smaller than this fraction of the largest piece's ink is left out of
/// the digit's box: a speck of grain or dust a few pixels across, as against a digit's
/// separate strokes (the bar of a 5, say), which hold a tenth or more of its ink.
const SPECK: f32 = 0.02;

/// The half-open box `(x0, y0, x1, y1)` around the pieces of ink that matter: the pixels
/// above [`INK_THRESHOLD`], joined into pieces by their 8 neighbours, the pieces with
/// less than [`SPECK`] of the largest one's ink left out.
fn bounding_box(ink: &[f32], width: usize) -> Option<(usize, usize, usize, usize)> {
    let pieces = pieces(ink, width);
    let largest = pieces.iter().map(|p| p.ink).fold(0.0f32, f32::max);
    pieces
        .iter()
        .filter(|p| p.ink >= SPECK * largest)
        .map(|p| p.bbox)
        .reduce(|(a0, b0, a1, b1), (x0, y0, x1, y1)| {
            (a0.min(x0), b0.min(y0), a1.max(x1), b1.max(y1))
        })
}

/// A connected piece of ink: its half-open box and the sum of its values.
struct Piece {
    bbox: (usize, usize, usize, usize),
    ink: f32,
}

/// The pieces of the pixels above [`INK_THRESHOLD`] (8-connected).
fn pieces(ink: &[f32], width: usize) -> Vec<Piece> {
    let height = ink.len() / width;
    let mut seen = vec![false; ink.len()];
    let mut pieces = Vec::new();
    let mut stack = Vec::new();
    for start in 0..ink.len() {
        if seen[start] || ink[start] <= INK_THRESHOLD {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (x, y) = (start % width, start / width);
        let mut piece = Piece {
            bbox: (x, y, x + 1, y + 1),
            ink: 0.0,
        };
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            piece.ink += ink[i];
            let (x0, y0, x1, y1) = piece.bbox;
            piece.bbox = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            for ny in y.saturating_sub(1)..(y + 2).min(height) {
                for nx in x.saturating_sub(1)..(x + 2).min(width) {
                    let n = ny * width + nx;
                    if !seen[n] && ink[n] > INK_THRESHOLD {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
        }
        pieces.push(piece);
    }
    pieces
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
