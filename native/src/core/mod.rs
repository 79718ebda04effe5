//! What every backend shares, each defined once: the MLP spec and its flat layout ([`spec`]), the hyperparameters
//! ([`config`]), the per-step record ([`record`]), the buffer selector ([`buffer`]), the epoch schedule and the state of
//! a training run ([`run`]), and the backend traits with the checked API on top of them ([`mlp`], [`gan`], and the
//! context-level ops in [`ops`]).
//!
//! A backend (`cpu/`, `gpu/`) implements [`MlpBackend`], [`GanBackend`] and [`OpsBackend`] and depends on this module
//! only, never on the other backend. The argument rules live here, in the provided methods of [`Mlp`], [`Gan`] and
//! [`Ops`] (implemented for every backend at once), so they are the same everywhere and written once; `ffi.rs` checks
//! only what a C caller hands over (pointers, lengths, UTF-8, enum values).

pub mod buffer;
pub mod config;
pub mod dropout;
pub mod family;
pub mod gan;
pub mod loss;
pub mod mlp;
pub mod ops;
pub mod optim;
pub mod penalty;
pub mod recipe;
pub mod record;
pub mod run;
pub mod spec;

pub use crate::error::{Code, Error, Result};
pub use buffer::Buffer;
pub use config::{AdamConfig, GanConfig};
pub use family::FamilyGan;
pub use gan::{backend_of, backend_of_mut, Gan, GanBackend};
pub use loss::{GanLoss, GAN_LOSSES};
pub use mlp::{Mlp, MlpBackend, MlpState};
pub use ops::{Ops, OpsBackend, MAX_SOFTMAX_LOGITS};
pub use optim::{Optimizer, RmsPropConfig};
pub use recipe::{Model, Penalty, Recipe, MODELS};
pub use record::{StepRecord, STEP_FIELDS, STEP_OUTPUTS};
pub use run::{CallCost, Position, RunState, Schedule, WorkCount};
pub use spec::{Act, Bn, Embed, Layer, Spec};
