//! Context-level ops: computed by a context's backend on caller buffers, with no object of their own (today softmax
//! cross-entropy). What a backend implements ([`OpsBackend`]) and the checked API on top ([`Ops`], implemented for
//! every backend at once: every argument rule and its message is written here, once).

use crate::error::{bad_arg, Result};

/// The most logits one softmax cross-entropy call takes (`rows * classes`): 2^30, so that every element offset of the
/// logits and the per-row losses after them fits a `u32` on the GPU.
pub const MAX_SOFTMAX_LOGITS: usize = 1 << 30;

/// What a backend implements for the context-level ops. The `run_*` methods get arguments that [`Ops`] already
/// checked, and may assume them.
pub trait OpsBackend: Send + Sync {
    /// The backend's own limits on a softmax cross-entropy over `rows x classes`, beyond [`MAX_SOFTMAX_LOGITS`] (none
    /// by default).
    fn check_softmax_ce_limits(&self, _rows: usize, _classes: usize) -> Result<()> {
        Ok(())
    }
    /// Softmax cross-entropy of `z [rows, classes]` (row-major, every value finite) against `labels [rows]` (each
    /// below `classes`): returns the sum over rows of `logsumexp(z_r) - z_r[y_r]`, in f64; when `dz` is given
    /// (`[rows, classes]`), writes `dz = (softmax(z_r) - onehot(y_r)) * scale` into it.
    fn run_softmax_ce(
        &self,
        z: &[f32],
        labels: &[u32],
        classes: usize,
        dz: Option<&mut [f32]>,
        scale: f32,
    ) -> Result<f64>;
}

/// The checked API of the context-level ops, whatever the backend (`impl<T: OpsBackend> Ops for T`; not implemented
/// by hand).
pub trait Ops: OpsBackend {
    /// Mean softmax cross-entropy of `z [rows, classes]` against `labels [rows]` (`rows = labels.len()`), as PyTorch's
    /// `CrossEntropyLoss`; its gradient `(softmax(z_r) - onehot(y_r)) / rows` into `dz` when `dz` is not empty (it must
    /// then hold `rows * classes` values). Every argument is checked before any work.
    fn softmax_ce(&self, z: &[f32], labels: &[u32], classes: usize, dz: &mut [f32]) -> Result<f32> {
        let rows = labels.len();
        if rows == 0 || classes == 0 {
            return Err(bad_arg!(
                "softmax cross-entropy over {rows} rows of {classes} classes: both must be at least 1"
            ));
        }
        let want = rows
            .checked_mul(classes)
            .filter(|&n| n <= MAX_SOFTMAX_LOGITS)
            .ok_or_else(|| {
                bad_arg!(
                    "softmax cross-entropy over {rows} rows of {classes} classes: more than 2^30 logits"
                )
            })?;
        if z.len() != want {
            return Err(bad_arg!(
                "logits have {} values, expected {rows} rows x {classes} classes",
                z.len()
            ));
        }
        if !dz.is_empty() && dz.len() != want {
            return Err(bad_arg!(
                "gradient buffer has {} values, expected {want} (or 0 for none)",
                dz.len()
            ));
        }
        if let Some(r) = labels.iter().position(|&y| y as usize >= classes) {
            return Err(bad_arg!(
                "labels[{r}] (row {r}) is {}, expected a class below {classes}",
                labels[r]
            ));
        }
        if let Some(i) = z.iter().position(|v| !v.is_finite()) {
            return Err(bad_arg!(
                "logits[{i}] (row {}, class {}) is {}, expected a finite number",
                i / classes,
                i % classes,
                z[i]
            ));
        }
        self.check_softmax_ce_limits(rows, classes)?;
        let dz = if dz.is_empty() { None } else { Some(dz) };
        let sum = self.run_softmax_ce(z, labels, classes, dz, 1.0 / rows as f32)?;
        Ok((sum / rows as f64) as f32)
    }
}

impl<T: OpsBackend + ?Sized> Ops for T {}
