//! The IDX reader on arbitrary and mutated bytes: it must return `Ok` or a typed error,
//! never panic. (`PROPTEST_CASES=1000000 cargo test --release fuzz_idx` runs it longer.)

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use mnist_nn::data::idx::{parse_images, parse_labels};
use proptest::prelude::*;

/// A valid header for `count` images of `rows × cols`, then `body`.
fn images_file(count: u32, rows: u32, cols: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [2051u32, count, rows, cols] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Cases per property: 2,000, or `PROPTEST_CASES` when set (an explicit count in the
/// config would otherwise override the variable).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_images(Path::new("x"), bytes.clone());
        let _ = parse_labels(Path::new("x.gz"), bytes);
    }

    #[test]
    fn plausible_headers_with_any_sizes_never_panic(
        count in any::<u32>(),
        rows in prop_oneof![Just(28u32), any::<u32>()],
        cols in prop_oneof![Just(28u32), any::<u32>()],
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        gz in any::<bool>(),
    ) {
        let file = images_file(count, rows, cols, &body);
        let file = if gz { gzip(&file) } else { file };
        let result = parse_images(Path::new("f"), file);
        // Only exactly count·784 pixels after a 28×28 header is accepted.
        let valid = rows == 28 && cols == 28 && body.len() as u64 == u64::from(count) * 784;
        prop_assert_eq!(result.is_ok(), valid);
    }

    #[test]
    fn a_real_file_with_flipped_or_cut_bytes_never_panics(
        flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8),
        cut in 0usize..2000,
    ) {
        let mut labels = vec![0u8, 0, 8, 1, 0, 0, 0, 100];
        labels.extend((0..100u8).map(|i| i % 10));
        let mut gz = gzip(&labels);
        for (at, byte) in flips {
            if let Some(b) = gz.get_mut(at) {
                *b ^= byte;
            }
        }
        gz.truncate(cut.max(1));
        let _ = parse_labels(Path::new("labels.gz"), gz);
    }
}
