//! The names of the ten classes, for what follows training (`eval`, `predict`,
//! `report`): digits for MNIST, articles of clothing for Fashion-MNIST, the hiragana of
//! Kuzushiji-MNIST — chosen by the config's `data.dataset`, or read from a
//! `classes.txt` (ten lines, one name each, label order) beside the IDX files, which
//! takes precedence.
//!
//! ```
//! use mnist_nn::data::classes::known;
//! assert_eq!(known("fashion-mnist").unwrap()[1], "Trouser");
//! assert_eq!(known("mnist").unwrap()[7], "7");
//! assert!(known("cifar").is_none());
//! ```

use std::path::Path;

use crate::NUM_CLASSES;
use crate::error::{Error, Result};

/// The data sets named by `data.dataset`.
pub const DATASETS: [&str; 3] = ["mnist", "fashion-mnist", "kmnist"];

/// The file beside the IDX files that names the classes.
pub const CLASSES_FILE: &str = "classes.txt";

/// The class names of a data set named in [`DATASETS`], in label order.
pub fn known(dataset: &str) -> Option<[&'static str; NUM_CLASSES]> {
    match dataset {
        "mnist" => Some(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
        // Xiao, Rasul & Vollgraf (2017), Table 1.
        "fashion-mnist" => Some([
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ]),
        // Clanuwat et al. (2018): the ten hiragana, with their romanisations.
        "kmnist" => Some([
            "お (o)",
            "き (ki)",
            "す (su)",
            "つ (tsu)",
            "な (na)",
            "は (ha)",
            "ま (ma)",
            "や (ya)",
            "れ (re)",
            "を (wo)",
        ]),
        _ => None,
    }
}

/// The class names for data in `dir` named `dataset`: `dir/classes.txt` when it exists
/// (exactly ten non-empty lines), else [`known`]`(dataset)`.
pub fn class_names(dataset: &str, dir: &Path) -> Result<Vec<String>> {
    let file = dir.join(CLASSES_FILE);
    if file.exists() {
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if names.len() != NUM_CLASSES {
            return Err(Error::RunFile {
                path: file,
                problem: format!(
                    "holds {} class names; it must hold {NUM_CLASSES}, one a line, in label order",
                    names.len()
                ),
            });
        }
        return Ok(names);
    }
    Ok(known(dataset)
        .unwrap_or_else(|| known("mnist").unwrap_or_default())
        .iter()
        .map(|s| s.to_string())
        .collect())
}

/// True for the digit sets (MNIST), whose pictures `predict` crops and centres as
/// MNIST's digits were.
pub fn is_digits(dataset: &str) -> bool {
    dataset == "mnist"
}
