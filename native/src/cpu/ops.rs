//! The context-level ops on the CPU ([`crate::core::OpsBackend`]): the kernels of `kernels.rs` on caller buffers.

use super::kernels;
use crate::core::OpsBackend;
use crate::error::Result;

/// The CPU backend's context-level ops (stateless: they run on the calling context's threads).
pub struct CpuOps;

impl OpsBackend for CpuOps {
    fn run_softmax_ce(
        &self,
        z: &[f32],
        labels: &[u32],
        classes: usize,
        dz: Option<&mut [f32]>,
        scale: f32,
    ) -> Result<f64> {
        Ok(kernels::softmax_ce(z, labels, classes, dz, scale))
    }
}
