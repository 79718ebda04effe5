//! An MLP on some backend: what a backend implements ([`MlpBackend`]) and the checked API every MLP has on top of it
//! ([`Mlp`], implemented for every backend at once: the argument rules below are written once and hold everywhere).

use super::buffer::Buffer;
use super::config::{adam_diverged, AdamConfig};
use super::dropout::DropoutStream;
use super::optim::{clamp_all, rmsprop_update, RmsPropConfig};
use super::penalty::{check_piecewise_linear, input_grad_backward_host};
use super::run::WorkCount;
use super::spec::{Embed, Spec};
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
    /// The labels of the last forward, `[rows]`, for an MLP with a label embedding (for its backward).
    pub labels: Vec<u32>,
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
    /// The GPU work this thread has submitted so far (a running total, `WorkCount`), on a backend that records GPU
    /// work; `None` on the CPU backend (the default), which computes as it goes.
    fn work_count(&self) -> Option<WorkCount> {
        None
    }
    /// The backend's own limit on the rows of a batch, beyond `Spec::check_rows` (none by default).
    fn check_batch_limits(&self, _rows: usize) -> Result<()> {
        Ok(())
    }
    /// Copies flat buffer `which` into `out [which.len(spec)]`.
    fn read(&self, which: Buffer, out: &mut [f32]) -> Result<()>;
    /// Replaces flat buffer `which` with `src [which.len(spec)]` (finite).
    fn write(&mut self, which: Buffer, src: &[f32]) -> Result<()>;
    /// Copies `out.len()` floats of flat buffer `which` from offset `at` (in range). The default reads the whole
    /// buffer.
    fn read_range(&self, which: Buffer, at: usize, out: &mut [f32]) -> Result<()> {
        let mut all = vec![0f32; which.len(self.spec())];
        self.read(which, &mut all)?;
        out.copy_from_slice(&all[at..at + out.len()]);
        Ok(())
    }
    /// Replaces `src.len()` floats of flat buffer `which` from offset `at` (in range). The default rewrites the
    /// whole buffer.
    fn write_range(&mut self, which: Buffer, at: usize, src: &[f32]) -> Result<()> {
        let mut all = vec![0f32; which.len(self.spec())];
        self.read(which, &mut all)?;
        all[at..at + src.len()].copy_from_slice(src);
        self.write(which, &all)
    }
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
        if let Some(e) = &self.spec().embed {
            return Err(bad_arg!(
                "forward: this MLP embeds labels ({}, {} classes): forward it with labels",
                e.name,
                e.classes
            ));
        }
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

    /// Forward of `x [rows, data_input]` (row-major) with `labels [rows]` into `y [rows, output]`, for an MLP with a
    /// label embedding: the first layer's input rows are `[table[label], x]` or `[x, table[label]]` (`Embed`).
    fn forward_labeled(
        &mut self,
        x: &[f32],
        labels: &[u32],
        rows: usize,
        train: bool,
        y: &mut [f32],
    ) -> Result<()> {
        let e = self
            .spec()
            .embed
            .clone()
            .ok_or_else(|| bad_arg!("forward with labels: this MLP has no label embedding"))?;
        let (data, output) = (self.spec().data_input(), self.spec().output());
        if x.len() != rows * data {
            return Err(bad_arg!(
                "forward: input has {} values, expected {} (batch {rows} x input {data})",
                x.len(),
                rows * data
            ));
        }
        if labels.len() != rows {
            return Err(bad_arg!(
                "forward: {} labels for a batch of {rows}",
                labels.len()
            ));
        }
        check_labels(labels, e.classes)?;
        if y.len() != rows * output {
            return Err(bad_arg!(
                "forward: output buffer has {} values, expected {}",
                y.len(),
                rows * output
            ));
        }
        self.check_rows(rows, train)?;
        let mut table = vec![0f32; e.size()];
        self.read_range(Buffer::Params, 0, &mut table)?;
        let full = embed_rows(&e, &table, x, labels, data);
        self.run_forward(&full, rows, train, y)?;
        self.state_mut().labels = labels.to_vec();
        Ok(())
    }

    /// Backward of the last forward from `dy [rows, output]`: the parameter gradients into the grads buffer
    /// (overwritten), `dx [rows, data_input]` (a label embedding's columns go to its table's gradient).
    fn backward(&mut self, dy: &[f32], dx: &mut [f32]) -> Result<()> {
        let (rows, _) = self.state().last_forward()?;
        if self.spec().embed.is_some() {
            return self.backward_parts(dy, true, Some(dx), rows);
        }
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
        let (data, output) = (self.spec().data_input(), self.spec().output());
        if dy.len() != rows * output {
            return Err(bad_arg!(
                "backward: output gradient has {} values, expected {}",
                dy.len(),
                rows * output
            ));
        }
        if dx.as_ref().is_some_and(|d| d.len() != rows * data) {
            return Err(bad_arg!(
                "backward: input gradient buffer must hold {} values",
                rows * data
            ));
        }
        let Some(e) = self.spec().embed.clone() else {
            return self.run_backward_parts(rows, dy, params, dx);
        };
        if !params && dx.is_none() {
            return self.run_backward_parts(rows, dy, false, None);
        }
        let input = self.spec().input;
        let mut full = vec![0f32; rows * input];
        self.run_backward_parts(rows, dy, params, Some(&mut full))?;
        let (xs, es) = e.columns(data);
        if params {
            let labels = &self.state().labels[..rows];
            let mut g = vec![0f64; e.size()];
            for (row, &l) in full.chunks_exact(input).zip(labels) {
                let t = &mut g[l as usize * e.dim..(l as usize + 1) * e.dim];
                for (a, &v) in t.iter_mut().zip(&row[es.clone()]) {
                    *a += v as f64;
                }
            }
            let g: Vec<f32> = g.into_iter().map(|v| v as f32).collect();
            self.write_range(Buffer::Grads, 0, &g)?;
        }
        if let Some(dx) = dx {
            for (d, row) in dx.chunks_exact_mut(data).zip(full.chunks_exact(input)) {
                d.copy_from_slice(&row[xs.clone()]);
            }
        }
        Ok(())
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

/// `Ok` when every label is a class in `[0, classes)`; else names the first that is not.
pub fn check_labels(labels: &[u32], classes: usize) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(i) => Err(bad_arg!(
            "label[{i}] is {}, expected a class in [0, {classes})",
            labels[i]
        )),
        None => Ok(()),
    }
}

/// The first layer's input rows `[rows, input]`: each row of `x [rows, data]` with its label's row of `table
/// [classes, dim]`, before or after it (`Embed::first`).
pub fn embed_rows(e: &Embed, table: &[f32], x: &[f32], labels: &[u32], data: usize) -> Vec<f32> {
    let input = data + e.dim;
    let (xs, es) = e.columns(data);
    let mut full = vec![0f32; labels.len() * input];
    for ((row, src), &l) in full
        .chunks_exact_mut(input)
        .zip(x.chunks_exact(data))
        .zip(labels)
    {
        row[xs.clone()].copy_from_slice(src);
        row[es.clone()].copy_from_slice(&table[l as usize * e.dim..(l as usize + 1) * e.dim]);
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::{Act, Bn};
    use crate::cpu::CpuMlp;

    const CLASSES: usize = 4;

    fn embed(first: bool) -> Embed {
        Embed {
            classes: CLASSES,
            dim: 3,
            first,
            name: "label_emb".into(),
        }
    }

    fn layers() -> Spec {
        let bn = Some(Bn {
            eps: 0.8,
            momentum: 0.1,
        });
        Spec::new(5, &[(6, bn, Act::LeakyRelu(0.2)), (2, None, Act::Tanh)])
    }

    /// An MLP with a label embedding is the same MLP on the concatenated rows: its forward equals the plain one's
    /// bitwise, its input gradient is the plain one's `x` columns, and its table's gradient is the scatter-add of the
    /// embedding columns by label; a central difference on one table entry agrees.
    #[test]
    fn an_embedding_is_a_gather_and_its_gradient_a_scatter_add() {
        for first in [true, false] {
            let e = embed(first);
            let spec = layers().with_embedding(e.clone());
            assert_eq!((spec.input, spec.data_input()), (8, 5));
            let plain = Spec::new(
                8,
                &[
                    (6, layers().layers[0].bn, Act::LeakyRelu(0.2)),
                    (2, None, Act::Tanh),
                ],
            );
            let mut m = CpuMlp::new(spec.clone(), 1);
            m.init(9, 0).unwrap();
            let mut p = CpuMlp::new(plain.clone(), 1);
            p.params_mut().copy_from_slice(&m.params()[e.size()..]);
            let rows = 6;
            let labels: Vec<u32> = (0..rows as u32).map(|r| (r * 5 + 1) % 3).collect(); // 1 0 2 1 0 2: class 3 unused
            let x: Vec<f32> = (0..rows * 5)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
                .collect();
            let full = embed_rows(&e, &m.params()[..e.size()], &x, &labels, 5);
            let (mut y1, mut y2) = (vec![0f32; rows * 2], vec![0f32; rows * 2]);
            m.forward_labeled(&x, &labels, rows, true, &mut y1).unwrap();
            p.forward(&full, rows, true, &mut y2).unwrap();
            assert_eq!(y1, y2, "first {first}: forward");
            let dy: Vec<f32> = (0..rows * 2).map(|i| (i as f32 - 5.0) / 7.0).collect();
            let (mut dx1, mut dx2) = (vec![0f32; rows * 5], vec![0f32; rows * 8]);
            m.backward(&dy, &mut dx1).unwrap();
            p.backward(&dy, &mut dx2).unwrap();
            let (xs, es) = e.columns(5);
            for r in 0..rows {
                assert_eq!(dx1[r * 5..(r + 1) * 5], dx2[r * 8..(r + 1) * 8][xs.clone()]);
            }
            assert_eq!(
                m.grads[e.size()..],
                p.grads[..],
                "first {first}: layer gradients"
            );
            let mut want = vec![0f64; e.size()];
            for r in 0..rows {
                for c in 0..3 {
                    want[labels[r] as usize * 3 + c] += dx2[r * 8 + es.start + c] as f64;
                }
            }
            for (i, (&a, &b)) in m.grads[..e.size()].iter().zip(&want).enumerate() {
                assert!((a as f64 - b).abs() <= 1e-6, "table grad {i}: {a} vs {b}");
            }
            assert!(
                m.grads[9..12].iter().all(|&g| g == 0.0),
                "an unused class has no gradient"
            );
            // d<dy, y>/d table[1][2] by a central difference in train mode (BatchNorm's batch statistics included).
            let loss = |m: &mut CpuMlp| {
                let mut y = vec![0f32; rows * 2];
                m.forward_labeled(&x, &labels, rows, true, &mut y).unwrap();
                y.iter()
                    .zip(&dy)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum::<f64>()
            };
            let (k, h) = (5, 1e-2f32);
            let mut q = CpuMlp::new(spec.clone(), 1);
            q.params_mut().copy_from_slice(m.params());
            q.params_mut()[k] += h;
            let up = loss(&mut q);
            q.params_mut()[k] -= 2.0 * h;
            let down = loss(&mut q);
            let fd = (up - down) / (2.0 * h as f64);
            assert!(
                (fd - m.grads[k] as f64).abs() <= 2e-3 * (1.0 + fd.abs()),
                "first {first}: fd {fd} vs {}",
                m.grads[k]
            );
        }
    }

    /// The checked API: labels are required by an MLP with an embedding, refused by one without, and each must be a
    /// class; the layout names the table first, at offset 0.
    #[test]
    fn labels_are_checked_and_the_table_is_named() {
        let spec = layers().with_embedding(embed(false));
        let mut m = CpuMlp::new(spec.clone(), 1);
        let mut y = vec![0f32; 4];
        let e = m.forward(&[0.0; 10], 2, false, &mut y).unwrap_err();
        assert!(
            e.message.contains("embeds labels (label_emb, 4 classes)"),
            "{}",
            e.message
        );
        let e = m
            .forward_labeled(&[0.0; 10], &[0, 4], 2, false, &mut y)
            .unwrap_err();
        assert_eq!(e.message, "label[1] is 4, expected a class in [0, 4)");
        let e = m
            .forward_labeled(&[0.0; 10], &[0], 2, false, &mut y)
            .unwrap_err();
        assert!(
            e.message.contains("1 labels for a batch of 2"),
            "{}",
            e.message
        );
        let mut plain = CpuMlp::new(layers(), 1);
        assert!(plain
            .forward_labeled(&[0.0; 10], &[0, 1], 2, false, &mut y)
            .is_err());
        let d = spec.describe();
        assert_eq!(d["input"], 5);
        assert_eq!(d["params"][0]["name"], "label_emb.weight");
        assert_eq!(d["params"][0]["shape"], serde_json::json!([4, 3]));
        assert_eq!(d["params"][1]["offset"], 12);
        assert_eq!(d["embedding"]["at"], "last");
        let parsed = Spec::parse(
            r#"{"input":5,"embedding":{"classes":4,"dim":3,"at":"last","name":"label_emb"},
               "layers":[{"out":6,"bn":{"eps":0.8,"momentum":0.1},"act":{"kind":"leaky_relu","slope":0.2}},
                         {"out":2,"bn":null,"act":{"kind":"tanh"}}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.describe(), d);
        for (bad, msg) in [
            (
                r#"{"classes":4,"dim":3,"at":"middle","name":"e"}"#,
                "embedding.at must be",
            ),
            (
                r#"{"classes":0,"dim":3,"at":"first","name":"e"}"#,
                "embedding.classes must be",
            ),
            (
                r#"{"classes":4,"dim":3,"at":"first","name":"9e"}"#,
                "embedding.name must be",
            ),
        ] {
            let json = format!(
                r#"{{"input":5,"embedding":{bad},"layers":[{{"out":2,"bn":null,"act":{{"kind":"none"}}}}]}}"#
            );
            let e = Spec::parse(&json).unwrap_err();
            assert!(e.message.contains(msg), "{}", e.message);
        }
        // The init: the table N(0, 1) from its own stream, the layers as those of the MLP on concatenated rows.
        let p = spec.init_params(3, 1);
        let mut t = vec![0f32; 12];
        crate::rng::fill_normal(&mut t, 3, crate::rng::DOMAIN_INIT, 1 + (1 << 31));
        assert_eq!(p[..12], t[..]);
        let plain = Spec::new(
            8,
            &[
                (6, layers().layers[0].bn, Act::LeakyRelu(0.2)),
                (2, None, Act::Tanh),
            ],
        );
        assert_eq!(p[12..], plain.init_params(3, 1)[..]);
    }
}
