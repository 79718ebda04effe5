//! The CPU backend: GEMM through the `gemm` crate (AVX-512/AVX2/FMA chosen at run time), threads through `rayon`, and
//! fused elementwise passes.

pub mod gan;
pub mod kernels;
pub mod mlp;
