//! The IDX reader: the bundled files, and each way a file can be malformed.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use mnist_nn::data::idx::{read_images, read_labels};
use mnist_nn::data::{LoadError, Mnist, MnistSplit};
use mnist_nn::error::IdxError;
use sha2::{Digest, Sha256};

use crate::util::{mnist, root};

/// An image-file header: magic, count, rows, cols.
fn image_header(magic: u32, count: u32, rows: u32, cols: u32) -> Vec<u8> {
    [magic, count, rows, cols]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

fn images(count: u32) -> Vec<u8> {
    let mut bytes = image_header(2051, count, 28, 28);
    bytes.extend((0..count as usize * 784).map(|i| (i % 256) as u8));
    bytes
}

fn labels(values: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = [2049u32, values.len() as u32]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
    bytes.extend(values);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("temp file writes");
    path
}

#[test]
fn bundled_files_match_their_checksums() {
    let dir = root().join("data/mnist");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).expect("SHA256SUMS is bundled");
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, name) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(dir.join(name)).expect("listed file is bundled");
        let got = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(got, hash, "{name}: checksum differs from SHA256SUMS");
        checked += 1;
    }
    assert_eq!(checked, 4, "SHA256SUMS lists the four MNIST files");
}

#[test]
fn bundled_mnist_has_the_published_counts_and_first_labels() {
    let data = mnist();
    assert_eq!(data.train.len() + data.valid.len(), 60_000);
    assert_eq!(data.valid.len(), 5_000);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(&data.train.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(&data.test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
}

#[test]
fn dataset_trait_gives_items_of_image_and_label() {
    use burn_dataset::Dataset;
    let test: &MnistSplit = &mnist().test;
    assert_eq!(Dataset::len(test), 10_000);
    let item = test.get(0).expect("index 0 exists");
    assert_eq!(item.label, 7);
    assert_eq!(item.pixels.len(), 784);
    assert_eq!(item.pixels, test.pixels[..784].to_vec());
    assert!(
        test.get(10_000).is_err(),
        "past the end is an error, not a panic"
    );
}

#[test]
fn raw_and_gzipped_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let raw = file(dir.path(), "a-images", &images(3));
    let gz = file(dir.path(), "a-images.gz", &gzip(&images(3)));
    let a = read_images(&raw).unwrap();
    assert_eq!(a, read_images(&gz).unwrap());
    assert_eq!(
        (a.count, a.rows, a.cols, a.pixels.len()),
        (3, 28, 28, 3 * 784)
    );
}

fn images_err(bytes: &[u8], name: &str) -> (IdxError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), name, bytes);
    (
        read_images(&path).expect_err("malformed file must be rejected"),
        path,
    )
}

fn labels_err(bytes: &[u8], name: &str) -> (IdxError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), name, bytes);
    (
        read_labels(&path).expect_err("malformed file must be rejected"),
        path,
    )
}

/// The message names the file.
fn names_file(e: &IdxError, path: &Path) {
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message must name {}: {msg}",
        path.display()
    );
}

#[test]
fn missing_file_is_an_error_naming_it_and_both_forms() {
    let path = Path::new("/nonexistent/train-images-idx3-ubyte.gz");
    let e = read_images(path).unwrap_err();
    assert!(matches!(e, IdxError::Missing { .. }), "{e:?}");
    assert!(e.to_string().contains("nor without .gz"), "{e}");
    names_file(&e, path);
    let path = Path::new("/nonexistent/train-images-idx3-ubyte");
    let e = read_images(path).unwrap_err();
    assert!(matches!(e, IdxError::Io { .. }), "{e:?}");
    names_file(&e, path);
}

#[test]
fn empty_file() {
    let (e, p) = images_err(&[], "empty");
    assert!(matches!(e, IdxError::Empty { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn wrong_magic_number() {
    let mut bytes = images(2);
    bytes[3] = 0x04; // 2051 → 2052
    let (e, p) = images_err(&bytes, "magic");
    assert!(
        matches!(
            e,
            IdxError::Magic {
                expected: 2051,
                found: 2052,
                ..
            }
        ),
        "{e:?}"
    );
    names_file(&e, &p);
    // A label file given where images are expected.
    let (e, _) = images_err(&labels(&[1, 2]), "labels-as-images");
    assert!(
        matches!(e, IdxError::Header { .. } | IdxError::Magic { .. }),
        "{e:?}"
    );
    let (e, _) = labels_err(&images(1), "images-as-labels");
    assert!(
        matches!(
            e,
            IdxError::Magic {
                expected: 2049,
                found: 2051,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .ends_with("(expected 2049): this is an images file, where a labels file belongs"),
        "{e}"
    );
}

#[test]
fn image_dimensions_other_than_28_by_28() {
    let mut bytes = image_header(2051, 1, 32, 32);
    bytes.extend(vec![0u8; 32 * 32]);
    let (e, _) = images_err(&bytes, "32x32");
    assert!(
        matches!(
            e,
            IdxError::Dimensions {
                rows: 32,
                cols: 32,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn declared_count_larger_than_the_file_holds() {
    let mut bytes = images(3);
    bytes[7] = 4; // declares 4 images, holds 3
    let (e, p) = images_err(&bytes, "short");
    assert!(
        matches!(e, IdxError::Length { expected, found, .. } if expected == 4 * 784 && found == 3 * 784),
        "{e:?}"
    );
    names_file(&e, &p);
    let (e, _) = labels_err(&labels(&[1, 2, 3])[..10], "short-labels");
    assert!(
        matches!(
            e,
            IdxError::Length {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn bytes_beyond_the_declared_count() {
    let mut bytes = labels(&[1, 2, 3]);
    bytes.push(4);
    let (e, _) = labels_err(&bytes, "long-labels");
    assert!(
        matches!(
            e,
            IdxError::Length {
                expected: 3,
                found: 4,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn header_cut_short() {
    let (e, _) = images_err(&images(1)[..10], "cut");
    assert!(
        matches!(
            e,
            IdxError::Header {
                needed: 16,
                found: 10,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn truncated_gzip_stream() {
    let gz = gzip(&images(20));
    let (e, p) = images_err(&gz[..gz.len() / 2], "trunc.gz");
    assert!(matches!(e, IdxError::Gzip { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn file_named_gz_that_is_not_gzip() {
    let (e, p) = images_err(&images(1), "plain.gz");
    assert!(matches!(e, IdxError::NotGzip { .. }), "{e:?}");
    names_file(&e, &p);
}

#[test]
fn labels_outside_0_to_9() {
    let (e, _) = labels_err(&labels(&[3, 9, 10, 1]), "labels");
    assert!(
        matches!(
            e,
            IdxError::Label {
                index: 2,
                label: 10,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn images_and_labels_of_different_counts() {
    let dir = tempfile::tempdir().unwrap();
    let i = file(dir.path(), "i", &images(3));
    let l = file(dir.path(), "l", &labels(&[1, 2]));
    let e = MnistSplit::read(&i, &l).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::CountMismatch {
                image_count: 3,
                label_count: 2,
                ..
            }
        ),
        "{e:?}"
    );
    names_file(&e, &i);
    names_file(&e, &l);
}

#[test]
fn load_finds_raw_files_and_splits_validation_from_the_end() {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "train-images-idx3-ubyte", &images(10));
    file(
        dir.path(),
        "train-labels-idx1-ubyte",
        &labels(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    );
    file(dir.path(), "t10k-images-idx3-ubyte.gz", &gzip(&images(2)));
    file(
        dir.path(),
        "t10k-labels-idx1-ubyte.gz",
        &gzip(&labels(&[4, 2])),
    );
    let data = Mnist::load(dir.path(), 3, Some(5)).unwrap();
    assert_eq!(data.train.labels, vec![0, 1, 2, 3, 4]);
    assert_eq!(data.valid.labels, vec![7, 8, 9]);
    assert_eq!(data.test.labels, vec![4, 2]);
    let all = Mnist::load(dir.path(), 0, None).unwrap();
    assert_eq!((all.train.len(), all.valid.len()), (10, 0));
    let e = Mnist::load(dir.path(), 10, None).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Validation {
                validation: 10,
                available: 10,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn missing_directory_names_the_file_it_looked_for() {
    let dir = Path::new("/nonexistent/mnist");
    let e = Mnist::load(dir, 0, None).unwrap_err();
    let msg = e.to_string();
    // The path as this OS joins it (`\` before the file name on Windows).
    let file = dir.join("train-images-idx3-ubyte.gz");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
}
