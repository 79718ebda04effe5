//! The CPU backend: GEMM through the `gemm` crate (AVX-512/AVX2/FMA chosen at run time), threads through `rayon`, and
//! fused elementwise passes. Implements the core's traits ([`crate::core::MlpBackend`] for [`CpuMlp`],
//! [`crate::core::GanBackend`] for [`CpuGan`], [`crate::core::OpsBackend`] for [`CpuOps`]); depends on `core/`, never
//! on `gpu/`.

pub mod gan;
pub mod kernels;
pub mod mlp;
pub mod ops;

pub use gan::CpuGan;
pub use mlp::CpuMlp;
pub use ops::CpuOps;
