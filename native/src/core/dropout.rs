//! Dropout after a block's activation, in train-mode forwards: `a' = a * s`, the mask `s` in `{0, 1 / (1 - p)}` drawn
//! from the counter-based streams (`rng::dropout_key`: one key per layer and pass of a stream, counter `row * out +
//! column`, kept when the element's 24-bit uniform is below `1 - p`), so every backend draws the same bits and the
//! backward regenerates the mask instead of storing it. The backward multiplies the incoming gradient by the same
//! mask (before or after the activation's derivative: the two commute).
//!
//! After the activation rather than before it (upstream's cgan writes Linear, Dropout, LeakyReLU): LeakyReLU is
//! positively homogeneous, so `lrelu(z * s) = lrelu(z) * s` for `s >= 0`, equal up to the rounding of `z * s * slope`
//! against `z * slope * s`. Its derivative read from the output `a'` is that of `a` wherever `s > 0`, and where `s = 0`
//! the mask zeroes the gradient anyway.

use crate::rng;

/// Which masks the next train-mode forward of an MLP draws: `(seed, stream, pass)` of `rng::dropout_key`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropoutStream {
    pub seed: u64,
    pub stream: u32,
    pub pass: u32,
}

/// One layer's mask: its key, threshold and scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerMask {
    pub key: u32,
    pub threshold: u32,
    pub scale: f32,
}

impl DropoutStream {
    /// The mask of layer `layer` with dropout probability `p`.
    pub fn layer(&self, layer: usize, p: f64) -> LayerMask {
        LayerMask {
            key: rng::dropout_key(self.seed, self.stream, self.pass, layer as u32),
            threshold: rng::dropout_threshold(p),
            scale: rng::dropout_scale(p),
        }
    }
}

impl LayerMask {
    /// The mask value of row `r`, column `j` of a layer of `out` features.
    #[inline]
    pub fn at(&self, r: usize, j: usize, out: usize) -> f32 {
        rng::dropout_mask(self.key, (r * out + j) as u32, self.threshold, self.scale)
    }

    /// Multiplies `v [out, ld]` (feature-major; its first `rows` samples) by the mask.
    pub fn apply_feature_major(&self, v: &mut [f32], out: usize, ld: usize, rows: usize) {
        for (j, col) in v.chunks_exact_mut(ld).take(out).enumerate() {
            for (r, x) in col[..rows].iter_mut().enumerate() {
                *x *= self.at(r, j, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::{Act, Spec};
    use crate::core::{Buffer, Mlp};
    use crate::cpu::CpuMlp;

    fn net() -> Spec {
        let lr = Act::LeakyRelu(0.2);
        Spec::new(5, &[(6, None, lr), (4, None, lr), (2, None, Act::None)])
            .with_dropout(0, 0.4)
            .with_dropout(1, 0.25)
    }

    /// `<dy, f(x)>` in float64 with the masks of `s`, row-major `x [rows, 5]`.
    fn loss_f64(spec: &Spec, p: &[f64], x: &[f32], dy: &[f32], s: DropoutStream) -> f64 {
        let rows = x.len() / spec.input;
        let mut total = 0.0;
        for r in 0..rows {
            let mut h: Vec<f64> = x[r * spec.input..(r + 1) * spec.input]
                .iter()
                .map(|&v| v as f64)
                .collect();
            for (li, l) in spec.layers.iter().enumerate() {
                let m = s.layer(li, l.dropout);
                h = (0..l.out)
                    .map(|o| {
                        let z = (0..l.inp)
                            .map(|i| p[l.w + o * l.inp + i] * h[i])
                            .sum::<f64>()
                            + p[l.b + o];
                        let a = match l.act {
                            Act::LeakyRelu(sl) if z <= 0.0 => z * sl as f64,
                            _ => z,
                        };
                        if l.dropout > 0.0 {
                            a * m.at(r, o, l.out) as f64
                        } else {
                            a
                        }
                    })
                    .collect();
            }
            total += h
                .iter()
                .zip(&dy[r * 2..r * 2 + 2])
                .map(|(a, &b)| a * b as f64)
                .sum::<f64>();
        }
        total
    }

    /// The spec's `dropout`: a probability in [0, 1), counted as a module in the state_dict names (cgan's D:
    /// Linear 0, LeakyReLU 1, Linear 2, Dropout, LeakyReLU, Linear 5).
    #[test]
    fn the_spec_takes_a_dropout_probability() {
        let lr = r#"{"kind": "leaky_relu", "slope": 0.2}"#;
        let json = format!(
            r#"{{"input": 4, "layers": [{{"out": 3, "bn": null, "act": {lr}}}, {{"out": 3, "bn": null, "act": {lr}, "dropout": 0.4}}, {{"out": 1, "bn": null, "act": {{"kind": "none"}}}}]}}"#
        );
        let spec = Spec::parse(&json).unwrap();
        assert_eq!(spec.layers[1].dropout, 0.4);
        let names: Vec<String> = spec.describe()["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names[4], "model.5.weight");
        let bad = json.replace("0.4", "1.0");
        assert_eq!(
            Spec::parse(&bad).unwrap_err().message,
            "Invalid MLP spec: layers[1].dropout must be a probability in [0, 1), got 1.0"
        );
    }

    /// The CPU's dropout forward against the float64 forward with the same masks, and its backward against central
    /// differences of that float64 forward (masks held: the same stream), weight by weight; an eval-mode forward
    /// draws no mask.
    #[test]
    fn cpu_dropout_matches_the_f64_forward_and_finite_differences() {
        let spec = net();
        let mut m = CpuMlp::new(spec.clone(), 1);
        m.init(4, 0).unwrap();
        let s = DropoutStream {
            seed: 9,
            stream: 2,
            pass: 3,
        };
        m.set_dropout_stream(s);
        let rows = 7;
        let x: Vec<f32> = (0..rows * 5)
            .map(|i| ((i * 31 % 13) as f32 - 6.0) / 3.0)
            .collect();
        let dy: Vec<f32> = (0..rows * 2)
            .map(|i| ((i * 7 % 5) as f32 - 2.0) / 2.0)
            .collect();
        let mut y = vec![0f32; rows * 2];
        m.forward(&x, rows, true, &mut y).unwrap();
        let p64: Vec<f64> = m.params().iter().map(|&v| v as f64).collect();
        let got: f64 = y.iter().zip(&dy).map(|(a, b)| (a * b) as f64).sum();
        assert!((got - loss_f64(&spec, &p64, &x, &dy, s)).abs() < 1e-5);
        let mut dx = vec![0f32; rows * 5];
        m.backward(&dy, &mut dx).unwrap();
        let h = 1e-6;
        for k in 0..spec.param_count {
            let (mut up, mut dn) = (p64.clone(), p64.clone());
            up[k] += h;
            dn[k] -= h;
            let fd =
                (loss_f64(&spec, &up, &x, &dy, s) - loss_f64(&spec, &dn, &x, &dy, s)) / (2.0 * h);
            assert!(
                (m.grads[k] as f64 - fd).abs() <= 1e-5 + 1e-4 * fd.abs(),
                "param {k}: {} vs {fd}",
                m.grads[k]
            );
        }
        // Eval mode: no dropout; a train forward of another pass: other masks.
        let mut y_eval = vec![0f32; rows * 2];
        m.forward(&x, rows, false, &mut y_eval).unwrap();
        let plain = loss_f64(
            &Spec::new(
                5,
                &[
                    (6, None, Act::LeakyRelu(0.2)),
                    (4, None, Act::LeakyRelu(0.2)),
                    (2, None, Act::None),
                ],
            ),
            &p64,
            &x,
            &dy,
            s,
        );
        let got_eval: f64 = y_eval.iter().zip(&dy).map(|(a, b)| (a * b) as f64).sum();
        assert!((got_eval - plain).abs() < 1e-5);
        m.set_dropout_stream(DropoutStream { pass: 4, ..s });
        let mut y2 = vec![0f32; rows * 2];
        m.forward(&x, rows, true, &mut y2).unwrap();
        assert_ne!(y, y2);
        assert_eq!(m.get_vec(Buffer::Params).unwrap(), m.params());
    }

    /// The masks keep about `1 - p`, scale by PyTorch's float32 `1 / (1 - p)`, differ between layers, passes and
    /// streams, and are the same every time they are drawn.
    #[test]
    fn masks_are_bernoulli_and_reproducible() {
        let s = DropoutStream {
            seed: 3,
            stream: 11,
            pass: 0,
        };
        let m = s.layer(1, 0.4);
        assert_eq!(m.scale, 1.666_666_6); // 1 / 0.6f, the factor nn.Dropout applies
        assert_eq!(m.scale.to_bits(), 0x3FD5_5555);
        let (rows, out) = (256, 512);
        let kept = (0..rows)
            .flat_map(|r| (0..out).map(move |j| (r, j)))
            .filter(|&(r, j)| m.at(r, j, out) != 0.0)
            .count();
        let frac = kept as f64 / (rows * out) as f64;
        assert!((frac - 0.6).abs() < 0.005, "kept {frac}");
        assert_eq!(m, s.layer(1, 0.4));
        for other in [
            s.layer(2, 0.4),
            DropoutStream { pass: 1, ..s }.layer(1, 0.4),
            DropoutStream { stream: 12, ..s }.layer(1, 0.4),
        ] {
            let same = (0..1000)
                .filter(|&c| (m.at(0, c, 1000) == 0.0) == (other.at(0, c, 1000) == 0.0))
                .count();
            assert!(
                same < 700,
                "independent masks agree on about 52%, got {same} of 1000"
            );
        }
        assert_eq!(rng::dropout_threshold(0.0), 1 << 24); // p = 0 keeps everything
    }
}
