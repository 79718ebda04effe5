//! An MLP on the CPU: flat parameters, gradients, Adam moments and running statistics, plus the activations that the
//! forward saves for the backward (sized for the largest batch seen, reused afterwards). Activations are feature-major
//! (`[features, rows]`, see `kernels.rs`); `forward`/`backward` take and give row-major `[rows, features]`.

use super::kernels::{adam, block_backward, block_forward, transpose, Saved};
use crate::error::{bad_arg, bad_state, Result};
use crate::spec::Spec;

/// Adam hyperparameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f64,
    pub b1: f64,
    pub b2: f64,
    pub eps: f64,
}

pub struct CpuMlp {
    pub spec: Spec,
    pub threads: usize,
    /// `[param_count]` each: parameters, gradients, Adam first and second moments.
    pub params: Vec<f32>,
    pub grads: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Adam steps taken (PyTorch's `step` in the optimizer state).
    pub adam_t: u64,
    /// `[buffer_count]`: BN running means and variances.
    pub buffers: Vec<f32>,
    /// Train-mode forwards with BN (PyTorch's `num_batches_tracked`).
    pub batches_tracked: u64,
    // Workspace, sized for `cap` rows.
    cap: usize,
    /// `[cap, input]`: the input of the last forward.
    pub x: Vec<f32>,
    /// Per layer `[cap, out]`: activations; `[cap, out]` xhat (BN layers); `[out]` rstd.
    acts: Vec<Vec<f32>>,
    xhats: Vec<Vec<f32>>,
    rstds: Vec<Vec<f32>>,
    /// `[max_width, cap]` gradient ping-pong buffers (feature-major).
    g0: Vec<f32>,
    g1: Vec<f32>,
    /// `[cap, max_width]` row-major results of `forward`/`backward`.
    rowmajor: Vec<f32>,
    /// Rows and mode of the last forward; `None` before any.
    last: Option<(usize, bool)>,
}

impl CpuMlp {
    pub fn new(spec: Spec, threads: usize) -> CpuMlp {
        let n = spec.param_count;
        let params = spec.default_params();
        let buffers = spec.default_running();
        let layers = spec.layers.len();
        CpuMlp {
            threads,
            params,
            grads: vec![0f32; n],
            m: vec![0f32; n],
            v: vec![0f32; n],
            adam_t: 0,
            buffers,
            batches_tracked: 0,
            cap: 0,
            x: Vec::new(),
            acts: vec![Vec::new(); layers],
            xhats: vec![Vec::new(); layers],
            rstds: spec
                .layers
                .iter()
                .map(|l| vec![0f32; if l.bn.is_some() { l.out } else { 0 }])
                .collect(),
            g0: Vec::new(),
            g1: Vec::new(),
            rowmajor: Vec::new(),
            last: None,
            spec,
        }
    }

    /// Grows the workspace to hold `rows` rows (never shrinks: a step never allocates once warm).
    pub fn reserve(&mut self, rows: usize) {
        if rows <= self.cap {
            return;
        }
        self.x.resize(rows * self.spec.input, 0.0);
        for (i, l) in self.spec.layers.iter().enumerate() {
            self.acts[i].resize(rows * l.out, 0.0);
            if l.bn.is_some() {
                self.xhats[i].resize(rows * l.out, 0.0);
            }
        }
        let w = self.spec.max_width();
        self.g0.resize(rows * w, 0.0);
        self.g1.resize(rows * w, 0.0);
        self.rowmajor.resize(rows * w, 0.0);
        self.cap = rows;
    }

    pub fn check_rows(&self, rows: usize, train: bool) -> Result<()> {
        self.spec.check_rows(rows, train)
    }

    /// Forward over `self.x[..input * rows]` (feature-major; fill it with `input_mut` first). Returns the output
    /// `[output, rows]`, feature-major.
    pub fn forward_in_place(&mut self, rows: usize, train: bool) -> &[f32] {
        let n = self.spec.layers.len();
        for i in 0..n {
            let (before, rest) = self.acts.split_at_mut(i);
            let x: &[f32] = if i == 0 { &self.x } else { &before[i - 1] };
            let l = &self.spec.layers[i];
            block_forward(
                Saved {
                    a: &mut rest[0],
                    xhat: &mut self.xhats[i],
                    rstd: &mut self.rstds[i],
                },
                x,
                &self.params,
                &mut self.buffers,
                l,
                rows,
                train,
                self.threads,
            );
        }
        if train && self.spec.has_bn() {
            self.batches_tracked += 1;
        }
        self.last = Some((rows, train));
        &self.acts[n - 1][..rows * self.spec.output()]
    }

    /// The input of the next forward, `[input, rows]` feature-major.
    pub fn input_mut(&mut self, rows: usize) -> &mut [f32] {
        self.reserve(rows);
        &mut self.x[..rows * self.spec.input]
    }

    /// Rows of the last forward (0 before any).
    pub fn last_rows(&self) -> usize {
        self.last.map(|l| l.0).unwrap_or(0)
    }

    /// The output of the last forward, `[output, rows]` feature-major.
    pub fn output(&self) -> &[f32] {
        let rows = self.last.map(|l| l.0).unwrap_or(0);
        &self.acts[self.spec.layers.len() - 1][..rows * self.spec.output()]
    }

    pub fn forward(&mut self, x: &[f32], rows: usize, train: bool) -> Result<&[f32]> {
        self.check_rows(rows, train)?;
        let need = rows * self.spec.input;
        if x.len() != need {
            return Err(bad_arg!(
                "forward: input has {} values, expected {need} (batch {rows} x input {})",
                x.len(),
                self.spec.input
            ));
        }
        let input = self.spec.input;
        transpose(self.input_mut(rows), x, rows, input);
        self.forward_in_place(rows, train);
        Ok(self.output_rowmajor())
    }

    /// The output of the last forward as row-major `[rows, output]`.
    pub fn output_rowmajor(&mut self) -> &[f32] {
        let (rows, out) = (self.last_rows(), self.spec.output());
        let y = &self.acts[self.spec.layers.len() - 1][..out * rows];
        transpose(&mut self.rowmajor[..rows * out], y, out, rows);
        &self.rowmajor[..rows * out]
    }

    /// The gradient buffer that `backward_rows` reads `d loss / d output` from, `[output, rows]` feature-major.
    pub fn dout_mut(&mut self, rows: usize) -> &mut [f32] {
        &mut self.g0[..rows * self.spec.output()]
    }

    /// Backward over the first `rows` rows of the last forward, reading `d loss / d output` from `dout_mut(rows)`.
    /// Writes the parameter gradients when `param_grads`; returns `d loss / d input` `[input, rows]` (feature-major)
    /// when `input_grad`.
    /// Rows beyond the first `rows` are ignored, which is exact only for an MLP without BatchNorm in train mode
    /// (the caller checks this).
    pub fn backward_rows(
        &mut self,
        rows: usize,
        param_grads: bool,
        input_grad: bool,
    ) -> Result<Option<&[f32]>> {
        let Some((last_rows, train)) = self.last else {
            return Err(bad_state!("backward called before any forward"));
        };
        if rows > last_rows || (rows != last_rows && train && self.spec.has_bn()) {
            return Err(bad_state!(
                "backward over {rows} rows of a forward over {last_rows} rows"
            ));
        }
        let n = self.spec.layers.len();
        let mut cur_is_g0 = true;
        for i in (0..n).rev() {
            let l = &self.spec.layers[i];
            let x: &[f32] = if i == 0 { &self.x } else { &self.acts[i - 1] };
            let want_dx = i > 0 || input_grad;
            let (dz, dx) = if cur_is_g0 {
                (&mut self.g0, &mut self.g1)
            } else {
                (&mut self.g1, &mut self.g0)
            };
            block_backward(
                if want_dx {
                    Some(dx.as_mut_slice())
                } else {
                    None
                },
                if param_grads {
                    Some(self.grads.as_mut_slice())
                } else {
                    None
                },
                dz,
                &self.acts[i],
                &self.xhats[i],
                &self.rstds[i],
                x,
                last_rows,
                &self.params,
                l,
                rows,
                train,
                self.threads,
            );
            cur_is_g0 = !cur_is_g0;
        }
        if !input_grad {
            return Ok(None);
        }
        let g = if cur_is_g0 { &self.g0 } else { &self.g1 };
        Ok(Some(&g[..rows * self.spec.input]))
    }

    pub fn backward(&mut self, dout: &[f32]) -> Result<&[f32]> {
        let Some((rows, _)) = self.last else {
            return Err(bad_state!("backward called before any forward"));
        };
        let need = rows * self.spec.output();
        if dout.len() != need {
            return Err(bad_arg!(
                "backward: output gradient has {} values, expected {need} (batch {rows} x output {})",
                dout.len(),
                self.spec.output()
            ));
        }
        let out = self.spec.output();
        transpose(self.dout_mut(rows), dout, rows, out);
        self.backward_rows(rows, true, true)?;
        // The input gradient is in whichever ping-pong buffer the first layer wrote.
        let input = self.spec.input;
        let g = if self.spec.layers.len() % 2 == 1 {
            &self.g1
        } else {
            &self.g0
        };
        transpose(
            &mut self.rowmajor[..rows * input],
            &g[..input * rows],
            input,
            rows,
        );
        Ok(&self.rowmajor[..rows * input])
    }

    /// One Adam step over all parameters with the current gradients; false when a parameter became NaN or infinite.
    pub fn adam_step(&mut self, c: AdamConfig) -> bool {
        self.adam_t += 1;
        adam(
            &mut self.params,
            &mut self.m,
            &mut self.v,
            &self.grads,
            self.adam_t,
            c.lr,
            c.b1,
            c.b2,
            c.eps,
            self.threads,
        )
    }
}
