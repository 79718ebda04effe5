//! A GAN trainer on some backend: what a backend implements ([`GanBackend`], typed by its MLP) and the checked,
//! object-safe API every trainer has on top of it ([`Gan`], implemented for every backend at once).
//!
//! The trainer does not own its generator and discriminator (they stay addressable as MLPs between steps): every call
//! that trains takes them, as `&mut dyn MlpBackend`, and [`Gan`] hands the backend its own MLP type (or refuses MLPs
//! of another backend).

use super::family::check_aux;
use super::mlp::{check_labels, Mlp, MlpBackend};
use super::recipe::Model;
use super::record::STEP_OUTPUTS;
use super::run::{CallCost, RunState, WorkCount};
use crate::error::{bad_arg, bad_state, Code, Error, Result};
use std::any::Any;

/// What a backend implements for a GAN trainer. `run_steps` / `run_explicit` / `load_data` get arguments that [`Gan`]
/// already checked.
pub trait GanBackend: Sized + Send + 'static {
    /// The backend's MLP.
    type Mlp: MlpBackend;
    /// The run's backend-neutral state.
    fn state(&self) -> &RunState;
    fn state_mut(&mut self) -> &mut RunState;
    /// Takes the dataset `pixels [count, features]` u8 (its shape checked against the run).
    fn load_data(&mut self, pixels: &[u8], count: usize) -> Result<()>;
    /// Takes the dataset's labels `[count]`, each a class of the run (checked). Only the trainers of conditional
    /// models have labels (the default refuses them).
    fn load_labels(&mut self, _labels: &[u32]) -> Result<()> {
        Err(Error::new(
            Code::Unavailable,
            "this trainer takes no labels",
        ))
    }
    /// Runs `n >= 1` training steps from `state().step` in the seed's order on the dataset (loaded) and the noise
    /// streams, advancing the step; writes one step record per step into `out [n, STEP_OUTPUTS]`. A step whose losses
    /// or updated parameters are NaN or infinite ends the call with `Error::diverged` naming that step.
    /// `e` is aae's encoder (checked present exactly when the model takes one).
    fn run_steps(
        &mut self,
        g: &mut Self::Mlp,
        d: &mut Self::Mlp,
        e: Option<&mut Self::Mlp>,
        n: usize,
        out: &mut [f32],
    ) -> Result<()>;
    /// Floats of an explicit step's other draws for a batch of `rows` (`aux`; none by default).
    fn explicit_aux(&self, _rows: usize) -> usize {
        0
    }
    /// One training step on given noise `z [rows, latent]`, real rows `x [rows, features]` (in [-1, 1]), both
    /// row-major, and the step's other draws `aux [explicit_aux(rows)]`; writes its record into `out [STEP_OUTPUTS]`
    /// and counts as a step. For parity tests; the fused GPU step does not have it.
    #[allow(clippy::too_many_arguments)]
    fn run_explicit(
        &mut self,
        _g: &mut Self::Mlp,
        _d: &mut Self::Mlp,
        _e: Option<&mut Self::Mlp>,
        _z: &[f32],
        _x: &[f32],
        _aux: &[f32],
        _rows: usize,
        _out: &mut [f32],
    ) -> Result<()> {
        Err(Error::new(
            Code::Unavailable,
            "a step of the seed's fused GPU step on given noise and data (for parity tests) runs on the cpu backend only",
        ))
    }
}

/// `m` as the concrete MLP type `M` of a backend; `InvalidArgument` when it lives on another backend.
pub fn backend_of<M: MlpBackend>(m: &dyn MlpBackend) -> Result<&M> {
    let any: &dyn Any = m;
    any.downcast_ref::<M>().ok_or_else(other_backend)
}

/// As [`backend_of`], mutably.
pub fn backend_of_mut<M: MlpBackend>(m: &mut dyn MlpBackend) -> Result<&mut M> {
    let any: &mut dyn Any = m;
    any.downcast_mut::<M>().ok_or_else(other_backend)
}

/// The encoder as the backend's MLP type, present exactly when the run's model takes one (aae).
fn encoder_of<'a, M: MlpBackend>(
    s: &RunState,
    e: Option<&'a mut dyn MlpBackend>,
) -> Result<Option<&'a mut M>> {
    let model = s.config.recipe.model;
    match (model == Model::Aae, e) {
        (true, Some(e)) => Ok(Some(backend_of_mut::<M>(e)?)),
        (false, None) => Ok(None),
        (true, None) => Err(bad_state!("model aae trains an encoder: none was given")),
        (false, Some(_)) => Err(bad_arg!("model {} takes no encoder", model.name())),
    }
}

fn other_backend() -> Error {
    bad_arg!("generator and discriminator must be on the same backend as the GAN")
}

/// The checked API of every GAN trainer (`impl<B: GanBackend> Gan for B`; not implemented by hand). `g` and `d` are
/// the generator and discriminator the trainer was made for.
pub trait Gan: Send {
    /// Takes the dataset `pixels [count, features]` as u8 (0 black, 255 white), copied into the library once.
    fn set_data(&mut self, pixels: &[u8], count: usize) -> Result<()>;
    /// Takes the labels `[count]` of the dataset just set (a conditional model's; each a class of its embeddings).
    fn set_labels(&mut self, labels: &[u32]) -> Result<()>;
    /// Runs `n` training steps; writes `out [n, STEP_OUTPUTS]`. Remembers the step that diverged, if one did.
    fn step(
        &mut self,
        g: &mut dyn MlpBackend,
        d: &mut dyn MlpBackend,
        n: usize,
        out: &mut [f32],
    ) -> Result<()> {
        self.step_with(g, d, None, n, out)
    }
    /// As [`Gan::step`], with the encoder `e` of a model that has one (aae).
    fn step_with(
        &mut self,
        g: &mut dyn MlpBackend,
        d: &mut dyn MlpBackend,
        e: Option<&mut dyn MlpBackend>,
        n: usize,
        out: &mut [f32],
    ) -> Result<()>;
    /// One step on given noise `z [rows, latent]`, real rows `x [rows, features]` and other draws `aux` (wgan_gp's
    /// `alpha [rows]`, cgan's labels `[2 rows]`, else empty); writes `out [STEP_OUTPUTS]`.
    #[allow(clippy::too_many_arguments)]
    fn step_explicit(
        &mut self,
        g: &mut dyn MlpBackend,
        d: &mut dyn MlpBackend,
        z: &[f32],
        x: &[f32],
        aux: &[f32],
        rows: usize,
        out: &mut [f32],
    ) -> Result<()> {
        self.step_explicit_with(g, d, None, z, x, aux, rows, out)
    }
    /// As [`Gan::step_explicit`], with the encoder `e` of a model that has one (aae: `z` the prior sample, `aux`
    /// the reparameterization noise `[rows, latent]`).
    #[allow(clippy::too_many_arguments)]
    fn step_explicit_with(
        &mut self,
        g: &mut dyn MlpBackend,
        d: &mut dyn MlpBackend,
        e: Option<&mut dyn MlpBackend>,
        z: &[f32],
        x: &[f32],
        aux: &[f32],
        rows: usize,
        out: &mut [f32],
    ) -> Result<()>;
    /// Moves the run to a global step (for resume).
    fn set_step(&mut self, step: u64) -> Result<()>;
    /// Where the run stands, as JSON (`RunState::info`).
    fn info(&self) -> serde_json::Value;
}

impl<B: GanBackend> Gan for B {
    fn set_data(&mut self, pixels: &[u8], count: usize) -> Result<()> {
        self.state().check_data(pixels.len(), count)?;
        self.load_data(pixels, count)?;
        self.state_mut().data_loaded(count);
        Ok(())
    }

    fn set_labels(&mut self, labels: &[u32]) -> Result<()> {
        let s = self.state();
        let Some(classes) = s.classes else {
            return Err(bad_arg!(
                "model {} is not conditional: it takes no labels",
                s.config.recipe.model.name()
            ));
        };
        if !s.has_data() {
            return Err(bad_state!("no dataset: call set_data before set_labels"));
        }
        if labels.len() != s.schedule.count {
            return Err(bad_arg!(
                "{} labels for a dataset of {} images",
                labels.len(),
                s.schedule.count
            ));
        }
        check_labels(labels, classes)?;
        self.load_labels(labels)?;
        self.state_mut().has_labels = true;
        Ok(())
    }

    fn step_with(
        &mut self,
        g: &mut dyn MlpBackend,
        d: &mut dyn MlpBackend,
        e: Option<&mut dyn MlpBackend>,
        n: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let r = (|| {
            if n == 0 {
                return Err(bad_arg!("step count must be at least 1, got 0"));
            }
            if out.len() != n * STEP_OUTPUTS {
                return Err(bad_arg!(
                    "step output has {} values, expected {} ({n} steps x {STEP_OUTPUTS})",
                    out.len(),
                    n * STEP_OUTPUTS
                ));
            }
            if !self.state().has_data() {
                return Err(bad_state!("no dataset: call set_data before training"));
            }
            if self.state().classes.is_some() && !self.state().has_labels {
                return Err(bad_state!(
                    "no labels: model cgan trains on the dataset's labels (call set_labels after set_data)"
                ));
            }
            self.state().check_steps(n)?;
            let e = encoder_of::<B::Mlp>(self.state(), e)?;
            // The GPU work of the call: every network of a trainer lives on one device and records on this thread.
            let before = g.work_count();
            let r = self.run_steps(backend_of_mut(g)?, backend_of_mut(d)?, e, n, out);
            let work = match (before, g.work_count()) {
                (Some(b), Some(a)) => a.since(&b),
                _ => WorkCount::default(),
            };
            self.state_mut().last_call = CallCost {
                steps: n as u64,
                work,
            };
            r
        })();
        self.state_mut().diverged_step = match &r {
            Err(e) if e.code == Code::Diverged => e.step,
            _ => None,
        };
        r
    }

    fn step_explicit_with(
        &mut self,
        g: &mut dyn MlpBackend,
        d: &mut dyn MlpBackend,
        e: Option<&mut dyn MlpBackend>,
        z: &[f32],
        x: &[f32],
        aux: &[f32],
        rows: usize,
        out: &mut [f32],
    ) -> Result<()> {
        if out.len() != STEP_OUTPUTS {
            return Err(bad_arg!(
                "step output has {} values, expected {STEP_OUTPUTS}",
                out.len()
            ));
        }
        let (g, d) = (backend_of_mut::<B::Mlp>(g)?, backend_of_mut::<B::Mlp>(d)?);
        g.check_rows(rows, true)?;
        let s = self.state();
        if rows > s.config.batch_size {
            return Err(bad_arg!(
                "batch of {rows} rows is larger than the batch size {}",
                s.config.batch_size
            ));
        }
        let (latent, f) = (s.latent, s.features);
        if z.len() != rows * latent {
            return Err(bad_arg!(
                "noise has {} values, expected {rows} x {latent}",
                z.len()
            ));
        }
        if x.len() != rows * f {
            return Err(bad_arg!(
                "real batch has {} values, expected {rows} x {f}",
                x.len()
            ));
        }
        if let Some(i) = z.iter().chain(x).position(|v| !v.is_finite()) {
            return Err(bad_arg!(
                "noise or real batch holds a non-finite value at flat index {i}"
            ));
        }
        let model = s.config.recipe.model.name();
        check_aux(self.explicit_aux(rows), aux.len(), model)?;
        let aae = s.config.recipe.model == Model::Aae;
        match s.classes {
            _ if aae => {
                if let Some(i) = aux.iter().position(|a| !a.is_finite()) {
                    return Err(bad_arg!("aux[{i}] is {}, expected a finite number", aux[i]));
                }
            }
            Some(c) => {
                let bad = |a: f32| !(a >= 0.0 && a < c as f32 && a.fract() == 0.0);
                if let Some(i) = aux.iter().position(|&a| bad(a)) {
                    return Err(bad_arg!(
                        "aux[{i}] is {}, expected a label (an integer in [0, {c}))",
                        aux[i]
                    ));
                }
            }
            None => {
                if let Some(i) = aux.iter().position(|a| !(0.0..=1.0).contains(a)) {
                    return Err(bad_arg!(
                        "aux[{i}] is {}, expected a weight in [0, 1]",
                        aux[i]
                    ));
                }
            }
        }
        self.state().check_steps(1)?;
        let e = encoder_of::<B::Mlp>(self.state(), e)?;
        self.run_explicit(g, d, e, z, x, aux, rows, out)
    }

    fn set_step(&mut self, step: u64) -> Result<()> {
        self.state_mut().set_step(step)
    }

    fn info(&self) -> serde_json::Value {
        self.state().info()
    }
}
