//! An MLP on the CPU: flat parameters, gradients, Adam moments and running statistics, plus the activations that the
//! forward saves for the backward (sized for the largest batch seen, reused afterwards). Activations are feature-major
//! (`[features, rows]`, see `kernels.rs`); the [`MlpBackend`] methods take and give row-major `[rows, features]`.

use super::kernels::{
    act_grad_apply, adam, block_backward, block_forward, matmul_backward_input,
    matmul_backward_weight, matmul_forward, output_dz, transpose, Saved, SavedRef, Weights,
};
use crate::core::config::adam_diverged;
use crate::core::optim::{clamp_all, rmsprop_update};
use crate::core::{AdamConfig, Buffer, MlpBackend, MlpState, Result, RmsPropConfig, Spec};

pub struct CpuMlp {
    pub spec: Spec,
    pub threads: usize,
    /// `[param_count]`: the parameters (read through `params`, written through `params_mut`).
    params: Vec<f32>,
    /// `[param_count]` each: gradients, Adam first and second moments.
    pub grads: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// `[buffer_count]`: BN running means and variances.
    pub buffers: Vec<f32>,
    /// Counters and the last forward.
    pub state: MlpState,
    // Workspace, sized for `cap` rows.
    cap: usize,
    /// `[input, cap]`: the input of the last forward.
    x: Vec<f32>,
    /// Per layer `[out, cap]`: activations; `[out, cap]` xhat (BN layers); `[out]` rstd.
    acts: Vec<Vec<f32>>,
    xhats: Vec<Vec<f32>>,
    rstds: Vec<Vec<f32>>,
    /// `[max_width, cap]` gradient ping-pong buffers (feature-major).
    g0: Vec<f32>,
    g1: Vec<f32>,
    /// The input-gradient backward's workspace (grown on its first use): per layer `[out, rows]` deltas, and
    /// `[max_width, rows]` twice for the forward of `v`.
    deltas: Vec<Vec<f32>>,
    u: [Vec<f32>; 2],
    /// `[output, rows]` the pass's `dy`, feature-major.
    dy_fm: Vec<f32>,
}

impl CpuMlp {
    /// A new MLP: parameters zero except BN gamma 1, running means 0 and variances 1 (`Spec::default_params`).
    pub fn new(spec: Spec, threads: usize) -> CpuMlp {
        let n = spec.param_count;
        let layers = spec.layers.len();
        CpuMlp {
            threads,
            params: spec.default_params(),
            grads: vec![0f32; n],
            m: vec![0f32; n],
            v: vec![0f32; n],
            buffers: spec.default_running(),
            state: MlpState::default(),
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
            deltas: vec![Vec::new(); layers],
            u: [Vec::new(), Vec::new()],
            dy_fm: Vec::new(),
            spec,
        }
    }

    fn buffer(&self, which: Buffer) -> &[f32] {
        match which {
            Buffer::Params => &self.params,
            Buffer::Grads => &self.grads,
            Buffer::AdamM => &self.m,
            Buffer::AdamV => &self.v,
            Buffer::Running => &self.buffers,
        }
    }

    /// The parameters, `[param_count]`.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The parameters for writing.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    fn buffer_mut(&mut self, which: Buffer) -> &mut [f32] {
        match which {
            Buffer::Params => self.params_mut(),
            Buffer::Grads => &mut self.grads,
            Buffer::AdamM => &mut self.m,
            Buffer::AdamV => &mut self.v,
            Buffer::Running => &mut self.buffers,
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
        self.cap = rows;
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
            if train && l.dropout > 0.0 {
                let mask = self.state.dropout.layer(i, l.dropout);
                mask.apply_feature_major(&mut rest[0][..l.out * rows], l.out, rows, rows);
            }
        }
        self.state.forwarded(&self.spec, rows, train);
        &self.acts[n - 1][..rows * self.spec.output()]
    }

    /// The input of the next forward, `[input, rows]` feature-major.
    pub fn input_mut(&mut self, rows: usize) -> &mut [f32] {
        self.reserve(rows);
        &mut self.x[..rows * self.spec.input]
    }

    /// The output of the last forward, `[output, rows]` feature-major.
    pub fn output_fm(&self) -> &[f32] {
        let rows = self.state.last_rows();
        &self.acts[self.spec.layers.len() - 1][..rows * self.spec.output()]
    }

    /// The gradient buffer that `backward_rows` reads `d loss / d output` from, `[output, rows]` feature-major.
    pub fn dout_mut(&mut self, rows: usize) -> &mut [f32] {
        &mut self.g0[..rows * self.spec.output()]
    }

    /// Backward over the first `rows` rows of the last forward, reading `d loss / d output` from `dout_mut(rows)`.
    /// Writes the parameter gradients when `param_grads`; returns `d loss / d input` `[input, rows]` (feature-major)
    /// when `input_grad`. Rows beyond the first `rows` are ignored, which is exact only for an MLP without BatchNorm
    /// in train mode (`MlpState::backward_over` checks this).
    pub fn backward_rows(
        &mut self,
        rows: usize,
        param_grads: bool,
        input_grad: bool,
    ) -> Result<Option<&[f32]>> {
        let (ld, train) = self.state.backward_over(&self.spec, rows)?;
        let n = self.spec.layers.len();
        let saved = |i: usize| {
            let l = &self.spec.layers[i];
            SavedRef {
                l,
                a: &self.acts[i],
                xhat: &self.xhats[i],
                rstd: &self.rstds[i],
                mask: (train && l.dropout > 0.0)
                    .then(|| self.state.last_dropout.layer(i, l.dropout)),
            }
        };
        let top = saved(n - 1);
        let grads = param_grads.then_some(self.grads.as_mut_slice());
        output_dz(
            &mut self.g0[..top.l.out * rows],
            &top,
            ld,
            &self.params,
            train,
            grads,
        );
        // Each block's input-gradient GEMM finishes the block below's dz in its epilogue (`block_backward`).
        let mut cur_is_g0 = true;
        for i in (0..n).rev() {
            let x: &[f32] = if i == 0 { &self.x } else { &self.acts[i - 1] };
            let (dz, dx) = if cur_is_g0 {
                (&self.g0, &mut self.g1)
            } else {
                (&self.g1, &mut self.g0)
            };
            let dx =
                (i > 0 || input_grad).then(|| (dx.as_mut_slice(), (i > 0).then(|| saved(i - 1))));
            block_backward(
                dx,
                param_grads.then_some(self.grads.as_mut_slice()),
                dz,
                x,
                ld,
                &self.params,
                &self.spec.layers[i],
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

    /// One Adam step over all parameters with the current gradients; false when a parameter became NaN or infinite.
    pub fn adam_step(&mut self, c: AdamConfig) -> bool {
        self.state.adam_t += 1;
        adam(
            &mut self.params,
            &mut self.m,
            &mut self.v,
            &self.grads,
            self.state.adam_t,
            c.lr,
            c.b1,
            c.b2,
            c.eps,
            self.threads,
        )
    }
}

impl CpuMlp {
    /// Grows the input-gradient backward's workspace to `rows` rows (never shrinks).
    fn reserve_penalty(&mut self, rows: usize) {
        let w = self.spec.max_width();
        for (d, l) in self.deltas.iter_mut().zip(&self.spec.layers) {
            d.resize(d.len().max(l.out * rows), 0.0);
        }
        for u in &mut self.u {
            u.resize(u.len().max(w * rows), 0.0);
        }
        self.dy_fm
            .resize(self.dy_fm.len().max(self.spec.output() * rows), 0.0);
    }

    /// `grads += d<v, J(x)^T dy>/dW` as GEMMs (the pass of `core/penalty.rs`), after a forward at the input already
    /// in `input_mut(rows)`, with `dy [output, rows]` in `dy_fm` and `v [input, rows]` in `u[0]`, feature-major.
    fn input_grad_backward_fm(&mut self, rows: usize) {
        self.forward_in_place(rows, true);
        let (n, t) = (self.spec.layers.len(), self.threads);
        // Deltas from the top: delta_{n-1} = m * dy, delta_i = m_i * W_{i+1}^T delta_{i+1}.
        let top = &self.spec.layers[n - 1];
        self.deltas[n - 1][..top.out * rows].copy_from_slice(&self.dy_fm[..top.out * rows]);
        for i in (0..n).rev() {
            let l = &self.spec.layers[i];
            if i + 1 < n {
                let up = &self.spec.layers[i + 1];
                let (lo, hi) = self.deltas.split_at_mut(i + 1);
                let wu = Weights::of(&self.params, up);
                matmul_backward_input(&mut lo[i], rows, (&hi[0], rows), &wu, rows, t, None);
            }
            act_grad_apply(
                &mut self.deltas[i][..l.out * rows],
                &self.acts[i],
                rows,
                rows,
                l.act,
            );
        }
        // u_0 = v; grads W_i += delta_i u_i^T; u_{i+1} = m_i * (W_i u_i).
        let [ua, ub] = &mut self.u;
        let (mut cur, mut next) = (ua, ub);
        for i in 0..n {
            let l = &self.spec.layers[i];
            let (gw, wi) = (
                &mut self.grads[l.w..l.w + l.out * l.inp],
                Weights::of(&self.params, l),
            );
            let (delta, u) = ((&self.deltas[i][..], rows), (&cur[..], rows));
            matmul_backward_weight(true, gw, delta, u, rows, l.inp, l.out, t);
            if i + 1 < n {
                matmul_forward(next, rows, (cur, rows), &wi, rows, t, None);
                act_grad_apply(&mut next[..l.out * rows], &self.acts[i], rows, rows, l.act);
                std::mem::swap(&mut cur, &mut next);
            }
        }
    }
}

impl MlpBackend for CpuMlp {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn state(&self) -> &MlpState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut MlpState {
        &mut self.state
    }

    fn read(&self, which: Buffer, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(self.buffer(which));
        Ok(())
    }

    fn write(&mut self, which: Buffer, src: &[f32]) -> Result<()> {
        self.buffer_mut(which).copy_from_slice(src);
        Ok(())
    }

    fn read_range(&self, which: Buffer, at: usize, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(&self.buffer(which)[at..at + out.len()]);
        Ok(())
    }

    fn write_range(&mut self, which: Buffer, at: usize, src: &[f32]) -> Result<()> {
        self.buffer_mut(which)[at..at + src.len()].copy_from_slice(src);
        Ok(())
    }

    fn run_forward(&mut self, x: &[f32], rows: usize, train: bool, y: &mut [f32]) -> Result<()> {
        let (input, output) = (self.spec.input, self.spec.output());
        transpose(self.input_mut(rows), x, rows, input);
        let out = self.forward_in_place(rows, train);
        transpose(y, out, output, rows);
        Ok(())
    }

    fn run_backward(&mut self, rows: usize, dy: &[f32], dx: &mut [f32]) -> Result<()> {
        let (input, output) = (self.spec.input, self.spec.output());
        transpose(self.dout_mut(rows), dy, rows, output);
        let g = self
            .backward_rows(rows, true, true)?
            .expect("input gradient requested");
        transpose(dx, g, input, rows);
        Ok(())
    }

    fn read_output(&self, rows: usize, out: &mut [f32]) -> Result<()> {
        transpose(out, self.output_fm(), self.spec.output(), rows);
        Ok(())
    }

    fn run_adam(&mut self, c: AdamConfig) -> Result<()> {
        if self.adam_step(c) {
            Ok(())
        } else {
            Err(adam_diverged())
        }
    }

    fn run_backward_parts(
        &mut self,
        rows: usize,
        dy: &[f32],
        params: bool,
        dx: Option<&mut [f32]>,
    ) -> Result<()> {
        let (input, output) = (self.spec.input, self.spec.output());
        transpose(self.dout_mut(rows), dy, rows, output);
        let want_dx = dx.is_some();
        let g = self.backward_rows(rows, params, want_dx)?;
        if let (Some(dx), Some(g)) = (dx, g) {
            transpose(dx, g, input, rows);
        }
        Ok(())
    }

    fn run_rmsprop(&mut self, c: RmsPropConfig) -> Result<()> {
        self.state.adam_t += 1;
        if rmsprop_update(&mut self.params, &mut self.v, &self.grads, c) {
            Ok(())
        } else {
            Err(adam_diverged())
        }
    }

    fn run_clamp(&mut self, c: f32) -> Result<()> {
        clamp_all(self.params_mut(), c);
        Ok(())
    }

    fn run_input_grad_backward(&mut self, x: &[f32], dy: &[f32], v: &[f32]) -> Result<()> {
        let (input, output) = (self.spec.input, self.spec.output());
        let rows = x.len() / input;
        transpose(self.input_mut(rows), x, rows, input);
        self.reserve_penalty(rows);
        transpose(&mut self.dy_fm[..rows * output], dy, rows, output);
        transpose(&mut self.u[0][..rows * input], v, rows, input);
        self.input_grad_backward_fm(rows);
        Ok(())
    }
}
