//! The body of `POST /api/predict` turned into the network's 784 inputs. Three forms are
//! accepted:
//!
//! - an image (PNG, JPEG or PGM/PPM/PBM; `Content-Type: image/…`): preprocessed by
//!   [`preprocess`], as `mnist-nn predict` does for a file;
//! - JSON `{"width": w, "height": h, "pixels": [w·h values]}`: a grayscale picture of
//!   any size, row-major, values in `[0, 1]` (0 = black), preprocessed the same way;
//! - JSON `{"pixels": [784 values]}`: an image already in MNIST's form (28×28,
//!   row-major, ink = 1, background = 0, centred), given to the network as it is.

use serde::Deserialize;

use crate::preprocess::{Gray, PreprocessError, preprocess};
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// Largest request body, in bytes: a drawing sent as PNG takes a few kilobytes, 784
/// values as JSON about 16 kB.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Widest and tallest picture accepted, in pixels (decoding a larger one is refused
/// before its pixels are allocated).
pub const MAX_IMAGE_SIDE: u32 = 2048;

/// Why a body is not an input: the HTTP status and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    /// 400 for malformed content, 415 for a content type that is not accepted.
    pub status: u16,
    /// What is wrong, naming the value or field.
    pub message: String,
}

fn bad(message: impl Into<String>) -> InputError {
    InputError {
        status: 400,
        message: message.into(),
    }
}

/// The JSON form of a predict request.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an object {\"pixels\": [...]}, with \"width\" and \"height\" for a picture of another size than 28×28"
)]
struct PixelBody {
    pixels: Vec<f64>,
    width: Option<usize>,
    height: Option<usize>,
}

/// The network input for a predict request's body, by its `Content-Type` (JSON,
/// `image/…`, or when absent or `application/octet-stream`, by its first byte).
pub fn network_input(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<[f32; IMAGE_PIXELS], InputError> {
    let media = super::http::media_type(content_type).unwrap_or_default();
    let looks_like_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    match media.as_str() {
        "application/json" => from_json(body),
        m if m.starts_with("image/") => from_image(body),
        "" | "application/octet-stream" if looks_like_json => from_json(body),
        "" | "application/octet-stream" => from_image(body),
        other => Err(InputError {
            status: 415,
            message: format!(
                "Content-Type {other} is not accepted: send application/json or an image \
                 (image/png, image/jpeg, image/x-portable-graymap)"
            ),
        }),
    }
}

fn from_image(body: &[u8]) -> Result<[f32; IMAGE_PIXELS], InputError> {
    if body.is_empty() {
        return Err(bad("the request has no body: send an image or JSON pixels"));
    }
    let picture = Gray::decode(body, MAX_IMAGE_SIDE).map_err(|e| bad(e.to_string()))?;
    prepared(&picture)
}

fn prepared(picture: &Gray) -> Result<[f32; IMAGE_PIXELS], InputError> {
    preprocess(picture).map_err(|e| match e {
        PreprocessError::Blank => bad("the image is blank: nothing to read (draw a digit)"),
        e => bad(e.to_string()),
    })
}

fn from_json(body: &[u8]) -> Result<[f32; IMAGE_PIXELS], InputError> {
    let request: PixelBody =
        serde_json::from_slice(body).map_err(|e| bad(format!("bad JSON: {e}")))?;
    // The count first, then the values: a body of the wrong size is told so, whatever
    // its values.
    let in_range = || match request
        .pixels
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        Some((i, v)) => Err(bad(format!("pixels[{i}] = {v} is outside [0, 1]"))),
        None => Ok(()),
    };
    let found = request.pixels.len();
    match (request.width, request.height) {
        (None, None) => {
            if found != IMAGE_PIXELS {
                return Err(bad(format!(
                    "{found} pixel values; expected {IMAGE_PIXELS} (a {IMAGE_SIDE}×{IMAGE_SIDE} \
                     image, row-major), or give width and height for a picture of another size"
                )));
            }
            in_range()?;
            let mut input = [0.0f32; IMAGE_PIXELS];
            for (x, &v) in input.iter_mut().zip(&request.pixels) {
                *x = v as f32;
            }
            Ok(input)
        }
        (Some(width), Some(height)) => {
            let max = MAX_IMAGE_SIDE as usize;
            if width == 0 || height == 0 || width > max || height > max {
                return Err(bad(format!(
                    "a {width}×{height} picture: width and height must be 1 to {max}"
                )));
            }
            if found != width * height {
                return Err(bad(format!(
                    "{found} pixel values for a {width}×{height} picture (expected {})",
                    width * height
                )));
            }
            in_range()?;
            prepared(&Gray {
                width,
                height,
                pixels: request.pixels.iter().map(|&v| v as f32).collect(),
            })
        }
        _ => Err(bad("give both width and height, or neither")),
    }
}
