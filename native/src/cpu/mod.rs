//! The CPU backend: GEMM through `gemm.rs` (our AVX2+FMA and portable microkernels, the `gemm` crate's on AVX-512,
//! chosen at run time) with the elementwise passes fused into its epilogues, threads through `rayon`. Implements the core's traits ([`crate::core::MlpBackend`] for [`CpuMlp`],
//! [`crate::core::GanBackend`] for [`CpuGan`], [`crate::core::OpsBackend`] for [`CpuOps`]); depends on `core/`, never
//! on `gpu/`.

pub mod gan;
pub mod gemm;
pub mod kernels;
pub mod mlp;
pub mod ops;

pub use gan::CpuGan;
pub use mlp::CpuMlp;
pub use ops::CpuOps;
