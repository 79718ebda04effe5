//! The context-level ops on the GPU ([`crate::core::OpsBackend`]): softmax cross-entropy in one dispatch of
//! softmax.wgsl (one workgroup per row), on the context's device.
//!
//! The mean: the kernel writes each row's loss (f32) beside the gradient, the host reads both back in one copy and sums
//! the row losses in f64, in row order. The gradient has to come back to the host anyway (the caller's buffer), and
//! `rows` more floats cost nothing beside `rows * classes`; a sum on the host is deterministic, needs no second
//! dispatch or cross-workgroup reduction, and accumulates as the CPU backend does (in f64).

use super::device::{grid1d, Batch, GpuBuf, GpuDevice, Kernel, Read, Shader};
use super::mlp::copy_f32;
use super::uniforms::SoftmaxU;
use crate::core::OpsBackend;
use crate::error::{bad_arg, Result};
use std::sync::{Arc, Mutex};

const K_SOFTMAX_CE: Kernel = Kernel::new(Shader::Softmax, "softmax_ce");

/// The device buffers of the ops, grow-only (sized for the largest call so far; nothing is allocated by a call that
/// fits).
struct Scratch {
    /// `[floats]`: the logits (then the gradient) and the per-row losses.
    data: GpuBuf,
    /// `[rows]` u32: the labels.
    labels: GpuBuf,
    floats: usize,
    rows: usize,
}

/// The GPU backend's context-level ops, on the context's device.
pub struct GpuOps {
    dev: Arc<GpuDevice>,
    scratch: Mutex<Option<Scratch>>,
}

impl GpuOps {
    pub fn new(dev: Arc<GpuDevice>) -> GpuOps {
        GpuOps {
            dev,
            scratch: Mutex::new(None),
        }
    }

    /// Grows the scratch buffers to hold `floats` floats and `rows` labels.
    fn reserve<'a>(
        &self,
        s: &'a mut Option<Scratch>,
        floats: usize,
        rows: usize,
    ) -> Result<&'a Scratch> {
        let fits = s
            .as_ref()
            .is_some_and(|s| s.floats >= floats && s.rows >= rows);
        if !fits {
            let (floats, rows) = match s.as_ref() {
                Some(o) => (floats.max(o.floats), rows.max(o.rows)),
                None => (floats, rows),
            };
            *s = None;
            *s = Some(Scratch {
                data: self.dev.buffer("softmax ce logits", floats as u64 * 4)?,
                labels: self.dev.buffer("softmax ce labels", rows as u64 * 4)?,
                floats,
                rows,
            });
        }
        Ok(s.as_ref().expect("allocated above"))
    }
}

impl OpsBackend for GpuOps {
    /// One workgroup per row along a grid of at most `max_dim^2` workgroups; the logits and the row losses in one
    /// storage binding.
    fn check_softmax_ce_limits(&self, rows: usize, classes: usize) -> Result<()> {
        let max_dim = self.dev.limits.max_compute_workgroups_per_dimension as usize;
        if rows > max_dim * max_dim {
            return Err(bad_arg!(
                "softmax cross-entropy over {rows} rows is too large for this GPU (at most {} rows)",
                max_dim * max_dim
            ));
        }
        let bytes = (rows * classes + rows) as u64 * 4;
        if bytes > self.dev.max_binding() {
            return Err(bad_arg!(
                "softmax cross-entropy over {rows} rows of {classes} classes needs a GPU buffer of {bytes} bytes, more \
                 than this device allows per storage binding ({} bytes)",
                self.dev.max_binding()
            ));
        }
        Ok(())
    }

    fn run_softmax_ce(
        &self,
        z: &[f32],
        labels: &[u32],
        classes: usize,
        dz: Option<&mut [f32]>,
        scale: f32,
    ) -> Result<f64> {
        let (rows, n) = (labels.len(), z.len());
        let mut guard = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let s = self.reserve(&mut guard, n + rows, rows)?;
        self.dev.write(&s.data, 0, bytemuck::cast_slice(z))?;
        self.dev.write(&s.labels, 0, bytemuck::cast_slice(labels))?;
        let u = SoftmaxU {
            rows: rows as u32,
            classes: classes as u32,
            loss_off: n as u32,
            grad: dz.is_some() as u32,
            scale,
            ..Default::default()
        };
        let mut b = Batch::new();
        let bind = self
            .dev
            .bind(&[Some(&s.data), Some(&s.labels), None, None, None, None])?;
        let grid = grid1d(
            rows as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        );
        b.dispatch(&self.dev.pipeline(K_SOFTMAX_CE)?, &bind, &u, grid);
        // The gradient and the row losses after it in one read, or the row losses alone.
        let from = if dz.is_some() { 0 } else { n };
        let r = self.dev.execute(
            b,
            &[Read {
                buf: &s.data,
                offset: from as u64 * 4,
                len: (n + rows - from) as u64 * 4,
            }],
        )?;
        let mut out = vec![0f32; n + rows - from];
        copy_f32(&mut out, &r[0]);
        let (grad, losses) = out.split_at(n - from);
        if let Some(dz) = dz {
            dz.copy_from_slice(grad);
        }
        Ok(losses.iter().map(|&l| l as f64).sum())
    }
}
