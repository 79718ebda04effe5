//! gan_native: the arithmetic of deno-gan (fused MLP blocks, losses, Adam, whole GAN steps), called from Deno through
//! the C ABI in `ffi.rs`. See docs/ARCHITECTURE.md for the math and layouts.

pub mod context;
pub mod cpu;
pub mod error;
pub mod ffi;
pub mod gpu;
pub mod registry;
pub mod rng;
pub mod spec;
