//! The GPU backend: wgpu compute shaders (WGSL, `shaders/*.wgsl`) mirroring the CPU backend's arithmetic. Implements
//! the core's traits ([`crate::core::MlpBackend`] for [`GpuMlp`], [`crate::core::GanBackend`] for [`GpuGan`],
//! [`crate::core::OpsBackend`] for [`GpuOps`]); depends on `core/`, never on `cpu/`.
//!
//! - [`device::GpuDevice`]: adapter choice, error capture, buffers, the pipeline / bind-group caches, submission.
//! - [`mlp::GpuMlp`]: an MLP whose flat parameters, gradients, Adam moments and running statistics live on the device;
//!   `passes.rs` records its forward, backward and Adam, `penalty.rs` the gradient penalties' second-order pass.
//! - [`gan::GpuGan`]: the seed's GAN step, many steps per submission, data and noise on the device.
//! - [`ops::GpuOps`]: the context-level ops (softmax cross-entropy) on the context's device.
//!
//! See docs/ARCHITECTURE.md for the math; every kernel file lists its bindings and shapes in its header.

pub mod device;
pub mod gan;
pub mod mlp;
pub mod ops;
mod passes;
mod penalty;
pub mod uniforms;

pub use device::GpuDevice;
pub use gan::GpuGan;
pub use mlp::GpuMlp;
pub use ops::GpuOps;
