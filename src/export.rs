//! Sharing the weights outside Burn: `W1, b1, W2, b2` in the design notes' shapes, as
//! float32, in a `.safetensors` file or a numpy `.npz` archive — and reading both back —
//! or the whole forward pass as an ONNX model ([`crate::onnx`]).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::IMAGE_PIXELS;
use crate::NUM_CLASSES;
use crate::error::{Error, Result};
use crate::model::HostParams;

/// A file format `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Hugging Face safetensors.
    Safetensors,
    /// numpy's `.npz` (a zip of `.npy` arrays).
    Npz,
    /// An ONNX model of the whole forward pass ([`crate::onnx`]); written, not read.
    Onnx,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 3] = [Format::Safetensors, Format::Npz, Format::Onnx];

    /// The file extension, also the word that names the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::Npz => "npz",
            Format::Onnx => "onnx",
        }
    }

    /// The format of a file named `path`, by its extension (`None` for any other).
    pub fn of_file(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Format::ALL.into_iter().find(|f| f.extension() == extension)
    }

    /// The format `export` writes `out` in: `format` where given, else the one `out`'s
    /// extension names, else safetensors. A `format` that another format's extension
    /// contradicts is an error, saying which two disagree: the file would be read by
    /// its name as what it is not.
    ///
    /// ```
    /// use std::path::Path;
    /// use mnist_nn::export::Format;
    ///
    /// let npz = Some(Path::new("w.npz"));
    /// assert_eq!(Format::to_write(None, npz), Ok(Format::Npz));
    /// assert_eq!(Format::to_write(None, Some(Path::new("w.bin"))), Ok(Format::Safetensors));
    /// assert_eq!(Format::to_write(Some(Format::Onnx), None), Ok(Format::Onnx));
    /// assert!(Format::to_write(Some(Format::Safetensors), npz).is_err());
    /// ```
    pub fn to_write(
        format: Option<Format>,
        out: Option<&Path>,
    ) -> std::result::Result<Format, String> {
        let named = out.and_then(Format::of_file);
        match (format, named) {
            (Some(f), Some(n)) if f != n => Err(format!(
                "{}: its extension says {}, --format says {}; make them agree, or leave \
                 --format out and the extension chooses",
                out.map_or_else(String::new, |p| p.display().to_string()),
                n.extension(),
                f.extension()
            )),
            (Some(f), _) => Ok(f),
            (None, Some(n)) => Ok(n),
            (None, None) => Ok(Format::Safetensors),
        }
    }
}

impl std::str::FromStr for Format {
    type Err = crate::word::UnknownWord;

    fn from_str(word: &str) -> std::result::Result<Self, Self::Err> {
        crate::word::UnknownWord::pick("format", Format::ALL, Format::extension, word)
    }
}

/// The four arrays with their names and shapes, in the design notes' order.
fn arrays(p: &HostParams) -> [(&'static str, Vec<usize>, &[f32]); 4] {
    [
        ("W1", vec![p.hidden, IMAGE_PIXELS], &p.w1),
        ("b1", vec![p.hidden], &p.b1),
        ("W2", vec![NUM_CLASSES, p.hidden], &p.w2),
        ("b2", vec![NUM_CLASSES], &p.b2),
    ]
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes `params` to `path` in `format`, through a temporary file and a rename.
pub fn write(params: &HostParams, format: Format, path: &Path) -> Result<()> {
    let bytes = match format {
        Format::Safetensors => safetensors_bytes(params, path)?,
        Format::Npz => npz_bytes(params, path)?,
        Format::Onnx => crate::onnx::model_bytes(params),
    };
    crate::logging::write_atomic(path, &bytes)
}

fn safetensors_bytes(params: &HostParams, path: &Path) -> Result<Vec<u8>> {
    let data: Vec<(&str, Vec<usize>, Vec<u8>)> = arrays(params)
        .into_iter()
        .map(|(name, shape, values)| (name, shape, le_bytes(values)))
        .collect();
    let mut views = Vec::with_capacity(data.len());
    for (name, shape, bytes) in &data {
        let view =
            TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(|e| Error::Weights {
                path: path.to_path_buf(),
                problem: format!("cannot lay out {name}: {e}"),
            })?;
        views.push((*name, view));
    }
    let metadata = HashMap::from([
        (
            "format".to_string(),
            "mnist-nn two-layer network".to_string(),
        ),
        (
            "forward".to_string(),
            "A2 = softmax(W2·ReLU(W1·X + b1) + b2), X (784, m) in [0, 1]".to_string(),
        ),
    ]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        problem: format!("cannot serialize: {e}"),
    })
}

/// One `.npy` (version 1.0) array of little-endian float32 in C order.
fn npy(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // magic (6) + version (2) + header length (2) + header, padded with spaces and a
    // final newline to a multiple of 64 bytes, as the format asks.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * values.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&le_bytes(values));
    out
}

fn npz_bytes(params: &HostParams, path: &Path) -> Result<Vec<u8>> {
    let zip_error = |e: &dyn std::fmt::Display| Error::Weights {
        path: path.to_path_buf(),
        problem: format!("cannot write the npz archive: {e}"),
    };
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, shape, values) in arrays(params) {
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| zip_error(&e))?;
        zip.write_all(&npy(&shape, values))
            .map_err(|e| zip_error(&e))?;
    }
    let cursor = zip.finish().map_err(|e| zip_error(&e))?;
    Ok(cursor.into_inner())
}

/// Reads the four arrays back from a file `write` produced, checking names, dtypes and
/// shapes.
pub fn read(path: &Path, format: Format) -> Result<HostParams> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |problem: String| Error::Weights {
        path: path.to_path_buf(),
        problem,
    };
    let mut found: HashMap<&str, (Vec<usize>, Vec<f32>)> = HashMap::new();
    match format {
        Format::Onnx => {
            return Err(bad(
                "ONNX models are written, not read; import a .safetensors or .npz".into(),
            ));
        }
        Format::Safetensors => {
            let st = SafeTensors::deserialize(&bytes)
                .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
            // The design notes' names, or PyTorch's for nn.Sequential(Linear, ReLU,
            // Linear) (a state dict saved with safetensors).
            let names = st.names();
            let torch = !names.contains(&"W1") && names.contains(&"0.weight");
            for name in ["W1", "b1", "W2", "b2"] {
                let key = if torch { torch_name(name) } else { name };
                let t = st.tensor(key).map_err(|e| {
                    bad(format!(
                        "no tensor {key}: {e} (expected W1, b1, W2, b2, or PyTorch's \
                         0.weight, 0.bias, 2.weight, 2.bias; found {})",
                        names.join(", ")
                    ))
                })?;
                if t.dtype() != Dtype::F32 {
                    return Err(bad(format!("{name} is {:?}, not F32", t.dtype())));
                }
                found.insert(name, (t.shape().to_vec(), from_le_bytes(t.data())));
            }
        }
        Format::Npz => {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
                .map_err(|e| bad(format!("not an npz (zip) archive: {e}")))?;
            for name in ["W1", "b1", "W2", "b2"] {
                let mut entry = zip
                    .by_name(&format!("{name}.npy"))
                    .map_err(|e| bad(format!("no array {name}.npy: {e}")))?;
                let mut npy = Vec::new();
                entry
                    .read_to_end(&mut npy)
                    .map_err(|e| bad(format!("cannot read {name}.npy: {e}")))?;
                let (shape, values) =
                    parse_npy(&npy).map_err(|e| bad(format!("{name}.npy: {e}")))?;
                found.insert(name, (shape, values));
            }
        }
    }
    let mut take = |name: &str| found.remove(name).unwrap_or_default();
    let (w1_shape, w1) = take("W1");
    let (_, b1) = take("b1");
    let (w2_shape, w2) = take("W2");
    let (_, b2) = take("b2");
    let hidden = w1_shape.first().copied().unwrap_or(0);
    let params = HostParams {
        hidden,
        w1,
        b1,
        w2,
        b2,
    };
    let expected = [
        vec![hidden, IMAGE_PIXELS],
        vec![hidden],
        vec![NUM_CLASSES, hidden],
        vec![NUM_CLASSES],
    ];
    for ((name, _, values), shape) in arrays(&params).into_iter().zip(expected) {
        if values.len() != shape.iter().product::<usize>() {
            return Err(bad(format!(
                "{name} has {} values; a network with {hidden} hidden units needs {shape:?}",
                values.len()
            )));
        }
    }
    if w2_shape != [NUM_CLASSES, hidden] {
        return Err(bad(format!(
            "W2 has shape {w2_shape:?}, expected [10, {hidden}]"
        )));
    }
    Ok(params)
}

/// PyTorch's state-dict name of a parameter of
/// `nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, 10))`.
pub fn torch_name(name: &str) -> &'static str {
    match name {
        "W1" => "0.weight",
        "b1" => "0.bias",
        "W2" => "2.weight",
        _ => "2.bias",
    }
}

fn from_le_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The shape and values of a little-endian float32, C-order `.npy` array.
fn parse_npy(bytes: &[u8]) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an .npy array".into());
    }
    let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = bytes
        .get(10..10 + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated header")?;
    if !header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False") {
        return Err(format!("not a C-order float32 array: {}", header.trim()));
    }
    let dims = header
        .split("'shape': (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .ok_or("no shape in header")?;
    let shape = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse::<usize>()
                .map_err(|e| format!("bad shape {dims}: {e}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let data = &bytes[10 + header_len..];
    let values = from_le_bytes(data);
    if values.len() != shape.iter().product::<usize>() || !data.len().is_multiple_of(4) {
        return Err(format!("{} bytes of data for shape {shape:?}", data.len()));
    }
    Ok((shape, values))
}
