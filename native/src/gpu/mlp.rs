//! An MLP on the GPU, with the meaning of the CPU backend's: flat parameters, gradients, Adam moments and
//! running statistics (one storage buffer each, walked by the spec's offset table), and one work buffer holding the
//! input, the activations / xhat / rstd that the forward saves for the backward, and the gradient ping-pong buffers,
//! sized for the largest batch seen (grow-only: nothing is allocated inside a step once warm).
//!
//! Dispatches per block (see linear.wgsl / block.wgsl):
//! - forward: 1 (Linear + bias + activation; + BatchNorm with running statistics; + train-mode BatchNorm when the batch
//!   has at most 64 rows, so one workgroup's row tile holds it), or 2 (GEMM writing `pre`, then `epilogue` reducing
//!   over all rows) for train-mode BatchNorm over more than 64 rows;
//! - backward: 1 GEMM dispatch computing dW, db (a column of ones) and dx together (grid z selects which; dx leaves
//!   multiplied by act' of the block below), preceded by a column pass (activation', BatchNorm backward, bias / gamma /
//!   beta gradients) only for BatchNorm blocks, and for the top block when the caller's gradient lacks its act'.
//!
//! Split-K: a GEMM whose grid would have fewer workgroups than `split_target` (small batches: 64 rows are one row
//! tile) is split along K into slices that write partial products; the block's epilogue (forward) or `splitk_sum`
//! (backward dx) adds them in a fixed order, so results stay deterministic. This adds one dispatch per split GEMM and
//! roughly halves the seed's step time on an H100 at batch 64. Software adapters never split by default.

use super::device::{grid1d, Batch, GpuBuf, GpuDevice, Kernel, Read, Shader};
use super::uniforms::{AdamU, ColU, GemmDesc, LinearU};
use crate::core::spec::Act;
use crate::core::{AdamConfig, Buffer, MlpBackend, MlpState, Spec};
use crate::error::{bad_arg, bad_state, Code, Error, Result};
use std::sync::Arc;

/// Train-mode BatchNorm over at most this many rows runs fused in the GEMM's epilogue (one row tile).
pub const FUSED_BN_ROWS: usize = 64;
/// GEMM tile edge (linear.wgsl BM = BN).
const TILE: usize = 64;
/// Columns per workgroup of the block.wgsl column kernels.
const COLS: usize = 16;
/// GEMM K step (linear.wgsl BK).
const KSTEP: usize = 16;
/// Split-K: at most this many slices, each of at least `MIN_SLICE_STEPS` K steps.
const MAX_SPLITS: usize = 16;
const MIN_SLICE_STEPS: usize = 4;
/// Floats of the split-K partial-product region of the work buffer (at most).
const PART_MAX: usize = 1 << 22;
/// Default split-K target (workgroups per GEMM) on hardware adapters; 0 (never split) on software adapters.
pub const SPLIT_TARGET_HW: u32 = 256;

pub(crate) const K_BACKWARD: Kernel = Kernel::new(Shader::Linear, "backward");
pub(crate) const K_EPILOGUE: Kernel = Kernel::new(Shader::Block, "epilogue");
pub(crate) const K_SPLITK_SUM: Kernel = Kernel::new(Shader::Block, "splitk_sum");
pub(crate) const K_COL_BACKWARD: Kernel = Kernel::new(Shader::Block, "backward");
pub(crate) const K_ADAM: Kernel = Kernel::new(Shader::Adam, "adam");

pub(crate) fn k_forward(mode: u32) -> Kernel {
    Kernel::with_mode(Shader::Linear, "forward", mode)
}

fn act_code(a: Act) -> (u32, f32) {
    match a {
        Act::None => (0, 0.0),
        Act::LeakyRelu(s) => (1, s),
        Act::Tanh => (2, 0.0),
        Act::Sigmoid => (3, 0.0),
    }
}

/// Element offsets of the regions of the work buffer for `cap` rows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Work {
    /// `[cap, input]`: the input of the forward.
    pub x: usize,
    /// Per layer `[cap, out]`: activations; xhat (BN layers); `[out]` rstd (BN layers).
    pub a: Vec<usize>,
    pub xhat: Vec<usize>,
    pub rstd: Vec<usize>,
    /// `[cap, max_width]` each: the gradient ping-pong buffers (`g0` holds d loss / d output for `backward`).
    pub g0: usize,
    pub g1: usize,
    /// `[cap, output]`: a second output-gradient buffer (the GAN's D-step gradient waits here during the G step).
    pub aux: usize,
    /// `[part_len]`: split-K partial products.
    pub part: usize,
    pub part_len: usize,
    pub total: usize,
}

impl Work {
    fn new(spec: &Spec, cap: usize) -> Work {
        let mut at = 0usize;
        let mut take = |n: usize| {
            let o = at;
            at += n;
            o
        };
        let x = take(cap * spec.input);
        let (mut a, mut xhat, mut rstd) = (Vec::new(), Vec::new(), Vec::new());
        for l in &spec.layers {
            a.push(take(cap * l.out));
            if l.bn.is_some() {
                xhat.push(take(cap * l.out));
                rstd.push(take(l.out));
            } else {
                xhat.push(0);
                rstd.push(0);
            }
        }
        let w = spec.max_width();
        let g0 = take(cap * w);
        let g1 = take(cap * w);
        let aux = take(cap * spec.output());
        let part_len = PART_MAX.min(MAX_SPLITS * cap * w);
        let part = take(part_len);
        Work {
            x,
            a,
            xhat,
            rstd,
            g0,
            g1,
            aux,
            part,
            part_len,
            total: at,
        }
    }
}

/// Where the backward writes d loss / d input.
#[derive(Clone, Copy)]
pub(crate) enum InputGrad<'a> {
    /// Not wanted.
    None,
    /// Into this MLP's gradient ping-pong buffers (the offset is returned).
    Own,
    /// Into another buffer (another MLP's work buffer) at this element offset; with the activation of the block that
    /// receives it and the offset of that block's saved output in the same buffer, to apply its act' on the way.
    To(&'a GpuBuf, usize, Receiver),
}

/// The activation of the block that receives an input gradient, and the offset of its saved output.
pub(crate) type Receiver = Option<(Act, usize)>;

pub struct GpuMlp {
    pub spec: Spec,
    dev: Arc<GpuDevice>,
    /// `[param_count]` each: parameters, gradients, Adam first and second moments.
    pub(crate) params: GpuBuf,
    pub(crate) grads: GpuBuf,
    pub(crate) m: GpuBuf,
    pub(crate) v: GpuBuf,
    /// `[buffer_count]`: BN running means and variances.
    pub(crate) stats: GpuBuf,
    /// Counters and the last forward.
    pub state: MlpState,
    /// Split-K: a GEMM whose grid has fewer workgroups than this is split along K into up to 16 slices (summed in a
    /// fixed order: results stay deterministic). 0 never splits. Defaults to [`SPLIT_TARGET_HW`] on hardware
    /// adapters and 0 on software ones.
    pub split_target: u32,
    pub(crate) work: Option<GpuBuf>,
    pub(crate) lay: Work,
    cap: usize,
}

impl GpuMlp {
    /// A new MLP on `dev`: parameters zero except BN gamma 1, running means 0 and variances 1
    /// (`Spec::default_params`).
    pub fn new(spec: Spec, dev: Arc<GpuDevice>) -> Result<GpuMlp> {
        let n = spec.param_count;
        if n >= 1 << 31 || spec.buffer_count >= 1 << 31 {
            return Err(bad_arg!(
                "MLP of {n} parameters is too large for the GPU backend"
            ));
        }
        let bytes = (n * 4) as u64;
        let params = dev.buffer("params", bytes)?;
        let grads = dev.buffer("grads", bytes)?;
        let m = dev.buffer("adam m", bytes)?;
        let v = dev.buffer("adam v", bytes)?;
        let stats = dev.buffer("running stats", (spec.buffer_count * 4) as u64)?;
        dev.write(&params, 0, bytemuck::cast_slice(&spec.default_params()))?;
        dev.write(&stats, 0, bytemuck::cast_slice(&spec.default_running()))?;
        // GAN_GPU_SPLIT_TARGET overrides the default (a tuning knob for benchmarks; 0 never splits).
        let split_target = match std::env::var("GAN_GPU_SPLIT_TARGET")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(t) => t,
            None if dev.is_software() => 0,
            None => SPLIT_TARGET_HW,
        };
        Ok(GpuMlp {
            split_target,
            spec,
            dev,
            params,
            grads,
            m,
            v,
            stats,
            state: MlpState::default(),
            work: None,
            lay: Work::default(),
            cap: 0,
        })
    }

    pub fn device(&self) -> &Arc<GpuDevice> {
        &self.dev
    }

    fn buf(&self, which: Buffer) -> &GpuBuf {
        match which {
            Buffer::Params => &self.params,
            Buffer::Grads => &self.grads,
            Buffer::AdamM => &self.m,
            Buffer::AdamV => &self.v,
            Buffer::Running => &self.stats,
        }
    }

    /// Grows the work buffer to hold `rows` rows (never shrinks; the contents are lost when it grows).
    pub fn reserve(&mut self, rows: usize) -> Result<()> {
        if rows <= self.cap && self.work.is_some() {
            return Ok(());
        }
        let lay = Work::new(&self.spec, rows);
        let bytes = lay.total as u64 * 4;
        if lay.total >= 1 << 32 || bytes > self.dev.max_binding() {
            return Err(Error::new(
                Code::InvalidArgument,
                format!(
                    "batch size {rows} needs a GPU work buffer of {bytes} bytes, more than this device allows per \
                     storage binding ({} bytes); use a smaller batch",
                    self.dev.max_binding()
                ),
            ));
        }
        self.work = None;
        self.work = Some(self.dev.buffer("work", bytes)?);
        self.lay = lay;
        self.cap = rows;
        self.state.forget_forward();
        Ok(())
    }

    pub(crate) fn work(&self) -> &GpuBuf {
        self.work
            .as_ref()
            .expect("reserve() allocates the work buffer before any recording")
    }

    /// Records the forward over the work buffer's input rows `[rows, input]` (call `reserve(rows)` first).
    pub(crate) fn record_forward(&mut self, b: &mut Batch, rows: usize, train: bool) -> Result<()> {
        if rows > self.cap {
            return Err(bad_state!(
                "forward over {rows} rows with a work buffer for {}",
                self.cap
            ));
        }
        let dev = &self.dev;
        let work = self.work();
        let bind = dev.bind([
            Some(work),
            Some(&self.params),
            Some(work),
            Some(&self.stats),
            None,
            None,
        ])?;
        let lay = &self.lay;
        let inv = 1.0f32 / rows as f32;
        let unbias = rows as f32 / (rows as f32 - 1.0);
        for (i, l) in self.spec.layers.iter().enumerate() {
            let x_off = if i == 0 { lay.x } else { lay.a[i - 1] };
            let (act, slope) = act_code(l.act);
            let mut u = LinearU {
                act,
                slope,
                bias: l.b as u32,
                ..Default::default()
            };
            u.g[0] = GemmDesc {
                m: rows as u32,
                n: l.out as u32,
                k: l.inp as u32,
                b_src: 1,
                a_off: x_off as u32,
                a_rs: l.inp as u32,
                a_cs: 1,
                b_off: l.w as u32,
                b_rs: 1,
                b_cs: l.inp as u32,
                c_off: lay.a[i] as u32,
                c_rs: l.out as u32,
                c_dst: 2,
                ..Default::default()
            };
            let (splits, kc) = self.splits(rows, l.out, l.inp);
            u.g[0].splits = splits as u32;
            u.g[0].kc = kc as u32;
            let mode = match l.bn {
                _ if splits > 1 => 4,
                None => 0,
                Some(_) if !train => 1,
                Some(_) if rows <= FUSED_BN_ROWS => 2,
                Some(_) => 3,
            };
            if let Some(bn) = l.bn {
                u.gamma = l.gamma as u32;
                u.beta = l.beta as u32;
                u.rmean = l.rmean as u32;
                u.rvar = l.rvar as u32;
                u.xhat = lay.xhat[i] as u32;
                u.rstd = lay.rstd[i] as u32;
                u.eps = bn.eps;
                u.momentum = bn.momentum;
                u.inv_rows = inv;
                u.unbias = unbias;
            }
            if mode == 4 {
                u.g[0].c_off = lay.part as u32;
            }
            let grid = [
                l.out.div_ceil(TILE) as u32,
                rows.div_ceil(TILE) as u32,
                splits as u32,
            ];
            b.dispatch(&dev.pipeline(k_forward(mode))?, &bind, &u, grid);
            if mode >= 3 {
                let c = ColU {
                    rows: rows as u32,
                    n: l.out as u32,
                    act,
                    slope,
                    mode: match l.bn {
                        None => 0,
                        Some(_) if train => 1,
                        Some(_) => 2,
                    },
                    y_off: lay.a[i] as u32,
                    xhat: u.xhat,
                    rstd: u.rstd,
                    gamma: u.gamma,
                    beta: u.beta,
                    rmean: u.rmean,
                    rvar: u.rvar,
                    g_b: l.b as u32,
                    eps: u.eps,
                    momentum: u.momentum,
                    inv_rows: inv,
                    unbias,
                    parts: if mode == 4 { splits as u32 } else { 0 },
                    part_off: lay.part as u32,
                    ..Default::default()
                };
                b.dispatch(&dev.pipeline(K_EPILOGUE)?, &bind, &c, self.col_grid(l.out));
            }
        }
        self.state.forwarded(&self.spec, rows, train);
        Ok(())
    }

    /// Split-K for an `m x n` output over `k`: (slices, K extent per slice). One slice unless the grid has fewer
    /// workgroups than `split_target`; then enough slices (of at least 4 K steps, at most 16, within the partial-product
    /// region) to approach it.
    fn splits(&self, m: usize, n: usize, k: usize) -> (usize, usize) {
        let none = (1, k.max(1));
        let target = self.split_target as usize;
        let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
        if target == 0 || tiles >= target {
            return none;
        }
        let steps = k.div_ceil(KSTEP);
        let s = target
            .div_ceil(tiles)
            .min(steps / MIN_SLICE_STEPS)
            .min(MAX_SPLITS)
            .min(self.lay.part_len / (m * n).max(1));
        if s <= 1 {
            return none;
        }
        let kc = steps.div_ceil(s) * KSTEP;
        (k.div_ceil(kc), kc)
    }

    fn col_grid(&self, n: usize) -> [u32; 3] {
        grid1d(
            n.div_ceil(COLS) as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        )
    }

    /// Records the backward over the first `rows` rows of the last forward, reading the output gradient `[rows, output]`
    /// at element `dout` of the work buffer (consumed: used as scratch): d loss / d output, or, when `dout_ready`,
    /// already multiplied by the last block's act' (d loss / d z). Writes the parameter gradients when `param_grads`;
    /// the input gradient per `input`. Returns the element offset of the input gradient for `InputGrad::Own`.
    ///
    /// Per block: a column pass (block.wgsl `backward`) only where a reduction over the batch must precede the GEMMs
    /// (BatchNorm) or act' is still to be applied; then one GEMM dispatch for dW (with db from a column of ones when no
    /// column pass computed it) and dx (with the receiving block's act' in its epilogue).
    pub(crate) fn record_backward(
        &self,
        b: &mut Batch,
        rows: usize,
        dout: usize,
        dout_ready: bool,
        param_grads: bool,
        input: InputGrad,
    ) -> Result<Option<usize>> {
        let (_, train) = self.state.backward_over(&self.spec, rows)?;
        let dev = &self.dev;
        let work = self.work();
        let lay = &self.lay;
        let col_bind = dev.bind([
            Some(work),
            Some(&self.params),
            Some(work),
            Some(&self.grads),
            None,
            None,
        ])?;
        let inv = 1.0f32 / rows as f32;
        let mut cur = dout;
        let mut ready = dout_ready;
        let mut result = None;
        for i in (0..self.spec.layers.len()).rev() {
            let l = &self.spec.layers[i];
            let need_col = l.bn.is_some() || (!ready && l.act != Act::None);
            if need_col {
                let (act, slope) = if ready { (0, 0.0) } else { act_code(l.act) };
                let c = ColU {
                    rows: rows as u32,
                    n: l.out as u32,
                    act,
                    slope,
                    mode: match l.bn {
                        None => 0,
                        Some(_) if train => 1,
                        Some(_) => 2,
                    },
                    write_grads: param_grads as u32,
                    y_off: cur as u32,
                    a_off: lay.a[i] as u32,
                    xhat: lay.xhat[i] as u32,
                    rstd: lay.rstd[i] as u32,
                    gamma: l.gamma as u32,
                    beta: l.beta as u32,
                    g_b: l.b as u32,
                    g_gamma: l.gamma as u32,
                    g_beta: l.beta as u32,
                    inv_rows: inv,
                    ..Default::default()
                };
                b.dispatch(
                    &dev.pipeline(K_COL_BACKWARD)?,
                    &col_bind,
                    &c,
                    self.col_grid(l.out),
                );
            }
            let other = if cur == lay.g1 { lay.g0 } else { lay.g1 };
            // Where dx goes, and the act' (with its saved output) of the block that receives it.
            let dx: Option<(&GpuBuf, usize, Receiver)> = if i > 0 {
                let below = &self.spec.layers[i - 1];
                Some((work, other, Some((below.act, lay.a[i - 1]))))
            } else {
                match input {
                    InputGrad::None => None,
                    InputGrad::Own => {
                        result = Some(other);
                        Some((work, other, None))
                    }
                    InputGrad::To(buf, off, act) => Some((buf, off, act)),
                }
            };
            let x_off = if i == 0 { lay.x } else { lay.a[i - 1] };
            let mut u = LinearU::default();
            let mut count = 0usize;
            let (mut tiles_m, mut tiles_n, mut slices) = (0usize, 0usize, 0usize);
            if param_grads {
                // dW[out, inp] = dpre^T x, and db = sum_rows dpre as an extra column of ones unless the column pass
                // computed it.
                let ones = !(need_col && param_grads);
                let n = l.inp + ones as usize;
                u.g[count] = GemmDesc {
                    m: l.out as u32,
                    n: n as u32,
                    k: rows as u32,
                    b_src: 2,
                    a_off: cur as u32,
                    a_rs: 1,
                    a_cs: l.out as u32,
                    b_off: x_off as u32,
                    b_rs: l.inp as u32,
                    b_cs: 1,
                    c_off: l.w as u32,
                    c_rs: l.inp as u32,
                    c_dst: 3,
                    ones: ones as u32,
                    db_off: l.b as u32,
                    splits: 1,
                    kc: rows as u32,
                    ..Default::default()
                };
                count += 1;
                slices += 1;
                tiles_m = tiles_m.max(l.out.div_ceil(TILE));
                tiles_n = tiles_n.max(n.div_ceil(TILE));
            }
            let mut split_dx: Option<ColU> = None;
            if let Some((_, off, recv)) = dx {
                // dx[rows, inp] = dpre W, times the receiving block's act' (split along K: partial products, then
                // `splitk_sum` applies the act').
                let (e_act, e_slope) = recv.map(|r| act_code(r.0)).unwrap_or((0, 0.0));
                let e_a_off = recv.map(|r| r.1 as u32).unwrap_or(0);
                let (splits, kc) = self.splits(rows, l.inp, l.out);
                let mut d = GemmDesc {
                    m: rows as u32,
                    n: l.inp as u32,
                    k: l.out as u32,
                    b_src: 1,
                    a_off: cur as u32,
                    a_rs: l.out as u32,
                    a_cs: 1,
                    b_off: l.w as u32,
                    b_rs: l.inp as u32,
                    b_cs: 1,
                    c_off: off as u32,
                    c_rs: l.inp as u32,
                    c_dst: 4,
                    e_act,
                    e_slope,
                    e_a_off,
                    splits: splits as u32,
                    kc: kc as u32,
                    ..Default::default()
                };
                if splits > 1 {
                    d.c_off = lay.part as u32;
                    d.c_dst = 2;
                    split_dx = Some(ColU {
                        rows: rows as u32,
                        n: l.inp as u32,
                        act: e_act,
                        slope: e_slope,
                        y_off: off as u32,
                        a_off: e_a_off,
                        parts: splits as u32,
                        part_off: lay.part as u32,
                        ..Default::default()
                    });
                }
                u.g[count] = d;
                count += 1;
                slices += splits;
                tiles_m = tiles_m.max(rows.div_ceil(TILE));
                tiles_n = tiles_n.max(l.inp.div_ceil(TILE));
            }
            if count > 0 {
                let bind = dev.bind([
                    Some(work),
                    Some(&self.params),
                    Some(work),
                    Some(&self.grads),
                    Some(dx.map(|d| d.0).unwrap_or(work)),
                    None,
                ])?;
                let grid = [tiles_n as u32, tiles_m as u32, slices as u32];
                b.dispatch(&dev.pipeline(K_BACKWARD)?, &bind, &u, grid);
                if let Some(c) = split_dx {
                    let n = rows * l.inp;
                    let grid = grid1d(
                        n.div_ceil(256) as u32,
                        dev.limits.max_compute_workgroups_per_dimension,
                    );
                    b.dispatch(&dev.pipeline(K_SPLITK_SUM)?, &bind, &c, grid);
                }
            }
            if i > 0 {
                cur = other;
                ready = true;
            }
        }
        Ok(result)
    }

    /// Records one Adam step (counts it in `adam_t`).
    pub(crate) fn record_adam(&mut self, b: &mut Batch, c: AdamConfig) -> Result<()> {
        self.state.adam_t += 1;
        let t = self.state.adam_t;
        let bc1 = 1.0 - c.b1.powf(t as f64);
        let bc2 = 1.0 - c.b2.powf(t as f64);
        let u = AdamU {
            n: self.spec.param_count as u32,
            step: (c.lr / bc1) as f32,
            bc2s: bc2.sqrt() as f32,
            w1: (1.0 - c.b1) as f32,
            w2: (1.0 - c.b2) as f32,
            b2: c.b2 as f32,
            eps: c.eps as f32,
            ..Default::default()
        };
        let bind = self.dev.bind([
            Some(&self.params),
            Some(&self.grads),
            Some(&self.m),
            Some(&self.v),
            None,
            None,
        ])?;
        let grid = grid1d(
            self.spec.param_count.div_ceil(256) as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        );
        b.dispatch(&self.dev.pipeline(K_ADAM)?, &bind, &u, grid);
        Ok(())
    }
}

/// Reads `out.len()` floats at element `offset` of `b` into `out` (waits for the GPU).
pub(crate) fn read_f32(dev: &GpuDevice, b: &GpuBuf, offset: usize, out: &mut [f32]) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let r = dev.execute(
        Batch::new(),
        &[Read {
            buf: b,
            offset: offset as u64 * 4,
            len: out.len() as u64 * 4,
        }],
    )?;
    copy_f32(out, &r[0]);
    Ok(())
}

/// Copies the bytes of `n` floats read back from the GPU into `dst [n]`.
pub(crate) fn copy_f32(dst: &mut [f32], bytes: &[u8]) {
    bytemuck::cast_slice_mut::<f32, u8>(dst).copy_from_slice(bytes);
}

impl MlpBackend for GpuMlp {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn state(&self) -> &MlpState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut MlpState {
        &mut self.state
    }

    /// A dispatch covers at most `TILE` rows per workgroup along one grid dimension.
    fn check_batch_limits(&self, rows: usize) -> Result<()> {
        let max_rows = TILE * self.dev.limits.max_compute_workgroups_per_dimension as usize;
        if rows > max_rows {
            return Err(bad_arg!(
                "batch size {rows} is too large for this GPU (at most {max_rows} rows per dispatch)"
            ));
        }
        Ok(())
    }

    fn read(&self, which: Buffer, out: &mut [f32]) -> Result<()> {
        read_f32(&self.dev, self.buf(which), 0, out)
    }

    fn write(&mut self, which: Buffer, src: &[f32]) -> Result<()> {
        self.dev
            .write(self.buf(which), 0, bytemuck::cast_slice(src))
    }

    fn run_forward(&mut self, x: &[f32], rows: usize, train: bool, y: &mut [f32]) -> Result<()> {
        self.reserve(rows)?;
        let x_at = self.lay.x as u64 * 4;
        self.dev.write(self.work(), x_at, bytemuck::cast_slice(x))?;
        let mut b = Batch::new();
        self.record_forward(&mut b, rows, train)?;
        let out = *self.lay.a.last().expect("an MLP has layers");
        let r = self.dev.execute(
            b,
            &[Read {
                buf: self.work(),
                offset: out as u64 * 4,
                len: y.len() as u64 * 4,
            }],
        )?;
        copy_f32(y, &r[0]);
        Ok(())
    }

    fn run_backward(&mut self, rows: usize, dy: &[f32], dx: &mut [f32]) -> Result<()> {
        let g0_at = self.lay.g0 as u64 * 4;
        self.dev
            .write(self.work(), g0_at, bytemuck::cast_slice(dy))?;
        let mut b = Batch::new();
        let at = self
            .record_backward(&mut b, rows, self.lay.g0, false, true, InputGrad::Own)?
            .expect("input gradient requested");
        let r = self.dev.execute(
            b,
            &[Read {
                buf: self.work(),
                offset: at as u64 * 4,
                len: dx.len() as u64 * 4,
            }],
        )?;
        copy_f32(dx, &r[0]);
        Ok(())
    }

    fn read_output(&self, _rows: usize, out: &mut [f32]) -> Result<()> {
        let at = *self.lay.a.last().expect("an MLP has layers");
        read_f32(&self.dev, self.work(), at, out)
    }

    fn run_adam(&mut self, c: AdamConfig) -> Result<()> {
        let mut b = Batch::new();
        self.record_adam(&mut b, c)?;
        self.dev.execute(b, &[])?;
        Ok(())
    }
}
