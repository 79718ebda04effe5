//! An MLP on some backend: what a backend implements ([`MlpBackend`]) and the checked API every MLP has on top of it
//! ([`Mlp`], implemented for every backend at once: the argument rules below are written once and hold everywhere).

use super::buffer::Buffer;
use super::config::{adam_diverged, AdamConfig};
use super::dropout::DropoutStream;
use super::optim::{clamp_all, rmsprop_update, RmsPropConfig};
use super::penalty::{check_piecewise_linear, input_grad_backward_host};
use super::spec::Spec;
use crate::error::{bad_arg, bad_state, Result};
use std::any::Any;

/// The bookkeeping every backend keeps the same way: PyTorch's counters and what the last forward was.
#[derive(Clone, Debug, Default)]
pub struct MlpState {
    /// Adam steps taken (PyTorch's `step` in the optimizer state).
    pub adam_t: u64,
    /// Train-mode forwards with BatchNorm (PyTorch's `num_batches_tracked`).
    pub batches_tracked: u64,
    /// Rows and mode of the last forward; `None` before any (or once its saved activations are gone).
    last: Option<(usize, bool)>,
    /// The dropout masks of the next train-mode forward, and those of the last forward (for its backward).
    pub dropout: DropoutStream,
    pub last_dropout: DropoutStream,
}

impl MlpState {
    /// Records a forward over `rows` rows (counted in `batches_tracked` when it trains BatchNorm).
    pub fn forwarded(&mut self, spec: &Spec, rows: usize, train: bool) {
        if train && spec.has_bn() {
            self.batches_tracked += 1;
        }
        self.last = Some((rows, train));
        self.last_dropout = self.dropout;
    }

    /// Forgets the last forward (its saved activations were lost).
    pub fn forget_forward(&mut self) {
        self.last = None;
    }

    /// Rows of the last forward (0 before any).
    pub fn last_rows(&self) -> usize {
        self.last.map_or(0, |l| l.0)
    }

    /// `(rows, train)` of the last forward, for a backward of it.
    pub fn last_forward(&self) -> Result<(usize, bool)> {
        self.last
            .ok_or_else(|| bad_state!("backward called before any forward"))
    }

    /// `(rows, train)` of the last forward, for a backward over its first `rows` rows: exact only for an MLP without
    /// BatchNorm in train mode (its batch statistics couple all rows), so anything else must cover every row.
    pub fn backward_over(&self, spec: &Spec, rows: usize) -> Result<(usize, bool)> {
        let (last_rows, train) = self.last_forward()?;
        if rows > last_rows || (rows != last_rows && train && spec.has_bn()) {
            return Err(bad_state!(
                "backward over {rows} rows of a forward over {last_rows} rows"
            ));
        }
        Ok((last_rows, train))
    }
}

/// What a backend implements for an MLP. The `run_*` / `read*` / `write` methods get arguments that [`Mlp`] already
/// checked (lengths, rows, finiteness), and may assume them.
pub trait MlpBackend: Any + Send {
    /// The layout.
    fn spec(&self) -> &Spec;
    /// The counters and the last forward.
    fn state(&self) -> &MlpState;
    fn state_mut(&mut self) -> &mut MlpState;
    /// The backend's own limit on the rows of a batch, beyond `Spec::check_rows` (none by default).
    fn check_batch_limits(&self, _rows: usize) -> Result<()> {
        Ok(())
    }
    /// Copies flat buffer `which` into `out [which.len(spec)]`.
    fn read(&self, which: Buffer, out: &mut [f32]) -> Result<()>;
    /// Replaces flat buffer `which` with `src [which.len(spec)]` (finite).
    fn write(&mut self, which: Buffer, src: &[f32]) -> Result<()>;
    /// Forward of `x [rows, input]` into `y [rows, output]` (both row-major); records it with `MlpState::forwarded`.
    fn run_forward(&mut self, x: &[f32], rows: usize, train: bool, y: &mut [f32]) -> Result<()>;
    /// Backward of the last forward (of `rows` rows) from `dy [rows, output]`: the parameter gradients into the grads
    /// buffer (overwritten), d loss / d input into `dx [rows, input]`.
    fn run_backward(&mut self, rows: usize, dy: &[f32], dx: &mut [f32]) -> Result<()>;
    /// The output of the last forward (of `rows` rows) into `out [rows, output]`.
    fn read_output(&self, rows: usize, out: &mut [f32]) -> Result<()>;
    /// One Adam step over all parameters with the current gradients; counts it in `adam_t`.
    fn run_adam(&mut self, c: AdamConfig) -> Result<()>;

    /// Backward of the last forward (of `rows` rows) from `dy [rows, output]`: the parameter gradients into the grads
    /// buffer (overwritten) when `params` (else the grads buffer is left unspecified), `d loss / d input` into `dx
    /// [rows, input]` when given. The default runs the full [`MlpBackend::run_backward`].
    fn run_backward_parts(
        &mut self,
        rows: usize,
        dy: &[f32],
        _params: bool,
        dx: Option<&mut [f32]>,
    ) -> Result<()> {
        match dx {
            Some(dx) => self.run_backward(rows, dy, dx),
            None => {
                let mut tmp = vec![0f32; rows * self.spec().input];
                self.run_backward(rows, dy, &mut tmp)
            }
        }
    }

    /// One RMSprop step over all parameters with the current gradients, its squared-gradient average in the
    /// `adam_v` buffer; counts it in `adam_t`. The default runs [`rmsprop_update`] on host copies of the buffers.
    fn run_rmsprop(&mut self, c: RmsPropConfig) -> Result<()> {
        let spec_len = self.spec().param_count;
        let (mut p, mut v, mut g) = (
            vec![0f32; spec_len],
            vec![0f32; spec_len],
            vec![0f32; spec_len],
        );
        self.read(Buffer::Params, &mut p)?;
        self.read(Buffer::AdamV, &mut v)?;
        self.read(Buffer::Grads, &mut g)?;
        self.state_mut().adam_t += 1;
        let ok = rmsprop_update(&mut p, &mut v, &g, c);
        self.write(Buffer::Params, &p)?;
        self.write(Buffer::AdamV, &v)?;
        if ok {
            Ok(())
        } else {
            Err(adam_diverged())
        }
    }

    /// Clamps every parameter to `[-c, c]`. The default clamps a host copy.
    fn run_clamp(&mut self, c: f32) -> Result<()> {
        let mut p = vec![0f32; self.spec().param_count];
        self.read(Buffer::Params, &mut p)?;
        clamp_all(&mut p, c);
        self.write(Buffer::Params, &p)
    }

    /// `grads += d<v, J(x)^T dy>/dW` (weights only; see `penalty.rs`) for `x [rows, input]`, `dy [rows, output]`, `v
    /// [rows, input]`, row-major, on an MLP that `check_piecewise_linear` accepts. May replace the saved forward. The
    /// default runs [`input_grad_backward_host`] on host copies of the parameters and gradients.
    fn run_input_grad_backward(&mut self, x: &[f32], dy: &[f32], v: &[f32]) -> Result<()> {
        let n = self.spec().param_count;
        let (mut p, mut g) = (vec![0f32; n], vec![0f32; n]);
        self.read(Buffer::Params, &mut p)?;
        self.read(Buffer::Grads, &mut g)?;
        input_grad_backward_host(self.spec(), &p, x, dy, v, &mut g);
        self.write(Buffer::Grads, &g)
    }
}

/// The checked API of every MLP, whatever its backend (`impl<T: MlpBackend> Mlp for T`; not implemented by hand).
pub trait Mlp: MlpBackend {
    /// The layout as JSON (`Spec::describe`) with `adam_step`, `num_batches_tracked` and `last_rows`.
    fn info(&self) -> serde_json::Value {
        let mut v = self.spec().describe();
        let s = self.state();
        v["adam_step"] = s.adam_t.into();
        v["num_batches_tracked"] = s.batches_tracked.into();
        v["last_rows"] = s.last_rows().into();
        v
    }

    /// Which dropout masks the next train-mode forwards draw (`core/dropout.rs`); until changed, every train-mode
    /// forward draws the same ones.
    fn set_dropout_stream(&mut self, s: DropoutStream) {
        self.state_mut().dropout = s;
    }

    /// Sets the Adam step counter and `num_batches_tracked` (for resume).
    fn set_counters(&mut self, adam_t: u64, batches_tracked: u64) {
        let s = self.state_mut();
        (s.adam_t, s.batches_tracked) = (adam_t, batches_tracked);
    }

    /// Checks a batch of `rows` rows for a forward: the spec's rules, then the backend's limits.
    fn check_rows(&self, rows: usize, train: bool) -> Result<()> {
        self.spec().check_rows(rows, train)?;
        self.check_batch_limits(rows)
    }

    /// Copies flat buffer `which` into `out`, whose length must be the buffer's.
    fn get(&self, which: Buffer, out: &mut [f32]) -> Result<()> {
        let n = which.len(self.spec());
        if out.len() != n {
            return Err(bad_arg!(
                "{} has {n} values, got a buffer of {}",
                which.label(),
                out.len()
            ));
        }
        self.read(which, out)
    }

    /// A copy of flat buffer `which`.
    fn get_vec(&self, which: Buffer) -> Result<Vec<f32>> {
        let mut v = vec![0f32; which.len(self.spec())];
        self.get(which, &mut v)?;
        Ok(v)
    }

    /// Replaces flat buffer `which`; `src` must have its length, and every value must be finite.
    fn set(&mut self, which: Buffer, src: &[f32]) -> Result<()> {
        let (n, name) = (which.len(self.spec()), which.label());
        if src.len() != n {
            return Err(bad_arg!("{name} has {n} values, got {}", src.len()));
        }
        if let Some(i) = src.iter().position(|x| !x.is_finite()) {
            return Err(bad_arg!(
                "{name}[{i}] is {}, expected a finite number",
                src[i]
            ));
        }
        self.write(which, src)
    }

    /// PyTorch's default init from the init stream `(seed, DOMAIN_INIT, stream)` (`Spec::init_params`); the running
    /// statistics back to mean 0, var 1; Adam moments and counters untouched.
    fn init(&mut self, seed: u64, stream: u32) -> Result<()> {
        let (params, running) = (
            self.spec().init_params(seed, stream),
            self.spec().default_running(),
        );
        self.write(Buffer::Params, &params)?;
        self.write(Buffer::Running, &running)
    }

    /// Forward of `x [rows, input]` into `y [rows, output]`, both row-major; train mode uses batch statistics and
    /// updates the running ones.
    fn forward(&mut self, x: &[f32], rows: usize, train: bool, y: &mut [f32]) -> Result<()> {
        let (input, output) = (self.spec().input, self.spec().output());
        // The input first: a caller that could not size the output (a short x) hears about x.
        if x.len() != rows * input {
            return Err(bad_arg!(
                "forward: input has {} values, expected {} (batch {rows} x input {input})",
                x.len(),
                rows * input
            ));
        }
        let want = rows * output;
        if y.len() != want {
            return Err(bad_arg!(
                "forward: output buffer has {} values, expected {want}",
                y.len()
            ));
        }
        self.check_rows(rows, train)?;
        self.run_forward(x, rows, train, y)
    }

    /// Backward of the last forward from `dy [rows, output]`: the parameter gradients into the grads buffer
    /// (overwritten), `dx [rows, input]`.
    fn backward(&mut self, dy: &[f32], dx: &mut [f32]) -> Result<()> {
        let (rows, _) = self.state().last_forward()?;
        let (input, output) = (self.spec().input, self.spec().output());
        if dy.len() != rows * output {
            return Err(bad_arg!(
                "backward: output gradient has {} values, expected {} (batch {rows} x output {output})",
                dy.len(),
                rows * output
            ));
        }
        if dx.len() != rows * input {
            return Err(bad_arg!(
                "backward: input gradient buffer has {} values, expected {}",
                dx.len(),
                rows * input
            ));
        }
        self.run_backward(rows, dy, dx)
    }

    /// The output of the last forward, `[rows, output]` (inside a GAN step, the generator's last forward is that
    /// step's fake batch).
    fn output(&self, out: &mut [f32]) -> Result<()> {
        let rows = self.state().last_rows();
        if rows == 0 {
            return Err(bad_state!("no forward has run yet"));
        }
        let n = rows * self.spec().output();
        if out.len() != n {
            return Err(bad_arg!(
                "output buffer has {} values, the last forward produced {n}",
                out.len()
            ));
        }
        self.read_output(rows, out)
    }

    /// One Adam step with the current gradients (PyTorch's update; the step counter advances first).
    fn adam(&mut self, c: AdamConfig) -> Result<()> {
        self.run_adam(c)
    }

    /// One RMSprop step with the current gradients (PyTorch's update, the average in `adam_v`).
    fn rmsprop(&mut self, c: RmsPropConfig) -> Result<()> {
        self.run_rmsprop(c)
    }

    /// Backward over the first `rows` rows of the last forward (all of them for an MLP with train-mode BatchNorm)
    /// from `dy [rows, output]`: the parameter gradients when `params` (else the grads buffer is unspecified
    /// afterwards), `dx [rows, input]` when given.
    fn backward_parts(
        &mut self,
        dy: &[f32],
        params: bool,
        dx: Option<&mut [f32]>,
        rows: usize,
    ) -> Result<()> {
        self.state().backward_over(self.spec(), rows)?;
        let (input, output) = (self.spec().input, self.spec().output());
        if dy.len() != rows * output {
            return Err(bad_arg!(
                "backward: output gradient has {} values, expected {}",
                dy.len(),
                rows * output
            ));
        }
        if dx.as_ref().is_some_and(|d| d.len() != rows * input) {
            return Err(bad_arg!(
                "backward: input gradient buffer must hold {} values",
                rows * input
            ));
        }
        self.run_backward_parts(rows, dy, params, dx)
    }

    /// Clamps every parameter to `[-c, c]`, `c` finite and positive.
    fn clamp_params(&mut self, c: f32) -> Result<()> {
        if !(c.is_finite() && c > 0.0) {
            return Err(bad_arg!("clip value must be a finite number > 0, got {c}"));
        }
        self.run_clamp(c)
    }

    /// `grads += d<v, J(x)^T dy>/dW`: the backward of the input gradient `J(x)^T dy`, for the gradient penalties
    /// (`penalty.rs`). Checks the shapes and the layers; the MLP's last forward is forgotten afterwards.
    fn input_grad_backward(&mut self, x: &[f32], dy: &[f32], v: &[f32]) -> Result<()> {
        check_piecewise_linear(self.spec())?;
        let (input, output) = (self.spec().input, self.spec().output());
        let rows = x.len() / input;
        if rows == 0 || x.len() != rows * input || v.len() != x.len() || dy.len() != rows * output {
            return Err(bad_arg!(
                "input-gradient backward: x has {}, v {} and dy {} values, expected rows x {input}, rows x {input} \
                 and rows x {output}",
                x.len(),
                v.len(),
                dy.len()
            ));
        }
        self.check_rows(rows, true)?;
        let r = self.run_input_grad_backward(x, dy, v);
        self.state_mut().forget_forward();
        r
    }
}

impl<T: MlpBackend + ?Sized> Mlp for T {}
