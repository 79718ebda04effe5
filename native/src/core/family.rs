//! The general GAN step: a [`Recipe`] executed inside the library for N steps per call, on any backend's MLPs through
//! the [`Mlp`] API (forward, backward, the input-gradient backward of the penalties, Adam, RMSprop, clipping). It
//! trains every model of the family; the backends' fused step stays the fast path of the seed's recipe (`gan`, Adam).
//!
//! One step is one batch of the epoch schedule (upstream's loop body for batch index `i`), in one of three orders
//! (`bench/reference/FAMILY.md` says each in words):
//!
//! - **G then D** (gan's loss options through this path, bgan): G forward; D over `[fake; real]` once; the G update
//!   through D; the D update on the same outputs.
//! - **softmax_gan**: as above, but G's gradient is `grad(d_loss) + grad(g_loss)`, the second through D's weights
//!   after its update (the 2018 behaviour; `softmax_fresh_d`, `softmax_g_loss_only` switch it).
//! - **Wasserstein** (wgan, wgan_gp, wgan_div): the critic update every step (with its penalty and clipping), then at
//!   batch index `i % n_critic == 0` a second G forward on the same noise and the G update through the updated
//!   critic. On a critic-only step the record's `g_loss` is `-mean D(G(z))` on the step's fakes, before the critic's
//!   update.

use super::dropout::DropoutStream;
use super::gan::GanBackend;
use super::loss::GanLoss;
use super::mlp::{Mlp, MlpBackend};
use super::optim::Optimizer;
use super::recipe::{Model, Penalty, Recipe};
use super::record::{StepRecord, STEP_OUTPUTS};
use super::run::{unit_pixel, RunState};
use super::spec::{check_encoder, Spec};
use crate::error::{bad_arg, Code, Error, Result};
use crate::rng;
use std::marker::PhantomData;

/// A trainer that runs its recipe through the [`Mlp`] API of the backend's MLP type `M`.
pub struct FamilyGan<M: MlpBackend> {
    pub state: RunState,
    recipe: Recipe,
    /// `[count, features]` u8 pixels; `[count]` their labels (a conditional model's).
    data: Vec<u8>,
    labels: Vec<u32>,
    s: Scratch,
    /// The step's count of train-mode forwards so far: each draws its own dropout masks (`core/dropout.rs`, stream =
    /// the step, pass = this count).
    pass: u32,
    _mlp: PhantomData<fn() -> M>,
}

/// Per-step buffers, sized for the batch (row-major).
struct Scratch {
    /// `[batch, latent]` noise; `[batch]` wgan_gp's interpolation weights.
    z: Vec<f32>,
    alpha: Vec<f32>,
    /// `[2 batch, features]` D's input `[fake; real]`; `[batch, features]` interpolates, a second G output.
    din: Vec<f32>,
    xhat: Vec<f32>,
    /// `[2 batch]` D's outputs, their gradients; `[batch]` the G step's.
    o: Vec<f32>,
    dd: Vec<f32>,
    dg: Vec<f32>,
    /// `[2 batch, features]` input gradients of D (the penalty's `g`, then its `v`; the G step's `d fake`).
    gx: Vec<f32>,
    vx: Vec<f32>,
    /// `[batch, features]` a second input gradient (softmax_gan's late-weight term).
    gx2: Vec<f32>,
    /// `[2 batch]` ones (the penalty's `dy`).
    ones: Vec<f32>,
    /// `[2 batch]` cgan's labels of D's input rows `[fake; real]` (the first half: G's labels).
    dl: Vec<u32>,
    /// aae's (empty for the other models).
    ae: AaeScratch,
}

/// aae's per-step buffers (row-major; L the latent size, f the image size).
#[derive(Default)]
struct AaeScratch {
    /// `[batch, L]` the reparameterization noise; `[batch, 2L]` the encoder's `[mu, logvar]` and its gradient.
    eps: Vec<f32>,
    h: Vec<f32>,
    dh: Vec<f32>,
    /// `[2 batch, L]` D's input `[encoded; prior z]`, then D's input gradient.
    code: Vec<f32>,
    dcode: Vec<f32>,
    /// `[batch, L]` the decoder's input gradient; `[batch, f]` the decoded images and the L1 term's gradient.
    ddec_in: Vec<f32>,
    dec: Vec<f32>,
    ddec: Vec<f32>,
}

impl AaeScratch {
    fn new(batch: usize, latent: usize, features: usize) -> AaeScratch {
        let (bl, bf) = (batch * latent, batch * features);
        AaeScratch {
            eps: vec![0.0; bl],
            h: vec![0.0; 2 * bl],
            dh: vec![0.0; 2 * bl],
            code: vec![0.0; 2 * bl],
            dcode: vec![0.0; 2 * bl],
            ddec_in: vec![0.0; bl],
            dec: vec![0.0; bf],
            ddec: vec![0.0; bf],
        }
    }
}

impl Scratch {
    fn new(batch: usize, latent: usize, features: usize) -> Scratch {
        let bf = batch * features;
        Scratch {
            z: vec![0.0; batch * latent],
            alpha: vec![0.0; batch],
            din: vec![0.0; 2 * bf],
            xhat: vec![0.0; bf],
            o: vec![0.0; 2 * batch],
            dd: vec![0.0; 2 * batch],
            dg: vec![0.0; batch],
            gx: vec![0.0; 2 * bf],
            vx: vec![0.0; 2 * bf],
            gx2: vec![0.0; bf],
            ones: vec![1.0; 2 * batch],
            dl: vec![0; 2 * batch],
            ae: AaeScratch::default(),
        }
    }
}

/// The inputs of one step.
struct StepIn<'a> {
    step: u64,
    /// Batch index within the epoch (the Wasserstein models' `i`).
    i: u64,
    rows: usize,
    /// `[rows, features]` in [-1, 1], when given (explicit steps); else drawn from the dataset into `din`.
    real: Option<&'a [f32]>,
}

impl<M: MlpBackend> FamilyGan<M> {
    /// A trainer of `config.recipe` for generator `g` and discriminator `d` (checked to fit: `spec::check_gan`).
    /// `e`: aae's encoder (`spec::check_encoder`).
    pub fn new(
        config: super::config::GanConfig,
        g: &Spec,
        d: &Spec,
        e: Option<&Spec>,
    ) -> Result<FamilyGan<M>> {
        let state = RunState::new(config, g, d)?;
        check_encoder(&config.recipe, g, e)?;
        let mut s = Scratch::new(config.batch_size, state.latent, state.features);
        if config.recipe.model == Model::Aae {
            s.ae = AaeScratch::new(config.batch_size, state.latent, state.features);
        }
        Ok(FamilyGan {
            recipe: config.recipe,
            state,
            data: Vec::new(),
            labels: Vec::new(),
            s,
            pass: 0,
            _mlp: PhantomData,
        })
    }

    /// Fills the real rows of D's input (`din[rows * f..]`) with the step's batch of the dataset.
    fn draw_real(&mut self, step: u64) -> (u64, usize) {
        let f = self.state.features;
        let (pos, idx) = self.state.batch(step);
        let real = &mut self.s.din[pos.rows * f..2 * pos.rows * f];
        for (row, &k) in real.chunks_exact_mut(f).zip(idx) {
            let src = &self.data[k as usize * f..(k as usize + 1) * f];
            for (v, &p) in row.iter_mut().zip(src) {
                *v = unit_pixel(p);
            }
        }
        if !self.labels.is_empty() {
            let dl = &mut self.s.dl[pos.rows..2 * pos.rows];
            for (l, &k) in dl.iter_mut().zip(idx) {
                *l = self.labels[k as usize];
            }
        }
        (pos.batch, pos.rows)
    }

    /// Runs one step and writes its record into `out [STEP_OUTPUTS]`.
    fn run_one(
        &mut self,
        g: &mut M,
        d: &mut M,
        e: Option<&mut M>,
        inp: StepIn,
        out: &mut [f32],
    ) -> Result<()> {
        let f = self.state.features;
        if let Some(x) = inp.real {
            self.s.din[inp.rows * f..2 * inp.rows * f].copy_from_slice(x);
        }
        self.pass = 0;
        let rec = match self.recipe.model {
            Model::Gan | Model::Bgan => self.g_then_d(g, d, &inp)?,
            Model::Cgan => self.conditional(g, d, &inp)?,
            Model::Aae => self.autoencoder(g, d, e.expect("checked by Gan"), &inp)?,
            Model::SoftmaxGan => self.softmax(g, d, &inp)?,
            Model::Wgan | Model::WganGp | Model::WganDiv => self.wasserstein(g, d, &inp)?,
        };
        out[..STEP_OUTPUTS].copy_from_slice(&rec.to_array());
        Ok(())
    }

    /// G forward into the fake rows of D's input; D forward over `[fake; real]` into `o`.
    fn forward_both(&mut self, g: &mut M, d: &mut M, rows: usize) -> Result<()> {
        let (bf, seed, step) = (
            rows * self.state.features,
            self.state.config.seed,
            self.state.step,
        );
        let (s, pass) = (&mut self.s, &mut self.pass);
        let z = &s.z[..rows * g.spec().input];
        train_forward(g, z, None, rows, &mut s.din[..bf], (seed, step, pass))?;
        train_forward(
            d,
            &s.din[..2 * bf],
            None,
            2 * rows,
            &mut s.o[..2 * rows],
            (seed, step, pass),
        )
    }

    /// gan's loss options and bgan: the seed's order.
    fn g_then_d(&mut self, g: &mut M, d: &mut M, inp: &StepIn) -> Result<StepRecord> {
        let (rows, bf) = (inp.rows, inp.rows * self.state.features);
        self.forward_both(g, d, rows)?;
        let s = &mut self.s;
        let (o, dg, dd) = (&s.o[..2 * rows], &mut s.dg[..rows], &mut s.dd[..2 * rows]);
        let rec = match self.recipe.model {
            Model::Bgan => boundary_seeking(o, dg, dd),
            _ => self.recipe.loss.eval(o, dg, dd),
        };
        check_losses(&rec, inp.step)?;
        // G: D's input gradient at the fakes, into G.
        d.backward_parts(&s.dg[..rows], false, Some(&mut s.gx[..bf]), rows)?;
        g.backward_parts(&s.gx[..bf], true, None, rows)?;
        update(g, self.recipe.g_opt, None, inp.step, "generator")?;
        d.backward_parts(&s.dd[..2 * rows], true, None, 2 * rows)?;
        update(
            d,
            self.recipe.d_opt,
            self.recipe.clip,
            inp.step,
            "discriminator",
        )?;
        Ok(rec)
    }

    /// cgan.py's step: G and D on labelled rows (G's drawn labels for the fakes, the dataset's for the real rows); the
    /// G update through a D pass of its own (its own dropout masks), then the D update on a fresh D pass over `[fake;
    /// real]`. The record's `g_loss` is the first pass's, the rest the second's.
    fn conditional(&mut self, g: &mut M, d: &mut M, inp: &StepIn) -> Result<StepRecord> {
        let (rows, bf) = (inp.rows, inp.rows * self.state.features);
        let (seed, step, loss) = (self.state.config.seed, self.state.step, self.recipe.loss);
        let (s, pass) = (&mut self.s, &mut self.pass);
        let z = &s.z[..rows * self.state.latent];
        let gl = &s.dl[..rows];
        train_forward(g, z, Some(gl), rows, &mut s.din[..bf], (seed, step, pass))?;
        // The G step: D over the fakes (and the real rows when the loss compares them).
        let both = loss.g_reads_real();
        let n1 = if both { 2 * rows } else { rows };
        let o1 = &mut s.o[..n1];
        train_forward(
            d,
            &s.din[..n1 * self.state.features],
            Some(&s.dl[..n1]),
            n1,
            o1,
            (seed, step, pass),
        )?;
        if !both {
            s.o.copy_within(..rows, rows); // G's loss reads only the fakes: any real half will do
        }
        let g_rec = loss.eval(&s.o[..2 * rows], &mut s.dg[..rows], &mut s.dd[..2 * rows]);
        check_losses(
            &StepRecord {
                d_loss: 0.0,
                ..g_rec
            },
            inp.step,
        )?;
        // Over the fake rows only (the real rows of a relativistic pass do not depend on G).
        d.backward_parts(&s.dg[..rows], false, Some(&mut s.gx[..bf]), rows)?;
        g.backward_parts(&s.gx[..bf], true, None, rows)?;
        update(g, self.recipe.g_opt, None, inp.step, "generator")?;
        // The D step: a fresh pass over [fake; real] (no BatchNorm in D: the same as two passes).
        let s = &mut self.s;
        train_forward(
            d,
            &s.din[..2 * bf],
            Some(&s.dl[..2 * rows]),
            2 * rows,
            &mut s.o[..2 * rows],
            (seed, step, &mut self.pass),
        )?;
        let mut rec = loss.eval(&s.o[..2 * rows], &mut s.dg[..rows], &mut s.dd[..2 * rows]);
        rec.g_loss = g_rec.g_loss;
        check_losses(&rec, inp.step)?;
        d.backward_parts(&s.dd[..2 * rows], true, None, 2 * rows)?;
        update(
            d,
            self.recipe.d_opt,
            self.recipe.clip,
            inp.step,
            "discriminator",
        )?;
        Ok(rec)
    }

    /// aae.py's step: the encoder on the real batch gives `[mu, logvar]`, the code `encoded = eps exp(logvar / 2) +
    /// mu` (the reparameterization), the decoder (the generator) reconstructs from it; D judges `[encoded; prior z]`
    /// in one pass (no BatchNorm: as upstream's two). `g_loss = 0.001 BCE(D(encoded), 1) + 0.999 L1(decoded, real)`
    /// trains the encoder and the decoder (one Adam over both upstream: per parameter the same as one each), then
    /// `d_loss = (BCE(D(z), 1) + BCE(D(encoded), 0)) / 2` trains D.
    fn autoencoder(&mut self, g: &mut M, d: &mut M, e: &mut M, inp: &StepIn) -> Result<StepRecord> {
        let (rows, f, l) = (inp.rows, self.state.features, self.state.latent);
        let (seed, step) = (self.state.config.seed, self.state.step);
        let (s, pass) = (&mut self.s, &mut self.pass);
        let (bl, bf) = (rows * l, rows * f);
        let real = &s.din[bf..2 * bf];
        let a = &mut s.ae;
        train_forward(e, real, None, rows, &mut a.h[..2 * bl], (seed, step, pass))?;
        reparameterize(&a.h[..2 * bl], &a.eps[..bl], &mut a.code[..bl], l);
        a.code[bl..2 * bl].copy_from_slice(&s.z[..bl]); // the prior sample: D's "real" codes
        train_forward(
            g,
            &a.code[..bl],
            None,
            rows,
            &mut a.dec[..bf],
            (seed, step, pass),
        )?;
        train_forward(
            d,
            &a.code[..2 * bl],
            None,
            2 * rows,
            &mut s.o[..2 * rows],
            (seed, step, pass),
        )?;
        let mut rec = GanLoss::Bce.eval(&s.o[..2 * rows], &mut s.dg[..rows], &mut s.dd[..2 * rows]);
        let pixel = l1_and_grad(&a.dec[..bf], real, &mut a.ddec[..bf], AAE_PIXEL);
        rec.g_loss = (AAE_ADV * rec.g_loss as f64 + AAE_PIXEL as f64 * pixel) as f32;
        check_losses(&rec, inp.step)?;
        // The code's gradient: through D (the adversarial term) and through the decoder (the L1 term).
        s.dg[..rows].iter_mut().for_each(|v| *v *= AAE_ADV as f32);
        d.backward_parts(&s.dg[..rows], false, Some(&mut a.dcode[..bl]), rows)?;
        g.backward_parts(&a.ddec[..bf], true, Some(&mut a.ddec_in[..bl]), rows)?;
        for (x, &y) in a.dcode[..bl].iter_mut().zip(&a.ddec_in[..bl]) {
            *x += y;
        }
        reparameterize_backward(
            &a.h[..2 * bl],
            &a.eps[..bl],
            &a.dcode[..bl],
            &mut a.dh[..2 * bl],
            l,
        );
        e.backward_parts(&a.dh[..2 * bl], true, None, rows)?;
        update(e, self.recipe.g_opt, None, inp.step, "encoder")?;
        update(g, self.recipe.g_opt, None, inp.step, "decoder")?;
        d.backward_parts(&s.dd[..2 * rows], true, None, 2 * rows)?;
        update(d, self.recipe.d_opt, None, inp.step, "discriminator")?;
        Ok(rec)
    }

    /// softmax_gan.py's step (see `softmax_loss`).
    fn softmax(&mut self, g: &mut M, d: &mut M, inp: &StepIn) -> Result<StepRecord> {
        let (rows, bf) = (inp.rows, inp.rows * self.state.features);
        let r = self.recipe;
        self.forward_both(g, d, rows)?;
        let s = &mut self.s;
        let rec = softmax_loss(&s.o[..2 * rows], &mut s.dg[..rows], &mut s.dd[..2 * rows]);
        check_losses(&rec, inp.step)?;
        if r.softmax_fresh_d {
            d.backward_parts(&s.dg[..rows], false, Some(&mut s.gx2[..bf]), rows)?;
        }
        // D's gradient of d_loss, and d_loss's gradient at the fakes (G's first term).
        d.backward_parts(&s.dd[..2 * rows], true, Some(&mut s.gx[..2 * bf]), 2 * rows)?;
        update(d, r.d_opt, r.clip, inp.step, "discriminator")?;
        if !r.softmax_fresh_d {
            // The same forward's masks, D's updated weights.
            d.backward_parts(&s.dg[..rows], false, Some(&mut s.gx2[..bf]), rows)?;
        }
        let keep = if r.softmax_g_loss_only { 0.0 } else { 1.0 };
        for (a, &b) in s.gx[..bf].iter_mut().zip(&s.gx2[..bf]) {
            *a = keep * *a + b;
        }
        g.backward_parts(&s.gx[..bf], true, None, rows)?;
        update(g, r.g_opt, None, inp.step, "generator")?;
        Ok(rec)
    }

    /// The Wasserstein step: the critic with its penalty, then (every `n_critic` batches) the generator.
    fn wasserstein(&mut self, g: &mut M, d: &mut M, inp: &StepIn) -> Result<StepRecord> {
        let (rows, f) = (inp.rows, self.state.features);
        let bf = rows * f;
        let r = self.recipe;
        // The penalty's input gradient first (it may overwrite D's gradients on some backends).
        let pen = match r.penalty {
            Penalty::None => 0.0,
            Penalty::Gp { .. } => {
                let (seed, step) = (self.state.config.seed, self.state.step);
                let (s, pass) = (&mut self.s, &mut self.pass);
                let z = &s.z[..rows * g.spec().input];
                train_forward(g, z, None, rows, &mut s.din[..bf], (seed, step, pass))?;
                interpolate(s, rows, f);
                train_forward(
                    d,
                    &s.xhat[..bf],
                    None,
                    rows,
                    &mut s.o[..rows],
                    (seed, step, pass),
                )?;
                d.backward_parts(&s.ones[..rows], false, Some(&mut s.gx[..bf]), rows)?;
                gp_value_and_v(&s.gx[..bf], &mut s.vx[..bf], rows, r.penalty)
            }
            Penalty::Div { .. } => 0.0, // at [fake; real]: below
        };
        if !matches!(r.penalty, Penalty::Gp { .. }) {
            self.forward_both(g, d, rows)?;
        } else {
            let (seed, step) = (self.state.config.seed, self.state.step);
            let (s, pass) = (&mut self.s, &mut self.pass);
            train_forward(
                d,
                &s.din[..2 * bf],
                None,
                2 * rows,
                &mut s.o[..2 * rows],
                (seed, step, pass),
            )?;
        }
        let s = &mut self.s;
        let pen = match r.penalty {
            Penalty::Div { .. } => {
                d.backward_parts(
                    &s.ones[..2 * rows],
                    false,
                    Some(&mut s.gx[..2 * bf]),
                    2 * rows,
                )?;
                div_value_and_v(&s.gx[..2 * bf], &mut s.vx[..2 * bf], rows, r.penalty)
            }
            _ => pen,
        };
        let mut rec = wasserstein_loss(&s.o[..2 * rows], &mut s.dd[..2 * rows]);
        rec.d_loss = (rec.d_loss as f64 + pen) as f32;
        check_losses(&rec, inp.step)?;
        d.backward_parts(&s.dd[..2 * rows], true, None, 2 * rows)?;
        match r.penalty {
            Penalty::Gp { .. } => {
                d.input_grad_backward(&s.xhat[..bf], &s.ones[..rows], &s.vx[..bf])?
            }
            Penalty::Div { .. } => {
                d.input_grad_backward(&s.din[..2 * bf], &s.ones[..2 * rows], &s.vx[..2 * bf])?
            }
            Penalty::None => {}
        }
        update(d, r.d_opt, r.clip, inp.step, "discriminator")?;
        if inp.i.is_multiple_of(r.n_critic) {
            rec.g_loss = self.wasserstein_g(g, d, rows, inp.step)?;
        }
        Ok(rec)
    }

    /// The Wasserstein generator update: `g_loss = -mean D(G(z))` with a second G forward; returns `g_loss`.
    fn wasserstein_g(&mut self, g: &mut M, d: &mut M, rows: usize, step: u64) -> Result<f32> {
        let (bf, seed) = (rows * self.state.features, self.state.config.seed);
        let (s, pass) = (&mut self.s, &mut self.pass);
        let z = &s.z[..rows * g.spec().input];
        train_forward(g, z, None, rows, &mut s.xhat[..bf], (seed, step, pass))?;
        train_forward(
            d,
            &s.xhat[..bf],
            None,
            rows,
            &mut s.o[..rows],
            (seed, step, pass),
        )?;
        let g_loss = -(s.o[..rows].iter().map(|&x| x as f64).sum::<f64>() / rows as f64) as f32;
        if !g_loss.is_finite() {
            return Err(Error::diverged(
                Some(step),
                format!("G loss {g_loss} (generator not updated)"),
            ));
        }
        s.dg[..rows].fill(-1.0 / rows as f32);
        d.backward_parts(&s.dg[..rows], false, Some(&mut s.gx[..bf]), rows)?;
        g.backward_parts(&s.gx[..bf], true, None, rows)?;
        update(g, self.recipe.g_opt, None, step, "generator")?;
        Ok(g_loss)
    }
}

impl<M: MlpBackend> GanBackend for FamilyGan<M> {
    type Mlp = M;

    fn state(&self) -> &RunState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut RunState {
        &mut self.state
    }

    fn load_data(&mut self, pixels: &[u8], _count: usize) -> Result<()> {
        self.data = pixels.to_vec();
        self.labels.clear();
        Ok(())
    }

    fn load_labels(&mut self, labels: &[u32]) -> Result<()> {
        self.labels = labels.to_vec();
        Ok(())
    }

    fn run_steps(
        &mut self,
        g: &mut M,
        d: &mut M,
        mut e: Option<&mut M>,
        _n: usize,
        out: &mut [f32],
    ) -> Result<()> {
        for o in out.chunks_exact_mut(STEP_OUTPUTS) {
            let step = self.state.step;
            let (c, latent) = (self.state.config, self.state.latent);
            let (i, rows) = self.draw_real(step);
            rng::fill_normal(
                &mut self.s.z[..rows * latent],
                c.seed,
                rng::DOMAIN_NOISE,
                step as u32,
            );
            draw_alpha(&mut self.s.alpha[..rows], c.seed, step);
            if let Some(classes) = self.state.classes {
                draw_labels(&mut self.s.dl[..rows], c.seed, step, classes);
            }
            if e.is_some() {
                let eps = &mut self.s.ae.eps[..rows * latent];
                rng::fill_normal(eps, c.seed, rng::DOMAIN_EPS, step as u32);
            }
            self.run_one(
                g,
                d,
                e.as_deref_mut(),
                StepIn {
                    step,
                    i,
                    rows,
                    real: None,
                },
                o,
            )?;
            self.state.step += 1;
        }
        Ok(())
    }

    fn explicit_aux(&self, rows: usize) -> usize {
        self.recipe.aux_len(rows, self.state.latent)
    }

    fn run_explicit(
        &mut self,
        g: &mut M,
        d: &mut M,
        e: Option<&mut M>,
        z: &[f32],
        x: &[f32],
        aux: &[f32],
        rows: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let step = self.state.step;
        let i = self.state.position().batch;
        self.s.z[..z.len()].copy_from_slice(z);
        if e.is_some() {
            self.s.ae.eps[..aux.len()].copy_from_slice(aux);
        } else if self.state.classes.is_some() {
            // [labels of the fakes; labels of the real rows], integers (checked)
            for (l, &a) in self.s.dl[..2 * rows].iter_mut().zip(aux) {
                *l = a as u32;
            }
        } else {
            self.s.alpha[..aux.len()].copy_from_slice(aux);
        }
        self.run_one(
            g,
            d,
            e,
            StepIn {
                step,
                i,
                rows,
                real: Some(x),
            },
            out,
        )?;
        self.state.step += 1;
        Ok(())
    }
}

/// A train-mode forward of `m` (with `labels` when it embeds them) that draws its own dropout masks: stream `(seed,
/// step)`, pass `*pass` (then counted).
fn train_forward<M: MlpBackend>(
    m: &mut M,
    x: &[f32],
    labels: Option<&[u32]>,
    rows: usize,
    y: &mut [f32],
    (seed, step, pass): (u64, u64, &mut u32),
) -> Result<()> {
    if m.spec().has_dropout() {
        m.set_dropout_stream(DropoutStream {
            seed,
            stream: step as u32,
            pass: *pass,
        });
    }
    *pass += 1;
    match labels {
        Some(l) => m.forward_labeled(x, l, rows, true, y),
        None => m.forward(x, rows, true, y),
    }
}

/// wgan_gp's `alpha [rows]`: uniform in [0, 1) from stream `(seed, DOMAIN_ALPHA, step)`, element `b` counter `b`.
fn draw_alpha(alpha: &mut [f32], seed: u64, step: u64) {
    let k = rng::key(seed, rng::DOMAIN_ALPHA, step as u32);
    for (b, a) in alpha.iter_mut().enumerate() {
        *a = rng::uniform24(k, b as u32) as f32; // 24 bits: exact in f32, below 1
    }
}

/// aae's weights of the adversarial and the reconstruction terms of `g_loss` (upstream's constants).
const AAE_ADV: f64 = 0.001;
const AAE_PIXEL: f32 = 0.999;

/// aae's reparameterization, upstream's float32 expression: `code = eps * exp(logvar / 2) + mu` per element, from the
/// encoder's rows `h [rows, 2L] = [mu, logvar]` and `eps [rows, L]`.
fn reparameterize(h: &[f32], eps: &[f32], code: &mut [f32], l: usize) {
    for ((hr, er), cr) in h
        .chunks_exact(2 * l)
        .zip(eps.chunks_exact(l))
        .zip(code.chunks_exact_mut(l))
    {
        let (mu, logvar) = hr.split_at(l);
        for c in 0..l {
            cr[c] = er[c] * (logvar[c] / 2.0).exp() + mu[c];
        }
    }
}

/// The reparameterization's backward: from the code's gradient `dcode [rows, L]`, `dh [rows, 2L]`: `d mu = dcode`,
/// `d logvar = dcode * eps * exp(logvar / 2) / 2` (in autograd's order: `((dcode * eps) * std) * 0.5`).
fn reparameterize_backward(h: &[f32], eps: &[f32], dcode: &[f32], dh: &mut [f32], l: usize) {
    let rows = dcode.chunks_exact(l);
    for (((hr, er), dr), out) in h
        .chunks_exact(2 * l)
        .zip(eps.chunks_exact(l))
        .zip(rows)
        .zip(dh.chunks_exact_mut(2 * l))
    {
        let (dmu, dlogvar) = out.split_at_mut(l);
        for c in 0..l {
            dmu[c] = dr[c];
            dlogvar[c] = dr[c] * er[c] * (hr[l + c] / 2.0).exp() * 0.5;
        }
    }
}

/// `mean |x - y|` over every element (in f64), and `w d/dx` of it into `dx`: `w sign(x - y) / n` (PyTorch's
/// L1Loss: the sign of 0 is 0).
fn l1_and_grad(x: &[f32], y: &[f32], dx: &mut [f32], w: f32) -> f64 {
    let n = x.len() as f64;
    let k = w / x.len() as f32;
    let mut sum = 0f64;
    for ((d, &a), &b) in dx.iter_mut().zip(x).zip(y) {
        let t = a - b;
        sum += t.abs() as f64;
        *d = if t > 0.0 {
            k
        } else if t < 0.0 {
            -k
        } else {
            0.0
        };
    }
    sum / n
}

/// cgan's labels of the fakes `[rows]`: classes from stream `(seed, DOMAIN_LABELS, step)`, row `b` counter `b`.
fn draw_labels(labels: &mut [u32], seed: u64, step: u64, classes: usize) {
    let k = rng::key(seed, rng::DOMAIN_LABELS, step as u32);
    for (b, l) in labels.iter_mut().enumerate() {
        *l = rng::class(k, b as u32, classes);
    }
}

/// `x_hat = alpha real + (1 - alpha) fake` per row (upstream's float32 expression), into `s.xhat`.
fn interpolate(s: &mut Scratch, rows: usize, f: usize) {
    let (fake, real) = s.din[..2 * rows * f].split_at(rows * f);
    for (b, row) in s.xhat[..rows * f].chunks_exact_mut(f).enumerate() {
        let a = s.alpha[b];
        for (j, x) in row.iter_mut().enumerate() {
            *x = a * real[b * f + j] + (1.0 - a) * fake[b * f + j];
        }
    }
}

/// Fails the step when a loss is NaN or infinite (nothing updated yet).
fn check_losses(rec: &StepRecord, step: u64) -> Result<()> {
    if rec.losses_finite() {
        return Ok(());
    }
    Err(Error::diverged(
        Some(step),
        format!(
            "D loss {}, G loss {} (parameters not updated)",
            rec.d_loss, rec.g_loss
        ),
    ))
}

/// The network's optimizer step on its current gradients, then the clamp when given; a divergence names the step.
fn update<M: MlpBackend>(
    m: &mut M,
    opt: Optimizer,
    clip: Option<f32>,
    step: u64,
    net: &str,
) -> Result<()> {
    let r = match opt {
        Optimizer::Adam(c) => m.adam(c),
        Optimizer::RmsProp(c) => m.rmsprop(c),
    };
    if let Err(e) = r {
        if e.code == Code::Diverged {
            return Err(Error::diverged(
                Some(step),
                format!(
                    "a {net} parameter became NaN or infinite after its {} update",
                    opt.name()
                ),
            ));
        }
        return Err(e);
    }
    match clip {
        Some(c) => m.clamp_params(c),
        None => Ok(()),
    }
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

/// The critic's loss `-mean(r) + mean(f)` over `o = [f; r]` and its gradient `dd`; `g_loss = -mean(f)`.
fn wasserstein_loss(o: &[f32], dd: &mut [f32]) -> StepRecord {
    let rows = o.len() / 2;
    let (of, or) = o.split_at(rows);
    let (mf, mr) = (mean(of), mean(or));
    let inv = 1.0 / rows as f32;
    dd[..rows].fill(inv);
    dd[rows..].fill(-inv);
    StepRecord {
        d_loss: (-mr + mf) as f32,
        g_loss: -mf as f32,
        d_real: mr as f32,
        d_fake: mf as f32,
    }
}

/// bgan.py: `d_loss` the seed's BCE; `g_loss = 0.5 mean((ln f - ln(1 - f))^2)` (unclamped), whose gradient at `f` is
/// `(ln f - ln(1 - f)) / (f (1 - f)) / rows`.
fn boundary_seeking(o: &[f32], dg: &mut [f32], dd: &mut [f32]) -> StepRecord {
    let mut rec = GanLoss::Bce.eval(o, dg, dd); // its G gradient is replaced below
    let rows = dg.len();
    let mut sum = 0f64;
    for (d, &f) in dg.iter_mut().zip(&o[..rows]) {
        let t = f.ln() - (1.0 - f).ln();
        sum += (t as f64) * (t as f64);
        *d = t / (f * (1.0 - f)) / rows as f32;
    }
    rec.g_loss = (0.5 * sum / rows as f64) as f32;
    rec
}

/// softmax_gan.py over `o = [f; r]` (B each): `Z = sum exp(-r) + sum exp(-f)`; `d_loss = sum(r) / B + ln(Z + 1e-8)`;
/// `g_loss = (sum r + sum f) / (2B) + ln(Z + 1e-8)`. `dd` is `d d_loss / d o`, `dg` is `d g_loss / d f`.
fn softmax_loss(o: &[f32], dg: &mut [f32], dd: &mut [f32]) -> StepRecord {
    let rows = o.len() / 2;
    let n = rows as f64;
    let (of, or) = o.split_at(rows);
    let z: f64 = o.iter().map(|&x| (-(x as f64)).exp()).sum::<f64>() + 1e-8;
    let (sf, sr) = (mean(of) * n, mean(or) * n);
    for i in 0..rows {
        let (ef, er) = ((-(of[i] as f64)).exp() / z, (-(or[i] as f64)).exp() / z);
        dd[i] = -ef as f32;
        dd[rows + i] = (1.0 / n - er) as f32;
        dg[i] = (0.5 / n - ef) as f32;
    }
    StepRecord {
        d_loss: (sr / n + z.ln()) as f32,
        g_loss: ((sr + sf) / (2.0 * n) + z.ln()) as f32,
        d_real: (sr / n) as f32,
        d_fake: (sf / n) as f32,
    }
}

/// WGAN-GP: from the critic's input gradients `g [rows, f]` at the interpolates, `lambda GP` and `v = d(lambda GP)/dg`.
fn gp_value_and_v(g: &[f32], v: &mut [f32], rows: usize, p: Penalty) -> f64 {
    let Penalty::Gp {
        lambda,
        pixel,
        channels,
    } = p
    else {
        unreachable!("a gradient penalty")
    };
    let f = g.len() / rows;
    // Groups of values under one norm: a whole sample, or one pixel's channels (stride f / channels).
    let (per_group, groups_per_row, stride) = if pixel {
        (channels, f / channels, f / channels)
    } else {
        (f, 1, 1)
    };
    let count = (rows * groups_per_row) as f64;
    let mut total = 0f64;
    for b in 0..rows {
        for q in 0..groups_per_row {
            let at = |c: usize| b * f + if pixel { c * stride + q } else { c };
            let norm = (0..per_group)
                .map(|c| (g[at(c)] as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            total += (norm - 1.0).powi(2);
            let k = if norm > 0.0 {
                lambda as f64 * 2.0 * (norm - 1.0) / (count * norm)
            } else {
                0.0
            };
            for c in 0..per_group {
                v[at(c)] = (k * g[at(c)] as f64) as f32;
            }
        }
    }
    lambda as f64 * total / count
}

/// WGAN-div: from D's input gradients `g [2 rows, f]` at `[fake; real]`, `k/2 mean(|g_r|^p + |g_f|^p)` and `v`.
fn div_value_and_v(g: &[f32], v: &mut [f32], rows: usize, p: Penalty) -> f64 {
    let Penalty::Div { k, p } = p else {
        unreachable!("the divergence penalty")
    };
    let (k, p) = (k as f64, p as f64);
    let f = g.len() / (2 * rows);
    let mut total = 0f64;
    for (gr, vr) in g.chunks_exact(f).zip(v.chunks_exact_mut(f)) {
        let s: f64 = gr.iter().map(|&x| (x as f64).powi(2)).sum();
        total += s.powf(p / 2.0);
        let c = if s > 0.0 {
            k * p / (2.0 * rows as f64) * s.powf(p / 2.0 - 1.0)
        } else {
            0.0
        };
        for (vi, &gi) in vr.iter_mut().zip(gr) {
            *vi = (c * gi as f64) as f32;
        }
    }
    k / 2.0 * total / rows as f64
}

/// Refuses an explicit step's `aux` of the wrong length.
pub fn check_aux(want: usize, got: usize, model: &str) -> Result<()> {
    if want != got {
        return Err(bad_arg!(
            "the step's other draws (aux) have {got} values, model {model} takes {want}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::GanConfig;
    use crate::core::gan::Gan;
    use crate::core::penalty::input_grad_backward_host;
    use crate::core::spec::{Act, Bn};
    use crate::cpu::{CpuGan, CpuMlp};

    fn nets() -> (Spec, Spec) {
        let (lr, bn) = (
            Act::LeakyRelu(0.2),
            Some(Bn {
                eps: 0.8,
                momentum: 0.1,
            }),
        );
        let g = Spec::new(6, &[(10, None, lr), (12, bn, lr), (9, None, Act::Tanh)]);
        let d = Spec::new(9, &[(8, None, lr), (5, None, lr), (1, None, Act::Sigmoid)]);
        (g, d)
    }

    fn linear(mut d: Spec) -> Spec {
        let last = d.layers.len() - 1;
        d.layers[last].act = Act::None;
        d
    }

    fn mlps(g: &Spec, d: &Spec) -> (CpuMlp, CpuMlp) {
        let (mut a, mut b) = (CpuMlp::new(g.clone(), 1), CpuMlp::new(d.clone(), 1));
        a.init(3, 0).unwrap();
        b.init(3, 1).unwrap();
        (a, b)
    }

    fn config(extra: serde_json::Value) -> GanConfig {
        let mut v = serde_json::json!({"batch_size": 8, "lr": 2e-4, "b1": 0.5, "b2": 0.999, "eps": 1e-8, "seed": 5});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        GanConfig::parse(&v.to_string()).unwrap()
    }

    const COUNT: usize = 37; // batch 8: 5 batches per epoch, the last of 5 rows

    fn pixels() -> Vec<u8> {
        (0..COUNT * 9).map(|i| (i * 53 % 256) as u8).collect()
    }

    /// The general step in the seed's order is the fused CPU step, bitwise, for every loss of `gan`: the same
    /// kernels in the same order, through the row-major `Mlp` API instead of the fused buffers.
    #[test]
    fn the_general_gan_order_is_the_fused_step_bitwise() {
        let (gs, d_sig) = nets();
        for loss in ["bce", "mse", "hinge", "relativistic", "relativistic_avg"] {
            let ds = if loss == "bce" {
                d_sig.clone()
            } else {
                linear(d_sig.clone())
            };
            let cfg = config(serde_json::json!({ "loss": loss }));
            let (mut g1, mut d1) = mlps(&gs, &ds);
            let (mut g2, mut d2) = mlps(&gs, &ds);
            let mut fused = CpuGan::new(cfg, &g1, &d1).unwrap();
            let mut general = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, None).unwrap();
            fused.set_data(&pixels(), COUNT).unwrap();
            general.set_data(&pixels(), COUNT).unwrap();
            let (mut o1, mut o2) = (vec![0f32; 7 * STEP_OUTPUTS], vec![0f32; 7 * STEP_OUTPUTS]);
            fused.step(&mut g1, &mut d1, 7, &mut o1).unwrap();
            general.step(&mut g2, &mut d2, 7, &mut o2).unwrap();
            assert_eq!(o1, o2, "{loss}: step records");
            assert_eq!(g1.params(), g2.params(), "{loss}: G");
            assert_eq!(d1.params(), d2.params(), "{loss}: D");
            assert_eq!(g1.buffers, g2.buffers, "{loss}: G running statistics");
        }
    }

    /// The CPU's GEMM pass of the input-gradient backward against the host pass (itself checked by finite
    /// differences in `penalty.rs`).
    #[test]
    fn cpu_input_grad_backward_matches_the_host_pass() {
        let ds = linear(nets().1);
        let (_, mut d) = mlps(&nets().0, &ds);
        let rows = 6;
        let x: Vec<f32> = (0..rows * 9)
            .map(|i| ((i * 29 % 17) as f32 - 8.0) / 8.0)
            .collect();
        let v: Vec<f32> = (0..rows * 9)
            .map(|i| ((i * 7 % 5) as f32 - 2.0) / 3.0)
            .collect();
        let dy: Vec<f32> = (0..rows).map(|i| 1.0 + i as f32 / 10.0).collect();
        d.grads
            .iter_mut()
            .enumerate()
            .for_each(|(i, g)| *g = i as f32 * 1e-3);
        let mut want = d.grads.clone();
        input_grad_backward_host(&d.spec, d.params(), &x, &dy, &v, &mut want);
        d.input_grad_backward(&x, &dy, &v).unwrap();
        for (i, (a, b)) in d.grads.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "grad {i}: cpu {a} vs host {b}"
            );
        }
        // The checked API refuses a sigmoid critic and bad shapes.
        let (_, mut sig) = mlps(&nets().0, &nets().1);
        assert!(sig.input_grad_backward(&x, &dy, &v).is_err());
        assert!(d.input_grad_backward(&x[..9], &dy, &v).is_err());
    }

    /// Every model trains 12 steps (over two epochs) with finite records; the Wasserstein generator updates only at
    /// batch indices divisible by n_critic; one call of 12 steps equals 12 calls of one.
    #[test]
    fn every_model_trains_and_one_call_equals_many() {
        let (gs, d_sig) = nets();
        for (model, extra) in [
            ("bgan", serde_json::json!({})),
            ("softmax_gan", serde_json::json!({})),
            ("wgan", serde_json::json!({"lr": 5e-5})),
            ("wgan_gp", serde_json::json!({"n_critic": 2})),
            ("wgan_div", serde_json::json!({})),
        ] {
            let ds = if model == "bgan" {
                d_sig.clone()
            } else {
                linear(d_sig.clone())
            };
            let mut e = extra.clone();
            e["model"] = model.into();
            let cfg = config(e);
            let run = |calls: usize| {
                let (mut g, mut d) = mlps(&gs, &ds);
                let mut t = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, None).unwrap();
                t.set_data(&pixels(), COUNT).unwrap();
                let mut out = vec![0f32; 12 * STEP_OUTPUTS];
                for o in out.chunks_exact_mut(12 / calls * STEP_OUTPUTS) {
                    t.step(&mut g, &mut d, 12 / calls, o).unwrap();
                }
                (
                    out,
                    g.params().to_vec(),
                    d.params().to_vec(),
                    g.state.adam_t,
                )
            };
            let (out, gp, dp, g_updates) = run(1);
            assert!(out.iter().all(|v| v.is_finite()), "{model}");
            assert_eq!(
                run(12),
                (out, gp, dp, g_updates),
                "{model}: one call vs many"
            );
            // Batch indices 0 1 2 3 4 | 0 1 2 3 4 | 0 1 (5 batches per epoch).
            let want_g = match model {
                "wgan" | "wgan_div" => 3, // i = 0 of each epoch (n_critic 5)
                "wgan_gp" => 7,           // i = 0, 2, 4 of each epoch (n_critic 2)
                _ => 12,
            };
            assert_eq!(g_updates, want_g, "{model}: generator updates");
        }
    }

    fn cgan_nets(classes: usize) -> (Spec, Spec) {
        let (g, d) = nets();
        let e = |first: bool, name: &str| crate::core::spec::Embed {
            classes,
            dim: classes,
            first,
            name: name.into(),
        };
        (
            g.with_embedding(e(true, "label_emb")),
            linear(d.with_dropout(1, 0.4)).with_embedding(e(false, "label_embedding")),
        )
    }

    fn labels() -> Vec<u32> {
        (0..COUNT as u32).map(|i| i * 7 % 3).collect()
    }

    /// cgan trains on labelled data for 12 steps (two epochs) with finite records, one call equals many, every step
    /// updates G, and the tables learn; without labels, or with labels out of range, it refuses to step.
    #[test]
    fn cgan_trains_on_labels_and_refuses_to_train_without_them() {
        let (gs, ds) = cgan_nets(3);
        for loss in ["mse", "hinge", "relativistic_avg"] {
            let cfg = config(serde_json::json!({"model": "cgan", "loss": loss}));
            let run = |calls: usize| {
                let (mut g, mut d) = mlps(&gs, &ds);
                let before = (g.params()[..9].to_vec(), d.params()[..9].to_vec());
                let mut t = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, None).unwrap();
                t.set_data(&pixels(), COUNT).unwrap();
                t.set_labels(&labels()).unwrap();
                let mut out = vec![0f32; 12 * STEP_OUTPUTS];
                for o in out.chunks_exact_mut(12 / calls * STEP_OUTPUTS) {
                    t.step(&mut g, &mut d, 12 / calls, o).unwrap();
                }
                assert_ne!(before.0, g.params()[..9], "{loss}: G's table moved");
                assert_ne!(before.1, d.params()[..9], "{loss}: D's table moved");
                (
                    out,
                    g.params().to_vec(),
                    d.params().to_vec(),
                    g.state.adam_t,
                )
            };
            let (out, gp, dp, n) = run(1);
            assert!(out.iter().all(|v| v.is_finite()), "{loss}");
            assert_eq!(n, 12, "{loss}: G updates");
            assert_eq!(run(3), (out, gp, dp, n), "{loss}: one call vs many");
        }
        let cfg = config(serde_json::json!({"model": "cgan"}));
        let (mut g, mut d) = mlps(&gs, &ds);
        let mut t = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, None).unwrap();
        let e = t.set_labels(&labels()).unwrap_err();
        assert!(
            e.message.contains("call set_data before set_labels"),
            "{}",
            e.message
        );
        t.set_data(&pixels(), COUNT).unwrap();
        let mut o = vec![0f32; STEP_OUTPUTS];
        let e = t.step(&mut g, &mut d, 1, &mut o).unwrap_err();
        assert!(e.message.contains("no labels"), "{}", e.message);
        let mut bad = labels();
        bad[30] = 3;
        let e = t.set_labels(&bad).unwrap_err();
        assert_eq!(e.message, "label[30] is 3, expected a class in [0, 3)");
        assert!(t.set_labels(&bad[..5]).is_err());
        t.set_labels(&labels()).unwrap();
        t.set_data(&pixels(), COUNT).unwrap(); // a new dataset drops the labels
        assert!(t.step(&mut g, &mut d, 1, &mut o).is_err());
        // The explicit step takes [labels of the fakes; real labels] as integers.
        let (z, x) = (vec![0.1f32; 4 * 6], vec![0.5f32; 4 * 9]);
        let e = t
            .step_explicit(
                &mut g,
                &mut d,
                &z,
                &x,
                &[0.0, 1.0, 2.0, 0.5, 0.0, 0.0, 0.0, 0.0],
                4,
                &mut o,
            )
            .unwrap_err();
        assert!(
            e.message.contains("aux[3] is 0.5, expected a label"),
            "{}",
            e.message
        );
        t.step_explicit(
            &mut g,
            &mut d,
            &z,
            &x,
            &[0.0, 1.0, 2.0, 1.0, 2.0, 2.0, 0.0, 1.0],
            4,
            &mut o,
        )
        .unwrap();
        // Embeddings belong to cgan only; cgan needs both, over the same classes, G's first and D's last.
        let gan = config(serde_json::json!({"loss": "mse"}));
        let plain_d = linear(nets().1);
        assert!(FamilyGan::<CpuMlp>::new(gan, &gs, &plain_d, None).is_err());
        assert!(FamilyGan::<CpuMlp>::new(cfg, &nets().0, &ds, None).is_err());
        let e = FamilyGan::<CpuMlp>::new(cfg, &gs, &cgan_nets(4).1, None)
            .err()
            .unwrap();
        assert!(
            e.message.contains("embeds 3 classes, the discriminator 4"),
            "{}",
            e.message
        );
    }

    /// cgan's labels are drawn from their own stream, uniform over the classes.
    #[test]
    fn labels_of_the_fakes_cover_the_classes() {
        let mut l = vec![0u32; 10_000];
        draw_labels(&mut l, 5, 3, 10);
        let mut counts = [0usize; 10];
        l.iter().for_each(|&c| counts[c as usize] += 1);
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
        let mut m = vec![0u32; 10_000];
        draw_labels(&mut m, 5, 4, 10);
        assert_ne!(l, m);
    }

    /// aae's networks: a decoder 3 -> 8 -> 8 (BN) -> 9, D on the 3-wide code, an encoder 9 -> 8 -> 6 = [mu, logvar].
    fn aae_nets() -> (Spec, Spec, Spec) {
        let (lr, bn) = (
            Act::LeakyRelu(0.2),
            Some(Bn {
                eps: 1e-5,
                momentum: 0.1,
            }),
        );
        let g = Spec::new(3, &[(8, None, lr), (8, bn, lr), (9, None, Act::Tanh)]);
        let d = Spec::new(3, &[(6, None, lr), (1, None, Act::Sigmoid)]);
        let mut e = Spec::new(9, &[(8, None, lr), (8, bn, lr), (6, None, Act::None)]);
        e.layers[2].heads = vec![("mu".into(), 3), ("logvar".into(), 3)];
        (g, d, e)
    }

    fn aae_mlps() -> (CpuMlp, CpuMlp, CpuMlp) {
        let (gs, ds, es) = aae_nets();
        let (g, d) = mlps(&gs, &ds);
        let mut e = CpuMlp::new(es, 1);
        e.init(3, 2).unwrap();
        (g, d, e)
    }

    /// aae's `g_loss` in float64 from a train-mode pass (`0.001 BCE(D(code), 1) + 0.999 L1(Dec(code), x)`).
    fn aae_g_loss(g: &mut CpuMlp, d: &mut CpuMlp, e: &mut CpuMlp, x: &[f32], eps: &[f32]) -> f64 {
        let rows = x.len() / 9;
        let mut h = vec![0f32; rows * 6];
        e.forward(x, rows, true, &mut h).unwrap();
        let mut code = vec![0f32; rows * 3];
        reparameterize(&h, eps, &mut code, 3);
        let (mut dec, mut p) = (vec![0f32; rows * 9], vec![0f32; rows]);
        g.forward(&code, rows, true, &mut dec).unwrap();
        d.forward(&code, rows, true, &mut p).unwrap();
        let bce = p.iter().map(|&v| -(v as f64).ln()).sum::<f64>() / rows as f64;
        let l1 = dec
            .iter()
            .zip(x)
            .map(|(&a, &b)| (a as f64 - b as f64).abs())
            .sum::<f64>()
            / dec.len() as f64;
        0.001 * bce + 0.999 * l1
    }

    /// The gradient aae's step gives the encoder (through D, the decoder and the reparameterization) against central
    /// differences of `g_loss`, for weights of the first layer and of both heads; the step's record is that `g_loss`.
    #[test]
    fn aae_encoder_gradient_matches_finite_differences() {
        let (gs, ds, es) = aae_nets();
        let cfg = config(serde_json::json!({"model": "aae"}));
        let (mut g, mut d, mut e) = aae_mlps();
        let (g0, d0, e0) = (
            g.params().to_vec(),
            d.params().to_vec(),
            e.params().to_vec(),
        );
        let mut t = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, Some(&es)).unwrap();
        let rows = 6;
        let x: Vec<f32> = (0..rows * 9)
            .map(|i| ((i * 37 % 19) as f32 - 9.0) / 10.0)
            .collect();
        let z: Vec<f32> = (0..rows * 3)
            .map(|i| ((i * 11 % 7) as f32 - 3.0) / 2.0)
            .collect();
        let eps: Vec<f32> = (0..rows * 3)
            .map(|i| ((i * 5 % 9) as f32 - 4.0) / 3.0)
            .collect();
        let mut o = vec![0f32; STEP_OUTPUTS];
        t.step_explicit_with(&mut g, &mut d, Some(&mut e), &z, &x, &eps, rows, &mut o)
            .unwrap();
        let grads = e.grads.clone();
        let fresh = |p: &[f32]| {
            let (mut g2, mut d2) = (CpuMlp::new(gs.clone(), 1), CpuMlp::new(ds.clone(), 1));
            g2.params_mut().copy_from_slice(&g0);
            d2.params_mut().copy_from_slice(&d0);
            let mut e2 = CpuMlp::new(es.clone(), 1);
            e2.params_mut().copy_from_slice(p);
            aae_g_loss(&mut g2, &mut d2, &mut e2, &x, &eps)
        };
        let base = fresh(&e0);
        assert!(
            (base - o[1] as f64).abs() <= 1e-6,
            "g_loss {} vs {base}",
            o[1]
        );
        let l = &es.layers;
        let picks = [
            l[0].w + 3,
            l[0].w + 40,
            l[2].w + 5,
            l[2].w + 3 * 8 + 2,
            l[2].w + 5 * 8 + 7,
            l[2].b + 4,
        ];
        for k in picks {
            let h = 1e-3f32;
            let (mut up, mut down) = (e0.clone(), e0.clone());
            up[k] += h;
            down[k] -= h;
            let fd = (fresh(&up) - fresh(&down)) / (2.0 * h as f64);
            assert!(
                (fd - grads[k] as f64).abs() <= 2e-2 * fd.abs() + 2e-5,
                "encoder param {k}: fd {fd} vs {}",
                grads[k]
            );
        }
    }

    /// aae trains 12 steps with finite records (every step updates the encoder, the decoder and D), one call equals
    /// many; the encoder is required by aae and refused by the others.
    #[test]
    fn aae_trains_and_needs_its_encoder() {
        let (gs, ds, es) = aae_nets();
        let cfg = config(serde_json::json!({"model": "aae"}));
        let data: Vec<u8> = (0..COUNT * 9).map(|i| (i * 53 % 256) as u8).collect();
        let run = |calls: usize| {
            let (mut g, mut d, mut e) = aae_mlps();
            let mut t = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, Some(&es)).unwrap();
            t.set_data(&data, COUNT).unwrap();
            let mut out = vec![0f32; 12 * STEP_OUTPUTS];
            for o in out.chunks_exact_mut(12 / calls * STEP_OUTPUTS) {
                t.step_with(&mut g, &mut d, Some(&mut e), 12 / calls, o)
                    .unwrap();
            }
            (
                out,
                g.params().to_vec(),
                d.params().to_vec(),
                e.params().to_vec(),
                e.state.adam_t,
                d.state.adam_t,
            )
        };
        let first = run(1);
        assert!(first.0.iter().all(|v| v.is_finite()));
        assert_eq!((first.4, first.5), (12, 12));
        assert_eq!(run(4), first, "one call vs many");
        assert!(FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, None).is_err());
        let gan = config(serde_json::json!({}));
        let e = FamilyGan::<CpuMlp>::new(gan, &nets().0, &nets().1, Some(&es))
            .err()
            .unwrap();
        assert_eq!(e.message, "model gan takes no encoder");
        // Without the encoder at step time, or with a non-finite eps.
        let (mut g, mut d, mut e) = aae_mlps();
        let mut t = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, Some(&es)).unwrap();
        t.set_data(&data, COUNT).unwrap();
        let mut o = vec![0f32; STEP_OUTPUTS];
        assert!(t.step(&mut g, &mut d, 1, &mut o).is_err());
        let (z, x) = (vec![0.0f32; 12], vec![0.0f32; 36]);
        let mut eps = vec![0.5f32; 12];
        eps[7] = f32::NAN;
        let err = t
            .step_explicit_with(&mut g, &mut d, Some(&mut e), &z, &x, &eps, 4, &mut o)
            .unwrap_err();
        assert!(err.message.contains("aux[7] is NaN"), "{}", err.message);
    }
}
