//! An MLP on the GPU, with the meaning of the CPU backend's: flat parameters, gradients, Adam moments and
//! running statistics (one storage buffer each, walked by the spec's offset table), and one work buffer holding the
//! input, the activations / xhat / rstd that the forward saves for the backward, and the gradient ping-pong buffers,
//! sized for the largest batch seen (grow-only: nothing is allocated inside a step once warm).
//!
//! The recorded passes (forward, backward, Adam) are in `passes.rs`.
//!
//! Split-K: a GEMM whose grid would have fewer workgroups than `split_target` (small batches: 64 rows are one row
//! tile) is split along K into slices that write partial products; the last slice to arrive at each output tile (an
//! atomic counter per tile, in `counters`) adds them in slice order and runs the block's epilogue, so results stay
//! deterministic and no reduction dispatch is needed (train-mode BatchNorm over more than 64 rows still ends in
//! block.wgsl `epilogue`, as without splitting). Splitting roughly halves the seed's step time on an H100 at batch
//! 64. Software adapters never split by default.

use super::device::{Batch, GpuBuf, GpuDevice, Read};
use super::passes::InputGrad;
use crate::core::{AdamConfig, Buffer, MlpBackend, MlpState, RmsPropConfig, Spec, WorkCount};
use crate::error::{bad_arg, Code, Error, Result};
use std::sync::Arc;

/// Train-mode BatchNorm over at most this many rows runs fused in the GEMM's epilogue (one row tile).
pub const FUSED_BN_ROWS: usize = 64;
/// GEMM tile edge (linear.wgsl BM = BN).
pub(crate) const TILE: usize = 64;
/// Columns per workgroup of the block.wgsl column kernels.
pub(crate) const COLS: usize = 16;
/// GEMM K step (linear.wgsl BK).
pub(crate) const KSTEP: usize = 16;
/// Split-K: at most this many slices, each of at least `MIN_SLICE_STEPS` K steps.
pub(crate) const MAX_SPLITS: usize = 16;
pub(crate) const MIN_SLICE_STEPS: usize = 4;
/// Split-K: at most this many output tiles per split GEMM, and per weight GEMM whose Adam waits on its readers (the
/// size of the counter buffer).
pub(crate) const COUNTER_TILES: usize = 4096;
/// GEMMs per linear.wgsl `backward` dispatch (at most; each has its own counters and partial-product region).
pub(crate) const GEMMS: usize = 3;
/// Floats of the split-K partial-product region of the work buffer (at most).
const PART_MAX: usize = 1 << 22;
/// Default split-K target (workgroups per GEMM) on hardware adapters; 0 (never split) on software adapters.
pub const SPLIT_TARGET_HW: u32 = 256;

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
    /// `[cap, max_width]` each: a second pair of ping-pong buffers, for a second backward recorded beside the first
    /// (`passes::record_backward_pair`; laid out only once an MLP runs that pass).
    pub h0: usize,
    pub h1: usize,
    /// The gradient penalties' regions (`penalty.rs`; laid out only once an MLP runs that pass): per layer `[cap, out]`
    /// deltas, and `[cap, max_width]` twice for the forward of `v`.
    pub pen_d: Vec<usize>,
    pub pen_u: [usize; 2],
    /// `[part_regions, part_len]`: split-K partial products, one region per split GEMM of a dispatch (two with the
    /// second ping-pong pair, whose paired backward may split two dx GEMMs in one dispatch).
    pub part: usize,
    pub part_len: usize,
    pub part_regions: usize,
    pub total: usize,
}

impl Work {
    fn new(spec: &Spec, cap: usize, pen: bool, pair: bool) -> Work {
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
        let (mut h0, mut h1) = (0, 0);
        if pair {
            (h0, h1) = (take(cap * w), take(cap * w));
        }
        let (mut pen_d, mut pen_u) = (Vec::new(), [0, 0]);
        if pen {
            pen_d = spec.layers.iter().map(|l| take(cap * l.out)).collect();
            pen_u = [take(cap * w), take(cap * w)];
        }
        let part_len = PART_MAX.min(MAX_SPLITS * cap * w);
        let part_regions = if pair { 2 } else { 1 };
        let part = take(part_regions * part_len);
        Work {
            x,
            a,
            xhat,
            rstd,
            g0,
            g1,
            aux,
            h0,
            h1,
            pen_d,
            pen_u,
            part,
            part_len,
            part_regions,
            total: at,
        }
    }
}

pub struct GpuMlp {
    pub spec: Spec,
    pub(crate) dev: Arc<GpuDevice>,
    /// `[param_count]` each: parameters, gradients, Adam first and second moments.
    pub(crate) params: GpuBuf,
    pub(crate) grads: GpuBuf,
    pub(crate) m: GpuBuf,
    pub(crate) v: GpuBuf,
    /// `[buffer_count]`: BN running means and variances.
    pub(crate) stats: GpuBuf,
    /// `[2 * GEMMS * COUNTER_TILES]` u32: split-K arrivals per output tile of each GEMM of a dispatch, then the
    /// arrivals at the GAN step's Adam per weight tile (linear.wgsl `ADAM_COUNTERS`; 0 between dispatches: each
    /// tile's last arriver resets its counter).
    pub(crate) counters: GpuBuf,
    /// Counters and the last forward.
    pub state: MlpState,
    /// Split-K: a GEMM whose grid has fewer workgroups than this is split along K into up to 16 slices (summed in a
    /// fixed order: results stay deterministic). 0 never splits. Defaults to [`SPLIT_TARGET_HW`] on hardware
    /// adapters and 0 on software ones.
    pub split_target: u32,
    pub(crate) work: Option<GpuBuf>,
    pub(crate) lay: Work,
    /// Rows the work buffer holds.
    pub(crate) cap: usize,
    /// Whether the work buffer has the penalty's regions, and the penalty's gradient buffer `[param_count]`.
    pub(crate) pen_on: bool,
    pub(crate) pen_grads: Option<GpuBuf>,
    /// Whether the work buffer has the second ping-pong pair (`Work::h0`, `h1`).
    pub(crate) pair_on: bool,
    /// Whether the backward folds work into a neighbouring dispatch, with the same bits, one dispatch less each: a
    /// BatchNorm block's column pass into the epilogue of the dx GEMM above it when one row tile holds the batch
    /// (`passes::col_folds`), block 0's weight GEMM into block 1's dx epilogue when there is nothing else to do for
    /// block 0 (`passes::dw_folds`), and, in the GAN step's paired backward through D, a top block of one output into the
    /// GEMMs of the block below (`passes::record_backward_pair`); and the GAN step's Adam into the epilogues of both
    /// backwards (`passes::adam_folds`, `pair_folds_adam`). On by default (`GAN_GPU_FOLDS=0` turns it off); tests and
    /// benchmarks turn it off to compare.
    pub folds: bool,
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
        let counters = dev.buffer("tile counters", (2 * GEMMS * COUNTER_TILES * 4) as u64)?;
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
            counters,
            state: MlpState::default(),
            work: None,
            lay: Work::default(),
            cap: 0,
            pen_on: false,
            pen_grads: None,
            pair_on: false,
            // GAN_GPU_FOLDS=0 turns the folds off (a knob for benchmarks: the same bits, more dispatches).
            folds: std::env::var("GAN_GPU_FOLDS").as_deref() != Ok("0"),
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
        let lay = Work::new(&self.spec, rows, self.pen_on, self.pair_on);
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

    /// Lays the work buffer out with the second ping-pong pair and holds at least `rows` rows (the saved forward is
    /// lost when the layout changes).
    pub(crate) fn reserve_pair(&mut self, rows: usize) -> Result<()> {
        let mut want = rows;
        if !self.pair_on {
            self.pair_on = true;
            want = rows.max(self.cap);
            self.cap = 0; // forces a new layout, with the regions, for at least as many rows as before
        }
        self.reserve(want)
    }

    pub(crate) fn work(&self) -> &GpuBuf {
        self.work
            .as_ref()
            .expect("reserve() allocates the work buffer before any recording")
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

    /// This thread's GPU work (`device::work_count`).
    fn work_count(&self) -> Option<WorkCount> {
        Some(super::device::work_count())
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

    fn read_range(&self, which: Buffer, at: usize, out: &mut [f32]) -> Result<()> {
        read_f32(&self.dev, self.buf(which), at, out)
    }

    fn write_range(&mut self, which: Buffer, at: usize, src: &[f32]) -> Result<()> {
        self.dev
            .write(self.buf(which), at as u64 * 4, bytemuck::cast_slice(src))
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

    fn run_backward_parts(
        &mut self,
        rows: usize,
        dy: &[f32],
        params: bool,
        dx: Option<&mut [f32]>,
    ) -> Result<()> {
        let g0_at = self.lay.g0 as u64 * 4;
        self.dev
            .write(self.work(), g0_at, bytemuck::cast_slice(dy))?;
        let mut b = Batch::new();
        let input = if dx.is_some() {
            InputGrad::Own
        } else {
            InputGrad::None
        };
        let at = self.record_backward(&mut b, rows, self.lay.g0, false, params, input)?;
        let (Some(dx), Some(at)) = (dx, at) else {
            self.dev.execute(b, &[])?;
            return Ok(());
        };
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

    /// RMSprop in one dispatch (adam.wgsl `rmsprop`). The GPU does not check the new parameters here; the general
    /// step's next losses do (as the fused step's).
    fn run_rmsprop(&mut self, c: RmsPropConfig) -> Result<()> {
        let mut b = Batch::new();
        self.record_rmsprop(&mut b, c)?;
        self.dev.execute(b, &[])?;
        Ok(())
    }

    fn run_input_grad_backward(&mut self, x: &[f32], dy: &[f32], v: &[f32]) -> Result<()> {
        self.input_grad_backward_gpu(x, dy, v)
    }

    fn run_clamp(&mut self, c: f32) -> Result<()> {
        let mut b = Batch::new();
        self.record_clamp(&mut b, c)?;
        self.dev.execute(b, &[])?;
        Ok(())
    }
}
