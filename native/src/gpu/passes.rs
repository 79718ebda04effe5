//! The recorded passes of a [`GpuMlp`]: the forward and the backward, block by block as explicit pairs (as the CPU's
//! `block_forward` / `block_backward`), and Adam. Nothing here runs: every function appends dispatches to a [`Batch`].
//!
//! Work-buffer regions (element offsets in `GpuMlp::lay`, shapes for `rows` rows of a buffer sized for `cap`):
//! `x [rows, input]` the forward's input; per block `i`: `a_i [rows, out]` its output, `xhat_i [rows, out]` and
//! `rstd_i [out]` (BatchNorm blocks); `g0`, `g1 [rows, max_width]` the gradient ping-pong buffers; `aux [rows, output]`
//! a second output gradient; `part` the split-K partial products. Block `i` reads `x_i` = `x` (i = 0) or `a_{i-1}`.
//!
//! Dispatches per block (see linear.wgsl / block.wgsl):
//! - forward: 1 (Linear + bias + activation; + BatchNorm with running statistics; + train-mode BatchNorm when the batch
//!   has at most 64 rows, so one workgroup's row tile holds it), split along K or not (`forward_split`: the last slice
//!   to arrive at a tile sums the slices and runs the same epilogue), or 2 for train-mode BatchNorm over more rows
//!   (GEMM writing `pre` or split-K partial products, then `epilogue` reducing over all rows / slices);
//! - backward: 1 GEMM dispatch computing dW, db (a column of ones) and dx together (one workgroup per tile and slice
//!   of each; dx leaves multiplied by act' of the block below; a split dx is summed by its last arriver), preceded by
//!   a column pass (activation', BatchNorm backward, bias / gamma / beta gradients: columns.wgsl) only for BatchNorm
//!   blocks and for the top block when the caller's gradient lacks its act'. A BatchNorm block's column pass over at
//!   most 64 rows runs in the epilogue of the dx GEMM above it instead (one row tile holds the batch), with the same
//!   bits: no dispatch of its own (`Dz::Pre`); so does block 0's weight GEMM when it is all block 0's backward has to
//!   do (no input gradient, no column pass: `dw_folds`).
//!
//! The GAN step's Adam (`record_backward_adam`, `record_backward_pair`'s `adam`) runs in the backward's epilogues when
//! every parameter's gradient is final in a dispatch that either no longer reads that parameter or counts its readers
//! (linear.wgsl `adam_after_dw` / `adam_after_read`): then the step has no Adam dispatch, with the same bits.

use super::device::{grid1d, Batch, Bind, GpuBuf, GpuDevice, Kernel, Shader};
use super::mlp::{
    GpuMlp, COLS, COUNTER_TILES, FUSED_BN_ROWS, GEMMS, KSTEP, MAX_SPLITS, MIN_SLICE_STEPS, TILE,
};
use super::uniforms::{AdamPairU, AdamU, ColU, DropU, GemmDesc, LinearU};
use crate::core::dropout::LayerMask;
use crate::core::spec::Act;
use crate::core::{AdamConfig, RmsPropConfig};
use crate::error::{bad_state, Result};
use std::sync::Arc;

pub(crate) const K_BACKWARD: Kernel = Kernel::new(Shader::Linear, "backward");
pub(crate) const K_EPILOGUE: Kernel = Kernel::new(Shader::Block, "epilogue");
pub(crate) const K_COL_BACKWARD: Kernel = Kernel::new(Shader::Block, "backward");
pub(crate) const K_ADAM: Kernel = Kernel::new(Shader::Adam, "adam");
pub(crate) const K_ADAM_PAIR: Kernel = Kernel::new(Shader::Adam, "adam_pair");
pub(crate) const K_DROPOUT: Kernel = Kernel::new(Shader::Dropout, "dropout");
pub(crate) const K_RMSPROP: Kernel = Kernel::new(Shader::Adam, "rmsprop");
pub(crate) const K_CLAMP: Kernel = Kernel::new(Shader::Adam, "clamp_all");

/// linear.wgsl `forward` / `forward_split` modes (their `MODE` override; the header explains each).
const FWD_PLAIN: u32 = 0;
const FWD_BN_EVAL: u32 = 1;
const FWD_BN_FUSED: u32 = 2;
const FWD_BN_TWO_PASS: u32 = 3;

/// linear.wgsl `forward` (K not split) or `forward_split` in `mode`.
pub(crate) fn k_forward(mode: u32, split: bool) -> Kernel {
    let entry = if split { "forward_split" } else { "forward" };
    Kernel::with_mode(Shader::Linear, entry, mode)
}

/// The WGSL code of an activation and its slope.
pub(crate) fn act_code(a: Act) -> (u32, f32) {
    match a {
        Act::None => (0, 0.0),
        Act::LeakyRelu(s) => (1, s),
        Act::Tanh => (2, 0.0),
        Act::Sigmoid => (3, 0.0),
    }
}

/// The forward mode of a block, by BatchNorm, mode and batch size.
fn forward_mode(bn: bool, train: bool, rows: usize) -> u32 {
    match () {
        _ if !bn => FWD_PLAIN,
        _ if !train => FWD_BN_EVAL,
        _ if rows <= FUSED_BN_ROWS => FWD_BN_FUSED,
        _ => FWD_BN_TWO_PASS,
    }
}

/// block.wgsl `ColU.mode`: 0 no BatchNorm, 1 BatchNorm with batch statistics (train), 2 with running ones (eval).
fn col_mode(bn: bool, train: bool) -> u32 {
    match (bn, train) {
        (false, _) => 0,
        (true, true) => 1,
        (true, false) => 2,
    }
}

/// Where the backward writes d loss / d input.
#[derive(Clone, Copy)]
pub(crate) enum InputGrad {
    /// Not wanted.
    None,
    /// Into this MLP's gradient ping-pong buffers (the offset is returned).
    Own,
}

/// The activation of the block that receives an input gradient, and the offset of its saved output (in the buffer
/// the gradient goes to), to apply its act' on the way.
pub(crate) type Receiver = Option<(Act, usize)>;

/// What a GAN step feeds into an MLP's first forward GEMM (linear.wgsl `LinearU.gen`), so that neither the noise nor
/// D's input takes a dispatch of its own; `Feed::default()` for a plain forward over the rows in `x`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Feed<'a> {
    /// G: block 0's input is the noise of this key (`rng::key`), drawn as it is loaded and stored to `x`.
    pub noise_key: Option<u32>,
    /// D: block 0's first `rows` input rows are copied from this buffer at this element offset (G's output), and
    /// stored to `x`: `(buffer, offset, rows)`.
    pub fakes: Option<(&'a GpuBuf, usize, usize)>,
    /// G: block 0's dispatch also gathers the step's real rows into D's input.
    pub reals: Option<Reals<'a>>,
    /// D: the last block's dispatch ends in the step's losses.
    pub losses: Option<Losses<'a>>,
}

/// The losses of a GAN step at the end of D's last forward block ([`Feed::losses`]; linear.wgsl `gan_loss`): over D's
/// outputs `[2 rows]` (the fakes, then the reals), the step record into `records` at element `rec_off`, the G step's
/// output gradient `[rows]` at `g_out` and the D step's `[2 rows]` at `d_out` of D's work buffer, for loss `code`.
#[derive(Clone, Copy)]
pub(crate) struct Losses<'a> {
    pub records: &'a GpuBuf,
    pub rec_off: usize,
    pub rows: usize,
    pub g_out: usize,
    pub d_out: usize,
    pub code: u32,
}

/// The real rows of a GAN step ([`Feed::reals`]): `rows` dataset images of `feat` pixels, whose indices are at element
/// `idx_off` of `idx`, scaled through the table at the start of `data` into `dst` at element `dst_off`.
#[derive(Clone, Copy)]
pub(crate) struct Reals<'a> {
    pub dst: &'a GpuBuf,
    pub dst_off: usize,
    pub rows: usize,
    pub feat: usize,
    pub data: &'a GpuBuf,
    pub idx: &'a GpuBuf,
    pub idx_off: usize,
}

/// Pixels each gathering thread copies, about (sets how many extra workgroups gather the real rows).
const GATHER_PER_THREAD: usize = 8;

impl Feed<'_> {
    /// The part of the feed that block `i` of `blocks` takes: the input's for block 0, the losses for the last.
    fn for_block(&self, i: usize, blocks: usize) -> Feed<'_> {
        let first = if i == 0 { *self } else { Feed::default() };
        Feed {
            losses: self.losses.filter(|_| i + 1 == blocks),
            ..first
        }
    }

    /// Sets the feed's fields of a block's uniform; returns the workgroups to add along x (per row tile) that gather
    /// the real rows (0 without them).
    fn apply(&self, u: &mut LinearU, tiles_m: usize) -> usize {
        if let Some(l) = self.losses {
            u.lo_rows = l.rows as u32;
            u.lo_rec = l.rec_off as u32;
            u.lo_g = l.g_out as u32;
            u.lo_d = l.d_out as u32;
            u.lo_inv = 1.0 / l.rows as f32;
            u.lo_half = 0.5 / l.rows as f32;
            u.lo_code = l.code;
        }
        if let Some(key) = self.noise_key {
            (u.gen, u.key) = (GEN_NOISE, key);
        }
        if let Some((_, off, rows)) = self.fakes {
            (u.gen, u.fake_off, u.fake_rows) = (GEN_FAKE, off as u32, rows as u32);
        }
        let Some(r) = self.reals else { return 0 };
        u.real_rows = r.rows as u32;
        u.real_idx = r.idx_off as u32;
        u.real_dst = r.dst_off as u32;
        u.real_feat = r.feat as u32;
        (r.rows * r.feat)
            .div_ceil(256 * GATHER_PER_THREAD * tiles_m)
            .max(1)
    }
}

/// The grid of a linear.wgsl `backward` dispatch of GEMMs `gs`: one workgroup per output tile and K slice of each
/// (`backward_task` in the shader), spread over x and y.
pub(crate) fn backward_grid(dev: &GpuDevice, gs: &[GemmDesc]) -> [u32; 3] {
    let tasks: usize = gs
        .iter()
        .map(|g| (g.m as usize).div_ceil(TILE) * (g.n as usize).div_ceil(TILE) * g.splits as usize)
        .sum();
    grid1d(
        tasks as u32,
        dev.limits.max_compute_workgroups_per_dimension,
    )
}

/// linear.wgsl `GEN_*`: block 0's A drawn as noise, or its first rows copied from b4.
const GEN_NOISE: u32 = 1;
const GEN_FAKE: u32 = 2;
/// linear.wgsl `AGEN_*`: a backward GEMM's A generated below a one-output top block, row by row or transposed.
const AGEN_ROWS: u32 = 1;
const AGEN_COLS: u32 = 2;

/// Where one block's dx goes: the buffer, the element offset of `dx [rows, inp]` in it, and its receiver.
pub(crate) type DxDest<'a> = (&'a GpuBuf, usize, Receiver);

/// The state of the gradient a block's backward starts from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dz {
    /// d loss / d a: the block's act' still to be applied.
    Raw,
    /// d loss / d z = d loss / d a * act'(a) (the dx epilogue of the block above applied it).
    Ready,
    /// d loss / d pre: the block's column pass (BatchNorm backward, db, dgamma, dbeta) ran in the dx epilogue above.
    Pre,
}

/// The work of block `block`, which receives a dx, that the dx GEMM's epilogue runs in `pass`: its column pass
/// (`col`), its weight GEMM (`dw`).
#[derive(Clone, Copy)]
struct Below {
    block: usize,
    pass: BackwardPass,
    col: bool,
    dw: bool,
}

/// What every block of one backward pass shares.
#[derive(Clone, Copy)]
struct BackwardPass {
    /// Rows of the backward (the first rows of the last forward).
    rows: usize,
    /// Whether the last forward trained (BatchNorm used batch statistics).
    train: bool,
    /// Whether to write the parameter gradients.
    param_grads: bool,
    /// The Adam step to run in the epilogues, once each parameter's gradient is final (`adam_folds`).
    adam: Option<AdamU>,
}

impl GpuMlp {
    /// Element offset of block `i`'s input `x_i [rows, inp]` in the work buffer.
    fn block_input(&self, i: usize) -> usize {
        if i == 0 {
            self.lay.x
        } else {
            self.lay.a[i - 1]
        }
    }

    fn col_grid(&self, n: usize) -> [u32; 3] {
        grid1d(
            n.div_ceil(COLS) as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        )
    }

    /// Split-K for an `m x n` output over `k`: (slices, K extent per slice). One slice unless the grid has fewer
    /// workgroups than `split_target` (and at most [`COUNTER_TILES`] tiles); then enough slices (of at least 4 K steps,
    /// at most 16, within the partial-product region) to approach it.
    fn splits(&self, m: usize, n: usize, k: usize) -> (usize, usize) {
        let none = (1, k.max(1));
        let target = self.split_target as usize;
        let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
        if target == 0 || tiles >= target || tiles > COUNTER_TILES {
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

    // -----------------------------------------------------------------------------------------------------------------
    // Forward

    /// Records the forward over the work buffer's input rows `x [rows, input]` (call `reserve(rows)` first), block by
    /// block; records it in the state (train mode counts in `batches_tracked`).
    pub(crate) fn record_forward(&mut self, b: &mut Batch, rows: usize, train: bool) -> Result<()> {
        self.record_forward_fed(b, rows, train, Feed::default())
    }

    /// [`Self::record_forward`] with what a GAN step feeds block 0 (its input rows drawn or copied as they are
    /// loaded, and the real rows gathered for D on the side; see [`Feed`]).
    pub(crate) fn record_forward_fed(
        &mut self,
        b: &mut Batch,
        rows: usize,
        train: bool,
        feed: Feed,
    ) -> Result<()> {
        if rows > self.cap {
            return Err(bad_state!(
                "forward over {rows} rows with a work buffer for {}",
                self.cap
            ));
        }
        let blocks = self.spec.layers.len();
        for i in 0..blocks {
            let feed = feed.for_block(i, blocks);
            let bind = self.forward_bind(&feed)?;
            self.record_block_forward(b, &bind, i, rows, train, feed)?;
            let l = &self.spec.layers[i];
            if train && l.dropout > 0.0 {
                let mask = self.state.dropout.layer(i, l.dropout);
                self.record_dropout(b, rows, l.out, self.lay.a[i], mask)?;
            }
        }
        self.state.forwarded(&self.spec, rows, train);
        Ok(())
    }

    /// The bind group of a forward block with feed `feed` (see [`Feed::for_block`]).
    fn forward_bind(&self, feed: &Feed) -> Result<Arc<Bind>> {
        // b0 the blocks' inputs (work)  b1 params  b2 the blocks' outputs, xhat, rstd, split-K partials (work)
        // b3 running stats  b4 block 0's fake rows' source or the real rows' destination  b5 split-K tile counters
        // b6 the dataset  b7 the batch indices, or the step records of the losses
        let work = self.work();
        let b4 = feed.fakes.map(|f| f.0).or(feed.reals.map(|r| r.dst));
        let b6 = feed.reals.map(|r| r.data);
        if feed.reals.is_some() && feed.losses.is_some() {
            return Err(bad_state!(
                "one forward block cannot both gather the real rows and run the losses"
            ));
        }
        let b7 = feed.reals.map(|r| r.idx).or(feed.losses.map(|l| l.records));
        let (p, st, c) = (&self.params, &self.stats, &self.counters);
        self.dev.bind(&[
            Some(work),
            Some(p),
            Some(work),
            Some(st),
            b4,
            Some(c),
            b6,
            b7,
        ])
    }

    /// dropout.wgsl over `y [rows, out]` at element `at` of the work buffer: times the layer's mask, in place.
    pub(crate) fn record_dropout(
        &self,
        b: &mut Batch,
        rows: usize,
        out: usize,
        at: usize,
        mask: LayerMask,
    ) -> Result<()> {
        let u = DropU {
            rows: rows as u32,
            out: out as u32,
            off: at as u32,
            key: mask.key,
            threshold: mask.threshold,
            scale: mask.scale,
            ..Default::default()
        };
        let bind = self
            .dev
            .bind(&[Some(self.work()), None, None, None, None, None])?;
        let grid = grid1d(
            (rows * out).div_ceil(256) as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        );
        b.dispatch(&self.dev.pipeline(K_DROPOUT)?, &bind, &u, grid);
        Ok(())
    }

    /// Block `i` forward: `a_i [rows, out] = act(BN(x_i [rows, inp] W^T + b))`, saving `xhat_i [rows, out]` and
    /// `rstd_i [out]` for BatchNorm (train mode also updates the running statistics). linear.wgsl `forward` or
    /// `forward_split`, then block.wgsl `epilogue` when the batch statistics span several row tiles. `feed` (block 0
    /// only) sets what the GEMM draws or copies as it loads its input, and the real rows its extra workgroups gather.
    fn record_block_forward(
        &self,
        b: &mut Batch,
        bind: &Arc<Bind>,
        i: usize,
        rows: usize,
        train: bool,
        feed: Feed,
    ) -> Result<()> {
        let l = &self.spec.layers[i];
        let (splits, kc) = self.splits(rows, l.out, l.inp);
        let mode = forward_mode(l.bn.is_some(), train, rows);
        let mut u = self.forward_uniform(i, rows);
        u.g[0] = self.matmul_forward(i, rows, splits, kc);
        let (tiles_n, tiles_m) = (l.out.div_ceil(TILE), rows.div_ceil(TILE));
        let gather_groups = feed.apply(&mut u, tiles_m);
        // The gathering workgroups stride over the real rows: fewer than asked for (within the grid's limit) only
        // take longer; at least one.
        let maxd = self.dev.limits.max_compute_workgroups_per_dimension as usize;
        let extra = gather_groups.min(maxd.saturating_sub(tiles_n).max(1));
        let grid = [(tiles_n + extra) as u32, tiles_m as u32, splits as u32];
        let kernel = k_forward(mode, splits > 1);
        b.dispatch(&self.dev.pipeline(kernel)?, bind, &u, grid);
        if mode == FWD_BN_TWO_PASS {
            let parts = if splits > 1 { splits } else { 0 };
            let c = self.epilogue_uniform(i, &u, rows, train, parts);
            b.dispatch(
                &self.dev.pipeline(K_EPILOGUE)?,
                bind,
                &c,
                self.col_grid(l.out),
            );
        }
        Ok(())
    }

    /// The GEMM of block `i`'s forward, `y [rows, out] = x_i [rows, inp] W^T`: A = `x_i` (b0), B(k, n) = `W[n, k]`
    /// (b1), C = `a_i` (b2), in `splits` slices of `kc` along K.
    fn matmul_forward(&self, i: usize, rows: usize, splits: usize, kc: usize) -> GemmDesc {
        let l = &self.spec.layers[i];
        GemmDesc {
            m: rows as u32,
            n: l.out as u32,
            k: l.inp as u32,
            b_src: 1,
            a_off: self.block_input(i) as u32,
            a_rs: l.inp as u32,
            a_cs: 1,
            b_off: l.w as u32,
            b_rs: 1,
            b_cs: l.inp as u32,
            c_off: self.lay.a[i] as u32,
            c_rs: l.out as u32,
            c_dst: 2,
            splits: splits as u32,
            kc: kc as u32,
            ..Default::default()
        }
    }

    /// linear.wgsl `LinearU` of block `i`'s forward without its GEMM: the bias and activation; for BatchNorm its
    /// parameters, running statistics, `xhat_i`, `rstd_i` and the batch constants.
    fn forward_uniform(&self, i: usize, rows: usize) -> LinearU {
        let (l, lay) = (&self.spec.layers[i], &self.lay);
        let (act, slope) = act_code(l.act);
        let mut u = LinearU {
            act,
            slope,
            bias: l.b as u32,
            part: [self.lay.part as u32, 0, 0],
            ..Default::default()
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
            u.inv_rows = 1.0f32 / rows as f32;
            u.unbias = rows as f32 / (rows as f32 - 1.0);
        }
        u
    }

    /// block.wgsl `epilogue` of block `i` (train-mode BatchNorm over more than one row tile): finishes `a_i` from `pre`
    /// or from `parts` split-K partial products (`parts` 0: none), with the fields of the block's forward uniform `u`.
    fn epilogue_uniform(
        &self,
        i: usize,
        u: &LinearU,
        rows: usize,
        train: bool,
        parts: usize,
    ) -> ColU {
        let (l, lay) = (&self.spec.layers[i], &self.lay);
        ColU {
            rows: rows as u32,
            n: l.out as u32,
            act: u.act,
            slope: u.slope,
            mode: col_mode(l.bn.is_some(), train),
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
            inv_rows: 1.0f32 / rows as f32,
            unbias: rows as f32 / (rows as f32 - 1.0),
            parts: parts as u32,
            part_off: lay.part as u32,
            ..Default::default()
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Backward

    /// Records the backward over the first `rows` rows of the last forward, reading the output gradient `[rows, output]`
    /// at element `dout` of the work buffer (consumed: used as scratch): d loss / d output, or, when `dout_ready`,
    /// already multiplied by the last block's act' (d loss / d z). Writes the parameter gradients when `param_grads`;
    /// the input gradient per `input`. Returns the element offset of the input gradient for `InputGrad::Own`.
    ///
    /// Per block, from the top: `record_block_backward`; the block's dx, times the act' of the block below, is the
    /// next block's ready gradient, in the other ping-pong buffer.
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
        let pass = BackwardPass {
            rows,
            train,
            param_grads,
            adam: None,
        };
        let first = if dout_ready { Dz::Ready } else { Dz::Raw };
        self.record_blocks_backward(b, pass, (dout, first), input)
    }

    /// The GAN step's G backward: [`Self::record_backward`] from a ready output gradient at `dout`, parameter
    /// gradients, no input gradient, with the Adam step `adam` in its epilogues where it can run there
    /// (`adam_folds`). Returns whether it did; if not, the caller records the Adam step.
    pub(crate) fn record_backward_adam(
        &self,
        b: &mut Batch,
        rows: usize,
        dout: usize,
        adam: AdamU,
    ) -> Result<bool> {
        let (_, train) = self.state.backward_over(&self.spec, rows)?;
        let mut pass = BackwardPass {
            rows,
            train,
            param_grads: true,
            adam: None,
        };
        let folded = self.adam_folds(pass);
        pass.adam = folded.then_some(adam);
        self.record_blocks_backward(b, pass, (dout, Dz::Ready), InputGrad::None)?;
        Ok(folded)
    }

    /// Whether every parameter's Adam can run in the epilogues of a backward `pass` from a ready gradient without an
    /// input gradient: each BatchNorm block's column pass folded above it (a top block has none), no dropout, and
    /// each weight GEMM within the Adam counters.
    fn adam_folds(&self, pass: BackwardPass) -> bool {
        let top = self.spec.layers.len() - 1;
        self.folds
            && pass.param_grads
            && pass.rows <= TILE
            && self.spec.layers.iter().enumerate().all(|(i, l)| {
                !(pass.train && l.dropout > 0.0)
                    && (l.bn.is_none() || (i < top && self.col_folds(pass, i)))
                    && weight_tiles(l.out, l.inp) <= COUNTER_TILES
            })
    }

    /// Blocks' backward from the top, from the gradient `dout.0` in the state `dout.1` (`record_backward`).
    fn record_blocks_backward(
        &self,
        b: &mut Batch,
        pass: BackwardPass,
        (dout, first): (usize, Dz),
        input: InputGrad,
    ) -> Result<Option<usize>> {
        let (work, lay, train) = (self.work(), &self.lay, pass.train);
        let (mut cur, mut state, mut result) = (dout, first, None);
        for i in (0..self.spec.layers.len()).rev() {
            let l = &self.spec.layers[i];
            if train && l.dropout > 0.0 {
                let mask = self.state.last_dropout.layer(i, l.dropout);
                self.record_dropout(b, pass.rows, l.out, cur, mask)?;
            }
            let other = if cur == lay.g1 { lay.g0 } else { lay.g1 };
            let dx = if i > 0 {
                let below = &self.spec.layers[i - 1];
                Some((work, other, Some((below.act, lay.a[i - 1]))))
            } else {
                match input {
                    InputGrad::None => None,
                    InputGrad::Own => {
                        result = Some(other);
                        Some((work, other, None))
                    }
                }
            };
            let fold = i > 0 && self.col_folds(pass, i - 1);
            let dw = i == 1 && self.dw_folds(pass, input);
            self.record_block_backward(b, pass, i, (cur, state), dx, (fold, dw))?;
            if dw {
                break; // block 0's backward ran in block 1's dx epilogue
            }
            cur = other;
            state = if fold { Dz::Pre } else { Dz::Ready };
        }
        Ok(result)
    }

    /// Whether block 0's backward, its weight GEMM alone (no input gradient, no column pass), runs in the epilogue of
    /// block 1's dx GEMM (linear.wgsl `dw_fold`): when one row tile holds the batch.
    fn dw_folds(&self, pass: BackwardPass, input: InputGrad) -> bool {
        let l = &self.spec.layers[0];
        self.folds_below(pass, 0)
            && matches!(input, InputGrad::None)
            && pass.param_grads
            && l.bn.is_none()
    }

    /// Whether block `i`'s column pass (BatchNorm backward) runs in the epilogue of the dx GEMM of the block above it
    /// (linear.wgsl `col_fold`): a BatchNorm block, when the epilogue may run its work (`folds_below`).
    fn col_folds(&self, pass: BackwardPass, i: usize) -> bool {
        self.folds_below(pass, i) && self.spec.layers[i].bn.is_some()
    }

    /// Whether the dx epilogue of the block above may run block `i`'s work: folds on, one row tile holds the batch
    /// (each dx tile has every row of its columns), and no dropout mask to apply first.
    fn folds_below(&self, pass: BackwardPass, i: usize) -> bool {
        let l = &self.spec.layers[i];
        self.folds && pass.rows <= TILE && !(pass.train && l.dropout > 0.0)
    }

    /// Block `i` backward from its gradient `dz [rows, out]` at `dz.0`, in the state `dz.1`: a column pass only where a
    /// reduction over the batch must precede the GEMMs (BatchNorm) or act' is still to be applied, unless the dx GEMM
    /// above ran it (`Dz::Pre`); then the GEMMs (dW, db when no column pass computed it, and dx into `dx`). With
    /// `fold.0`, the dx GEMM's epilogue also runs the column pass of block `i - 1`, which receives it; with `fold.1`,
    /// block `i - 1`'s weight GEMM.
    fn record_block_backward(
        &self,
        b: &mut Batch,
        pass: BackwardPass,
        i: usize,
        (dz, state): (usize, Dz),
        dx: Option<DxDest>,
        (col_fold, dw_fold): (bool, bool),
    ) -> Result<()> {
        let l = &self.spec.layers[i];
        let col = match state {
            Dz::Pre => false,
            Dz::Ready => l.bn.is_some(),
            Dz::Raw => l.bn.is_some() || l.act != Act::None,
        };
        if col {
            self.record_col_backward(b, pass, i, dz, state == Dz::Ready)?;
        }
        // With a column pass, here or folded above, db came from it; else the dW GEMM computes it from a column of
        // ones.
        let weight_grads = pass.param_grads.then_some(state != Dz::Pre && !col);
        let below = (col_fold || dw_fold).then_some(Below {
            block: i - 1,
            pass,
            col: col_fold,
            dw: dw_fold,
        });
        let dx = dx.map(|d| (d, below));
        self.record_matmul_backward(b, pass, i, dz, weight_grads, dx)
    }

    /// block.wgsl `backward` over block `i`'s `dz [rows, out]` at `dz`, in place: act' (unless `ready`), then the
    /// BatchNorm backward (batch or running statistics), leaving d loss / d pre; writes db, dgamma, dbeta when the
    /// pass writes parameter gradients.
    fn record_col_backward(
        &self,
        b: &mut Batch,
        pass: BackwardPass,
        i: usize,
        dz: usize,
        ready: bool,
    ) -> Result<()> {
        let (l, lay) = (&self.spec.layers[i], &self.lay);
        let (act, slope) = if ready { (0, 0.0) } else { act_code(l.act) };
        let c = ColU {
            rows: pass.rows as u32,
            n: l.out as u32,
            act,
            slope,
            mode: col_mode(l.bn.is_some(), pass.train),
            write_grads: pass.param_grads as u32,
            y_off: dz as u32,
            a_off: lay.a[i] as u32,
            xhat: lay.xhat[i] as u32,
            rstd: lay.rstd[i] as u32,
            gamma: l.gamma as u32,
            beta: l.beta as u32,
            g_b: l.b as u32,
            g_gamma: l.gamma as u32,
            g_beta: l.beta as u32,
            inv_rows: 1.0f32 / pass.rows as f32,
            ..Default::default()
        };
        let work = self.work();
        // b0 dz (work)  b1 params  b2 saved a, xhat, rstd (work)  b3 grads
        let bind = self.dev.bind(&[
            Some(work),
            Some(&self.params),
            Some(work),
            Some(&self.grads),
            None,
            None,
        ])?;
        b.dispatch(
            &self.dev.pipeline(K_COL_BACKWARD)?,
            &bind,
            &c,
            self.col_grid(l.out),
        );
        Ok(())
    }

    /// Block `i`'s GEMMs backward from `dpre [rows, out]` at `dpre`, in one linear.wgsl `backward` dispatch:
    /// `dW [out, inp] = dpre^T x_i` when `weight_grads` is given (`Some(true)`: with `db [out]` from a column of ones)
    /// and `dx [rows, inp] = dpre W` (times the receiver's act') into `dx` when given (split along K for small grids:
    /// its partial products in `part`, summed by each tile's last arriver), its epilogue running the receiver's work
    /// given in `Below`: its column pass, its weight GEMM (which then has no workgroups of its own).
    fn record_matmul_backward(
        &self,
        b: &mut Batch,
        pass: BackwardPass,
        i: usize,
        dpre: usize,
        weight_grads: Option<bool>,
        dx: Option<(DxDest, Option<Below>)>,
    ) -> Result<()> {
        let (rows, (mut gs, mut n)) = (pass.rows, ([GemmDesc::default(); GEMMS], 0));
        let mut u = LinearU::default();
        if let Some(a) = pass.adam {
            set_adam(&mut u, &a);
        }
        if let Some(ones) = weight_grads {
            gs[n] = self.matmul_backward_weight(i, rows, dpre, ones);
            n += 1;
        }
        if let Some(((_, at, recv), below)) = dx {
            gs[n] = self.matmul_backward_input(i, rows, dpre, at, recv);
            n += 1;
            if let Some(f) = below.filter(|f| f.col) {
                self.col_fold_uniform(&mut u, n - 1, f);
            }
            if let Some(f) = below.filter(|f| f.dw) {
                // Block i - 1's dW over its d loss / d pre, which this GEMM stores at `at` through b4.
                gs[n] = self.matmul_backward_weight(f.block, rows, at, true);
                (gs[n].splits, gs[n].a_src) = (0, 4);
                (u.dw_on, u.dw_from, u.dw_j) = (1, n as u32 - 1, n as u32);
                n += 1;
            }
        }
        if pass.adam.is_some() {
            // Block i's weights: read by its dx GEMM (right after the weight GEMM), or by nothing here. The folded
            // weight GEMM of block i - 1 and the folded column pass: nothing here reads their parameters.
            let reader = weight_grads.is_some() && dx.is_some();
            adam_masks(
                &mut u,
                &gs[..n],
                if reader { &DX_READ_DW[..1] } else { &[] },
            );
            u.ad_col = u.col_on;
        }
        self.dispatch_backward(b, u, &gs[..n], dx.map_or(self.work(), |d| d.0 .0))
    }

    /// The fields of a linear.wgsl `backward` uniform that fold block `f.block`'s column pass into dx GEMM `j`.
    fn col_fold_uniform(&self, u: &mut LinearU, j: usize, f: Below) {
        let (l, lay) = (&self.spec.layers[f.block], &self.lay);
        u.col_on = 1;
        u.col_j = j as u32;
        u.col_mode = col_mode(true, f.pass.train);
        u.col_grads = f.pass.param_grads as u32;
        u.bias = l.b as u32;
        u.gamma = l.gamma as u32;
        u.beta = l.beta as u32;
        u.xhat = lay.xhat[f.block] as u32;
        u.rstd = lay.rstd[f.block] as u32;
        u.inv_rows = 1.0f32 / f.pass.rows as f32;
    }

    /// One linear.wgsl `backward` dispatch of the GEMMs `gs` (at most [`GEMMS`]; none records nothing): the split
    /// GEMMs' partial products each in a region of `part` of their own, GEMM j's tile counters at `3 t + j`.
    fn dispatch_backward(
        &self,
        b: &mut Batch,
        mut u: LinearU,
        gs: &[GemmDesc],
        dx_to: &GpuBuf,
    ) -> Result<()> {
        if gs.is_empty() {
            return Ok(());
        }
        let mut regions = 0;
        for (j, g) in gs.iter().enumerate() {
            u.g[j] = *g;
            if g.splits > 1 {
                u.part[j] = self.part_region(regions)?;
                regions += 1;
            }
        }
        let work = self.work();
        let adam = u.ad_col != 0 || u.ad_direct != 0 || u.ad_hs != 0;
        let (m, v) = if adam {
            (Some(&self.m), Some(&self.v))
        } else {
            (None, None)
        };
        // b0 dpre (work)  b1 params (W)  b2 x_i, split-K partials (work)  b3 grads  b4 the dx destination
        // b5 split-K and Adam tile counters  b6 Adam m  b7 Adam v (when the epilogues run Adam)
        let bind = self.dev.bind(&[
            Some(work),
            Some(&self.params),
            Some(work),
            Some(&self.grads),
            Some(dx_to),
            Some(&self.counters),
            m,
            v,
        ])?;
        b.dispatch(
            &self.dev.pipeline(K_BACKWARD)?,
            &bind,
            &u,
            backward_grid(&self.dev, gs),
        );
        Ok(())
    }

    /// Whether this MLP's backward is its GEMMs alone (no BatchNorm, no dropout), as [`Self::record_backward_pair`]
    /// needs.
    pub(crate) fn backward_is_gemms(&self) -> bool {
        self.spec
            .layers
            .iter()
            .all(|l| l.bn.is_none() && l.dropout == 0.0)
    }

    /// The GAN step's two backwards through this MLP (its D), recorded side by side over the last forward, both from
    /// output gradients already times the last block's act': the G step's over the first `g_rows` rows from `g_dout`
    /// (in `g0`), input gradients only, into `to` (G's output gradient, times the act' of G's last block); and the D
    /// step's over `d_rows` rows from `d_dout` (in `aux`), weight gradients only. They do not depend on each other, so
    /// each block is one linear.wgsl `backward` dispatch of up to three GEMMs (the D step's dW and dx, the G step's dx)
    /// instead of two dispatches, with the same numbers. The G step's gradients ping-pong through `g0` / `g1`, the D
    /// step's through `h0` / `h1` (`reserve_pair`). Only when [`Self::backward_is_gemms`] (the fused step's D always:
    /// `check_gan` refuses BatchNorm in it, and models with dropout take the general step).
    ///
    /// A top block of one output (D's, in every model of the fused step) takes no dispatch with `folds`: its input
    /// gradients are outer products, so the GEMMs of the block below generate them as they load their A
    /// (`generate_below_top`), and its dW (over `d_rows`) joins block 0's dispatch, with the same bits.
    ///
    /// With `adam` (and `pair_folds_adam`), the D step's Adam runs in the epilogues: each block's weights once its dW
    /// is stored and the dx GEMMs of its dispatch have read them. Returns whether it did; if not, the caller records
    /// the Adam step.
    pub(crate) fn record_backward_pair(
        &self,
        b: &mut Batch,
        (g_rows, g_dout): (usize, usize),
        to: DxDest,
        (d_rows, d_dout): (usize, usize),
        adam: Option<AdamU>,
    ) -> Result<bool> {
        if !self.backward_is_gemms() || !self.pair_on {
            return Err(bad_state!(
                "a paired backward needs an MLP without BatchNorm or dropout, laid out for it"
            ));
        }
        self.state.backward_over(&self.spec, g_rows)?;
        self.state.backward_over(&self.spec, d_rows)?;
        let (lay, top) = (&self.lay, self.spec.layers.len() - 1);
        let fold_top = self.folds_top();
        let adam = adam.filter(|_| self.pair_folds_adam());
        let (mut gc, mut dc) = (g_dout, d_dout);
        let mut top_dw = None;
        for i in (0..=top).rev() {
            if i == top && fold_top {
                // No dispatch of its own: its dW joins block 0's dispatch, and the GEMMs of the block below generate
                // their A from its output gradients, still at gc and dc.
                top_dw = Some(self.matmul_backward_weight(i, d_rows, dc, true));
                continue;
            }
            let (mut gs, mut n) = ([GemmDesc::default(); GEMMS], 0);
            gs[n] = self.matmul_backward_weight(i, d_rows, dc, true);
            n += 1;
            let g_next = if gc == lay.g1 { lay.g0 } else { lay.g1 };
            let d_next = if dc == lay.h1 { lay.h0 } else { lay.h1 };
            let mut dx_to = self.work();
            if i > 0 {
                let below = &self.spec.layers[i - 1];
                let recv = Some((below.act, lay.a[i - 1]));
                gs[n] = self.matmul_backward_input(i, d_rows, dc, d_next, recv);
                gs[n + 1] = self.matmul_backward_input(i, g_rows, gc, g_next, recv);
                n += 2;
            } else {
                gs[n] = self.matmul_backward_input(i, g_rows, gc, to.1, to.2);
                n += 1;
                dx_to = to.0;
            }
            let mut u = LinearU::default();
            if fold_top && i == top - 1 {
                self.generate_below_top(&mut u, &mut gs[..n]);
            }
            // The dx GEMMs (1..n) read block i's weights, whose dW is GEMM 0.
            let reads = &DX_READ_DW[..n - 1];
            if i == 0 {
                if let Some(t) = top_dw.take() {
                    gs[n] = t;
                    n += 1;
                }
            }
            if let Some(a) = adam {
                set_adam(&mut u, &a);
                adam_masks(&mut u, &gs[..n], reads);
            }
            self.dispatch_backward(b, u, &gs[..n], dx_to)?;
            (gc, dc) = (g_next, d_next);
        }
        Ok(adam.is_some())
    }

    /// Whether the paired backward folds a top block of one output into the block below (`record_backward_pair`).
    fn folds_top(&self) -> bool {
        let top = self.spec.layers.len() - 1;
        self.folds && top > 0 && self.spec.layers[top].out == 1
    }

    /// Whether the paired backward can run the D step's Adam in its epilogues: folds on, and each weight GEMM within
    /// the Adam counters; not when a folded top block's weights are read (generating the A of block 0's GEMMs) in the
    /// dispatch that computes their dW (a D of two blocks).
    fn pair_folds_adam(&self) -> bool {
        let top = self.spec.layers.len() - 1;
        self.folds
            && !(self.folds_top() && top == 1)
            && self
                .spec
                .layers
                .iter()
                .all(|l| weight_tiles(l.out, l.inp) <= COUNTER_TILES)
    }

    /// Makes the GEMMs `gs` of the block below the top block (of one output) generate their A, that block's d loss /
    /// d pre, from the top block's output gradient at each GEMM's `a_off` (linear.wgsl `outer_a`): the weight GEMM
    /// (C in the gradients) reads it transposed, the dx GEMMs row by row.
    fn generate_below_top(&self, u: &mut LinearU, gs: &mut [GemmDesc]) {
        let top = self.spec.layers.len() - 1;
        let below = &self.spec.layers[top - 1];
        (u.o_act, u.o_slope) = act_code(below.act);
        u.o_w = self.spec.layers[top].w as u32;
        u.o_a = self.lay.a[top - 1] as u32;
        for g in gs {
            g.a_gen = if g.c_dst == 3 { AGEN_COLS } else { AGEN_ROWS };
            g.a_top = g.a_off;
            g.a_ld = below.out as u32;
        }
    }

    /// Element offset of split-K partial-product region `k` of `part`: a dispatch's `k`-th split GEMM writes there
    /// (one region, two with `reserve_pair`, each of `part_len` floats).
    fn part_region(&self, k: usize) -> Result<u32> {
        if k >= self.lay.part_regions {
            return Err(bad_state!(
                "split GEMM {k} of a dispatch without its partial-product region"
            ));
        }
        Ok((self.lay.part + k * self.lay.part_len) as u32)
    }

    /// `dW [out, inp] = dpre^T x_i` of block `i`: m = out, n = inp (+ 1 with `ones`: then `db [out] = sum_rows dpre`
    /// goes to the bias gradient), k = rows; A(m, k) = `dpre[k, m]` (b0), B = `x_i` (b2), C -> grads (b3).
    fn matmul_backward_weight(&self, i: usize, rows: usize, dpre: usize, ones: bool) -> GemmDesc {
        let l = &self.spec.layers[i];
        GemmDesc {
            m: l.out as u32,
            n: (l.inp + ones as usize) as u32,
            k: rows as u32,
            b_src: 2,
            a_off: dpre as u32,
            a_rs: 1,
            a_cs: l.out as u32,
            b_off: self.block_input(i) as u32,
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
        }
    }

    /// `dx [rows, inp] = dpre W` of block `i` into element `at` of the destination (b4), times act' of the receiving
    /// block (its saved output read at `recv`'s offset there): m = rows, n = inp, k = out; A = `dpre` (b0), B = W (b1);
    /// split along K for small grids.
    fn matmul_backward_input(
        &self,
        i: usize,
        rows: usize,
        dpre: usize,
        at: usize,
        recv: Receiver,
    ) -> GemmDesc {
        let l = &self.spec.layers[i];
        let (e_act, e_slope) = recv.map_or((0, 0.0), |r| act_code(r.0));
        let (splits, kc) = self.splits(rows, l.inp, l.out);
        GemmDesc {
            m: rows as u32,
            n: l.inp as u32,
            k: l.out as u32,
            b_src: 1,
            a_off: dpre as u32,
            a_rs: l.out as u32,
            a_cs: 1,
            b_off: l.w as u32,
            b_rs: l.inp as u32,
            b_cs: 1,
            c_off: at as u32,
            c_rs: l.inp as u32,
            c_dst: 4,
            e_act,
            e_slope,
            e_a_off: recv.map_or(0, |r| r.1 as u32),
            splits: splits as u32,
            kc: kc as u32,
            ..Default::default()
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Adam

    /// Records one Adam step over all parameters with the current gradients (counts it in `adam_t`).
    pub(crate) fn record_adam(&mut self, b: &mut Batch, c: AdamConfig) -> Result<()> {
        let u = self.adam_uniform(c);
        self.record_adam_step(b, &u)
    }

    /// Records the Adam step `u` (from [`Self::adam_uniform`]) over all parameters with the current gradients.
    pub(crate) fn record_adam_step(&self, b: &mut Batch, u: &AdamU) -> Result<()> {
        // b0 params  b1 grads  b2 m  b3 v
        let bind = self.dev.bind(&[
            Some(&self.params),
            Some(&self.grads),
            Some(&self.m),
            Some(&self.v),
        ])?;
        self.record_param_kernel(b, K_ADAM, &bind, u)
    }

    /// Records the Adam steps `u.a` of this MLP and `u.b` of `other` (from [`Self::adam_uniform`]) in one adam.wgsl
    /// `adam_pair` dispatch, term for term two `record_adam_step`s.
    pub(crate) fn record_adam_pair_step(
        &self,
        other: &GpuMlp,
        b: &mut Batch,
        u: &AdamPairU,
    ) -> Result<()> {
        // b0..b3 this MLP's params, grads, m, v  b4..b7 the other's
        let bind = self.dev.bind(&[
            Some(&self.params),
            Some(&self.grads),
            Some(&self.m),
            Some(&self.v),
            Some(&other.params),
            Some(&other.grads),
            Some(&other.m),
            Some(&other.v),
        ])?;
        let groups = self.spec.param_count.div_ceil(256) + other.spec.param_count.div_ceil(256);
        let grid = grid1d(
            groups as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        );
        b.dispatch(&self.dev.pipeline(K_ADAM_PAIR)?, &bind, u, grid);
        Ok(())
    }

    /// adam.wgsl `AdamU` of the next Adam step with config `c` (counts it in `adam_t`): the bias corrections in f64,
    /// as the CPU computes them.
    pub(crate) fn adam_uniform(&mut self, c: AdamConfig) -> AdamU {
        self.state.adam_t += 1;
        let t = self.state.adam_t;
        let bc1 = 1.0 - c.b1.powf(t as f64);
        let bc2 = 1.0 - c.b2.powf(t as f64);
        AdamU {
            n: self.spec.param_count as u32,
            step: (c.lr / bc1) as f32,
            bc2s: bc2.sqrt() as f32,
            w1: (1.0 - c.b1) as f32,
            w2: (1.0 - c.b2) as f32,
            b2: c.b2 as f32,
            eps: c.eps as f32,
            ..Default::default()
        }
    }

    /// Records one RMSprop step (`core/optim.rs`) over all parameters (counts it in `adam_t`; the average in `v`).
    pub(crate) fn record_rmsprop(&mut self, b: &mut Batch, c: RmsPropConfig) -> Result<()> {
        self.state.adam_t += 1;
        let u = AdamU {
            n: self.spec.param_count as u32,
            step: c.lr as f32,
            w2: (1.0 - c.alpha) as f32,
            b2: c.alpha as f32,
            eps: c.eps as f32,
            ..Default::default()
        };
        // b0 params  b1 grads  b2 m (unused)  b3 v
        let bind = self.dev.bind(&[
            Some(&self.params),
            Some(&self.grads),
            Some(&self.m),
            Some(&self.v),
            None,
            None,
        ])?;
        self.record_param_kernel(b, K_RMSPROP, &bind, &u)
    }

    /// Records the clamp of every parameter to `[-c, c]`.
    pub(crate) fn record_clamp(&mut self, b: &mut Batch, c: f32) -> Result<()> {
        let u = AdamU {
            n: self.spec.param_count as u32,
            step: c,
            ..Default::default()
        };
        let bind = self.dev.bind(&[
            Some(&self.params),
            Some(&self.grads),
            Some(&self.m),
            Some(&self.v),
            None,
            None,
        ])?;
        self.record_param_kernel(b, K_CLAMP, &bind, &u)
    }

    /// One thread per parameter.
    fn record_param_kernel(
        &self,
        b: &mut Batch,
        k: Kernel,
        bind: &Arc<Bind>,
        u: &AdamU,
    ) -> Result<()> {
        let grid = grid1d(
            self.spec.param_count.div_ceil(256) as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        );
        b.dispatch(&self.dev.pipeline(k)?, bind, u, grid);
        Ok(())
    }
}

/// (reader, weight GEMM) pairs of a paired-backward dispatch: its dx GEMMs 1 and 2 read the weights of its dW, GEMM 0.
const DX_READ_DW: [(usize, usize); 2] = [(1, 0), (2, 0)];

/// Output tiles of the weight GEMM of a block `inp -> out` (its bias column included).
fn weight_tiles(out: usize, inp: usize) -> usize {
    out.div_ceil(TILE) * (inp + 1).div_ceil(TILE)
}

/// The Adam step `a`'s settings in a linear.wgsl `backward` uniform.
fn set_adam(u: &mut LinearU, a: &AdamU) {
    (u.ad_step, u.ad_bc2s, u.ad_w1) = (a.step, a.bc2s, a.w1);
    (u.ad_w2, u.ad_b2, u.ad_eps) = (a.w2, a.b2, a.eps);
}

/// The Adam masks of a `backward` dispatch of the GEMMs `gs` (linear.wgsl header): each weight GEMM (C in the
/// gradients) updates its parameters at once, or, when a dx GEMM of the dispatch reads its weights (`reads`: pairs
/// (reader, weight GEMM)), by the last to arrive of it and those readers.
fn adam_masks(u: &mut LinearU, gs: &[GemmDesc], reads: &[(usize, usize)]) {
    for &(r, j) in reads {
        u.ad_reads |= (j as u32 + 1) << (4 * r);
    }
    for (j, _) in gs.iter().enumerate().filter(|(_, g)| g.c_dst == 3) {
        if reads.iter().any(|&(_, w)| w == j) {
            u.ad_hs |= 1 << j;
        } else {
            u.ad_direct |= 1 << j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes the host writes into linear.wgsl's uniforms, and the start of its Adam counters (past the split-K
    /// counters the host sized), are the shader's constants.
    #[test]
    fn the_feed_codes_are_the_shaders() {
        let src = include_str!("shaders/linear.wgsl");
        for (name, v) in [
            ("GEN_NOISE", GEN_NOISE),
            ("GEN_FAKE", GEN_FAKE),
            ("AGEN_ROWS", AGEN_ROWS),
            ("AGEN_COLS", AGEN_COLS),
            ("ADAM_COUNTERS", (GEMMS * COUNTER_TILES) as u32),
        ] {
            let line = format!("const {name}: u32 = {v}u;");
            assert!(src.contains(&line), "linear.wgsl lacks {line:?}");
        }
    }
}
