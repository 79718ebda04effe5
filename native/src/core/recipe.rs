//! The models of the PyTorch-GAN MLP family and the recipe of each one's training step: which network updates in which
//! order, how many critic steps per generator step, which loss and regularizer, which optimizer per network. Parsed
//! from the GAN config (its `model` key and that model's options), checked against the networks, and listed in the
//! contract (`models`) with upstream's defaults. `bench/reference/FAMILY.md` is the step of each model in words.

use super::config::AdamConfig;
use super::loss::GanLoss;
use super::optim::{Optimizer, RmsPropConfig};
use super::penalty::check_piecewise_linear;
use super::spec::{Act, Spec};
use crate::error::{bad_arg, Result};
use serde_json::{json, Map, Value};

/// A model of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// gan.py: the seed (with the loss options of [`GanLoss`]); the backends' fused step.
    Gan,
    /// bgan.py: the boundary-seeking generator loss on a sigmoid D.
    Bgan,
    /// softmax_gan.py: the partition-function loss over the batch.
    SoftmaxGan,
    /// wgan.py: a critic, RMSprop, weight clipping, n_critic.
    Wgan,
    /// wgan_gp.py: the gradient penalty on interpolates.
    WganGp,
    /// wgan_div.py: the Wasserstein divergence penalty.
    WganDiv,
    /// cgan.py: label embeddings on G's noise and D's input, dropout in D (a fresh D pass for each update), MSE.
    Cgan,
    /// aae.py: the adversarial autoencoder: an encoder with the reparameterization, the decoder (the generator), D on
    /// the latent code, the L1 reconstruction term.
    Aae,
}

/// Every model with its name.
pub const MODELS: [(Model, &str); 8] = [
    (Model::Gan, "gan"),
    (Model::Cgan, "cgan"),
    (Model::Bgan, "bgan"),
    (Model::SoftmaxGan, "softmax_gan"),
    (Model::Wgan, "wgan"),
    (Model::WganGp, "wgan_gp"),
    (Model::WganDiv, "wgan_div"),
    (Model::Aae, "aae"),
];

impl Model {
    pub fn parse(name: &str) -> Result<Model> {
        MODELS
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(m, _)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = MODELS.iter().map(|(_, n)| *n).collect();
                bad_arg!("model must be one of {}, got {name:?}", names.join(", "))
            })
    }

    pub fn name(self) -> &'static str {
        MODELS.iter().find(|(m, _)| *m == self).expect("listed").1
    }

    /// Whether the step is the Wasserstein one (critic first, the generator every `n_critic` batches).
    pub fn is_wasserstein(self) -> bool {
        matches!(self, Model::Wgan | Model::WganGp | Model::WganDiv)
    }

    /// Upstream's defaults: `{"optimizer", "lr", "b1", "b2", "d_output", "options": {key: default}}`.
    pub fn defaults(self) -> Value {
        let options = match self {
            Model::Gan => json!({"loss": "bce"}),
            Model::Bgan => json!({}),
            Model::SoftmaxGan => json!({"softmax_fresh_d": false, "softmax_g_loss_only": false}),
            Model::Wgan => json!({"n_critic": 5, "clip_value": 0.01}),
            Model::WganGp => json!({
                "n_critic": 5, "lambda_gp": 10.0, "gp_norm": "sample", "gp_clip": false, "clip_value": 0.01,
                "channels": 1,
            }),
            Model::WganDiv => json!({"n_critic": 5, "div_k": 2.0, "div_p": 6.0}),
            Model::Cgan => json!({"loss": "mse"}),
            Model::Aae => json!({}),
        };
        let rms = self == Model::Wgan;
        json!({
            "optimizer": if rms { "rmsprop" } else { "adam" },
            "lr": if rms { 5e-5 } else { 2e-4 },
            "b1": 0.5, "b2": 0.999,
            "d_output": if matches!(self, Model::Gan | Model::Bgan | Model::Aae) { "sigmoid" } else { "linear" },
            "options": options,
        })
    }
}

/// The regularizer of the critic's loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Penalty {
    None,
    /// `lambda * mean (|grad D(x_hat)| - 1)^2` on interpolates; `pixel`: the norm over the channels of each pixel
    /// (upstream before 22ce15e, issue 20) for images of `channels` channels, else over each whole sample.
    Gp {
        lambda: f32,
        pixel: bool,
        channels: usize,
    },
    /// `k / 2 * mean (|grad D(real)|^p + |grad D(fake)|^p)`.
    Div {
        k: f32,
        p: f32,
    },
}

/// One model's step: what [`Model`] fixes and the options it takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    pub model: Model,
    /// The adversarial loss of the `gan` model (the others define their own).
    pub loss: GanLoss,
    pub g_opt: Optimizer,
    pub d_opt: Optimizer,
    /// The generator updates at batch indices (within the epoch) divisible by this (Wasserstein models; else 1).
    pub n_critic: u64,
    /// Clamp every critic parameter to `[-c, c]` after its update.
    pub clip: Option<f32>,
    pub penalty: Penalty,
    /// softmax_gan: the g_loss gradient through D's weights before its update (not the 2018 late weights).
    pub softmax_fresh_d: bool,
    /// softmax_gan: G follows grad(g_loss) alone (not grad(d_loss) + grad(g_loss)).
    pub softmax_g_loss_only: bool,
}

/// The keys every model takes.
const COMMON_KEYS: [&str; 8] = [
    "batch_size",
    "lr",
    "b1",
    "b2",
    "eps",
    "seed",
    "model",
    "optimizer",
];

impl Recipe {
    /// The seed's recipe with the given Adam settings and loss.
    pub fn gan(adam: AdamConfig, loss: GanLoss) -> Recipe {
        Recipe {
            model: Model::Gan,
            loss,
            g_opt: Optimizer::Adam(adam),
            d_opt: Optimizer::Adam(adam),
            n_critic: 1,
            clip: None,
            penalty: Penalty::None,
            softmax_fresh_d: false,
            softmax_g_loss_only: false,
        }
    }

    /// Parses the model and its options from the GAN config object `v` (the common keys already read into
    /// `adam`); refuses a key that the model does not take, naming it.
    pub fn parse(v: &Map<String, Value>, adam: AdamConfig) -> Result<Recipe> {
        let model = match v.get("model") {
            None | Some(Value::Null) => Model::Gan,
            Some(Value::String(s)) => Model::parse(s)?,
            Some(other) => return Err(bad_arg!("GAN config: model must be a string, got {other}")),
        };
        let defaults = model.defaults();
        let own = defaults["options"].as_object().expect("an object");
        if let Some(k) = v
            .keys()
            .find(|k| !COMMON_KEYS.contains(&k.as_str()) && !own.contains_key(*k))
        {
            let mut takes: Vec<&str> = own.keys().map(String::as_str).collect();
            takes.sort_unstable();
            let takes = if takes.is_empty() {
                "none".into()
            } else {
                takes.join(", ")
            };
            return Err(bad_arg!(
                "GAN config: {k} does not apply to model {} (its options: {takes})",
                model.name()
            ));
        }
        let opt = Options { v, own };
        let optimizer =
            match opt.string("optimizer", defaults["optimizer"].as_str().expect("a name"))? {
                "adam" => Optimizer::Adam(adam),
                "rmsprop" => {
                    Optimizer::RmsProp(RmsPropConfig::new(adam.lr, RmsPropConfig::ALPHA, adam.eps)?)
                }
                other => {
                    return Err(bad_arg!(
                        "GAN config: optimizer must be adam or rmsprop, got {other:?}"
                    ))
                }
            };
        let mut r = Recipe::gan(adam, GanLoss::Bce);
        (r.model, r.g_opt, r.d_opt) = (model, optimizer, optimizer);
        match model {
            Model::Gan => r.loss = GanLoss::parse(opt.string("loss", "bce")?)?,
            Model::Cgan => r.loss = GanLoss::parse(opt.string("loss", "mse")?)?,
            Model::Bgan | Model::Aae => {}
            Model::SoftmaxGan => {
                r.softmax_fresh_d = opt.bool("softmax_fresh_d")?;
                r.softmax_g_loss_only = opt.bool("softmax_g_loss_only")?;
            }
            Model::Wgan => {
                r.n_critic = opt.n_critic()?;
                r.clip = Some(opt.positive("clip_value")?);
            }
            Model::WganGp => {
                r.n_critic = opt.n_critic()?;
                let pixel = match opt.string("gp_norm", "sample")? {
                    "sample" => false,
                    "pixel" => true,
                    other => {
                        return Err(bad_arg!(
                            "GAN config: gp_norm must be sample or pixel, got {other:?}"
                        ))
                    }
                };
                let lambda = opt.number("lambda_gp", |x| x >= 0.0, "a finite number >= 0")?;
                let channels = opt.number(
                    "channels",
                    |x| x >= 1.0 && x.fract() == 0.0,
                    "a positive integer",
                )?;
                r.penalty = Penalty::Gp {
                    lambda,
                    pixel,
                    channels: channels as usize,
                };
                let clip = opt.positive("clip_value")?;
                r.clip = opt.bool("gp_clip")?.then_some(clip);
            }
            Model::WganDiv => {
                let k = opt.number("div_k", |x| x >= 0.0, "a finite number >= 0")?;
                let p = opt.number("div_p", |x| x >= 1.0, "a finite number >= 1")?;
                r.n_critic = opt.n_critic()?;
                r.penalty = Penalty::Div { k, p };
            }
        }
        Ok(r)
    }

    /// Checks the discriminator against the model: its last activation (a sigmoid for gan with bce and bgan, a
    /// linear score otherwise) and, with a gradient penalty, layers that its second-order pass supports.
    pub fn check_discriminator(&self, d: &Spec) -> Result<()> {
        match self.model {
            Model::Gan | Model::Cgan => return self.loss.check_discriminator(d),
            Model::Bgan | Model::Aae => return GanLoss::Bce.check_discriminator(d),
            _ => {}
        }
        if d.layers.last().map(|l| l.act) != Some(Act::None) {
            return Err(bad_arg!(
                "discriminator must end in a linear layer (activation none) for model {}, which takes raw scores",
                self.model.name()
            ));
        }
        if let Penalty::Gp {
            pixel: true,
            channels,
            ..
        } = self.penalty
        {
            if !d.input.is_multiple_of(channels) {
                return Err(bad_arg!(
                    "gp_norm pixel: the critic's {} inputs are not {channels} channels of equal size",
                    d.input
                ));
            }
        }
        if self.penalty != Penalty::None {
            check_piecewise_linear(d)?;
        }
        Ok(())
    }

    /// Checks the label embeddings against the model: cgan's generator embeds its labels before the noise and its
    /// discriminator after the image, both over the same classes; no other model takes labels.
    pub fn check_embeddings(&self, g: &Spec, d: &Spec) -> Result<()> {
        if self.model != Model::Cgan {
            return match (&g.embed, &d.embed) {
                (None, None) => Ok(()),
                _ => Err(bad_arg!(
                    "label embeddings are for model cgan, not {}",
                    self.model.name()
                )),
            };
        }
        match (&g.embed, &d.embed) {
            (Some(ge), Some(de)) if ge.first && !de.first && ge.classes == de.classes => Ok(()),
            (Some(ge), Some(de)) if ge.classes != de.classes => Err(bad_arg!(
                "cgan: the generator embeds {} classes, the discriminator {}",
                ge.classes,
                de.classes
            )),
            (Some(_), Some(_)) => Err(bad_arg!(
                "cgan: the generator's embedding must come first (at \"first\") and the discriminator's last \
                 (at \"last\"), as upstream's"
            )),
            _ => Err(bad_arg!(
                "cgan needs a label embedding in the generator and in the discriminator"
            )),
        }
    }

    /// Floats of a step's other draws (`aux` of an explicit step): wgan_gp's `alpha [rows]`; cgan's labels of the
    /// fakes then of the real rows, `[2 rows]`; aae's reparameterization noise `eps [rows, latent]`; none otherwise.
    pub fn aux_len(&self, rows: usize, latent: usize) -> usize {
        match (self.model, self.penalty) {
            (Model::Cgan, _) => 2 * rows,
            (Model::Aae, _) => rows * latent,
            (_, Penalty::Gp { .. }) => rows,
            _ => 0,
        }
    }
}

/// The contract's `models`: every model's defaults (`Model::defaults`), by name.
pub fn models_contract() -> Value {
    let m: Map<String, Value> = MODELS
        .iter()
        .map(|&(m, n)| (n.to_string(), m.defaults()))
        .collect();
    Value::Object(m)
}

/// The model's options in the config, with its defaults.
struct Options<'a> {
    v: &'a Map<String, Value>,
    own: &'a Map<String, Value>,
}

impl<'a> Options<'a> {
    fn get(&self, k: &str) -> &'a Value {
        match self.v.get(k) {
            Some(x) if !x.is_null() => x,
            _ => self.own.get(k).unwrap_or(&Value::Null),
        }
    }

    fn string(&self, k: &str, default: &'a str) -> Result<&'a str> {
        match self.v.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(bad_arg!("GAN config: {k} must be a string, got {other}")),
        }
    }

    fn bool(&self, k: &str) -> Result<bool> {
        self.get(k)
            .as_bool()
            .ok_or_else(|| bad_arg!("GAN config: {k} must be true or false, got {}", self.get(k)))
    }

    fn number(&self, k: &str, ok: impl Fn(f64) -> bool, expect: &str) -> Result<f32> {
        match self.get(k).as_f64() {
            Some(x) if x.is_finite() && ok(x) => Ok(x as f32),
            _ => Err(bad_arg!(
                "GAN config: {k} must be {expect}, got {}",
                self.get(k)
            )),
        }
    }

    fn positive(&self, k: &str) -> Result<f32> {
        self.number(k, |x| x > 0.0, "a finite number > 0")
    }

    fn n_critic(&self) -> Result<u64> {
        match self.get("n_critic").as_u64() {
            Some(n) if (1..=1 << 20).contains(&n) => Ok(n),
            _ => Err(bad_arg!(
                "GAN config: n_critic must be an integer in [1, 2^20], got {}",
                self.get("n_critic")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: Value) -> Result<Recipe> {
        let mut v =
            json!({"batch_size": 8, "lr": 2e-4, "b1": 0.5, "b2": 0.999, "eps": 1e-8, "seed": 0});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let adam = AdamConfig::new(2e-4, 0.5, 0.999, 1e-8).unwrap();
        Recipe::parse(v.as_object().unwrap(), adam)
    }

    #[test]
    fn models_take_upstream_defaults_and_only_their_options() {
        let w = parse(json!({"model": "wgan"})).unwrap();
        assert_eq!(
            (w.n_critic, w.clip, w.g_opt.name()),
            (5, Some(0.01), "rmsprop")
        );
        let gp = parse(json!({"model": "wgan_gp"})).unwrap();
        assert_eq!(
            gp.penalty,
            Penalty::Gp {
                lambda: 10.0,
                pixel: false,
                channels: 1
            }
        );
        assert_eq!((gp.clip, gp.d_opt.name()), (None, "adam"));
        let clipped =
            parse(json!({"model": "wgan_gp", "gp_clip": true, "clip_value": 0.5})).unwrap();
        assert_eq!(clipped.clip, Some(0.5));
        assert_eq!(
            parse(json!({"model": "wgan_div"})).unwrap().penalty,
            Penalty::Div { k: 2.0, p: 6.0 }
        );
        assert_eq!(
            parse(json!({})).unwrap(),
            Recipe::gan(
                AdamConfig::new(2e-4, 0.5, 0.999, 1e-8).unwrap(),
                GanLoss::Bce
            )
        );
        let e = parse(json!({"model": "wgan", "lambda_gp": 10}))
            .unwrap_err()
            .message;
        assert_eq!(e, "GAN config: lambda_gp does not apply to model wgan (its options: clip_value, n_critic)");
        let e = parse(json!({"model": "bgan", "loss": "mse"}))
            .unwrap_err()
            .message;
        assert_eq!(
            e,
            "GAN config: loss does not apply to model bgan (its options: none)"
        );
        let e = parse(json!({"model": "wgan", "n_critic": 0}))
            .unwrap_err()
            .message;
        assert_eq!(
            e,
            "GAN config: n_critic must be an integer in [1, 2^20], got 0"
        );
        assert!(parse(json!({"model": "dcgan"}))
            .unwrap_err()
            .message
            .contains("model must be one of gan, cgan, bgan"));
    }

    #[test]
    fn the_contract_lists_every_model() {
        let c = models_contract();
        assert_eq!(c.as_object().unwrap().len(), MODELS.len());
        assert_eq!(c["wgan"]["lr"], 5e-5);
        assert_eq!(c["bgan"]["d_output"], "sigmoid");
    }
}
