//! The seed's GAN training step on the GPU, with the meaning of the CPU backend's: the same step order, the same fused
//! D-over-[fake; real] pass, the same per-step records.
//!
//! Data flow: the dataset is uploaded once (u8 pixels packed in u32 words, behind a 256-entry table of the scaled
//! values). Each epoch's sample order is drawn on the host with `rng::permutation` when the epoch starts (as the CPU
//! does); the batch indices of every step of a submission are uploaded with one `write_buffer` before it, so steps may
//! cross epoch boundaries inside one submission (the short last batch of an epoch included). The noise is drawn on
//! the device by G's first GEMM as it loads its input, and the same dispatch gathers the batch's real rows into D's
//! input with workgroups of its own; D's first GEMM copies the fake rows from G's output as it loads them (each
//! stores what it drew or copied where the backward reads it: `passes::Feed`). Steps are recorded back to back into
//! one compute pass of one command buffer, [`STEPS_PER_SUBMIT`] (8) steps per submission, each submitted as soon as
//! it is recorded so that the GPU runs the first steps while the CPU records the next; submissions follow each
//! other without any wait, and the losses (`[n, 4]` on the device) are read back once at the end of the call (every
//! [`STEPS_PER_READ`] steps for longer calls). wgpu orders the dispatches of a pass by inserting barriers between
//! dispatches that touch the same read-write storage buffer, which every binding here is (`device::Batch` counts
//! them, `gan_gan_info` reports them per step).
//!
//! Dispatches per step (G with `Lg` blocks of which `Bg` have BatchNorm, D with `Ld` blocks, batch <= 64):
//! G forward `Lg` (plus `Bg` when the batch exceeds 64), D forward `Ld` (the last block ending in the losses), D's
//! backwards for the G step (dx GEMMs only) and the D step side by side `Ld - 1` (D's top block, of one output, has
//! no dispatch: the GEMMs of the block below generate their input from its gradients, and its dW joins block 0's
//! dispatch), G backward `Lg - 1` (plus `Bg + 1` when the batch exceeds 64: up to 64 rows, each BatchNorm block's
//! column pass runs in the epilogue of the dx GEMM above it, and so does block 0's weight GEMM when block 0 has no
//! BatchNorm), Adam on both 1; the seed (Lg = 5, Bg = 3, Ld = 3) takes 15, on every adapter: a GEMM split along K (see mlp.rs; on by default on hardware adapters) is finished by its last slice to
//! arrive, with no dispatch of its own (41 on an H100 before, with a reduction dispatch per split GEMM, an Adam per
//! network, the noise, the gather and the losses as dispatches of their own, D's two backwards one after the other,
//! a column-pass dispatch per BatchNorm block, and one each for D's top block and G's block 0).

use super::device::{grid1d, Batch, GpuBuf, GpuDevice, Kernel, Read, Shader};
use super::mlp::{copy_f32, GpuMlp};
use super::passes::{Feed, Losses, Reals};
use super::uniforms::{AdamPairU, DataU};
use crate::core::spec::{Act, Spec};
use crate::core::{Error, GanBackend, GanConfig, Result, RunState, StepRecord, STEP_OUTPUTS};
use crate::error::{bad_arg, bad_state, Code};
use crate::rng;
use std::sync::Arc;

/// Steps recorded into one command buffer / submission. Small, so that the GPU starts on the first steps of a call
/// while the CPU records the rest (recording costs about 2 us of CPU per dispatch: 86 us per seed step on an H100
/// when it took 41 dispatches, 15 now); not 1, because each submission has a fixed cost of its own (the command
/// buffer, the uniform and batch-index uploads, the error scopes, the queue submit). At 8 the GPU waits for about
/// 0.7 ms of recording before its first step and the fixed cost is shared by 8 steps. The results do not depend on it
/// (bitwise: `tests/gpu_parity.rs`, `submitting_every_few_steps_gives_the_same_bits`).
pub const STEPS_PER_SUBMIT: usize = 8;
/// Steps whose losses are kept on the device before one read-back.
pub const STEPS_PER_READ: usize = 16384;

const K_HASH: Kernel = Kernel::new(Shader::Data, "hash");

pub struct GpuGan {
    pub state: RunState,
    dev: Arc<GpuDevice>,
    /// `[256]` f32 bits of the scaled pixel values, then `[count, features]` u8 pixels packed 4 per word.
    data: Option<GpuBuf>,
    /// `[steps_per_submit, batch]` batch indices of the steps of one submission (host copy and device buffer).
    idx_host: Vec<u32>,
    idx: Option<GpuBuf>,
    /// `[steps, STEP_OUTPUTS]` per-step records.
    losses: Option<GpuBuf>,
    losses_cap: usize,
    /// Dispatches recorded by the last `run_steps` call (all its steps), and its submissions.
    pub last_dispatches: usize,
    pub last_submissions: usize,
    /// Steps per submission ([`STEPS_PER_SUBMIT`]; tests and benchmarks change it to compare).
    pub steps_per_submit: usize,
}

fn same_device(g: &GpuMlp, d: &GpuMlp, dev: &Arc<GpuDevice>) -> Result<()> {
    if !Arc::ptr_eq(g.device(), dev) || !Arc::ptr_eq(d.device(), dev) {
        return Err(bad_arg!(
            "the generator, the discriminator and the GAN must live on the same GPU device"
        ));
    }
    Ok(())
}

impl GpuGan {
    /// A trainer for generator `g` and discriminator `d` (checked to fit together: `spec::check_gan`) on their device.
    pub fn new(config: GanConfig, g: &GpuMlp, d: &GpuMlp) -> Result<GpuGan> {
        let state = RunState::new(config, &g.spec, &d.spec)?;
        let dev = g.device().clone();
        same_device(g, d, &dev)?;
        if !d.backward_is_gemms() {
            return Err(bad_arg!(
                "the fused GAN step needs a discriminator without dropout (models with dropout take the general step)"
            ));
        }
        Ok(GpuGan {
            state,
            dev,
            data: None,
            idx_host: Vec::new(),
            idx: None,
            losses: None,
            losses_cap: 0,
            last_dispatches: 0,
            last_submissions: 0,
            steps_per_submit: STEPS_PER_SUBMIT,
        })
    }

    /// Runs `n` training steps in the seed's order; writes each step's record to `out [n, STEP_OUTPUTS]`: read-back
    /// groups of at most [`STEPS_PER_READ`] steps, each in submissions of at most `steps_per_submit` steps (each
    /// submitted as soon as it is recorded, so the GPU runs while the CPU records the next), the records read back
    /// once per group, at its last submission (see the module notes).
    fn step_n(&mut self, g: &mut GpuMlp, d: &mut GpuMlp, n: usize, out: &mut [f32]) -> Result<()> {
        let bsz = self.state.config.batch_size;
        let per_submit = self.steps_per_submit.max(1);
        g.reserve(bsz)?;
        d.reserve_pair(2 * bsz)?;
        self.reserve_step_buffers(n)?;
        self.last_dispatches = 0;
        self.last_submissions = 0;
        for start in (0..n).step_by(STEPS_PER_READ) {
            let group = (n - start).min(STEPS_PER_READ);
            let records = &mut out[start * STEP_OUTPUTS..(start + group) * STEP_OUTPUTS];
            for first in (0..group).step_by(per_submit) {
                let steps = (group - first).min(per_submit);
                let read = (first + steps == group).then_some(&mut *records);
                self.submit_steps(g, d, first, steps, read)?;
            }
        }
        Ok(())
    }

    /// Grows the buffers of a call of `n` steps: the records `[min(n, STEPS_PER_READ), STEP_OUTPUTS]` and the batch
    /// indices `[min(n, steps_per_submit), batch]` (host and device). Every submission rewrites the batch indices
    /// (and the uniforms) from offset 0: queue writes land in order, after the work submitted before them.
    fn reserve_step_buffers(&mut self, n: usize) -> Result<()> {
        let bsz = self.state.config.batch_size;
        let per_read = n.min(STEPS_PER_READ);
        if self.losses_cap < per_read {
            self.losses = None;
            let bytes = (per_read * STEP_OUTPUTS * 4) as u64;
            self.losses = Some(self.dev.buffer("losses", bytes)?);
            self.losses_cap = per_read;
        }
        let per_submit = n.min(self.steps_per_submit.max(1));
        if self.idx_host.len() < per_submit * bsz {
            self.idx = None;
            let bytes = (per_submit * bsz * 4) as u64;
            self.idx = Some(self.dev.buffer("batch indices", bytes)?);
            self.idx_host = vec![0u32; per_submit * bsz];
        }
        Ok(())
    }

    /// Records `steps` steps (the first in slot `first_slot` of the read-back group) into one submission, uploads
    /// their batch indices and submits; with `read`, then reads the group's records back into it (`[slots, 4]`).
    fn submit_steps(
        &mut self,
        g: &mut GpuMlp,
        d: &mut GpuMlp,
        first_slot: usize,
        steps: usize,
        read: Option<&mut [f32]>,
    ) -> Result<()> {
        let mut batch = Batch::new();
        for k in 0..steps {
            self.record_step(&mut batch, g, d, k, first_slot + k)?;
        }
        let bsz = self.state.config.batch_size;
        let idx = self
            .idx
            .as_ref()
            .expect("reserve_step_buffers allocates it");
        self.dev
            .write(idx, 0, bytemuck::cast_slice(&self.idx_host[..steps * bsz]))?;
        self.last_dispatches += batch.len();
        self.last_submissions += 1;
        let Some(records) = read else {
            self.dev.execute(batch, &[])?;
            return Ok(());
        };
        let losses = self
            .losses
            .as_ref()
            .expect("reserve_step_buffers allocates it");
        let len = (records.len() * 4) as u64;
        let r = self.dev.execute(
            batch,
            &[Read {
                buf: losses,
                offset: 0,
                len,
            }],
        )?;
        copy_f32(records, &r[0]);
        Ok(())
    }

    /// Records step `state.step` (then counts it) as the `k`-th step of its submission and the `slot`-th of its
    /// read-back group, in the seed's order (the dispatch count is in the module notes).
    fn record_step(
        &mut self,
        b: &mut Batch,
        g: &mut GpuMlp,
        d: &mut GpuMlp,
        k: usize,
        slot: usize,
    ) -> Result<()> {
        let (adam_g, adam_d) = (self.state.config.adam_g, self.state.config.adam_d);
        let rows = self.stage_batch(k);
        // G forward on fresh noise, drawn by its first GEMM, which also gathers the batch's real rows into D's input
        // (train mode: batch statistics, running statistics updated once).
        let feed = Feed {
            noise_key: Some(self.noise_key()),
            reals: Some(self.reals(d, k, rows)?),
            ..Default::default()
        };
        g.record_forward_fed(b, rows, true, feed)?;
        // D forward once over [fake; real], its first GEMM copying the fakes from G's output (as on the CPU: D has no
        // BatchNorm and is unchanged until its own step).
        // Its last block ends in the step's losses: the step record, and both output gradients, the G step's into
        // D's g0, the D step's into D's aux.
        let g_out = *g.lay.a.last().expect("layers");
        let feed = Feed {
            fakes: Some((g.work(), g_out, rows)),
            losses: Some(self.losses(d, rows, slot)?),
            ..Default::default()
        };
        d.record_forward_fed(b, 2 * rows, true, feed)?;
        // G step: backward through D (input gradients only) straight into G's output gradient, then G's backward. The
        // loss kernel applied D's last act' (sigmoid' for bce; none has none); D's last input gradient leaves
        // multiplied by G's last act'. D step: D's backward over [fake; real], weight gradients only. It does not
        // depend on the G step, so D's two backwards are recorded side by side (one dispatch per block: D's backward
        // is its GEMMs alone, no BatchNorm or dropout).
        let (ug, ud) = (g.adam_uniform(adam_g), d.adam_uniform(adam_d));
        let g_top = g.spec.layers.last().expect("layers");
        let g_top_a = *g.lay.a.last().expect("layers");
        let g_top_recv = Some((g_top.act, g_top_a));
        let to_g = (g.work(), g.lay.g0, g_top_recv);
        // Adam runs in the epilogues of these backwards where it can (one row tile holds G's batch), each parameter's
        // once its gradient is final and nothing reads it any more; what is left runs in one dispatch after them.
        // Nothing after G's backward reads G's parameters, so G's update may wait for the D step's backward (the same
        // numbers as updating G first).
        let d_done =
            d.record_backward_pair(b, (rows, d.lay.g0), to_g, (2 * rows, d.lay.aux), Some(ud))?;
        let g_done = g.record_backward_adam(b, rows, g.lay.g0, ug)?;
        match (g_done, d_done) {
            (false, false) => g.record_adam_pair_step(d, b, &AdamPairU { a: ug, b: ud })?,
            (false, true) => g.record_adam_step(b, &ug)?,
            (true, false) => d.record_adam_step(b, &ud)?,
            (true, true) => {}
        }
        self.state.step += 1;
        Ok(())
    }

    /// Copies the dataset rows of step `state.step`'s batch into slot `k` of the host batch indices
    /// `[steps_per_submit, batch]`; returns the batch's rows.
    fn stage_batch(&mut self, k: usize) -> usize {
        let bsz = self.state.config.batch_size;
        let (pos, idx) = self.state.batch(self.state.step);
        self.idx_host[k * bsz..k * bsz + pos.rows].copy_from_slice(idx);
        pos.rows
    }

    /// The key of step `state.step`'s noise: G's input `x [rows, latent]` is the normals of stream (seed, noise,
    /// step), as on the CPU.
    fn noise_key(&self) -> u32 {
        rng::key(
            self.state.config.seed,
            rng::DOMAIN_NOISE,
            self.state.step as u32,
        )
    }

    /// The real rows of slot `k`'s batch for G's first forward to gather: D's input rows `rows..2 rows`, scaled
    /// through the dataset's table.
    fn reals<'a>(&'a self, d: &'a GpuMlp, k: usize, rows: usize) -> Result<Reals<'a>> {
        let (Some(data), Some(idx)) = (self.data.as_ref(), self.idx.as_ref()) else {
            return Err(bad_state!(
                "the GAN step needs its dataset (set_data) first"
            ));
        };
        let (bsz, feat) = (self.state.config.batch_size, self.state.features);
        Ok(Reals {
            dst: d.work(),
            dst_off: d.lay.x + rows * feat,
            rows,
            feat,
            data,
            idx,
            idx_off: k * bsz,
        })
    }

    /// The losses of a step over D's outputs with the run's loss (linear.wgsl `gan_loss`, at the end of D's last
    /// forward block): the step record into slot `slot` of the records, the G step's d loss / d pre-activation
    /// `[rows]` into D's g0 and the D step's `[2 rows]` into D's aux.
    fn losses(&self, d: &GpuMlp, rows: usize, slot: usize) -> Result<Losses<'_>> {
        let Some(records) = self.losses.as_ref() else {
            return Err(bad_state!("the GAN step's records are not allocated"));
        };
        Ok(Losses {
            records,
            rec_off: slot * STEP_OUTPUTS,
            rows,
            g_out: d.lay.g0,
            d_out: d.lay.aux,
            code: self.state.config.recipe.loss.code(),
        })
    }
}

impl GanBackend for GpuGan {
    type Mlp = GpuMlp;

    fn state(&self) -> &RunState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut RunState {
        &mut self.state
    }

    /// Uploads the dataset once, behind the 256-entry table of the scaled pixel values.
    fn load_data(&mut self, pixels: &[u8], _count: usize) -> Result<()> {
        let bytes = 1024 + pixels.len().div_ceil(4) as u64 * 4;
        if pixels.len() as u64 >= 1 << 32 || bytes > self.dev.max_binding() {
            return Err(Error::new(
                Code::InvalidArgument,
                format!(
                    "dataset of {} bytes is too large for this GPU (at most {} bytes per storage binding)",
                    pixels.len(),
                    self.dev.max_binding().saturating_sub(1024)
                ),
            ));
        }
        let mut words: Vec<u32> = (0..256u32)
            // torchvision: ToTensor (p / 255) then Normalize(0.5, 0.5), as the CPU computes it.
            .map(|p| ((p as f32 / 255.0 - 0.5) / 0.5).to_bits())
            .collect();
        words.extend(
            pixels
                .chunks(4)
                .map(|c| c.iter().rev().fold(0u32, |w, &p| (w << 8) | p as u32)),
        );
        self.data = None;
        let buf = self.dev.buffer("dataset", bytes)?;
        self.dev.write(&buf, 0, bytemuck::cast_slice(&words))?;
        self.data = Some(buf);
        Ok(())
    }

    /// The records of all `n` steps are read back when the call ends, so divergence shows only then: the call reports
    /// the first step whose losses are NaN or infinite (the steps after it ran too).
    fn run_steps(
        &mut self,
        g: &mut GpuMlp,
        d: &mut GpuMlp,
        _e: Option<&mut GpuMlp>,
        n: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let first = self.state.step;
        self.step_n(g, d, n, out)?;
        let bad = out
            .chunks_exact(STEP_OUTPUTS)
            .map(StepRecord::from_row)
            .enumerate()
            .find(|(_, r)| !r.losses_finite());
        match bad {
            None => Ok(()),
            Some((i, r)) => Err(Error::diverged(
                Some(first + i as u64),
                format!(
                    "D loss {}, G loss {} (the gpu backend checks the losses of a call when it ends: the parameters \
                     went on updating)",
                    r.d_loss, r.g_loss
                ),
            )),
        }
    }
}

/// `rng::rand(rng::key(seed, domain, stream), i)` for `i < n`, computed by the GPU (tests: bit-identical to rng.rs).
pub fn gpu_hash(
    dev: &Arc<GpuDevice>,
    seed: u64,
    domain: u32,
    stream: u32,
    n: usize,
) -> Result<Vec<u32>> {
    let buf = dev.buffer("hash test", (n * 4) as u64)?;
    let u = DataU {
        n: n as u32,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        stream,
        domain,
        ..Default::default()
    };
    let mut b = Batch::new();
    let bind = dev.bind(&[None, None, None, None, Some(&buf), None])?;
    b.dispatch(
        &dev.pipeline(K_HASH)?,
        &bind,
        &u,
        grid1d(
            n.div_ceil(256) as u32,
            dev.limits.max_compute_workgroups_per_dimension,
        ),
    );
    let r = dev.execute(
        b,
        &[Read {
            buf: &buf,
            offset: 0,
            len: (n * 4) as u64,
        }],
    )?;
    Ok(bytemuck::pod_collect_to_vec(&r[0]))
}

/// `rng::fill_normal(out[..n], seed, rng::DOMAIN_NOISE, stream)` as a GAN step draws it on the GPU (tests): the input
/// rows that the first GEMM of a forward fed with the noise (`Feed::noise_key`) draws and stores, here `[n / 64, 64]`
/// into a 64 -> 1 layer.
pub fn gpu_normal(dev: &Arc<GpuDevice>, seed: u64, stream: u32, n: usize) -> Result<Vec<f32>> {
    const WIDTH: usize = 64;
    let rows = n.div_ceil(WIDTH).max(1);
    let mut m = GpuMlp::new(Spec::new(WIDTH, &[(1, None, Act::None)]), dev.clone())?;
    m.reserve(rows)?;
    let feed = Feed {
        noise_key: Some(rng::key(seed, rng::DOMAIN_NOISE, stream)),
        ..Default::default()
    };
    let mut b = Batch::new();
    m.record_forward_fed(&mut b, rows, false, feed)?;
    let r = dev.execute(
        b,
        &[Read {
            buf: m.work(),
            offset: (m.lay.x * 4) as u64,
            len: (n * 4) as u64,
        }],
    )?;
    Ok(bytemuck::pod_collect_to_vec(&r[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn gpu_objects_are_send_and_sync() {
        send_sync::<GpuDevice>();
        send_sync::<GpuMlp>();
        send_sync::<GpuGan>();
    }

    /// linear.wgsl's `LOSS_*` constants are the codes of `core::GAN_LOSSES` (the one list of the losses).
    #[test]
    fn the_loss_kernel_numbers_the_losses_as_the_core_does() {
        let src = include_str!("shaders/linear.wgsl");
        let short = [
            ("bce", "BCE"),
            ("mse", "MSE"),
            ("hinge", "HINGE"),
            ("relativistic", "RS"),
            ("relativistic_avg", "RA"),
        ];
        for (loss, name) in crate::core::GAN_LOSSES {
            let tag = short
                .iter()
                .find(|(n, _)| *n == name)
                .expect("a kernel name")
                .1;
            let line = format!("const LOSS_{tag}: u32 = {}u;", loss.code());
            assert!(src.contains(&line), "linear.wgsl lacks {line:?}");
        }
        assert_eq!(
            src.matches("const LOSS_").count(),
            crate::core::GAN_LOSSES.len()
        );
    }
}

#[cfg(test)]
mod profile {
    //! `cargo test --release --lib -- --ignored --nocapture profile_seed_parts`: wall time of each part of the seed's
    //! step, each recorded `N` times into one submission (recording and GPU time separately).
    use super::*;
    use crate::core::{AdamConfig, Gan, Spec};
    use crate::gpu::mlp::GpuMlp;
    use crate::gpu::passes::InputGrad;
    use std::time::Instant;

    /// The seed's G and D at batch 64 on `dev`, warmed up by two steps over synthetic data.
    fn seed_run(dev: &Arc<GpuDevice>, adam: AdamConfig) -> (GpuMlp, GpuMlp, GpuGan) {
        let (gs, ds) = Spec::seed_pair();
        let cfg = GanConfig::seed(64, adam, 1);
        let mut g = GpuMlp::new(gs, dev.clone()).unwrap();
        let mut d = GpuMlp::new(ds, dev.clone()).unwrap();
        let mut gan = GpuGan::new(cfg, &g, &d).unwrap();
        let count = 5000;
        let pixels: Vec<u8> = (0..count * 784).map(|i| (i * 7 % 256) as u8).collect();
        gan.set_data(&pixels, count).unwrap();
        let mut out = vec![0f32; 8];
        gan.step_n(&mut g, &mut d, 2, &mut out).unwrap();
        (g, d, gan)
    }

    type Part<'a> = (&'a str, Box<dyn Fn(&mut Batch, &mut GpuMlp, &mut GpuMlp)>);

    /// The parts of the seed's step, as the GAN step records them.
    fn parts(adam: AdamConfig) -> Vec<Part<'static>> {
        vec![
            (
                "G forward (64 rows)",
                Box::new(|b, g, _| g.record_forward(b, 64, true).unwrap()),
            ),
            (
                "D forward (128 rows)",
                Box::new(|b, _, d| d.record_forward(b, 128, true).unwrap()),
            ),
            (
                "D backwards side by side (dx into G over 64 rows, weights over 128)",
                Box::new(|b, g, d| {
                    let to = (g.work(), g.lay.g0, None);
                    d.record_backward_pair(b, (64, d.lay.g0), to, (128, d.lay.aux), None)
                        .unwrap();
                }),
            ),
            (
                "G backward (weights)",
                Box::new(|b, g, _| {
                    g.record_backward(b, 64, g.lay.g0, true, true, InputGrad::None)
                        .unwrap();
                }),
            ),
            (
                "Adam G + Adam D",
                Box::new(move |b, g, d| {
                    let u = AdamPairU {
                        a: g.adam_uniform(adam),
                        b: d.adam_uniform(adam),
                    };
                    g.record_adam_pair_step(d, b, &u).unwrap();
                }),
            ),
        ]
    }

    #[test]
    #[ignore]
    fn profile_seed_parts() {
        let dev = match GpuDevice::new(true) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("SKIPPED: {}", e.message);
                return;
            }
        };
        let adam = AdamConfig {
            lr: 2e-4,
            b1: 0.5,
            b2: 0.999,
            eps: 1e-8,
        };
        let (mut g, mut d, mut gan) = seed_run(&dev, adam);
        let n = if dev.is_software() { 2 } else { 200 };
        for (name, f) in &parts(adam) {
            let mut b = Batch::new();
            let t0 = Instant::now();
            for _ in 0..n {
                f(&mut b, &mut g, &mut d);
            }
            let per = b.len() / n;
            let t1 = Instant::now();
            dev.execute(b, &[]).unwrap();
            let t2 = Instant::now();
            dev.wait().unwrap();
            let t3 = Instant::now();
            let us = |a: Instant, z: Instant| (z - a).as_secs_f64() * 1e6 / n as f64;
            eprintln!(
                "profile {name}: {per} dispatches; record {:.1} us, submit {:.1} us, submit+GPU {:.1} us per repetition",
                us(t0, t1),
                us(t1, t2),
                us(t1, t3)
            );
        }
        let mut out = vec![0f32; n * 4];
        let t = Instant::now();
        gan.step_n(&mut g, &mut d, n, &mut out).unwrap();
        eprintln!(
            "profile full step: {:.1} us per step",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
