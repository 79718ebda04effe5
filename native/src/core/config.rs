//! Hyperparameters, validated where they are made.

use super::loss::GanLoss;
use super::recipe::Recipe;
use crate::error::{bad_arg, Error, Result};

/// Adam hyperparameters (PyTorch's update with bias correction).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub b1: f64,
    pub b2: f64,
    pub eps: f64,
}

impl AdamConfig {
    /// Checks and builds: every value finite, `lr >= 0`, both betas in [0, 1), `eps >= 0`.
    pub fn new(lr: f64, b1: f64, b2: f64, eps: f64) -> Result<AdamConfig> {
        let lr = finite(lr, "lr")?;
        let (b1, b2, eps) = (finite(b1, "b1")?, finite(b2, "b2")?, finite(eps, "eps")?);
        if lr < 0.0 {
            return Err(bad_arg!("lr must be >= 0, got {lr}"));
        }
        if !(0.0..1.0).contains(&b1) || !(0.0..1.0).contains(&b2) {
            return Err(bad_arg!("betas must be in [0, 1), got ({b1}, {b2})"));
        }
        if eps < 0.0 {
            return Err(bad_arg!("eps must be >= 0, got {eps}"));
        }
        Ok(AdamConfig { lr, b1, b2, eps })
    }
}

/// The divergence of an Adam update outside a GAN run (on one MLP, or on caller buffers).
pub fn adam_diverged() -> Error {
    Error::diverged(
        None,
        "a parameter became NaN or infinite after the Adam update",
    )
}

fn finite(x: f64, what: &str) -> Result<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(bad_arg!("{what} must be a finite number, got {x}"))
    }
}

/// A GAN trainer's settings.
#[derive(Clone, Copy, Debug)]
pub struct GanConfig {
    /// Images per step (the last batch of an epoch may be shorter).
    pub batch_size: usize,
    pub adam_g: AdamConfig,
    pub adam_d: AdamConfig,
    /// Seed of the noise and the shuffles.
    pub seed: u64,
    /// The model and its step (default the seed's: `gan` with BCE and Adam).
    pub recipe: Recipe,
}

impl GanConfig {
    /// The seed's model (`gan`, BCE) with one Adam setting for both networks.
    pub fn seed(batch_size: usize, adam: AdamConfig, seed: u64) -> GanConfig {
        GanConfig {
            batch_size,
            adam_g: adam,
            adam_d: adam,
            seed,
            recipe: Recipe::gan(adam, GanLoss::Bce),
        }
    }

    /// The same settings with the `gan` model's loss `loss`.
    pub fn with_loss(mut self, loss: GanLoss) -> GanConfig {
        self.recipe.loss = loss;
        self
    }

    /// Parses `{"batch_size", "lr", "b1", "b2", "eps", "seed", "model"?, "optimizer"?, ...}` (one optimizer setting
    /// for both networks; seed an integer below 2^53; `model` a name of `recipe::MODELS`, default `"gan"`, with its
    /// own options: [`Recipe::parse`]). The batch size and the model are checked against the networks by
    /// `spec::check_gan`.
    pub fn parse(json: &str) -> Result<GanConfig> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad_arg!("GAN config is not JSON ({e})"))?;
        let num = |k: &str| -> Result<f64> {
            v[k].as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad_arg!("GAN config: {k} must be a finite number, got {}", v[k]))
        };
        let batch = v["batch_size"].as_u64().ok_or_else(|| {
            bad_arg!(
                "GAN config: batch_size must be a positive integer, got {}",
                v["batch_size"]
            )
        })?;
        let seed = v["seed"].as_u64().ok_or_else(|| {
            bad_arg!(
                "GAN config: seed must be a non-negative integer, got {}",
                v["seed"]
            )
        })?;
        let adam = AdamConfig::new(num("lr")?, num("b1")?, num("b2")?, num("eps")?)?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad_arg!("GAN config must be a JSON object"))?;
        let recipe = Recipe::parse(obj, adam)?;
        Ok(GanConfig {
            recipe,
            batch_size: usize::try_from(batch).unwrap_or(usize::MAX),
            adam_g: adam,
            adam_d: adam,
            seed,
        })
    }
}
