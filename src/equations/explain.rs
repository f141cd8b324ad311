//! How one cell of a matrix is computed, with the actual numbers: the cell's equation
//! written out for its indices, every term of its sum, and the sum worked again on the
//! host in `f64` from the library's own matrices (so that it can be checked against the
//! library's `f32` value).

use serde::{Deserialize, Serialize};

use super::{Batch, Matrices};
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// Terms written out in [`Explained::text`] before "… (N terms)".
pub const SHOWN_TERMS: usize = 4;

/// One cell explained: `GET /api/equations/cell`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explained {
    /// The matrix's name, e.g. `dW2`.
    pub matrix: String,
    /// The cell's row.
    pub row: usize,
    /// The cell's column (0 for the `r × 1` biases).
    pub col: usize,
    /// The library's value of the cell (`f32`).
    pub value: f32,
    /// The cell's equation for these indices, e.g. `dW2[3,17] = (1/m)·Σ_k dZ2[3,k]·A1[17,k]`.
    pub formula: String,
    /// Every term of the cell's sum, in order (none for the parameters, `X` and `Y`,
    /// whose value is read, not computed). For `Z1` and `Z2` the last term is the bias
    /// times the constant input 1 (its `k` is one past the last input).
    pub terms: Vec<Term>,
    /// The cell worked on the host in `f64` from the library's matrices: the terms'
    /// products summed and then scaled (by `1/m` for a gradient), masked (by `[Z1 > 0]`
    /// for `dZ1`) or divided (by the column's sum for `A2`), as the formula says.
    pub sum: f64,
    /// The computation with its numbers, the first [`SHOWN_TERMS`] terms of a long
    /// sum and "… (N terms)", e.g. `(1/8)·(0.12·0.5 + …) = 0.0341`.
    pub text: String,
}

/// One term of a cell's sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// The summation index (`k` over images, `p` over pixels, `j` over hidden units,
    /// `c` over classes).
    pub k: usize,
    /// The term's factors, e.g. `[dZ2[3,k], A1[17,k]]`.
    pub factors: Vec<f64>,
    /// What the term adds: the product of its factors (for `A2`: `exp` of its one
    /// factor less the column's largest `Z2`).
    pub product: f64,
}

/// Why a cell cannot be explained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// No matrix of that name.
    #[error("matrix: unknown {name:?}; expected one of {}", Matrices::NAMES.join(", "))]
    UnknownMatrix {
        /// The name asked for.
        name: String,
    },
    /// The cell is outside the matrix.
    #[error(
        "{matrix}[{row},{col}] is outside the matrix: {matrix} is {rows}×{cols} \
         (row 0 to {}, col 0 to {})",
        rows.saturating_sub(1),
        cols.saturating_sub(1)
    )]
    OutOfRange {
        /// The matrix.
        matrix: String,
        /// Row asked for.
        row: usize,
        /// Column asked for.
        col: usize,
        /// Its rows.
        rows: usize,
        /// Its columns.
        cols: usize,
    },
}

/// Explains `name[row, col]` of `m` for `batch`, after `step` updates.
pub(crate) fn explain(
    m: &Matrices,
    batch: &Batch,
    step: usize,
    name: &str,
    row: usize,
    col: usize,
) -> Result<Explained, ExplainError> {
    let Some(matrix) = m.get(name) else {
        return Err(ExplainError::UnknownMatrix { name: name.into() });
    };
    let Some(value) = matrix.get(row, col) else {
        return Err(ExplainError::OutOfRange {
            matrix: name.into(),
            row,
            col,
            rows: matrix.rows(),
            cols: matrix.cols(),
        });
    };
    let (i, k) = (row, col);
    let inv_m = 1.0 / batch.m() as f64;
    let m_text = format!("1/{}", batch.m());
    let cell = format!("{name}[{i},{k}]");
    let cell1 = format!("{name}[{i}]");
    let work = match name {
        "X" => {
            let byte = f64::from(batch.pixel_byte(i, k));
            let image = batch.indices.get(k).copied().unwrap_or(k);
            let (r, c) = (i / IMAGE_SIDE, i % IMAGE_SIDE);
            Work {
                formula: format!("{cell} = (pixel {i} of image {k}) / 255"),
                terms: vec![Term {
                    k: 0,
                    factors: vec![byte, 1.0 / 255.0],
                    product: byte / 255.0,
                }],
                sum: byte / 255.0,
                text: format!(
                    "{cell} = {}/255 = {} ({} image {image}, pixel row {r}, column {c})",
                    num(byte),
                    num(byte / 255.0),
                    batch.source
                ),
            }
        }
        "W1" => parameter(
            format!("{cell}: the weight from pixel {k} to hidden unit {i}"),
            &cell,
            value,
            step,
        ),
        "b1" => parameter(
            format!("{cell1}: the bias of hidden unit {i}"),
            &cell1,
            value,
            step,
        ),
        "W2" => parameter(
            format!("{cell}: the weight from hidden unit {k} to digit {i}"),
            &cell,
            value,
            step,
        ),
        "b2" => parameter(
            format!("{cell1}: the bias of digit {i}"),
            &cell1,
            value,
            step,
        ),
        "Y" => {
            let label = batch.labels.get(k).copied().unwrap_or(0);
            let y = if usize::from(label) == i { 1.0 } else { 0.0 };
            Work {
                formula: format!("{cell} = 1 if the label of image {k} is {i}, else 0"),
                terms: Vec::new(),
                sum: y,
                text: format!("{cell} = [label {label} = {i}] = {}", num(y)),
            }
        }
        "Z1" => affine(
            format!("{cell} = Σ_p W1[{i},p]·X[p,{k}] + b1[{i}]"),
            &cell,
            (0..IMAGE_PIXELS).map(|p| (m.W1.at(i, p), m.X.at(p, k))),
            m.b1.at(i, 0),
            &format!("b1[{i}]"),
        ),
        "Z2" => affine(
            format!("{cell} = Σ_j W2[{i},j]·A1[j,{k}] + b2[{i}]"),
            &cell,
            (0..m.A1.rows()).map(|j| (m.W2.at(i, j), m.A1.at(j, k))),
            m.b2.at(i, 0),
            &format!("b2[{i}]"),
        ),
        "A1" => {
            let z = m.Z1.at(i, k);
            let mask = if z > 0.0 { 1.0 } else { 0.0 };
            Work {
                formula: format!("{cell} = ReLU(Z1[{i},{k}]) = Z1[{i},{k}]·[Z1[{i},{k}] > 0]"),
                terms: vec![Term {
                    k: 0,
                    factors: vec![z, mask],
                    product: z * mask,
                }],
                sum: z * mask,
                text: format!("{cell} = ReLU({}) = {}", num(z), num(z * mask)),
            }
        }
        "A2" => softmax(m, &cell, i, k),
        "dZ2" => {
            let (a, y) = (m.A2.at(i, k), m.Y.at(i, k));
            Work {
                formula: format!("{cell} = A2[{i},{k}] − Y[{i},{k}]"),
                terms: vec![
                    Term {
                        k: 0,
                        factors: vec![a],
                        product: a,
                    },
                    Term {
                        k: 1,
                        factors: vec![y, -1.0],
                        product: -y,
                    },
                ],
                sum: a - y,
                text: format!("{cell} = {} − {} = {}", num(a), num(y), num(a - y)),
            }
        }
        "dW2" => mean(
            format!("{cell} = (1/m)·Σ_k dZ2[{i},k]·A1[{k},k]"),
            &cell,
            &m_text,
            inv_m,
            (0..batch.m()).map(|n| vec![m.dZ2.at(i, n), m.A1.at(k, n)]),
        ),
        "db2" => mean(
            format!("{cell1} = (1/m)·Σ_k dZ2[{i},k]"),
            &cell1,
            &m_text,
            inv_m,
            (0..batch.m()).map(|n| vec![m.dZ2.at(i, n)]),
        ),
        "dZ1" => {
            let terms = products((0..m.W2.rows()).map(|c| vec![m.W2.at(c, i), m.dZ2.at(c, k)]));
            let back = terms.iter().map(|t| t.product).sum::<f64>();
            let z = m.Z1.at(i, k);
            let mask = if z > 0.0 { 1.0 } else { 0.0 };
            let text = format!(
                "{cell} = ({})·[Z1[{i},{k}] = {} > 0] = {}·{} = {}",
                series(&terms),
                num(z),
                factor(back),
                num(mask),
                num(back * mask)
            );
            Work {
                formula: format!("{cell} = (Σ_c W2[c,{i}]·dZ2[c,{k}])·[Z1[{i},{k}] > 0]"),
                terms,
                sum: back * mask,
                text,
            }
        }
        "dW1" => mean(
            format!("{cell} = (1/m)·Σ_k dZ1[{i},k]·X[{k},k]"),
            &cell,
            &m_text,
            inv_m,
            (0..batch.m()).map(|n| vec![m.dZ1.at(i, n), m.X.at(k, n)]),
        ),
        "db1" => mean(
            format!("{cell1} = (1/m)·Σ_k dZ1[{i},k]"),
            &cell1,
            &m_text,
            inv_m,
            (0..batch.m()).map(|n| vec![m.dZ1.at(i, n)]),
        ),
        _ => return Err(ExplainError::UnknownMatrix { name: name.into() }),
    };
    Ok(Explained {
        matrix: name.into(),
        row,
        col,
        value,
        formula: work.formula,
        terms: work.terms,
        sum: work.sum,
        text: work.text,
    })
}

/// What each kind of cell works out to.
struct Work {
    formula: String,
    terms: Vec<Term>,
    sum: f64,
    text: String,
}

/// A parameter: read, not computed.
fn parameter(formula: String, cell: &str, value: f32, step: usize) -> Work {
    let origin = match step {
        0 => "as the network starts".to_string(),
        1 => "after 1 update W −= α·dW".to_string(),
        n => format!("after {n} updates W −= α·dW"),
    };
    Work {
        formula,
        terms: Vec::new(),
        sum: f64::from(value),
        text: format!("{cell} = {} (a parameter, {origin})", num(f64::from(value))),
    }
}

/// `Σ a·b + bias`, the bias as a last term `bias·1`.
fn affine(
    formula: String,
    cell: &str,
    pairs: impl Iterator<Item = (f64, f64)>,
    bias: f64,
    bias_name: &str,
) -> Work {
    let mut terms = products(pairs.map(|(a, b)| vec![a, b]));
    let shown = series(&terms);
    terms.push(Term {
        k: terms.len(),
        factors: vec![bias, 1.0],
        product: bias,
    });
    let dot = terms[..terms.len() - 1]
        .iter()
        .map(|t| t.product)
        .sum::<f64>();
    let sum = dot + bias;
    Work {
        formula,
        text: format!(
            "{cell} = ({shown}) + {bias_name} = {} + {} = {}",
            num(dot),
            factor(bias),
            num(sum)
        ),
        terms,
        sum,
    }
}

/// `scale·Σ_k Π factors`.
fn mean(
    formula: String,
    cell: &str,
    scale_text: &str,
    scale: f64,
    factors: impl Iterator<Item = Vec<f64>>,
) -> Work {
    let terms = products(factors);
    let total = terms.iter().map(|t| t.product).sum::<f64>();
    let sum = scale * total;
    Work {
        formula,
        text: format!(
            "{cell} = ({scale_text})·({}) = ({scale_text})·{} = {}",
            series(&terms),
            factor(total),
            num(sum)
        ),
        terms,
        sum,
    }
}

/// `A2[c,k] = exp(Z2[c,k] − z*) / Σ_c' exp(Z2[c',k] − z*)`, `z*` the column's largest
/// `Z2` (as [`crate::loss::softmax_columns`] shifts it; the shift cancels).
fn softmax(m: &Matrices, cell: &str, c: usize, k: usize) -> Work {
    let z: Vec<f64> = (0..m.Z2.rows()).map(|r| m.Z2.at(r, k)).collect();
    let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let terms: Vec<Term> = z
        .iter()
        .enumerate()
        .map(|(r, &zr)| Term {
            k: r,
            factors: vec![zr],
            product: (zr - top).exp(),
        })
        .collect();
    let total = terms.iter().map(|t| t.product).sum::<f64>();
    let own = terms.get(c).map_or(0.0, |t| t.product);
    let sum = own / total;
    let exps: Vec<String> = terms
        .iter()
        .take(SHOWN_TERMS)
        .map(|t| format!("exp({})", num(t.factors[0] - top)))
        .collect();
    let more = if terms.len() > SHOWN_TERMS {
        format!(" + … ({} terms)", terms.len())
    } else {
        String::new()
    };
    Work {
        formula: format!(
            "{cell} = exp(Z2[{c},{k}]) / Σ_c exp(Z2[c,{k}]), each Z2 less the column's \
             largest ({}), which cancels",
            num(top)
        ),
        text: format!(
            "{cell} = exp({}) / ({}{more}) = {} / {} = {}",
            num(z.get(c).copied().unwrap_or(0.0) - top),
            exps.join(" + "),
            num(own),
            num(total),
            num(sum)
        ),
        terms,
        sum,
    }
}

/// Terms whose products are those of their factors, numbered from 0.
fn products(factors: impl Iterator<Item = Vec<f64>>) -> Vec<Term> {
    factors
        .enumerate()
        .map(|(k, factors)| Term {
            k,
            product: factors.iter().product(),
            factors,
        })
        .collect()
}

/// `a·b + c·d + …`: every term of a short sum; of a long one the first
/// [`SHOWN_TERMS`] non-zero ones and how many there are.
fn series(terms: &[Term]) -> String {
    let show = |t: &Term| {
        t.factors
            .iter()
            .map(|&f| factor(f))
            .collect::<Vec<_>>()
            .join("·")
    };
    if terms.len() <= SHOWN_TERMS + 1 {
        let all: Vec<String> = terms.iter().map(show).collect();
        return if all.is_empty() {
            "0".into()
        } else {
            all.join(" + ")
        };
    }
    let zeros = terms.iter().filter(|t| t.product == 0.0).count();
    let mut first: Vec<String> = terms
        .iter()
        .filter(|t| t.product != 0.0)
        .take(SHOWN_TERMS)
        .map(show)
        .collect();
    if first.is_empty() {
        first = terms.iter().take(SHOWN_TERMS).map(show).collect();
    }
    let count = match zeros {
        0 => format!("{} terms", terms.len()),
        z => format!("{} terms, {z} of them 0", terms.len()),
    };
    format!("{} + … ({count})", first.join(" + "))
}

/// A factor of a product: negative numbers in parentheses.
fn factor(x: f64) -> String {
    if x < 0.0 {
        format!("({})", num(x))
    } else {
        num(x)
    }
}

/// A number to 4 significant digits, in exponent notation when very small or large.
///
/// Public to the module's tests only through [`Explained::text`].
pub(crate) fn num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(0.034_123), "0.03412");
        assert_eq!(num(-1.5), "-1.5");
        assert_eq!(num(123.456_7), "123.5");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(2.5e-6), "2.500e-6");
    }
}
