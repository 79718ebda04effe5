//! The adversarial losses of the fused GAN step, defined once for every backend's host side: their values (the step
//! record) and their gradients with respect to D's outputs, from D's outputs over `[fake; real]`. The GPU's losses
//! (gpu/shaders/linear.wgsl `gan_loss`) compute the same formulas on the device; a test ties the two.
//!
//! With `o_f = D(G(z))` and `o_r = D(x)` over a batch of `n` (probabilities for `bce`, raw scores otherwise),
//! `softplus(t) = ln(1 + e^t)` and means over the batch:
//!
//! | loss               | D loss                                                        | G loss                                                         |
//! | ------------------ | ------------------------------------------------------------- | -------------------------------------------------------------- |
//! | `bce` (the seed's) | `(BCE(o_r, 1) + BCE(o_f, 0)) / 2`                             | `BCE(o_f, 1)`                                                  |
//! | `mse` (LSGAN)      | `(mean (o_r - 1)^2 + mean o_f^2) / 2`                         | `mean (o_f - 1)^2`                                             |
//! | `hinge`            | `mean relu(1 - o_r) + mean relu(1 + o_f)`                     | `-mean o_f`                                                    |
//! | `relativistic`     | `mean softplus(-(o_r - o_f))`                                 | `mean softplus(-(o_f - o_r))`                                  |
//! | `relativistic_avg` | `(mean softplus(-(o_r - m_f)) + mean softplus(o_f - m_r)) / 2` | `(mean softplus(-(o_f - m_r)) + mean softplus(o_r - m_f)) / 2` |
//!
//! (`m_f`, `m_r`: the batch means of `o_f`, `o_r`; `relativistic` pairs row `i` of the fakes with row `i` of the reals,
//! as Jolicoeur-Martineau's code does with `BCEWithLogits(o_r - o_f, 1)`.) In the G step only `o_f` depends on G;
//! `o_r` enters the relativistic G losses as a constant.

use super::record::StepRecord;
use super::spec::{Act, Spec};
use crate::error::{bad_arg, Result};

/// The adversarial loss of a GAN step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GanLoss {
    /// Binary cross-entropy on a sigmoid D (the seed's).
    #[default]
    Bce,
    /// Least squares (LSGAN) on a linear D.
    Mse,
    /// The hinge loss on a linear D.
    Hinge,
    /// The relativistic standard GAN (RSGAN) on a linear D.
    Relativistic,
    /// The relativistic average GAN (RaGAN) on a linear D.
    RelativisticAvg,
}

/// Every loss with its name, in the order of their codes (the GPU kernel's `loss` uniform).
pub const GAN_LOSSES: [(GanLoss, &str); 5] = [
    (GanLoss::Bce, "bce"),
    (GanLoss::Mse, "mse"),
    (GanLoss::Hinge, "hinge"),
    (GanLoss::Relativistic, "relativistic"),
    (GanLoss::RelativisticAvg, "relativistic_avg"),
];

/// `BCE`'s clamp of each log term (PyTorch's) and its gradient's floor of `p (1 - p)`.
const LOG_CLAMP: f64 = -100.0;
const BCE_EPS: f32 = 1e-12;

impl GanLoss {
    /// The loss named `name`.
    pub fn parse(name: &str) -> Result<GanLoss> {
        GAN_LOSSES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(l, _)| *l)
            .ok_or_else(|| {
                let names: Vec<&str> = GAN_LOSSES.iter().map(|(_, n)| *n).collect();
                bad_arg!("loss must be one of {}, got {name:?}", names.join(", "))
            })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        GAN_LOSSES
            .iter()
            .find(|(l, _)| *l == self)
            .expect("listed")
            .1
    }

    /// Its code (its index in [`GAN_LOSSES`]).
    pub fn code(self) -> u32 {
        GAN_LOSSES
            .iter()
            .position(|(l, _)| *l == self)
            .expect("listed") as u32
    }

    /// Whether G's loss reads D's outputs on the real rows too (the relativistic losses).
    pub fn g_reads_real(self) -> bool {
        matches!(self, GanLoss::Relativistic | GanLoss::RelativisticAvg)
    }

    /// Checks that D's last activation suits the loss: a sigmoid for `bce`, none (a linear score) for the others.
    pub fn check_discriminator(self, d: &Spec) -> Result<()> {
        let last = d.layers.last().map(|l| l.act);
        match (self, last) {
            (GanLoss::Bce, Some(Act::Sigmoid)) => Ok(()),
            (GanLoss::Bce, _) => Err(bad_arg!(
                "discriminator must end in a sigmoid for the bce loss (BCE takes probabilities)"
            )),
            (_, Some(Act::None)) => Ok(()),
            (l, _) => Err(bad_arg!(
                "discriminator must end in a linear layer (activation none) for the {} loss, which takes raw scores",
                l.name()
            )),
        }
    }

    /// The step record and both gradients from D's outputs `o [2 rows]` (the fake rows, then the real rows):
    /// `dg [rows]` is d g_loss / d o_f (the G step), `dd [2 rows]` d d_loss / d o over `[fake; real]` (the D step).
    /// Sums in f64, as PyTorch's mean reduction; gradients in f32.
    pub fn eval(self, o: &[f32], dg: &mut [f32], dd: &mut [f32]) -> StepRecord {
        let rows = o.len() / 2;
        let (of, or) = o.split_at(rows);
        let n = rows as f64;
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let (mf, mr) = (mean(of), mean(or));
        let (dd_f, dd_r) = dd.split_at_mut(rows);
        let inv = 1.0 / rows as f32;
        let (d_loss, g_loss) = match self {
            GanLoss::Bce => {
                let bce = |p: &[f32], y: f32| -> f64 {
                    p.iter()
                        .map(|&pi| {
                            let (lp, lq) = (
                                (pi.ln() as f64).max(LOG_CLAMP),
                                ((1.0 - pi).ln() as f64).max(LOG_CLAMP),
                            );
                            -(y as f64 * lp + (1.0 - y as f64) * lq)
                        })
                        .sum::<f64>()
                        / n
                };
                let grad = |p: f32, y: f32, s: f32| s * (p - y) / (p * (1.0 - p)).max(BCE_EPS);
                for i in 0..rows {
                    dg[i] = grad(of[i], 1.0, inv);
                    dd_f[i] = grad(of[i], 0.0, 0.5 * inv);
                    dd_r[i] = grad(or[i], 1.0, 0.5 * inv);
                }
                ((bce(or, 1.0) + bce(of, 0.0)) / 2.0, bce(of, 1.0))
            }
            GanLoss::Mse => {
                let sq = |v: &[f32], y: f32| {
                    v.iter().map(|&x| ((x - y) as f64).powi(2)).sum::<f64>() / n
                };
                for i in 0..rows {
                    dg[i] = 2.0 * (of[i] - 1.0) * inv;
                    dd_f[i] = of[i] * inv; // d/do of (mean o_f^2) / 2
                    dd_r[i] = (or[i] - 1.0) * inv;
                }
                ((sq(or, 1.0) + sq(of, 0.0)) / 2.0, sq(of, 1.0))
            }
            GanLoss::Hinge => {
                let relu_mean = |v: &[f32], sign: f32| {
                    v.iter()
                        .map(|&x| (1.0 + sign * x).max(0.0) as f64)
                        .sum::<f64>()
                        / n
                };
                for i in 0..rows {
                    dg[i] = -inv;
                    dd_f[i] = if 1.0 + of[i] > 0.0 { inv } else { 0.0 };
                    dd_r[i] = if 1.0 - or[i] > 0.0 { -inv } else { 0.0 };
                }
                (relu_mean(or, -1.0) + relu_mean(of, 1.0), -mf)
            }
            GanLoss::Relativistic => {
                let (mut d, mut g) = (0f64, 0f64);
                for i in 0..rows {
                    let t = or[i] - of[i]; // D: softplus(-t); G: softplus(t)
                    d += softplus(-(t as f64));
                    g += softplus(t as f64);
                    let (sd, sg) = (sigmoid(-t), sigmoid(t)); // d softplus(-t)/dt = -sigmoid(-t)
                    dd_r[i] = -sd * inv;
                    dd_f[i] = sd * inv;
                    dg[i] = -sg * inv; // d softplus(o_r - o_f) / d o_f
                }
                (d / n, g / n)
            }
            GanLoss::RelativisticAvg => relativistic_avg(of, or, (mf, mr), dg, dd_f, dd_r),
        };
        StepRecord {
            d_loss: d_loss as f32,
            g_loss: g_loss as f32,
            d_real: mr as f32,
            d_fake: mf as f32,
        }
    }
}

/// RaGAN's losses and gradients (see the module table); `(mf, mr)` the batch means.
fn relativistic_avg(
    of: &[f32],
    or: &[f32],
    (mf, mr): (f64, f64),
    dg: &mut [f32],
    dd_f: &mut [f32],
    dd_r: &mut [f32],
) -> (f64, f64) {
    let rows = of.len();
    let (n, inv) = (rows as f64, 1.0 / rows as f32);
    let (mf32, mr32) = (mf as f32, mr as f32);
    // D: A = mean softplus(-(o_r - m_f)), B = mean softplus(o_f - m_r); d_loss = (A + B) / 2.
    // G: C = mean softplus(-(o_f - m_r)), E = mean softplus(o_r - m_f); g_loss = (C + E) / 2.
    let (mut a, mut b, mut c, mut e) = (0f64, 0f64, 0f64, 0f64);
    let (mut sum_sa, mut sum_sb) = (0f32, 0f32); // the gradients that reach the other side through the means
    let mut sum_se = 0f32;
    for i in 0..rows {
        let (tr, tf) = (or[i] - mf32, of[i] - mr32);
        a += softplus(-(tr as f64));
        b += softplus(tf as f64);
        c += softplus(-(tf as f64));
        e += softplus(tr as f64);
        sum_sa += sigmoid(-tr);
        sum_sb += sigmoid(tf);
        sum_se += sigmoid(tr);
    }
    for i in 0..rows {
        let (tr, tf) = (or[i] - mf32, of[i] - mr32);
        // d A / d o_r_i = -sigmoid(-tr_i) / n; d A / d o_f_j = +sum_i sigmoid(-tr_i) / n^2 (through m_f).
        // d B / d o_f_i = sigmoid(tf_i) / n; d B / d o_r_j = -sum_i sigmoid(tf_i) / n^2 (through m_r).
        dd_r[i] = 0.5 * (-sigmoid(-tr) * inv - sum_sb * inv * inv);
        dd_f[i] = 0.5 * (sigmoid(tf) * inv + sum_sa * inv * inv);
        // G (o_r constant): d C / d o_f_i = -sigmoid(-tf_i) / n; d E / d o_f_j = -sum_i sigmoid(tr_i) / n^2.
        dg[i] = 0.5 * (-sigmoid(-tf) * inv - sum_se * inv * inv);
    }
    ((a + b) / (2.0 * n), (c + e) / (2.0 * n))
}

/// `ln(1 + e^t)` without overflow.
fn softplus(t: f64) -> f64 {
    t.max(0.0) + (-t.abs()).exp().ln_1p()
}

/// `1 / (1 + e^-t)` without overflow.
fn sigmoid(t: f32) -> f32 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of the f64-summed losses against `eval`'s gradients, for every loss.
    #[test]
    fn gradients_match_finite_differences() {
        let rows = 5;
        let base: Vec<f32> = (0..2 * rows)
            .map(|i| ((i as f32) * 0.37).sin() * 1.5)
            .collect();
        for (loss, name) in GAN_LOSSES {
            let o: Vec<f32> = if loss == GanLoss::Bce {
                base.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect()
            } else {
                base.clone()
            };
            let (mut dg, mut dd) = (vec![0f32; rows], vec![0f32; 2 * rows]);
            loss.eval(&o, &mut dg, &mut dd);
            let h = 1e-3f32;
            for j in 0..2 * rows {
                let at = |v: f32| {
                    let mut p = o.clone();
                    p[j] = v;
                    let (mut a, mut b) = (vec![0f32; rows], vec![0f32; 2 * rows]);
                    loss.eval(&p, &mut a, &mut b)
                };
                let (hi, lo) = (at(o[j] + h), at(o[j] - h));
                let num_d = (hi.d_loss as f64 - lo.d_loss as f64) / (2.0 * h as f64);
                assert!(
                    (num_d - dd[j] as f64).abs() < 2e-3,
                    "{name} d_loss / o[{j}]: {num_d} vs {}",
                    dd[j]
                );
                if j < rows {
                    let num_g = (hi.g_loss as f64 - lo.g_loss as f64) / (2.0 * h as f64);
                    assert!(
                        (num_g - dg[j] as f64).abs() < 2e-3,
                        "{name} g_loss / o_f[{j}]: {num_g} vs {}",
                        dg[j]
                    );
                }
            }
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for (l, n) in GAN_LOSSES {
            assert_eq!(GanLoss::parse(n).unwrap(), l);
            assert_eq!(l.name(), n);
        }
        let e = GanLoss::parse("wasserstein").unwrap_err();
        assert!(e
            .message
            .contains("loss must be one of bce, mse, hinge, relativistic, relativistic_avg"));
    }
}
