//! The [`Workbench`]: a network, a batch and a learning rate, with every matrix of the
//! seed equations worked for them, and the update applied one step at a time.

use burn::prelude::*;

use super::explain::{ExplainError, Explained, explain};
use super::worked::{Computed, Stepped, Worked, compute};
use super::{Batch, MAX_HIDDEN, MAX_M};
use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::model::{HostParams, TwoLayerNet};

/// A network on a CPU device, the batch it is shown, `α`, and what the library computed
/// for them (kept, so that [`Workbench::worked`] and [`Workbench::explain`] compute
/// nothing again).
#[derive(Debug)]
pub struct Workbench {
    device: Device,
    net: TwoLayerNet,
    batch: Batch,
    alpha: f64,
    step: usize,
    stepped: Option<Stepped>,
    computed: Computed,
}

impl Workbench {
    /// A workbench for the network `params` (copied onto the CPU backend `flex`) on
    /// `batch`, with learning rate `alpha`. Works the equations once.
    ///
    /// An error when `alpha` is not a finite positive number, when the batch holds
    /// none or more than [`MAX_M`] images, or the network more than [`MAX_HIDDEN`]
    /// hidden units or parameters of the wrong sizes.
    pub fn new(params: &HostParams, batch: Batch, alpha: f64) -> Result<Self> {
        check_alpha(alpha)?;
        check_params(params)?;
        if !(1..=MAX_M).contains(&batch.m()) {
            return Err(Error::Shape {
                what: "the equations' batch",
                expected: format!("1 to {MAX_M} images"),
                found: format!("{} images", batch.m()),
            });
        }
        let device = BackendKind::Flex.device()?;
        let net = TwoLayerNet::from_host(params, &device);
        let computed = compute(&net, &batch, &device)?;
        Ok(Self {
            device,
            net,
            batch,
            alpha,
            step: 0,
            stepped: None,
            computed,
        })
    }

    /// Everything worked for the current weights: the matrices, the loss, the
    /// predictions and autodiff's gradients. `stepped` is that of the last
    /// [`Workbench::step`], if there was one.
    pub fn worked(&self) -> Result<Worked> {
        let c = &self.computed;
        Ok(Worked {
            step: self.step,
            m: self.batch.m(),
            hidden: self.net.hidden(),
            alpha: self.alpha,
            source: self.batch.source,
            indices: self.batch.indices.clone(),
            labels: self.batch.labels.clone(),
            predictions: c.predictions.clone(),
            loss: c.loss,
            stepped: self.stepped,
            matrices: c.matrices.clone(),
            autodiff: c.autodiff.clone(),
        })
    }

    /// One update of the seed, `W −= α·dW, b −= α·db` with the hand-derived gradients,
    /// by the library's [`TwoLayerNet::gradient_descent`]; then everything is worked
    /// again and `stepped` holds the loss before and after.
    pub fn step(&mut self) -> Result<Worked> {
        let grads = self.computed.grads.clone();
        let net = self.net.clone().gradient_descent(grads, self.alpha);
        let computed = compute(&net, &self.batch, &self.device)?;
        self.stepped = Some(Stepped {
            loss_before: self.computed.loss,
            loss_after: computed.loss,
        });
        self.net = net;
        self.computed = computed;
        self.step += 1;
        self.worked()
    }

    /// How cell `[row, col]` of the matrix `matrix` (one of
    /// [`super::Matrices::NAMES`]) is computed, with the actual numbers, recomputed on
    /// the host in `f64` from the library's matrices.
    pub fn explain(&self, matrix: &str, row: usize, col: usize) -> Result<Explained, ExplainError> {
        explain(
            &self.computed.matrices,
            &self.batch,
            self.step,
            matrix,
            row,
            col,
        )
    }

    /// `α` for the next steps (an error unless finite and positive).
    pub fn set_alpha(&mut self, alpha: f64) -> Result<()> {
        check_alpha(alpha)?;
        self.alpha = alpha;
        Ok(())
    }

    /// The learning rate `α`.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Updates applied so far.
    pub fn steps(&self) -> usize {
        self.step
    }

    /// The batch.
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// The network as it is now.
    pub fn net(&self) -> &TwoLayerNet {
        &self.net
    }
}

fn check_alpha(alpha: f64) -> Result<()> {
    if alpha.is_finite() && alpha > 0.0 {
        return Ok(());
    }
    Err(Error::Shape {
        what: "alpha",
        expected: "a finite number above 0".into(),
        found: format!("value {alpha}"),
    })
}

fn check_params(p: &HostParams) -> Result<()> {
    let h = p.hidden;
    let sizes = [
        ("W1", p.w1.len(), h * crate::IMAGE_PIXELS),
        ("b1", p.b1.len(), h),
        ("W2", p.w2.len(), crate::NUM_CLASSES * h),
        ("b2", p.b2.len(), crate::NUM_CLASSES),
    ];
    if !(1..=MAX_HIDDEN).contains(&h) {
        return Err(Error::Shape {
            what: "the network",
            expected: format!("1 to {MAX_HIDDEN} hidden units"),
            found: format!("{h} hidden units"),
        });
    }
    for (what, found, expected) in sizes {
        if found != expected {
            return Err(Error::Shape {
                what,
                expected: format!("{expected} values"),
                found: format!("{found} values"),
            });
        }
    }
    Ok(())
}
