//! The `--backend` word and the Burn [`Device`] it stands for.

use std::fmt;
use std::sync::OnceLock;

use burn::prelude::*;
use burn::tensor::DeviceKind;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A Burn backend this program can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// `burn-ndarray` on the CPU (the design card's CPU backend; deprecated in Burn 0.22).
    /// Its matrix products (matrixmultiply) are slower than flex's on this network's
    /// shapes: see README's benchmark.
    Ndarray,
    /// `burn-flex`, Burn's pure-Rust CPU backend that succeeds ndarray; the default, as
    /// the fastest CPU backend here (its `gemm` products, and less overhead per op).
    #[default]
    Flex,
    /// `burn-wgpu` on the GPU (Vulkan, Metal or DX12); a software Vulkan driver such as
    /// Mesa's lavapipe also serves. The adapter is wgpu's default, or the one named by
    /// `CUBECL_WGPU_DEFAULT_DEVICE` (e.g. `DiscreteGpu(0)`, `IntegratedGpu(0)`, `Cpu`).
    Wgpu,
}

impl BackendKind {
    /// Every backend, in the order `--help` lists them.
    pub const ALL: [BackendKind; 3] = [BackendKind::Ndarray, BackendKind::Flex, BackendKind::Wgpu];

    /// The word used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// The plain (non-autodiff) device of this backend. For wgpu the adapter is
    /// requested now, so that a machine without one gets an error rather than a panic
    /// deep inside the first tensor operation.
    pub fn device(self) -> Result<Device> {
        match self {
            #[allow(deprecated)] // ndarray is the design card's CPU backend
            BackendKind::Ndarray => Ok(Device::ndarray()),
            BackendKind::Flex => Ok(Device::flex()),
            BackendKind::Wgpu => wgpu_device().map_err(|message| Error::Backend {
                backend: self.name().into(),
                message,
            }),
        }
    }
}

/// The default wgpu device, set up once per process. CubeCL registers its runtime
/// service only once, so a second `init()` from another thread would fail with
/// "Service already initialized"; every caller shares the first outcome instead.
fn wgpu_device() -> std::result::Result<Device, String> {
    static WGPU: OnceLock<std::result::Result<Device, String>> = OnceLock::new();
    WGPU.get_or_init(|| {
        Device::wgpu_options()
            .device_kind(DeviceKind::DefaultDevice)
            .init()
            .map_err(|e| {
                format!(
                    "no usable GPU adapter ({e}); install a Vulkan driver (e.g. Debian's \
                     mesa-vulkan-drivers) or train on the CPU with --backend flex or ndarray"
                )
            })
    })
    .clone()
}

impl std::str::FromStr for BackendKind {
    type Err = crate::word::UnknownWord;

    /// ```
    /// use mnist_nn::backend::BackendKind;
    /// assert_eq!("flex".parse::<BackendKind>(), Ok(BackendKind::Flex));
    /// assert!("cuda".parse::<BackendKind>().is_err());
    /// ```
    fn from_str(word: &str) -> Result<Self, Self::Err> {
        crate::word::UnknownWord::pick("backend", BackendKind::ALL, BackendKind::name, word)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
