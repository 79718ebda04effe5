//! The CPU backend: GEMM through the `gemm` crate (AVX-512/AVX2/FMA chosen at run time), threads through `rayon`, and
//! fused elementwise passes. Implements the core's traits ([`crate::core::MlpBackend`] for [`CpuMlp`],
//! [`crate::core::GanBackend`] for [`CpuGan`]); depends on `core/`, never on `gpu/`.

pub mod gan;
pub mod kernels;
pub mod mlp;

pub use gan::CpuGan;
pub use mlp::CpuMlp;
