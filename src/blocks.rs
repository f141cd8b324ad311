//! Column blocks: one step on a batch too large for the device in one piece.
//!
//! A GPU caps every buffer ([`crate::data::mnist::MAX_TENSOR_BYTES`]: 128 MiB, WebGPU's
//! default and lavapipe's limit), and at the seed's full batch `X` is 784 × 55,000
//! `f32`, 172 MB. Such a step splits the batch by columns, `X = [X_1 | X_2 | … | X_k]`
//! with `m_1 + … + m_k = m`, and runs the forward and backward block by block. The mean
//! loss is the blocks' mean losses weighted by their share of the images,
//!
//! ```text
//! L = (1/m)·Σ_i ℓ_i = Σ_b (m_b/m)·L_b
//! ```
//!
//! so every gradient is the same weighted sum of the blocks' gradients,
//! `dW1 = Σ_b (m_b/m)·dW1_b` (and so for `b1`, `W2`, `b2`), and the update that follows
//! is the full batch's: only the order of the float sums differs. A batch that fits is
//! one block and takes the plain step.
//!
//! ```
//! use mnist_nn::blocks::{block_ranges, images_per_block};
//!
//! // 55,000 images at hidden 10 under a 128 MiB cap: the 784 pixel rows of X set the size.
//! let per_block = images_per_block(128 << 20, 10);
//! assert_eq!(per_block, 42_799);
//! assert_eq!(block_ranges(0..55_000, per_block), vec![0..42_799, 42_799..55_000]);
//! ```

use std::ops::Range;

use burn::prelude::*;

use crate::IMAGE_PIXELS;
use crate::autodiff::autodiff_pass;
use crate::gradients::Gradients;
use crate::manual::manual_pass;
use crate::model::TwoLayerNet;

/// One column block of a batch: `x` `(784, m_b)` and its one-hot labels `y` `(10, m_b)`.
#[derive(Debug, Clone)]
pub struct Block {
    /// `(784, m_b)` images, one per column.
    pub x: Tensor<2>,
    /// `(10, m_b)` one-hot labels.
    pub y: Tensor<2>,
}

/// The most images a block may have so that no tensor of a step exceeds `max_bytes`:
/// the largest per-image tensors are `X` (784 rows) and `Z1`, `A1`, `dZ1` (`hidden`
/// rows), all `f32`. At least 1.
pub fn images_per_block(max_bytes: usize, hidden: usize) -> usize {
    let column_bytes = IMAGE_PIXELS.max(hidden) * std::mem::size_of::<f32>();
    (max_bytes / column_bytes).max(1)
}

/// `range` cut into consecutive ranges of at most `per_block` (at least 1) images.
pub fn block_ranges(range: Range<usize>, per_block: usize) -> Vec<Range<usize>> {
    let per_block = per_block.max(1);
    (range.start..range.end)
        .step_by(per_block)
        .map(|start| start..(start + per_block).min(range.end))
        .collect()
}

/// What a pass over the blocks gives: the batch's mean loss `(1)`, its logits `Z2`
/// `(10, m)` (the blocks' side by side) and the gradients of the mean loss.
#[derive(Debug)]
pub struct BlockedPass {
    /// `(1)` `L = Σ_b (m_b/m)·L_b`.
    pub loss: Tensor<1>,
    /// `(10, m)` logits.
    pub z2: Tensor<2>,
    /// `Σ_b (m_b/m)·∂L_b/∂θ` for each parameter θ.
    pub grads: Gradients,
}

/// The hand-derived gradients of the whole batch from its `blocks`, each block's by
/// [`manual_pass`] (the forward and [`crate::manual::backward_manual`]). `net` is on a
/// plain device.
///
/// # Panics
///
/// When `blocks` is empty: a step needs at least one image.
pub fn manual_blocked(net: &TwoLayerNet, blocks: Vec<Block>) -> BlockedPass {
    blocked(blocks, |x, y| manual_pass(net, x, y))
}

/// Burn's autodiff gradients of the whole batch from its `blocks`, each block's by
/// its own `backward()`. `net` is on an autodiff device; what comes back is on the
/// plain one.
///
/// # Panics
///
/// When `blocks` is empty.
pub fn autodiff_blocked(net: &TwoLayerNet, blocks: Vec<Block>) -> BlockedPass {
    blocked(blocks, |x, y| autodiff_pass(net, x, y))
}

/// `pass` on each block, the results weighted by the block's share `m_b/m` and summed.
fn blocked(
    blocks: Vec<Block>,
    pass: impl Fn(Tensor<2>, Tensor<2>) -> (Tensor<1>, Tensor<2>, Gradients),
) -> BlockedPass {
    let m: usize = blocks.iter().map(|b| b.x.dims()[1]).sum();
    let mut sum: Option<(Tensor<1>, Gradients)> = None;
    let mut logits = Vec::with_capacity(blocks.len());
    for Block { x, y } in blocks {
        // w = m_b/m
        let w = x.dims()[1] as f64 / m as f64;
        let (loss, z2, grads) = pass(x, y);
        let (loss, grads) = (loss.mul_scalar(w), grads.scaled(w));
        sum = Some(match sum {
            None => (loss, grads),
            // L += (m_b/m)·L_b;  dθ += (m_b/m)·dθ_b
            Some((l, g)) => (l + loss, g.plus(grads)),
        });
        logits.push(z2);
    }
    let Some((loss, grads)) = sum else {
        panic!("a step needs at least one block of images");
    };
    BlockedPass {
        loss,
        z2: Tensor::cat(logits, 1),
        grads,
    }
}
