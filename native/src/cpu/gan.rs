//! The seed's GAN training step on the CPU, over a dataset held in the library (u8 pixels, uploaded once).

use super::kernels::{bce_grad, bce_sum, transpose};
use super::mlp::{AdamConfig, CpuMlp};
use crate::error::{bad_arg, bad_state, Error, Result};
use crate::rng;

/// The per-step record, in this order in the output buffer: d_loss, g_loss, mean D(x), mean D(G(z)).
pub const STEP_FIELDS: [&str; 4] = ["d_loss", "g_loss", "d_real", "d_fake"];
/// Floats per step in the output buffer.
pub const STEP_OUTPUTS: usize = STEP_FIELDS.len();

#[derive(Clone, Copy, Debug)]
pub struct GanConfig {
    pub batch_size: usize,
    pub adam_g: AdamConfig,
    pub adam_d: AdamConfig,
    pub seed: u64,
}

pub struct CpuGan {
    pub config: GanConfig,
    /// `[count, features]` u8 pixels.
    data: Vec<u8>,
    count: usize,
    features: usize,
    /// The sample order of epoch `order_epoch`, `[count]`.
    order: Vec<u32>,
    order_epoch: Option<u64>,
    /// Steps taken over the whole run (the noise stream and the position in the epoch derive from it).
    pub step: u64,
    /// `[2 * batch]` copy of D's outputs.
    probs: Vec<f32>,
    /// `[batch, latent]` the step's noise, row-major as drawn.
    noise: Vec<f32>,
}

impl CpuGan {
    pub fn new(config: GanConfig, g: &CpuMlp, d: &CpuMlp) -> Result<CpuGan> {
        crate::spec::check_gan(&g.spec, &d.spec, config.batch_size)?;
        Ok(CpuGan {
            config,
            data: Vec::new(),
            count: 0,
            features: g.spec.output(),
            order: Vec::new(),
            order_epoch: None,
            step: 0,
            probs: vec![0f32; 2 * config.batch_size],
            noise: vec![0f32; config.batch_size * g.spec.input],
        })
    }

    /// Takes the dataset: `pixels [count, features]` as u8 (0 is black, 255 white).
    pub fn set_data(&mut self, pixels: &[u8], count: usize, g: &CpuMlp) -> Result<()> {
        crate::spec::check_gan_data(
            pixels.len(),
            count,
            self.features,
            self.config.batch_size,
            &g.spec,
        )?;
        self.data = pixels.to_vec();
        self.count = count;
        self.order = vec![0u32; count];
        self.order_epoch = None;
        Ok(())
    }

    pub fn batches_per_epoch(&self) -> u64 {
        self.count.div_ceil(self.config.batch_size) as u64
    }

    /// (epoch, batch index in the epoch, rows in this batch) of the next step.
    pub fn position(&self) -> (u64, u64, usize) {
        let nb = self.batches_per_epoch().max(1);
        let (e, i) = (self.step / nb, self.step % nb);
        let b = self.config.batch_size;
        let rows = b.min(self.count.saturating_sub(i as usize * b));
        (e, i, rows)
    }

    /// Runs one training step in the seed's order on the next batch of the dataset and fresh noise; writes
    /// d_loss, g_loss, mean D(x), mean D(G(z)) to `out`.
    pub fn step(&mut self, g: &mut CpuMlp, d: &mut CpuMlp, out: &mut [f32]) -> Result<()> {
        if self.count == 0 {
            return Err(bad_state!("no dataset: call set_data before training"));
        }
        let (epoch, batch, rows) = self.position();
        if self.order_epoch != Some(epoch) {
            rng::permutation(&mut self.order, self.config.seed, epoch as u32);
            self.order_epoch = Some(epoch);
        }
        // Noise element (row b, column c) is counter b * latent + c of the step's stream.
        let z = &mut self.noise[..rows * g.spec.input];
        rng::fill_normal(z, self.config.seed, rng::DOMAIN_NOISE, self.step as u32);
        let idx = &self.order[batch as usize * self.config.batch_size..][..rows];
        let real = Real::Indexed {
            data: &self.data,
            idx,
        };
        run_step(
            g,
            d,
            z,
            real,
            rows,
            &mut self.probs,
            &self.config,
            self.step,
            out,
        )?;
        self.step += 1;
        Ok(())
    }

    /// One training step on a given noise batch `z [rows, latent]` and real batch `x_real [rows, features]` (already
    /// scaled to [-1, 1]), both row-major; everything else as `step` (it counts as a step). For parity tests
    /// against other implementations.
    pub fn step_explicit(
        &mut self,
        g: &mut CpuMlp,
        d: &mut CpuMlp,
        z: &[f32],
        x_real: &[f32],
        rows: usize,
        out: &mut [f32],
    ) -> Result<()> {
        g.check_rows(rows, true)?;
        if rows > self.config.batch_size {
            return Err(bad_arg!(
                "batch of {rows} rows is larger than the batch size {}",
                self.config.batch_size
            ));
        }
        let (latent, f) = (g.spec.input, self.features);
        if z.len() != rows * latent {
            return Err(bad_arg!(
                "noise has {} values, expected {rows} x {latent}",
                z.len()
            ));
        }
        if x_real.len() != rows * f {
            return Err(bad_arg!(
                "real batch has {} values, expected {rows} x {f}",
                x_real.len()
            ));
        }
        if let Some(i) = z.iter().chain(x_real).position(|v| !v.is_finite()) {
            return Err(bad_arg!(
                "noise or real batch holds a non-finite value at flat index {i}"
            ));
        }
        run_step(
            g,
            d,
            z,
            Real::Given(x_real),
            rows,
            &mut self.probs,
            &self.config,
            self.step,
            out,
        )?;
        self.step += 1;
        Ok(())
    }
}

/// Where a step's real images come from.
enum Real<'a> {
    /// Rows `idx` of the u8 dataset `[count, features]`, scaled as torchvision does.
    Indexed { data: &'a [u8], idx: &'a [u32] },
    /// Given rows `[rows, features]`, already in [-1, 1].
    Given(&'a [f32]),
}

/// The seed's step: G forward, D forward once over [fake; real], both losses, G's update through D, D's update.
#[allow(clippy::too_many_arguments)]
fn run_step(
    g: &mut CpuMlp,
    d: &mut CpuMlp,
    z: &[f32],
    real: Real,
    rows: usize,
    probs: &mut [f32],
    config: &GanConfig,
    step: u64,
    out: &mut [f32],
) -> Result<()> {
    let (latent, f) = (g.spec.input, d.spec.input);
    // G forward (train mode: batch statistics, running statistics updated once); G takes its input feature-major.
    transpose(g.input_mut(rows), z, rows, latent);
    g.forward_in_place(rows, true);
    // D forward once over [fake; real]: D has no BatchNorm and is unchanged until its own step, so this is the
    // seed's D(G(z)) of the G step and D(G(z).detach()) of the D step at once.
    {
        // D's input is feature-major [features, 2 rows]: per feature, the fake rows then the real rows.
        let x = d.input_mut(2 * rows);
        let fake = g.output();
        for (j, col) in x.chunks_exact_mut(2 * rows).enumerate() {
            let (xf, xr) = col.split_at_mut(rows);
            xf.copy_from_slice(&fake[j * rows..(j + 1) * rows]);
            match real {
                Real::Indexed { data, idx } => {
                    for (v, &k) in xr.iter_mut().zip(idx) {
                        // torchvision: ToTensor (p / 255) then Normalize(0.5, 0.5).
                        *v = (data[k as usize * f + j] as f32 / 255.0 - 0.5) / 0.5;
                    }
                }
                Real::Given(x) => {
                    for (b, v) in xr.iter_mut().enumerate() {
                        *v = x[b * f + j];
                    }
                }
            }
        }
    }
    d.forward_in_place(2 * rows, true);
    let p = &mut probs[..2 * rows];
    p.copy_from_slice(d.output());
    let (pf, pr) = p.split_at(rows);
    let n = rows as f64;
    let g_loss = bce_sum(pf, |_| 1.0) / n;
    let d_loss = (bce_sum(pr, |_| 1.0) / n + bce_sum(pf, |_| 0.0) / n) / 2.0;
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / n;
    out[..STEP_OUTPUTS].copy_from_slice(&[
        d_loss as f32,
        g_loss as f32,
        mean(pr) as f32,
        mean(pf) as f32,
    ]);
    if !(d_loss.is_finite() && g_loss.is_finite()) {
        return Err(Error::diverged(
            Some(step),
            format!("D loss {d_loss}, G loss {g_loss} (parameters not updated)"),
        ));
    }

    // G step: g_loss = BCE(D(G(z)), 1), backward through D (input gradients only) into G; Adam on G.
    bce_grad(d.dout_mut(rows), pf, |_| 1.0, 1.0 / rows as f32);
    let dfake = d
        .backward_rows(rows, false, true)?
        .expect("input gradient requested");
    g.dout_mut(rows).copy_from_slice(dfake);
    g.backward_rows(rows, true, false)?;
    if !g.adam_step(config.adam_g) {
        return Err(diverged(step, "generator"));
    }

    // D step: d_loss = (BCE(D(x), 1) + BCE(D(G(z).detach()), 0)) / 2; weight gradients only; Adam on D.
    {
        let dout = d.dout_mut(2 * rows);
        let (df, dr) = dout.split_at_mut(rows);
        let s = 0.5 / rows as f32;
        bce_grad(df, pf, |_| 0.0, s);
        bce_grad(dr, pr, |_| 1.0, s);
    }
    d.backward_rows(2 * rows, true, false)?;
    if !d.adam_step(config.adam_d) {
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
