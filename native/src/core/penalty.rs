//! The second-order pass of the gradient penalties (WGAN-GP, WGAN-div): the gradient, with respect to the weights, of
//! a function of the critic's input gradient.
//!
//! For an MLP `f` without BatchNorm whose activations are piecewise linear (LeakyReLU or none), the input gradient of
//! `<dy, f(x)>` is `g = J(x)^T dy = W_0^T (m_0 * W_1^T (m_1 * ... W_{L-1}^T (m_{L-1} * dy)))`, with `m_l` the
//! activation derivatives of the forward at `x` (0/1-like masks: the second derivative of LeakyReLU is 0 almost
//! everywhere, so the masks do not move with the weights). Writing `delta_l` for the factor to the right of `W_l^T`
//! (`delta_{L-1} = m_{L-1} * dy`, `delta_l = m_l * W_{l+1}^T delta_{l+1}`), the gradient of `<v, g>` is
//!
//! ```text
//! d<v, g>/dW_l = sum over rows of delta_l u_l^T,   u_0 = v,   u_{l+1} = m_l * (W_l u_l)
//! ```
//!
//! and the biases get none: a forward of `v` through the weights with the forward's masks, met by the deltas of the
//! backward. [`input_grad_backward_host`] computes it row by row in float32 (the default of every backend without a
//! kernel of its own); the CPU backend runs the same pass as GEMMs.

use super::spec::{Act, Spec};
use crate::error::{bad_arg, Result};

/// Checks that `spec` has what the pass above needs: no BatchNorm, and LeakyReLU or no activation everywhere.
pub fn check_piecewise_linear(spec: &Spec) -> Result<()> {
    if spec.embed.is_some() {
        return Err(bad_arg!(
            "the gradient penalty's second-order pass needs a critic without a label embedding"
        ));
    }
    for (i, l) in spec.layers.iter().enumerate() {
        if l.bn.is_some() {
            return Err(bad_arg!(
                "the gradient penalty's second-order pass needs a critic without BatchNorm (layer {i} has one)"
            ));
        }
        if l.dropout > 0.0 {
            return Err(bad_arg!(
                "the gradient penalty's second-order pass needs a critic without dropout (layer {i} has some)"
            ));
        }
        if !matches!(l.act, Act::None | Act::LeakyRelu(_)) {
            return Err(bad_arg!(
                "the gradient penalty's second-order pass needs LeakyReLU or linear layers (layer {i} ends in {:?})",
                l.act
            ));
        }
    }
    Ok(())
}

/// The derivative of a piecewise-linear activation at pre-activation `z` (the same mask the CPU kernel reads from
/// the activation's output: `a > 0` exactly when `z > 0`).
#[inline]
pub fn mask(act: Act, z: f32) -> f32 {
    match act {
        Act::LeakyRelu(s) if z <= 0.0 => s,
        _ => 1.0,
    }
}

/// `grads += d<v, J(x)^T dy>/dW` for `x [rows, input]`, `dy [rows, output]`, `v [rows, input]` (row-major), the
/// parameters `params` of `spec` (checked by [`check_piecewise_linear`]); biases untouched. Row by row in float32.
pub fn input_grad_backward_host(
    spec: &Spec,
    params: &[f32],
    x: &[f32],
    dy: &[f32],
    v: &[f32],
    grads: &mut [f32],
) {
    let (inp, out) = (spec.input, spec.output());
    let n = spec.layers.len();
    let rows = x.len() / inp;
    let mut masks: Vec<Vec<f32>> = spec.layers.iter().map(|l| vec![0f32; l.out]).collect();
    let mut deltas = masks.clone();
    for r in 0..rows {
        // Forward at x: the masks.
        let mut h = x[r * inp..(r + 1) * inp].to_vec();
        for (l, m) in spec.layers.iter().zip(masks.iter_mut()) {
            let w = &params[l.w..l.w + l.out * l.inp];
            let z: Vec<f32> = (0..l.out)
                .map(|o| dot(&w[o * l.inp..(o + 1) * l.inp], &h) + params[l.b + o])
                .collect();
            for (mo, &zo) in m.iter_mut().zip(&z) {
                *mo = mask(l.act, zo);
            }
            h = z.iter().zip(m.iter()).map(|(&zo, &mo)| zo * mo).collect();
        }
        // Deltas, from the top.
        for (d, (&m, &g)) in deltas[n - 1]
            .iter_mut()
            .zip(masks[n - 1].iter().zip(&dy[r * out..(r + 1) * out]))
        {
            *d = m * g;
        }
        for li in (0..n - 1).rev() {
            let up = &spec.layers[li + 1];
            let w = &params[up.w..up.w + up.out * up.inp];
            let (lo, hi) = deltas.split_at_mut(li + 1);
            for (i, d) in lo[li].iter_mut().enumerate() {
                let s: f32 = (0..up.out).map(|o| w[o * up.inp + i] * hi[0][o]).sum();
                *d = masks[li][i] * s;
            }
        }
        // u forward with the masks, meeting the deltas.
        let mut u = v[r * inp..(r + 1) * inp].to_vec();
        for (li, l) in spec.layers.iter().enumerate() {
            for o in 0..l.out {
                let d = deltas[li][o];
                let gw = &mut grads[l.w + o * l.inp..l.w + (o + 1) * l.inp];
                for (gi, &ui) in gw.iter_mut().zip(&u) {
                    *gi += d * ui;
                }
            }
            if li + 1 < n {
                let w = &params[l.w..l.w + l.out * l.inp];
                u = (0..l.out)
                    .map(|o| masks[li][o] * dot(&w[o * l.inp..(o + 1) * l.inp], &u))
                    .collect();
            }
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::spec::Spec;

    /// A small critic: 5 -> 4 (LeakyReLU 0.2) -> 3 (LeakyReLU 0.2) -> 1 (linear), with reproducible weights.
    pub(crate) fn critic() -> (Spec, Vec<f32>) {
        let lrelu = Act::LeakyRelu(0.2);
        let spec = Spec::new(
            5,
            &[(4, None, lrelu), (3, None, lrelu), (1, None, Act::None)],
        );
        let params = spec.init_params(7, 1);
        (spec, params)
    }

    /// `J(x)^T dy` in float64, row-major `[rows, input]`.
    pub(crate) fn input_grad_f64(spec: &Spec, p: &[f64], x: &[f64], dy: &[f64]) -> Vec<f64> {
        let (inp, out) = (spec.input, spec.output());
        let rows = x.len() / inp;
        let mut g = vec![0f64; x.len()];
        for r in 0..rows {
            let mut h = x[r * inp..(r + 1) * inp].to_vec();
            let mut masks = Vec::new();
            for l in &spec.layers {
                let z: Vec<f64> = (0..l.out)
                    .map(|o| {
                        (0..l.inp)
                            .map(|i| p[l.w + o * l.inp + i] * h[i])
                            .sum::<f64>()
                            + p[l.b + o]
                    })
                    .collect();
                let m: Vec<f64> = z.iter().map(|&zo| mask(l.act, zo as f32) as f64).collect();
                h = z.iter().zip(&m).map(|(a, b)| a * b).collect();
                masks.push(m);
            }
            let mut d: Vec<f64> = (0..out)
                .map(|o| dy[r * out + o] * masks[spec.layers.len() - 1][o])
                .collect();
            for li in (0..spec.layers.len()).rev() {
                let l = &spec.layers[li];
                let below: Vec<f64> = (0..l.inp)
                    .map(|i| (0..l.out).map(|o| p[l.w + o * l.inp + i] * d[o]).sum())
                    .collect();
                d = if li > 0 {
                    below
                        .iter()
                        .zip(&masks[li - 1])
                        .map(|(a, b)| a * b)
                        .collect()
                } else {
                    below
                };
            }
            g[r * inp..(r + 1) * inp].copy_from_slice(&d);
        }
        g
    }

    /// The pass against central finite differences of `<v, J(x)^T dy>` in float64, weight by weight (the masks do
    /// not change under a small step); the biases get exactly zero.
    #[test]
    fn host_pass_matches_finite_differences() {
        let (spec, params) = critic();
        let rows = 3;
        let x: Vec<f32> = (0..rows * 5)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let v: Vec<f32> = (0..rows * 5)
            .map(|i| ((i * 13 % 7) as f32 - 3.0) / 3.0)
            .collect();
        let dy = vec![1f32; rows];
        let mut grads = vec![0f32; spec.param_count];
        input_grad_backward_host(&spec, &params, &x, &dy, &v, &mut grads);
        let p64: Vec<f64> = params.iter().map(|&p| p as f64).collect();
        let (x64, dy64, v64): (Vec<f64>, Vec<f64>, Vec<f64>) = (
            x.iter().map(|&a| a as f64).collect(),
            dy.iter().map(|&a| a as f64).collect(),
            v.iter().map(|&a| a as f64).collect(),
        );
        let q = |p: &[f64]| -> f64 {
            let g = input_grad_f64(&spec, p, &x64, &dy64);
            g.iter().zip(&v64).map(|(a, b)| a * b).sum()
        };
        let h = 1e-6;
        for k in 0..spec.param_count {
            let (mut up, mut dn) = (p64.clone(), p64.clone());
            up[k] += h;
            dn[k] -= h;
            let fd = (q(&up) - q(&dn)) / (2.0 * h);
            assert!(
                (grads[k] as f64 - fd).abs() <= 1e-5 + 1e-4 * fd.abs(),
                "param {k}: pass {} vs finite differences {fd}",
                grads[k]
            );
        }
        for l in &spec.layers {
            assert!(grads[l.b..l.b + l.out].iter().all(|&g| g == 0.0));
        }
    }

    #[test]
    fn refuses_batchnorm_and_curved_activations() {
        let bn = Some(crate::core::spec::Bn {
            eps: 1e-5,
            momentum: 0.1,
        });
        let with_bn = Spec::new(3, &[(2, bn, Act::LeakyRelu(0.2)), (1, None, Act::None)]);
        assert!(check_piecewise_linear(&with_bn)
            .unwrap_err()
            .message
            .contains("layer 0"));
        let sigmoid = Spec::new(
            3,
            &[(2, None, Act::LeakyRelu(0.2)), (1, None, Act::Sigmoid)],
        );
        assert!(check_piecewise_linear(&sigmoid)
            .unwrap_err()
            .message
            .contains("layer 1 ends in Sigmoid"));
        assert!(check_piecewise_linear(&critic().0).is_ok());
    }
}
