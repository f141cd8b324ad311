//! The IDX file format of the MNIST database, read with every field checked.
//!
//! An IDX file is a big-endian header followed by raw `u8` values:
//!
//! | offset | field                                   |
//! |--------|-----------------------------------------|
//! | 0      | magic: `2051` for images, `2049` labels |
//! | 4      | item count `n`                          |
//! | 8, 12  | rows, columns (image files only)        |
//! | 8 / 16 | `n` labels, or `n · rows · cols` pixels |
//!
//! Files may be gzipped (decided by the gzip magic bytes, not by the name, but a file
//! named `*.gz` must really be gzip). The header is checked against the real number of
//! bytes: a file that is shorter or longer than it declares is rejected, never padded.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::error::IdxError;
use crate::{IMAGE_SIDE, NUM_CLASSES};

/// Magic number of an IDX file of `u8` images (type 0x08, 3 dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX file of `u8` labels (type 0x08, 1 dimension).
pub const LABELS_MAGIC: u32 = 2049;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The images of one IDX file: `count` images of `rows × cols` pixels, row-major,
/// one image after the other, 0 = background, 255 = ink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Pixel rows per image.
    pub rows: usize,
    /// Pixel columns per image.
    pub cols: usize,
    /// `count · rows · cols` pixel values.
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file (raw or gzipped) and checks that its images are MNIST's
/// `28 × 28`.
pub fn read_images(path: &Path) -> Result<IdxImages, IdxError> {
    parse_images(path, read_file(path)?)
}

/// [`read_images`] on the content of a file already in memory (raw or gzipped);
/// `path` only names it in errors. Never panics, whatever the bytes.
pub fn parse_images(path: &Path, raw: Vec<u8>) -> Result<IdxImages, IdxError> {
    let bytes = decode(path, raw)?;
    let header = header(path, &bytes, IMAGES_MAGIC, 16)?;
    let count = header[0];
    let (rows, cols) = (header[1], header[2]);
    if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
        return Err(IdxError::Dimensions {
            path: path.to_path_buf(),
            rows,
            cols,
        });
    }
    let pixels = count.saturating_mul(rows * cols);
    let body = body(path, &bytes, 16, pixels)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: body.to_vec(),
    })
}

/// Reads an IDX label file (raw or gzipped) and checks that every label is a digit.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    parse_labels(path, read_file(path)?)
}

/// [`read_labels`] on the content of a file already in memory (raw or gzipped);
/// `path` only names it in errors. Never panics, whatever the bytes.
pub fn parse_labels(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, IdxError> {
    let bytes = decode(path, raw)?;
    let count = header(path, &bytes, LABELS_MAGIC, 8)?[0];
    let labels = body(path, &bytes, 8, count)?;
    if let Some(index) = labels.iter().position(|&l| usize::from(l) >= NUM_CLASSES) {
        return Err(IdxError::Label {
            path: path.to_path_buf(),
            index,
            label: labels[index],
        });
    }
    Ok(labels.to_vec())
}

/// The whole content of `path`.
fn read_file(path: &Path) -> Result<Vec<u8>, IdxError> {
    std::fs::read(path).map_err(|source| {
        // `locate` gives the `.gz` name when neither form is there.
        let gz = path.extension().is_some_and(|e| e == "gz");
        if source.kind() == std::io::ErrorKind::NotFound && gz && !path.with_extension("").exists()
        {
            IdxError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            IdxError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// A file's content, decompressed when it is gzip.
fn decode(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, IdxError> {
    if raw.is_empty() {
        return Err(IdxError::Empty {
            path: path.to_path_buf(),
        });
    }
    let is_gzip = raw.starts_with(&GZIP_MAGIC);
    if !is_gzip {
        if path.extension().is_some_and(|e| e == "gz") {
            return Err(IdxError::NotGzip {
                path: path.to_path_buf(),
            });
        }
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|source| IdxError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

/// Checks the magic number and returns the dimensions that follow it (count first).
fn header(path: &Path, bytes: &[u8], magic: u32, len: usize) -> Result<Vec<usize>, IdxError> {
    if bytes.len() < len {
        return Err(IdxError::Header {
            path: path.to_path_buf(),
            needed: len,
            found: bytes.len(),
        });
    }
    let words: Vec<u32> = bytes[..len]
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    if words[0] != magic {
        return Err(IdxError::Magic {
            path: path.to_path_buf(),
            expected: magic,
            found: words[0],
        });
    }
    Ok(words[1..].iter().map(|&w| w as usize).collect())
}

/// The `expected` bytes after the header, which must be exactly what the file holds.
fn body<'a>(
    path: &Path,
    bytes: &'a [u8],
    header_len: usize,
    expected: usize,
) -> Result<&'a [u8], IdxError> {
    let found = bytes.len() - header_len;
    if found != expected {
        return Err(IdxError::Length {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    Ok(&bytes[header_len..])
}

/// The path of an MNIST file in `dir`: `name.gz` if present, else the raw `name`.
/// When neither exists, the `.gz` path is returned so the error names it.
pub fn locate(dir: &Path, name: &str) -> PathBuf {
    let gz = dir.join(format!("{name}.gz"));
    let raw = dir.join(name);
    if !gz.exists() && raw.exists() {
        raw
    } else {
        gz
    }
}
