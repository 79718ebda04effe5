//! gan_native: the arithmetic of deno-gan (fused MLP blocks, losses, Adam, whole GAN steps), called from Deno through
//! the C ABI in `ffi.rs`. See docs/ARCHITECTURE.md for the math, the layouts and the module map:
//!
//! - `core/`: what every backend shares (spec, configs, step record, buffer selector, schedule, the backend traits);
//! - `cpu/`, `gpu/`: the two backends, siblings that depend on `core/` and never on each other;
//! - `context.rs`: a backend's context (threads, device) and the one place that picks the backend of a new object;
//! - `registry.rs`: the handle table; `ffi.rs`: the C ABI; `rng.rs`: the counter-based random streams.

pub mod context;
pub mod core;
pub mod cpu;
pub mod error;
pub mod ffi;
pub mod gpu;
pub mod registry;
pub mod rng;
