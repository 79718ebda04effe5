//! Where a GAN run stands, the same on every backend: the epoch schedule (batches per epoch, the position of a step),
//! each epoch's sample order, the global step, and the step at which the last call diverged.

use super::config::GanConfig;
use super::spec::{check_gan, check_gan_data, Spec};
use crate::error::{bad_arg, Result};
use crate::rng;

/// The epoch schedule of a dataset of `count` images in batches of `batch_size`: every epoch visits every image once,
/// in its own shuffled order; its last batch holds the remainder (it may be short).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub count: usize,
    pub batch_size: usize,
}

/// Where a step falls in the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The epoch (0-based).
    pub epoch: u64,
    /// The batch in the epoch (0-based).
    pub batch: u64,
    /// Images in this batch (0 without a dataset).
    pub rows: usize,
}

impl Schedule {
    pub fn batches_per_epoch(&self) -> u64 {
        self.count.div_ceil(self.batch_size) as u64
    }

    /// The position of global step `step` (0-based over the whole run).
    pub fn position(&self, step: u64) -> Position {
        let nb = self.batches_per_epoch().max(1);
        let (epoch, batch) = (step / nb, step % nb);
        let b = self.batch_size;
        let rows = b.min(self.count.saturating_sub(batch as usize * b));
        Position { epoch, batch, rows }
    }
}

/// A dataset pixel (0 black, 255 white) as the networks see it: torchvision's `ToTensor` (`p / 255`) then
/// `Normalize(0.5, 0.5)`, in float32 as PyTorch computes it. The GPU's data kernel (gpu/shaders/data.wgsl) computes
/// the same expression.
#[inline]
pub fn unit_pixel(p: u8) -> f32 {
    (p as f32 / 255.0 - 0.5) / 0.5
}

/// GPU work submitted by a thread so far (a running total; the difference of two snapshots is the work in between):
/// dispatches recorded, the barriers wgpu inserts between them, submissions, and the CPU time spent recording and
/// submitting them (see `gpu::device::Batch`). The CPU backend records nothing: it has no such count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkCount {
    pub dispatches: u64,
    /// Dispatches that bind a buffer which an earlier dispatch of the same compute pass bound: every binding is
    /// `read_write`, so wgpu puts a pipeline barrier before each of them (`gpu::device::Batch::dispatch`).
    pub barriers: u64,
    pub submissions: u64,
    /// Workgroups launched by the dispatches (the product of each grid).
    pub workgroups: u64,
    /// Nanoseconds from a batch's first recorded dispatch until its queue submit began: recording the dispatches,
    /// uploading their uniforms, encoding the command buffer.
    pub record_ns: u64,
    /// Nanoseconds inside the queue submits. Short on a hardware GPU; a software adapter (lavapipe) blocks in it until
    /// the previous submission has run, so there it holds the wait for the GPU.
    pub submit_ns: u64,
}

impl WorkCount {
    /// The work between snapshot `before` and this one.
    pub fn since(&self, before: &WorkCount) -> WorkCount {
        WorkCount {
            dispatches: self.dispatches - before.dispatches,
            barriers: self.barriers - before.barriers,
            submissions: self.submissions - before.submissions,
            workgroups: self.workgroups - before.workgroups,
            record_ns: self.record_ns - before.record_ns,
            submit_ns: self.submit_ns - before.submit_ns,
        }
    }
}

/// What the last `Gan::step` call cost: its steps and the GPU work they recorded (all zero on the CPU backend and
/// before the first call).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCost {
    pub steps: u64,
    pub work: WorkCount,
}

impl CallCost {
    /// `{"dispatches_per_step", "barriers_per_step", "workgroups_per_step", "record_us_per_step",
    /// "submit_us_per_step", "submissions"}`: means over the call's steps (0 when there were none) and the call's
    /// submissions.
    pub fn info(&self) -> serde_json::Value {
        let per = |v: f64| {
            if self.steps == 0 {
                0.0
            } else {
                v / self.steps as f64
            }
        };
        let w = &self.work;
        serde_json::json!({
            "dispatches_per_step": per(w.dispatches as f64),
            "barriers_per_step": per(w.barriers as f64),
            "workgroups_per_step": per(w.workgroups as f64),
            "record_us_per_step": per(w.record_ns as f64 / 1e3),
            "submit_us_per_step": per(w.submit_ns as f64 / 1e3),
            "submissions": w.submissions,
        })
    }
}

/// The backend-neutral state of a GAN trainer.
#[derive(Clone, Debug)]
pub struct RunState {
    pub config: GanConfig,
    /// Image size: the generator's output, the discriminator's input.
    pub features: usize,
    /// Noise size: the generator's input.
    pub latent: usize,
    /// Whether the generator has BatchNorm (a batch of 1 cannot train it).
    g_has_bn: bool,
    /// The classes of a conditional model's labels (its embeddings'); `None` for the others.
    pub classes: Option<usize>,
    /// Whether the dataset's labels are loaded (`Gan::set_labels`; a new dataset drops them).
    pub has_labels: bool,
    /// The dataset's schedule (`count` 0 before `set_data`).
    pub schedule: Schedule,
    /// Steps taken over the whole run: the next step's global index (its noise stream and its place in the epochs).
    pub step: u64,
    /// The step at which the last `Gan::step` call diverged; `None` when it did not.
    pub diverged_step: Option<u64>,
    /// What the last `Gan::step` call cost (reported by `info`).
    pub last_call: CallCost,
    /// The sample order of epoch `order_epoch`, `[count]`.
    order: Vec<u32>,
    order_epoch: Option<u64>,
}

impl RunState {
    /// The state of a new run of generator `g` and discriminator `d`; checks that they fit together (`check_gan`).
    pub fn new(config: GanConfig, g: &Spec, d: &Spec) -> Result<RunState> {
        check_gan(g, d, config.batch_size, &config.recipe)?;
        Ok(RunState {
            config,
            features: g.output(),
            latent: g.data_input(),
            g_has_bn: g.has_bn(),
            classes: g.embed.as_ref().map(|e| e.classes),
            has_labels: false,
            schedule: Schedule {
                count: 0,
                batch_size: config.batch_size,
            },
            step: 0,
            diverged_step: None,
            last_call: CallCost::default(),
            order: Vec::new(),
            order_epoch: None,
        })
    }

    pub fn has_data(&self) -> bool {
        self.schedule.count > 0
    }

    pub fn batches_per_epoch(&self) -> u64 {
        self.schedule.batches_per_epoch()
    }

    /// The position of the next step.
    pub fn position(&self) -> Position {
        self.schedule.position(self.step)
    }

    /// Checks a dataset `pixels [count, features]` for this run (`check_gan_data`).
    pub fn check_data(&self, pixels: usize, count: usize) -> Result<()> {
        let (f, b) = (self.features, self.config.batch_size);
        check_gan_data(pixels, count, f, b, self.g_has_bn)
    }

    /// Starts the schedule over a new dataset of `count` images (the step count goes on).
    pub fn data_loaded(&mut self, count: usize) {
        self.schedule.count = count;
        self.has_labels = false;
        self.order = vec![0u32; count];
        self.order_epoch = None;
    }

    /// The position of step `step` and the dataset rows of its batch, `[rows]`; draws the epoch's sample order
    /// (`rng::permutation`) when the epoch is not the last one drawn.
    pub fn batch(&mut self, step: u64) -> (Position, &[u32]) {
        let pos = self.schedule.position(step);
        if self.order_epoch != Some(pos.epoch) {
            rng::permutation(&mut self.order, self.config.seed, pos.epoch as u32);
            self.order_epoch = Some(pos.epoch);
        }
        let start = pos.batch as usize * self.config.batch_size;
        (pos, &self.order[start..start + pos.rows])
    }

    /// Checks that `n` more steps stay within the noise streams (the stream of a step is its index as a u32).
    pub fn check_steps(&self, n: usize) -> Result<()> {
        let end = self.step.saturating_add(n as u64);
        if end > 1 << 32 {
            return Err(bad_arg!(
                "steps {} to {end} are beyond the noise streams (at most 2^32)",
                self.step
            ));
        }
        Ok(())
    }

    /// Moves the run to global step `step` (for resume).
    pub fn set_step(&mut self, step: u64) -> Result<()> {
        if step > u32::MAX as u64 {
            return Err(bad_arg!(
                "step {step} is beyond the noise streams (at most 2^32 - 1)"
            ));
        }
        self.step = step;
        Ok(())
    }

    /// `{"step", "epoch", "batch", "rows", "batches_per_epoch", "batch_size", "seed", "diverged_step"}` and the last
    /// call's cost (`CallCost::info`: `dispatches_per_step`, `barriers_per_step`, `workgroups_per_step`,
    /// `record_us_per_step`, `submit_us_per_step`, `submissions`).
    pub fn info(&self) -> serde_json::Value {
        let p = self.position();
        let mut v = serde_json::json!({
            "step": self.step, "epoch": p.epoch, "batch": p.batch, "rows": p.rows,
            "batches_per_epoch": self.batches_per_epoch(), "batch_size": self.config.batch_size,
            "seed": self.config.seed, "diverged_step": self.diverged_step,
        });
        if let (Some(v), serde_json::Value::Object(c)) = (v.as_object_mut(), self.last_call.info())
        {
            v.extend(c);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_batch_of_an_epoch_holds_the_remainder() {
        let s = Schedule {
            count: 37,
            batch_size: 8,
        };
        assert_eq!(s.batches_per_epoch(), 5);
        let at = |step| {
            let p = s.position(step);
            (p.epoch, p.batch, p.rows)
        };
        assert_eq!(at(0), (0, 0, 8));
        assert_eq!(at(4), (0, 4, 5));
        assert_eq!(at(5), (1, 0, 8));
        let empty = Schedule {
            count: 0,
            batch_size: 8,
        };
        assert_eq!(empty.position(3).rows, 0);
    }
}
