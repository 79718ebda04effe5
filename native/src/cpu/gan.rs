//! The seed's GAN training step on the CPU, over a dataset held in the library (u8 pixels, copied in once).

use super::kernels::transpose;
use super::mlp::CpuMlp;
use crate::core::run::unit_pixel;
use crate::core::{
    AdamConfig, Error, GanBackend, GanConfig, GanLoss, Result, RunState, STEP_OUTPUTS,
};
use crate::rng;

pub struct CpuGan {
    pub state: RunState,
    /// `[count, features]` u8 pixels.
    data: Vec<u8>,
    /// D's outputs and the loss's gradients.
    scratch: Scratch,
    /// `[batch, latent]` the step's noise, row-major as drawn.
    noise: Vec<f32>,
}

impl CpuGan {
    /// A trainer for generator `g` and discriminator `d` (checked to fit together: `spec::check_gan`).
    pub fn new(config: GanConfig, g: &CpuMlp, d: &CpuMlp) -> Result<CpuGan> {
        let state = RunState::new(config, &g.spec, &d.spec)?;
        Ok(CpuGan {
            scratch: Scratch::new(config.batch_size),
            noise: vec![0f32; config.batch_size * state.latent],
            state,
            data: Vec::new(),
        })
    }

    /// Runs step `state.step` on the next batch of the dataset and its noise stream; counts it.
    fn step_once(&mut self, g: &mut CpuMlp, d: &mut CpuMlp, out: &mut [f32]) -> Result<()> {
        let step = self.state.step;
        let c = self.state.config;
        let (latent, f) = (self.state.latent, self.state.features);
        let (pos, idx) = self.state.batch(step);
        // Noise element (row b, column c) is counter b * latent + c of the step's stream.
        let z = &mut self.noise[..pos.rows * latent];
        rng::fill_normal(z, c.seed, rng::DOMAIN_NOISE, step as u32);
        let real = Real::Indexed {
            data: &self.data,
            features: f,
            idx,
        };
        run_step(
            g,
            d,
            z,
            real,
            &mut self.scratch,
            c.recipe.loss,
            (c.adam_g, c.adam_d),
            step,
            out,
        )?;
        self.state.step += 1;
        Ok(())
    }
}

impl GanBackend for CpuGan {
    type Mlp = CpuMlp;

    fn state(&self) -> &RunState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut RunState {
        &mut self.state
    }

    fn load_data(&mut self, pixels: &[u8], _count: usize) -> Result<()> {
        self.data = pixels.to_vec();
        Ok(())
    }

    fn run_steps(
        &mut self,
        g: &mut CpuMlp,
        d: &mut CpuMlp,
        _e: Option<&mut CpuMlp>,
        _n: usize,
        out: &mut [f32],
    ) -> Result<()> {
        for o in out.chunks_exact_mut(STEP_OUTPUTS) {
            self.step_once(g, d, o)?;
        }
        Ok(())
    }

    fn run_explicit(
        &mut self,
        g: &mut CpuMlp,
        d: &mut CpuMlp,
        _e: Option<&mut CpuMlp>,
        z: &[f32],
        x: &[f32],
        _aux: &[f32],
        _rows: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let c = &self.state.config;
        let adam = (c.adam_g, c.adam_d);
        run_step(
            g,
            d,
            z,
            Real::Given(x),
            &mut self.scratch,
            c.recipe.loss,
            adam,
            self.state.step,
            out,
        )?;
        self.state.step += 1;
        Ok(())
    }
}

/// A step's per-batch buffers: D's outputs `[2 batch]` (fake rows, then real rows), d g_loss / d D(G(z)) `[batch]`,
/// d d_loss / d D `[2 batch]`.
struct Scratch {
    outputs: Vec<f32>,
    dg: Vec<f32>,
    dd: Vec<f32>,
}

impl Scratch {
    fn new(batch: usize) -> Scratch {
        Scratch {
            outputs: vec![0f32; 2 * batch],
            dg: vec![0f32; batch],
            dd: vec![0f32; 2 * batch],
        }
    }
}

/// Where a step's real images come from.
enum Real<'a> {
    /// Rows `idx [rows]` of the u8 dataset `data [count, features]`, scaled as torchvision does.
    Indexed {
        data: &'a [u8],
        features: usize,
        idx: &'a [u32],
    },
    /// Given rows `[rows, features]`, already in [-1, 1].
    Given(&'a [f32]),
}

/// The seed's step on noise `z [rows, latent]` (row-major) and `real`: G forward, D forward once over [fake; real],
/// both losses and their gradients (`loss`; the step record into `out`), G's update through D, D's update.
#[allow(clippy::too_many_arguments)]
fn run_step(
    g: &mut CpuMlp,
    d: &mut CpuMlp,
    z: &[f32],
    real: Real,
    scratch: &mut Scratch,
    loss: GanLoss,
    (adam_g, adam_d): (AdamConfig, AdamConfig),
    step: u64,
    out: &mut [f32],
) -> Result<()> {
    let latent = g.spec.input;
    let rows = z.len() / latent;
    // G forward (train mode: batch statistics, running statistics updated once); G takes its input feature-major.
    transpose(g.input_mut(rows), z, rows, latent);
    g.forward_in_place(rows, true);
    // D forward once over [fake; real]: D has no BatchNorm and is unchanged until its own step, so this is the
    // seed's D(G(z)) of the G step and D(G(z).detach()) of the D step at once.
    d_input_fake_real(d.input_mut(2 * rows), g.output_fm(), &real, rows);
    d.forward_in_place(2 * rows, true);
    let p = &mut scratch.outputs[..2 * rows];
    p.copy_from_slice(d.output_fm());
    let (dg, dd) = (&mut scratch.dg[..rows], &mut scratch.dd[..2 * rows]);
    let record = loss.eval(p, dg, dd);
    out[..STEP_OUTPUTS].copy_from_slice(&record.to_array());
    if !record.losses_finite() {
        let detail = format!(
            "D loss {}, G loss {} (parameters not updated)",
            record.d_loss, record.g_loss
        );
        return Err(Error::diverged(Some(step), detail));
    }
    g_update(g, d, dg, adam_g, step)?;
    d_update(d, dd, adam_d, step)
}

/// Fills D's input `x [features, 2 rows]` (feature-major: per feature, the fake rows then the real rows) from G's
/// output `fake [features, rows]` and the real batch.
fn d_input_fake_real(x: &mut [f32], fake: &[f32], real: &Real, rows: usize) {
    for (j, col) in x.chunks_exact_mut(2 * rows).enumerate() {
        let (xf, xr) = col.split_at_mut(rows);
        xf.copy_from_slice(&fake[j * rows..(j + 1) * rows]);
        match *real {
            Real::Indexed {
                data,
                features: f,
                idx,
            } => {
                for (v, &k) in xr.iter_mut().zip(idx) {
                    *v = unit_pixel(data[k as usize * f + j]);
                }
            }
            Real::Given(x) => {
                let f = x.len() / rows;
                for (b, v) in xr.iter_mut().enumerate() {
                    *v = x[b * f + j];
                }
            }
        }
    }
}

/// The G step from `dg [rows]` = d g_loss / d D(G(z)) (the loss's gradient at D's fake outputs): backward through D
/// (input gradients only) into G; Adam on G.
fn g_update(g: &mut CpuMlp, d: &mut CpuMlp, dg: &[f32], adam: AdamConfig, step: u64) -> Result<()> {
    let rows = dg.len();
    d.dout_mut(rows).copy_from_slice(dg);
    let dfake = d
        .backward_rows(rows, false, true)?
        .expect("input gradient requested");
    g.dout_mut(rows).copy_from_slice(dfake);
    g.backward_rows(rows, true, false)?;
    if !g.adam_step(adam) {
        return Err(diverged(step, "generator"));
    }
    Ok(())
}

/// The D step from `dd [2 rows]` = d d_loss / d D over `[fake; real]` (fakes detached); weight gradients only; Adam
/// on D.
fn d_update(d: &mut CpuMlp, dd: &[f32], adam: AdamConfig, step: u64) -> Result<()> {
    d.dout_mut(dd.len()).copy_from_slice(dd);
    d.backward_rows(dd.len(), true, false)?;
    if !d.adam_step(adam) {
        return Err(diverged(step, "discriminator"));
    }
    Ok(())
}

fn diverged(step: u64, net: &str) -> Error {
    Error::diverged(
        Some(step),
        format!("a {net} parameter became NaN or infinite after its Adam update"),
    )
}

#[cfg(test)]
mod profile {
    //! `cargo test --release --lib -- --ignored --nocapture profile_cpu_seed_parts`: the wall time of each part of the
    //! seed's CPU step at batch 64 (or `GAN_PROFILE_BATCH`), on 1 and 2 threads (means over the steps after a warm-up),
    //! with each part's GFLOP/s (multiply-adds x 2) and its share of the step; then the second thread's gain per part.
    use super::*;
    use crate::core::Spec;
    use std::time::{Duration, Instant};

    /// The parts of a step, the batch being `b` rows (D's forward and weight gradients run over `[fake; real]`).
    const PARTS: [&str; 7] = [
        "G forward (b rows)",
        "D forward (2b rows)",
        "D backward, input gradients (b rows)",
        "G backward, weight and input gradients",
        "Adam G",
        "D backward, weight gradients (2b rows)",
        "Adam D",
    ];

    /// The seed's CPU step, as `run_step` runs it, over fixed data: `step` runs one and returns the instants between
    /// its parts.
    struct SeedRun {
        g: CpuMlp,
        d: CpuMlp,
        z: Vec<f32>,
        real: Vec<f32>,
        losses: [Vec<f32>; 3],
        rows: usize,
        steps: u32,
    }

    impl SeedRun {
        fn new(threads: usize, rows: usize) -> SeedRun {
            let (gs, ds) = Spec::seed_pair();
            let mut g = CpuMlp::new(gs.clone(), threads);
            let mut d = CpuMlp::new(ds.clone(), threads);
            g.params_mut().copy_from_slice(&gs.init_params(1, 0));
            d.params_mut().copy_from_slice(&ds.init_params(1, 1));
            let real = (0..rows * ds.input)
                .map(|i| (i * 7 % 255) as f32 / 127.5 - 1.0)
                .collect();
            SeedRun {
                z: vec![0f32; rows * gs.input],
                real,
                losses: [vec![0f32; 2 * rows], vec![0f32; rows], vec![0f32; 2 * rows]],
                g,
                d,
                rows,
                steps: 0,
            }
        }

        fn step(&mut self) -> [Instant; 8] {
            let adam = AdamConfig {
                lr: 2e-4,
                b1: 0.5,
                b2: 0.999,
                eps: 1e-8,
            };
            let (rows, (g, d)) = (self.rows, (&mut self.g, &mut self.d));
            let [p, dg, dd] = &mut self.losses;
            rng::fill_normal(&mut self.z, 1, rng::DOMAIN_NOISE, self.steps);
            self.steps += 1;
            let mut t = [Instant::now(); 8];
            let input = g.spec.input;
            transpose(g.input_mut(rows), &self.z, rows, input);
            g.forward_in_place(rows, true);
            t[1] = Instant::now();
            d_input_fake_real(
                d.input_mut(2 * rows),
                g.output_fm(),
                &Real::Given(&self.real),
                rows,
            );
            d.forward_in_place(2 * rows, true);
            p.copy_from_slice(d.output_fm());
            GanLoss::Bce.eval(p, dg, dd);
            t[2] = Instant::now();
            d.dout_mut(rows).copy_from_slice(dg);
            let dfake = d.backward_rows(rows, false, true).unwrap().unwrap();
            g.dout_mut(rows).copy_from_slice(dfake);
            t[3] = Instant::now();
            g.backward_rows(rows, true, false).unwrap();
            t[4] = Instant::now();
            assert!(g.adam_step(adam));
            t[5] = Instant::now();
            d.dout_mut(2 * rows).copy_from_slice(dd);
            d.backward_rows(2 * rows, true, false).unwrap();
            t[6] = Instant::now();
            assert!(d.adam_step(adam));
            t[7] = Instant::now();
            t
        }
    }

    /// A pool of `threads` workers, as `Context` makes one: the library runs every CPU call inside its pool, so a step
    /// timed from outside one would also time rayon's hand-off from a foreign thread to the pool and back.
    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Mean time per step of each part of `steps` seed steps of `rows` images on `threads` threads, after 5 warm-up
    /// steps.
    fn time_parts(threads: usize, steps: usize, rows: usize) -> [Duration; 7] {
        let mut run = SeedRun::new(threads, rows);
        let mut total = [Duration::ZERO; 7];
        pool(threads).install(|| {
            for step in 0..steps + 5 {
                let t = run.step();
                if step >= 5 {
                    for k in 0..7 {
                        total[k] += t[k + 1] - t[k];
                    }
                }
            }
        });
        total.map(|x| x / steps as u32)
    }

    /// `cargo test --release --lib -- --ignored --nocapture profile_second_core`: what the second thread is worth to
    /// the seed's step at batch 64 (or `GAN_PROFILE_BATCH`), in one process: blocks of 16 steps (one call's worth, the
    /// trainer's default) alternate between a model on 1 thread and one on 2, each in its own pool, so that the
    /// machine's phases fall on both alike; then the p10 and median step of each and their ratios.
    #[test]
    #[ignore]
    fn profile_second_core() {
        let rows: usize =
            std::env::var("GAN_PROFILE_BATCH").map_or(64, |b| b.parse().expect("a batch"));
        let (per, blocks) = ((16 * 64 / rows).max(1), 40);
        let mut arms = [1, 2].map(|t| (pool(t), SeedRun::new(t, rows), Vec::new()));
        for block in 0..2 * (blocks + 1) {
            let (pool, run, times) = &mut arms[block % 2];
            let ms: Vec<f64> = pool.install(|| {
                (0..per)
                    .map(|_| {
                        let t = run.step();
                        (t[7] - t[0]).as_secs_f64() * 1e3
                    })
                    .collect()
            });
            if block >= 2 {
                times.extend(ms);
            }
        }
        let stats = arms.map(|(_, _, mut t): (_, _, Vec<f64>)| {
            t.sort_by(f64::total_cmp);
            let at = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
            (at(0.1), at(0.5), t.len())
        });
        for (threads, (p10, median, n)) in [1, 2].iter().zip(stats) {
            println!("batch {rows}, {threads} thread(s): p10 {p10:.3} ms, median {median:.3} ms ({n} steps)");
        }
        println!(
            "second thread: {:.2}x (p10), {:.2}x (median)",
            stats[0].0 / stats[1].0,
            stats[0].1 / stats[1].1
        );
    }

    /// `cargo test --release --lib -- --ignored --nocapture profile_gemms_in_the_step`: each GEMM of the seed's step
    /// at batch 64 (or `GAN_PROFILE_BATCH`) on 2 threads, as the step makes it (`gemm::trace`), against the same call
    /// repeated on its own with operands of the same shapes and strides (hot in cache), in turns of 8 steps and 8
    /// repeats of each call; then the totals. Where the step loses against its own GEMMs in isolation.
    #[test]
    #[ignore]
    fn profile_gemms_in_the_step() {
        use crate::cpu::gemm::{trace, Gemm, View};
        use std::collections::BTreeMap;
        let rows: usize =
            std::env::var("GAN_PROFILE_BATCH").map_or(64, |b| b.parse().expect("a batch"));
        let threads = 2;
        let mut run = SeedRun::new(threads, rows);
        type Key = ((usize, usize, usize), (usize, usize), (usize, usize), bool);
        // per call of a step, in order: (in the step: products, epilogue, calls; alone: products, calls)
        let mut seen: BTreeMap<(usize, Key), [f64; 5]> = BTreeMap::new();
        pool(threads).install(|| {
            for _ in 0..5 {
                run.step();
            }
            for _turn in 0..6 {
                trace::start();
                for _ in 0..8 {
                    run.step();
                }
                let calls = trace::take();
                let per_step = calls.len() / 8;
                for (i, c) in calls.iter().enumerate() {
                    let e = seen
                        .entry((i % per_step, (c.mnk, c.a, c.b, c.acc)))
                        .or_default();
                    e[0] += c.products.as_secs_f64();
                    e[1] += c.epilogue.as_secs_f64();
                    e[2] += 1.0;
                }
                for ((_, ((m, n, k), a, b, acc)), e) in seen.iter_mut() {
                    let fill = |len: usize| -> Vec<f32> {
                        (0..len).map(|i| (i % 13) as f32 * 0.01 - 0.06).collect()
                    };
                    let (ad, bd) = (
                        fill((m - 1) * a.0 + (k - 1) * a.1 + 1),
                        fill((k - 1) * b.0 + (n - 1) * b.1 + 1),
                    );
                    let mut c = fill(m * n);
                    let g = Gemm {
                        m: *m,
                        n: *n,
                        k: *k,
                        a: View::new(&ad, a.0, a.1),
                        b: View::new(&bd, b.0, b.1),
                        threads,
                    };
                    g.run(*acc, &mut c, *m, None);
                    for _ in 0..8 {
                        let t = Instant::now();
                        g.run(*acc, &mut c, *m, None);
                        e[3] += t.elapsed().as_secs_f64();
                        e[4] += 1.0;
                    }
                }
            }
        });
        let (mut step, mut epi, mut alone) = (0.0, 0.0, 0.0);
        println!("batch {rows}, {threads} threads: per step, ms (the step's products / their epilogue / the same call alone)");
        for ((i, ((m, n, k), a, b, _)), e) in &seen {
            let (p, ep, al) = (e[0] / e[2] * 1e3, e[1] / e[2] * 1e3, e[3] / e[4] * 1e3);
            step += p;
            epi += ep;
            alone += al;
            println!(
                "  {i:2} m {m:5} n {n:5} k {k:5} a {a:?} b {b:?}: {p:7.3} / {ep:6.3} / {al:7.3}  ({:.2}x, {:.1} GFLOP/s in the step)",
                p / al,
                2.0 * (m * n * k) as f64 / (p * 1e-3) / 1e9
            );
        }
        println!(
            "  all: {step:.3} / {epi:.3} / {alone:.3} ms ({:.2}x)",
            step / alone
        );
    }

    #[test]
    #[ignore]
    fn profile_cpu_seed_parts() {
        let (gs, ds) = Spec::seed_pair();
        let macs = |s: &Spec| s.layers.iter().map(|l| l.inp * l.out).sum::<usize>() as f64;
        let (mg, md) = (macs(&gs), macs(&ds));
        let rows: usize =
            std::env::var("GAN_PROFILE_BATCH").map_or(64, |b| b.parse().expect("a batch"));
        // multiply-adds per part at batch b: G forward; D forward over 2b; D's dx over b (block 0's included, the
        // top's is k = 1); G's dW and dx (no dx for block 0); Adam; D's dW over 2b; Adam
        let g_dx = mg - (gs.layers[0].inp * gs.layers[0].out) as f64;
        let b = rows as f64;
        let flops = [
            b * mg,
            2.0 * b * md,
            b * md,
            b * (mg + g_dx),
            0.0,
            2.0 * b * md,
            0.0,
        ]
        .map(|m| 2.0 * m);
        let steps = (6400 / rows).max(10);
        let mut by_threads = Vec::new();
        for threads in [1, 2] {
            let parts = time_parts(threads, steps, rows);
            let step: Duration = parts.iter().sum();
            println!(
                "{threads} thread(s), batch {rows}, {steps} steps: {:.3} ms/step",
                step.as_secs_f64() * 1e3
            );
            for (k, name) in PARTS.iter().enumerate() {
                let s = parts[k].as_secs_f64();
                let rate = if flops[k] > 0.0 {
                    format!("{:7.1} GFLOP/s", flops[k] / s / 1e9)
                } else {
                    String::new()
                };
                println!(
                    "  {name:42} {:7.3} ms  {:5.1}%  {rate}",
                    s * 1e3,
                    100.0 * s / step.as_secs_f64()
                );
            }
            by_threads.push(parts);
        }
        println!("second thread's gain (1-thread time / 2-thread time):");
        for (k, name) in PARTS.iter().enumerate() {
            let gain = by_threads[0][k].as_secs_f64() / by_threads[1][k].as_secs_f64();
            println!("  {name:42} {gain:.2}x");
        }
    }
}
