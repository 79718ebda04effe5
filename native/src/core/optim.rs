//! The optimizers a recipe can give a network, and the arithmetic of the ones that every backend shares: RMSprop
//! (PyTorch's update) and weight clipping. Adam lives with each backend's kernels (it is the seed's fast path); its
//! settings are [`AdamConfig`].

use super::config::AdamConfig;
use crate::error::{bad_arg, Result};

/// RMSprop's settings: PyTorch's `RMSprop(lr, alpha, eps)` without momentum, centering or weight decay (wgan.py's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    pub lr: f64,
    /// Smoothing of the squared-gradient average (PyTorch's default 0.99).
    pub alpha: f64,
    pub eps: f64,
}

impl RmsPropConfig {
    /// PyTorch's default smoothing constant.
    pub const ALPHA: f64 = 0.99;

    /// Checks and builds: `lr >= 0`, `alpha` in [0, 1), `eps >= 0`, all finite.
    pub fn new(lr: f64, alpha: f64, eps: f64) -> Result<RmsPropConfig> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(bad_arg!("lr must be a finite number >= 0, got {lr}"));
        }
        if !(alpha.is_finite() && (0.0..1.0).contains(&alpha)) {
            return Err(bad_arg!("RMSprop alpha must be in [0, 1), got {alpha}"));
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(bad_arg!("eps must be a finite number >= 0, got {eps}"));
        }
        Ok(RmsPropConfig { lr, alpha, eps })
    }
}

/// A network's optimizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Adam(AdamConfig),
    RmsProp(RmsPropConfig),
}

impl Optimizer {
    /// Its name in the GAN config (`"adam"`, `"rmsprop"`).
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Adam(_) => "adam",
            Optimizer::RmsProp(_) => "rmsprop",
        }
    }
}

/// One RMSprop step over flat buffers, as PyTorch's single-tensor CPU path computes it in float32:
/// `v = v * alpha + (1 - alpha) * g * g; p = p - lr * (g / (sqrt(v) + eps))`. `v` is the squared-gradient average
/// (kept in the MLP's `adam_v` buffer). Returns whether every new parameter is finite.
pub fn rmsprop_update(p: &mut [f32], v: &mut [f32], g: &[f32], c: RmsPropConfig) -> bool {
    let (alpha, w, lr, eps) = (
        c.alpha as f32,
        (1.0 - c.alpha) as f32,
        c.lr as f32,
        c.eps as f32,
    );
    let mut bad = 0u32;
    for ((p, v), &g) in p.iter_mut().zip(v.iter_mut()).zip(g) {
        let vi = *v * alpha + w * g * g;
        *v = vi;
        *p += -lr * (g / (vi.sqrt() + eps));
        bad |= ((p.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
    }
    bad == 0
}

/// Clamps every value of `p` to `[-c, c]` (wgan.py's `p.data.clamp_(-clip_value, clip_value)` over every critic
/// parameter, weights and biases).
pub fn clamp_all(p: &mut [f32], c: f32) {
    for x in p {
        *x = x.clamp(-c, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RMSprop against the update written out in float64 (PyTorch's formula), over three steps.
    #[test]
    fn rmsprop_follows_pytorch_formula() {
        let c = RmsPropConfig::new(0.01, 0.99, 1e-8).unwrap();
        let mut p = vec![0.5f32, -1.0, 2.0, 0.0];
        let mut v = vec![0f32; 4];
        let (mut pe, mut ve) = (vec![0.5f64, -1.0, 2.0, 0.0], vec![0f64; 4]);
        for t in 0..3 {
            let g: Vec<f32> = (0..4)
                .map(|i| (i as f32 - 1.5) * (t as f32 + 1.0))
                .collect();
            assert!(rmsprop_update(&mut p, &mut v, &g, c));
            for i in 0..4 {
                let gi = g[i] as f64;
                ve[i] = 0.99 * ve[i] + 0.01 * gi * gi;
                pe[i] -= 0.01 * gi / (ve[i].sqrt() + 1e-8);
                assert!((p[i] as f64 - pe[i]).abs() < 1e-6, "step {t} p[{i}]");
                assert!((v[i] as f64 - ve[i]).abs() < 1e-6 * ve[i].max(1.0));
            }
        }
        // A NaN gradient is reported.
        assert!(!rmsprop_update(
            &mut p,
            &mut v,
            &[f32::NAN, 0.0, 0.0, 0.0],
            c
        ));
        assert!(RmsPropConfig::new(0.01, 1.0, 1e-8).is_err());
    }

    #[test]
    fn clamp_bounds_every_value() {
        let mut p = vec![-3.0f32, -0.005, 0.02, 0.01];
        clamp_all(&mut p, 0.01);
        assert_eq!(p, vec![-0.01, -0.005, 0.01, 0.01]);
    }
}
