//! The machine's limits, measured in the same run as the training figures: the FMA peak
//! of its vector units and the float32 matrix-product rate of each backend's own GEMM.

use std::hint::black_box;
use std::time::Instant;

use burn::prelude::*;

use crate::median;

/// What the machine is: CPU model, hostname, logical CPUs.
pub struct Host {
    /// `model name` from /proc/cpuinfo, with the CPU family and model numbers (a
    /// virtual machine may name only the brand, "AMD EPYC", for Zen 4 and Zen 5 alike).
    pub cpu: String,
    /// The hostname, for the results file's name.
    pub name: String,
    /// Logical CPUs the process may use.
    pub cpus: usize,
    /// The vector extensions the CPU reports, e.g. "AVX2, FMA, AVX-512F, AVX-512BW".
    pub vector: String,
}

impl Host {
    /// Reads the host's description from /proc (Linux; elsewhere what the OS tells);
    /// unknown fields say so.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |key: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        };
        let cpu = match (field("model name"), field("cpu family"), field("model")) {
            (Some(name), Some(family), Some(model)) => {
                format!("{name}, family {family} model {model}")
            }
            (Some(name), _, _) => name,
            _ => match (field("CPU implementer"), field("CPU part")) {
                // Arm Linux names no model, only these two numbers.
                (Some(maker), Some(part)) => format!("Arm CPU, implementer {maker} part {part}"),
                _ => other_os_cpu_name().unwrap_or_else(|| "unknown CPU".into()),
            },
        };
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            cpu,
            name,
            cpus,
            vector: vector_extensions(),
        }
    }
}

/// The CPU's name where there is no /proc/cpuinfo: macOS's `sysctl
/// machdep.cpu.brand_string` ("Apple M2"), Windows's `PROCESSOR_IDENTIFIER`.
fn other_os_cpu_name() -> Option<String> {
    if let Ok(id) = std::env::var("PROCESSOR_IDENTIFIER") {
        return Some(id);
    }
    let out = std::process::Command::new("sysctl")
        .args(["-n", "machdep.cpu.brand_string"])
        .output()
        .ok()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !name.is_empty()).then_some(name)
}

/// The names of the extensions marked present, in the order given.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn present(found: &[(&'static str, bool)]) -> Vec<&'static str> {
    found
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect()
}

/// The SIMD extensions that matter to float32 kernels, as the CPU reports them.
fn vector_extensions() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let found = [
            ("AVX", is_x86_feature_detected!("avx")),
            ("AVX2", is_x86_feature_detected!("avx2")),
            ("FMA", is_x86_feature_detected!("fma")),
            ("AVX-512F", is_x86_feature_detected!("avx512f")),
            ("AVX-512BW", is_x86_feature_detected!("avx512bw")),
            ("AVX-512VL", is_x86_feature_detected!("avx512vl")),
            ("AVX-512BF16", is_x86_feature_detected!("avx512bf16")),
        ];
        let names = present(&found);
        if names.is_empty() {
            "SSE2 only".into()
        } else {
            names.join(", ")
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        let found = [
            ("NEON", has!("neon")),
            ("FP16", has!("fp16")),
            ("BF16", has!("bf16")),
            ("I8MM", has!("i8mm")),
            ("SVE", has!("sve")),
            ("SVE2", has!("sve2")),
        ];
        present(&found).join(", ")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "not x86-64 or 64-bit Arm".into()
    }
}

/// The widest FMA unit [`fma_peak`] measured with.
pub fn fma_width() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        return "AVX-512";
    }
    if cfg!(target_arch = "aarch64") {
        return "NEON";
    }
    "AVX2"
}

/// Which of the `gemm` crate's kernels flex's products run on this CPU: its AVX-512
/// ones (compiled in through its `x86-v4` feature, which this crate turns on) where the
/// CPU has AVX-512F (gemm's own run-time test), else its AVX2 ones (NEON on 64-bit Arm).
pub fn gemm_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        return "gemm, AVX-512 kernels";
    }
    if cfg!(target_arch = "aarch64") {
        return "gemm, NEON kernels";
    }
    "gemm, AVX2 kernels"
}

/// Independent accumulators of the FMA loop (registers only, no loads): twelve cover a
/// 4–5-cycle FMA latency on two FMA ports.
#[cfg(target_arch = "x86_64")]
const ACCUMULATORS: usize = 12;
/// Floating-point operations of one 256-bit FMA: 8 lanes × (multiply + add).
#[cfg(target_arch = "x86_64")]
const FLOP_PER_FMA: f64 = 16.0;
/// Independent accumulators of the NEON loop: sixteen cover a 4-cycle FMA latency on
/// four FMA pipes (Apple's and Arm's big cores), half the 32 vector registers.
#[cfg(target_arch = "aarch64")]
const NEON_ACCUMULATORS: usize = 16;

/// One thread's FMA loop: `iters` rounds, returning a value to keep it from being
/// optimised away.
type FmaLoop = fn(u64) -> f32;

/// Peak float32 FMA rate in GFLOP/s over `threads` threads with the widest vector unit
/// the CPU has (512-bit where AVX-512F is present, else 256-bit AVX2; 128-bit NEON on
/// 64-bit Arm), or `None` where there is none of these (the figure is then left out of
/// the table).
pub fn fma_peak(threads: usize) -> Option<f64> {
    let (kernel, flop_per_iter) = fma_kernel()?;
    let iters: u64 = 50_000_000;
    let run = || {
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| black_box(kernel(black_box(iters))));
            }
        });
        started.elapsed().as_secs_f64()
    };
    run(); // warm-up: clocks up, threads started once
    let seconds = median((0..5).map(|_| run()).collect());
    Some(iters as f64 * flop_per_iter * threads as f64 / seconds / 1e9)
}

/// This CPU's widest FMA loop and the floating-point operations of one of its rounds.
#[cfg(target_arch = "x86_64")]
fn fma_kernel() -> Option<(FmaLoop, f64)> {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        return None;
    }
    let round = ACCUMULATORS as f64 * FLOP_PER_FMA;
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected just above.
        Some((|n| unsafe { fma_loop_512(n) }, 2.0 * round))
    } else {
        // SAFETY: AVX2 and FMA were detected just above.
        Some((|n| unsafe { fma_loop(n) }, round))
    }
}

/// This CPU's widest FMA loop and the floating-point operations of one of its rounds:
/// NEON, which every 64-bit Arm CPU has (4 lanes × multiply + add per FMA).
#[cfg(target_arch = "aarch64")]
fn fma_kernel() -> Option<(FmaLoop, f64)> {
    // SAFETY: NEON is part of every 64-bit Arm CPU (the target requires it).
    Some((
        |n| unsafe { fma_loop_neon(n) },
        NEON_ACCUMULATORS as f64 * 8.0,
    ))
}

/// No FMA loop written for this architecture.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn fma_kernel() -> Option<(FmaLoop, f64)> {
    None
}

/// `iters` rounds of one FMA on each of [`NEON_ACCUMULATORS`] independent 4-lane
/// registers.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
fn fma_loop_neon(iters: u64) -> f32 {
    use std::arch::aarch64::*;
    let a = vdupq_n_f32(0.999_999);
    let b = vdupq_n_f32(1e-7);
    let mut acc = [vdupq_n_f32(1.0); NEON_ACCUMULATORS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = vfmaq_f32(b, *r, a);
        }
    }
    let mut total = 0.0;
    for r in acc {
        total += vaddvq_f32(r);
    }
    total
}

/// `iters` rounds of one FMA on each of [`ACCUMULATORS`] independent 8-lane registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); ACCUMULATORS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut total = _mm256_setzero_ps();
    for r in acc {
        total = _mm256_add_ps(total, r);
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 f32, the width of one 256-bit register.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
    lanes.iter().sum()
}

/// [`fma_loop`] on 16-lane 512-bit registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); ACCUMULATORS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut total = _mm512_setzero_ps();
    for r in acc {
        total = _mm512_add_ps(total, r);
    }
    _mm512_reduce_add_ps(total)
}

/// The float32 rate in GFLOP/s of one `(m, k)·(k, n)` product through the backend's
/// own matmul (matrixmultiply for ndarray, gemm for flex), median of `reps` after a
/// warm-up; the result is read back so that asynchronous devices are timed in full.
pub fn gemm_gflops(device: &Device, [m, k, n]: [usize; 3], reps: usize) -> f64 {
    let a = Tensor::<2>::ones([m, k], device).mul_scalar(0.5);
    let b = Tensor::<2>::ones([k, n], device).mul_scalar(0.25);
    let once = || {
        let started = Instant::now();
        let c = a.clone().matmul(b.clone());
        black_box(c.slice([0..1, 0..1]).into_data());
        started.elapsed().as_secs_f64()
    };
    once();
    let seconds = median((0..reps).map(|_| once()).collect());
    2.0 * (m * k * n) as f64 / seconds / 1e9
}
