//! A matrix on the host, as the Equations view receives it: `{"rows": r, "cols": c,
//! "f32": "<base64>"}`, the base64 of its `f32` values, little-endian, row-major (in the
//! page: `atob` → `Uint8Array` → `new Float32Array(buffer)`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use burn::prelude::*;
use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// An `r × c` matrix of `f32`, row-major. A column vector (`b1`, `db2`, …) is `r × 1`.
///
/// ```
/// use mnist_nn::equations::Matrix;
/// let m = Matrix::new(2, 1, vec![1.0, -0.5])?;
/// let json = serde_json::to_string(&m)?;
/// assert_eq!(json, r#"{"rows":2,"cols":1,"f32":"AACAPwAAAL8="}"#);
/// assert_eq!(serde_json::from_str::<Matrix>(&json)?, m);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    values: Vec<f32>,
}

impl Matrix {
    /// A `rows × cols` matrix of `values` (row-major); an error unless there are
    /// `rows · cols` of them.
    pub fn new(rows: usize, cols: usize, values: Vec<f32>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(values.len()) {
            return Err(Error::Shape {
                what: "matrix values",
                expected: format!("{rows}·{cols} values"),
                found: format!("{} values", values.len()),
            });
        }
        Ok(Self { rows, cols, values })
    }

    /// Reads a 2-D tensor back to the host.
    pub fn from_tensor(t: Tensor<2>) -> Result<Self> {
        let [rows, cols] = t.dims();
        let values = t.try_into_vec_as::<f32>().map_err(read_error)?;
        Self::new(rows, cols, values)
    }

    /// Reads a vector tensor back to the host as an `r × 1` column.
    pub fn from_column(t: Tensor<1>) -> Result<Self> {
        let [rows] = t.dims();
        let values = t.try_into_vec_as::<f32>().map_err(read_error)?;
        Self::new(rows, 1, values)
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The value at `[row, col]`, or `None` outside the matrix.
    pub fn get(&self, row: usize, col: usize) -> Option<f32> {
        if row < self.rows && col < self.cols {
            self.values.get(row * self.cols + col).copied()
        } else {
            None
        }
    }

    /// `[row, col]` as `f64`, for the host sums of [`super::explain`]; 0 outside the
    /// matrix (callers check the indices first).
    pub(crate) fn at(&self, row: usize, col: usize) -> f64 {
        self.get(row, col).map_or(0.0, f64::from)
    }

    /// Largest `|self − other|` over all cells (infinite when the shapes differ).
    pub fn max_abs_diff(&self, other: &Matrix) -> f64 {
        if (self.rows, self.cols) != (other.rows, other.cols) {
            return f64::INFINITY;
        }
        self.values
            .iter()
            .zip(&other.values)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
            .fold(0.0, f64::max)
    }

    /// The values as base64 of little-endian `f32` bytes.
    pub fn to_base64(&self) -> String {
        let bytes: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        STANDARD.encode(bytes)
    }
}

fn read_error(e: burn::tensor::TensorReadError) -> Error {
    Error::device("reading the equations' matrices back", e)
}

impl Serialize for Matrix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Matrix", 3)?;
        s.serialize_field("rows", &self.rows)?;
        s.serialize_field("cols", &self.cols)?;
        s.serialize_field("f32", &self.to_base64())?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Matrix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            rows: usize,
            cols: usize,
            f32: String,
        }
        let wire = Wire::deserialize(deserializer)?;
        let bytes = STANDARD
            .decode(wire.f32.as_bytes())
            .map_err(D::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(D::Error::custom(format!(
                "f32 holds {} bytes, not a whole number of f32",
                bytes.len()
            )));
        }
        let values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Matrix::new(wire.rows, wire.cols, values).map_err(D::Error::custom)
    }
}
