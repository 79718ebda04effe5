//! GPU backend vs CPU backend parity, on whatever adapter exists (lavapipe on machines without a GPU; the tests print
//! the adapter and skip, with the reason, only when there is none at all).
//!
//! Tolerances (stated per check in its label): element-wise `|gpu - cpu| <= rtol * |cpu| + atol * max(1, max |cpu|)`,
//! with rtol 1e-4 and atol 1e-5 for one forward / backward / Adam step, looser where Adam steps amplify rounding (see
//! the GAN test).

use gan_native::core::Ops;
use gan_native::core::{
    Act, AdamConfig, Bn, Buffer, Code, Embed, Error, FamilyGan, Gan, GanConfig, GanLoss, Mlp,
    MlpBackend, Spec, GAN_LOSSES, STEP_OUTPUTS,
};
use gan_native::cpu::{CpuGan, CpuMlp, CpuOps};
use gan_native::gpu::gan::{gpu_hash, gpu_normal, STEPS_PER_SUBMIT};
use gan_native::gpu::{GpuDevice, GpuGan, GpuMlp, GpuOps};
use gan_native::rng;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The GPU the tests run on (lavapipe counts). Without any adapter they pass as skipped, except under CI (`CI=true`)
/// or with `GAN_REQUIRE_GPU=1` (a device check on a GPU machine), where a missing adapter fails every test.
fn device() -> Option<Arc<GpuDevice>> {
    static DEV: OnceLock<Option<Arc<GpuDevice>>> = OnceLock::new();
    let dev = DEV
        .get_or_init(|| match GpuDevice::new(true) {
            Ok(d) => {
                eprintln!("GPU adapter: {}", d.info());
                Some(d)
            }
            Err(e) => {
                eprintln!("SKIPPED: no GPU adapter at all ({})", e.message);
                None
            }
        })
        .clone();
    let required = std::env::var("CI").as_deref() == Ok("true")
        || std::env::var("GAN_REQUIRE_GPU").as_deref() == Ok("1");
    assert!(
        dev.is_some() || !required,
        "no GPU adapter, and CI or GAN_REQUIRE_GPU asks for one"
    );
    dev
}

/// A forward through the checked API of either backend: the output `[rows, output]`.
fn forward(m: &mut dyn MlpBackend, x: &[f32], rows: usize, train: bool) -> Result<Vec<f32>, Error> {
    let mut y = vec![0f32; rows * m.spec().output()];
    m.forward(x, rows, train, &mut y).map(|()| y)
}

/// A backward of the last forward through the checked API of either backend: d loss / d input `[rows, input]`.
fn backward(m: &mut dyn MlpBackend, dy: &[f32]) -> Result<Vec<f32>, Error> {
    let mut dx = vec![0f32; m.state().last_rows() * m.spec().input];
    m.backward(dy, &mut dx).map(|()| dx)
}

/// Deterministic uniform values in [lo, hi).
fn rand_vec(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    let k = rng::key(0x5eed, 77, seed);
    (0..n)
        .map(|i| lo + (hi - lo) * ((rng::rand(k, i as u32) >> 8) as f32 / 16_777_216.0))
        .collect()
}

/// llm.c-style check: prints the max abs / rel difference and the tolerance; panics when out of tolerance.
#[track_caller]
fn check(label: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{label}: length");
    let scale = want.iter().fold(1.0f32, |m, &w| m.max(w.abs()));
    let (mut max_abs, mut max_rel, mut worst) = (0f32, 0f32, None);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        let tol = rtol * w.abs() + atol * scale;
        if d > max_abs || d.is_nan() {
            max_abs = d;
        }
        if w != 0.0 {
            max_rel = max_rel.max(d / w.abs());
        }
        if (d > tol || d.is_nan()) && worst.is_none() {
            worst = Some((i, g, w, tol));
        }
    }
    if let Some((i, g, w, tol)) = worst {
        panic!(
            "{label}: element {i}: gpu {g} vs cpu {w} (|diff| {} > tol {tol}); max abs diff {max_abs}, max rel diff \
             {max_rel} (rtol {rtol}, atol {atol} x {scale})",
            (g - w).abs()
        );
    }
    if std::env::var_os("GPU_PARITY_VERBOSE").is_some() {
        eprintln!("ok {label}: max abs {max_abs:.3e}, max rel {max_rel:.3e} (rtol {rtol}, atol {atol} x {scale})");
    }
}

fn params_like(spec: &Spec, seed: u32) -> Vec<f32> {
    let mut p = vec![0f32; spec.param_count];
    for l in &spec.layers {
        let bound = 1.0 / (l.inp as f32).sqrt();
        p[l.w..l.w + l.out * l.inp].copy_from_slice(&rand_vec(
            l.out * l.inp,
            seed + 1,
            -bound,
            bound,
        ));
        p[l.b..l.b + l.out].copy_from_slice(&rand_vec(l.out, seed + 2, -bound, bound));
        if l.bn.is_some() {
            p[l.gamma..l.gamma + l.out].copy_from_slice(&rand_vec(l.out, seed + 3, 0.5, 1.5));
            p[l.beta..l.beta + l.out].copy_from_slice(&rand_vec(l.out, seed + 4, -0.3, 0.3));
        }
    }
    p
}

fn stats_like(spec: &Spec, seed: u32) -> Vec<f32> {
    let mut s = vec![0f32; spec.buffer_count];
    for l in &spec.layers {
        if l.bn.is_some() {
            s[l.rmean..l.rmean + l.out].copy_from_slice(&rand_vec(l.out, seed + 5, -0.5, 0.5));
            s[l.rvar..l.rvar + l.out].copy_from_slice(&rand_vec(l.out, seed + 6, 0.5, 1.5));
        }
    }
    s
}

fn pair(spec: &Spec, dev: &Arc<GpuDevice>, seed: u32) -> (CpuMlp, GpuMlp) {
    let mut c = CpuMlp::new(spec.clone(), 1);
    let mut g = GpuMlp::new(spec.clone(), dev.clone()).unwrap();
    c.params_mut().copy_from_slice(&params_like(spec, seed));
    c.buffers = stats_like(spec, seed);
    g.set(Buffer::Params, c.params()).unwrap();
    g.set(Buffer::Running, &c.buffers).unwrap();
    (c, g)
}

/// Forward, running statistics, backward (dx and every gradient) of one MLP on both backends.
fn mlp_case(dev: &Arc<GpuDevice>, spec: &Spec, rows: usize, train: bool, seed: u32, label: &str) {
    let (mut c, mut g) = pair(spec, dev, seed);
    let x = rand_vec(rows * spec.input, seed + 10, -2.0, 2.0);
    let yc = forward(&mut c, &x, rows, train).unwrap();
    let yg = forward(&mut g, &x, rows, train).unwrap();
    check(&format!("{label} forward"), &yg, &yc, 1e-4, 1e-5);
    check(
        &format!("{label} running stats"),
        &g.get_vec(Buffer::Running).unwrap(),
        &c.buffers,
        1e-4,
        1e-5,
    );
    assert_eq!(
        g.state.batches_tracked, c.state.batches_tracked,
        "{label} batches_tracked"
    );
    let dout = rand_vec(rows * spec.output(), seed + 11, -1.0, 1.0);
    let dxc = backward(&mut c, &dout).unwrap();
    let dxg = backward(&mut g, &dout).unwrap();
    check(&format!("{label} dx"), &dxg, &dxc, 1e-4, 1e-5);
    check(
        &format!("{label} param grads"),
        &g.get_vec(Buffer::Grads).unwrap(),
        &c.grads,
        1e-4,
        1e-5,
    );
}

#[test]
fn mlp_parity_all_activations_bn_modes_and_batches() {
    let Some(dev) = device() else { return };
    let t = Instant::now();
    let acts = [
        ("none", Act::None),
        ("leaky", Act::LeakyRelu(0.2)),
        ("tanh", Act::Tanh),
        ("sigmoid", Act::Sigmoid),
    ];
    let mut cases = 0;
    for (ai, (an, act)) in acts.iter().enumerate() {
        for bn in [false, true] {
            let b = bn.then_some(Bn {
                eps: 1e-3,
                momentum: 0.1,
            });
            // Two blocks so the backward passes a gradient between layers.
            let spec = Spec::new(5, &[(7, b, *act), (3, b, *act)]);
            for train in [true, false] {
                for rows in [2usize, 3, 33, 65] {
                    let label = format!(
                        "act {an}, bn {bn}, {}, batch {rows}",
                        if train { "train" } else { "eval" }
                    );
                    mlp_case(&dev, &spec, rows, train, (ai * 100 + rows) as u32, &label);
                    cases += 1;
                }
            }
        }
    }
    eprintln!("mlp parity: {cases} cases in {:.2?}", t.elapsed());
}

#[test]
fn mlp_parity_wide_layers_multiple_tiles() {
    let Some(dev) = device() else { return };
    let t = Instant::now();
    // More than one 64-wide tile in every dimension (rows, out, in), non-multiples of the tile, the seed's eps 0.8.
    let bn = Some(Bn {
        eps: 0.8,
        momentum: 0.1,
    });
    let spec = Spec::new(
        70,
        &[
            (130, bn, Act::LeakyRelu(0.2)),
            (67, None, Act::LeakyRelu(0.2)),
            (9, None, Act::Tanh),
        ],
    );
    for (rows, train) in [
        (2, true),
        (64, true),
        (65, true),
        (130, true),
        (1, false),
        (130, false),
    ] {
        mlp_case(
            &dev,
            &spec,
            rows,
            train,
            900 + rows as u32,
            &format!("wide, batch {rows}, train {train}"),
        );
    }
    eprintln!("wide parity in {:.2?}", t.elapsed());
}

#[test]
fn adam_parity() {
    let Some(dev) = device() else { return };
    let spec = Spec::new(
        33,
        &[(
            40,
            Some(Bn {
                eps: 1e-5,
                momentum: 0.1,
            }),
            Act::Tanh,
        )],
    );
    let (mut c, mut g) = pair(&spec, &dev, 7);
    let n = spec.param_count;
    c.m = rand_vec(n, 20, -0.1, 0.1);
    c.v = rand_vec(n, 21, 0.0, 0.01);
    g.set(Buffer::AdamM, &c.m).unwrap();
    g.set(Buffer::AdamV, &c.v).unwrap();
    for (step, lr) in [(0u32, 2e-4), (1, 1e-2), (2, 0.1)] {
        let cfg = AdamConfig {
            lr,
            b1: 0.5,
            b2: 0.999,
            eps: 1e-8,
        };
        c.grads = rand_vec(n, 30 + step, -1.0, 1.0);
        g.set(Buffer::Grads, &c.grads).unwrap();
        c.adam_step(cfg);
        g.adam(cfg).unwrap();
        assert_eq!(g.state.adam_t, c.state.adam_t);
        check(
            &format!("adam step {} params", step + 1),
            &g.get_vec(Buffer::Params).unwrap(),
            c.params(),
            1e-5,
            1e-6,
        );
        check(
            &format!("adam step {} m", step + 1),
            &g.get_vec(Buffer::AdamM).unwrap(),
            &c.m,
            1e-5,
            1e-6,
        );
        check(
            &format!("adam step {} v", step + 1),
            &g.get_vec(Buffer::AdamV).unwrap(),
            &c.v,
            1e-5,
            1e-6,
        );
    }
}

/// Softmax cross-entropy on both backends: the loss (the GPU's f32 row losses summed in f64 on the host) and the
/// gradient, compared as `rows * dz` (softmax - onehot, of order 1), over 1 to 4096 classes and 1 to 257 rows, and
/// logits of +-80 (max-subtracted: nothing overflows). The same loss without the gradient; the same refusals.
#[test]
fn softmax_ce_parity() {
    let Some(dev) = device() else { return };
    let gpu = GpuOps::new(dev.clone());
    let shapes = [
        (1usize, 1usize, 8.0f32),
        (7, 1, 8.0),
        (1, 10, 8.0),
        (64, 10, 8.0),
        (257, 10, 8.0),
        (130, 3, 8.0),
        (3, 1000, 8.0),
        (2, 4096, 8.0),
        (33, 65, 80.0),
        (5, 1000, 80.0),
    ];
    for (i, &(rows, classes, range)) in shapes.iter().enumerate() {
        let label = format!("softmax ce {rows}x{classes} (logits in +-{range})");
        let z = rand_vec(rows * classes, 40 + i as u32, -range, range);
        let k = rng::key(0x5eed, 78, i as u32);
        let y: Vec<u32> = (0..rows)
            .map(|r| ((rng::rand(k, r as u32) as u64 * classes as u64) >> 32) as u32)
            .collect();
        let (mut dc, mut dg) = (vec![0f32; z.len()], vec![0f32; z.len()]);
        let lc = CpuOps.softmax_ce(&z, &y, classes, &mut dc).unwrap();
        let lg = gpu.softmax_ce(&z, &y, classes, &mut dg).unwrap();
        check(&format!("{label} loss"), &[lg], &[lc], 2e-6, 2e-6);
        let per_row = |d: &[f32]| d.iter().map(|v| v * rows as f32).collect::<Vec<_>>();
        check(
            &format!("{label} rows * dz"),
            &per_row(&dg),
            &per_row(&dc),
            1e-4,
            2e-6,
        );
        let lg_only = gpu.softmax_ce(&z, &y, classes, &mut []).unwrap();
        assert_eq!(lg_only, lg, "{label}: the loss without the gradient");
    }
    let z = [0.5f32, -1.0, 2.0, 0.0, 1.0, 3.0];
    for (what, ops) in [("cpu", &CpuOps as &dyn Ops), ("gpu", &gpu as &dyn Ops)] {
        let e = ops.softmax_ce(&z, &[1, 3], 3, &mut []).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{what}");
        assert_eq!(
            e.message, "labels[1] (row 1) is 3, expected a class below 3",
            "{what}"
        );
    }
}

#[test]
fn noise_hash_bit_identical_and_normals_close() {
    let Some(dev) = device() else { return };
    for (seed, domain, stream) in [
        (0u64, rng::DOMAIN_NOISE, 0u32),
        (42, rng::DOMAIN_NOISE, 7),
        (0xdead_beef_0123_4567, rng::DOMAIN_SHUFFLE, 0x8000_0001),
    ] {
        let n = 4099;
        let got = gpu_hash(&dev, seed, domain, stream, n).unwrap();
        let k = rng::key(seed, domain, stream);
        let want: Vec<u32> = (0..n as u32).map(|i| rng::rand(k, i)).collect();
        assert_eq!(got, want, "hash of seed {seed:#x} stream {stream} differs");
    }
    let mut max_diff = 0f32;
    for (seed, stream, n) in [
        (42u64, 0u32, 10_001usize),
        (7, 123_456, 6400),
        (u64::MAX, u32::MAX, 3),
    ] {
        let got = gpu_normal(&dev, seed, stream, n).unwrap();
        let mut want = vec![0f32; n];
        rng::fill_normal(&mut want, seed, rng::DOMAIN_NOISE, stream);
        let d = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        max_diff = max_diff.max(d);
        check(
            &format!("noise seed {seed} stream {stream}"),
            &got,
            &want,
            1e-5,
            1e-5,
        );
    }
    eprintln!("noise: max |gpu - cpu| = {max_diff:e} (hash bit-identical)");
}

/// The seed's full-size networks (gan.py's G and D at 28x28), for the benchmarks.
fn seed_gan() -> (Spec, Spec) {
    Spec::seed_pair()
}

/// `count` synthetic 28x28 images (a fixed integer hash of the pixel index), for the benchmarks.
fn bench_pixels(count: usize) -> Vec<u8> {
    (0..count * 784)
        .map(|i| ((i * 2_654_435_761usize) >> 13) as u8)
        .collect()
}

fn seed_like_gan(latent: usize, img: usize) -> (Spec, Spec) {
    let bn = Some(Bn {
        eps: 0.8,
        momentum: 0.1,
    });
    let g = Spec::new(
        latent,
        &[
            (16, None, Act::LeakyRelu(0.2)),
            (32, bn, Act::LeakyRelu(0.2)),
            (img, None, Act::Tanh),
        ],
    );
    let d = Spec::new(
        img,
        &[(16, None, Act::LeakyRelu(0.2)), (1, None, Act::Sigmoid)],
    );
    (g, d)
}

fn gan_config(batch: usize) -> GanConfig {
    let adam = AdamConfig {
        lr: 2e-4,
        b1: 0.5,
        b2: 0.999,
        eps: 1e-8,
    };
    GanConfig::seed(batch, adam, 1234)
}

/// Every loss but the seed's BCE (covered above) on the GPU against the CPU: 3 steps of a seed-like GAN whose D ends
/// in a linear layer, the losses and both networks' parameters.
#[test]
fn gan_losses_match_cpu_for_every_loss() {
    let Some(dev) = device() else { return };
    let (gs, d_sigmoid) = seed_like_gan(8, 12);
    let mut ds = d_sigmoid.clone();
    let last = ds.layers.len() - 1;
    ds.layers[last].act = Act::None;
    let count = 37;
    let pixels: Vec<u8> = rand_vec(count * 12, 7, 0.0, 256.0)
        .iter()
        .map(|&v| v as u8)
        .collect();
    for (loss, name) in GAN_LOSSES.into_iter().filter(|(l, _)| *l != GanLoss::Bce) {
        let cfg = gan_config(8).with_loss(loss);
        let (cg, cd, _, cpu_out) = cpu_run(&gs, &ds, cfg, &pixels, count, 3);
        let mut a = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
        let mut out = vec![0f32; 3 * STEP_OUTPUTS];
        a.gan.step(&mut a.g, &mut a.d, 3, &mut out).unwrap();
        eprintln!("{name}: cpu {:?} gpu {:?}", &cpu_out[..4], &out[..4]);
        // The first step tightly; after it, Adam's normalized updates of rounding-noise gradients (see above) move
        // the two backends apart by up to ~lr per element, as in the bce test's later steps. The relativistic losses
        // do not change when every output of D shifts by one constant, so the gradient of D's last bias is rounding
        // noise (0 in exact arithmetic) and the mean outputs drift apart by up to lr per step: they get 2 lr a step.
        let first = &out[..STEP_OUTPUTS];
        check(
            &format!("{name} losses, step 1"),
            first,
            &cpu_out[..STEP_OUTPUTS],
            1e-4,
            1e-5,
        );
        let field =
            |v: &[f32], k: usize| -> Vec<f32> { v.chunks(STEP_OUTPUTS).map(|r| r[k]).collect() };
        for k in 0..STEP_OUTPUTS {
            let atol = if k < 2 { 1e-4 } else { 2.0 * 2e-4 * 3.0 };
            check(
                &format!("{name} step field {k}, 3 steps"),
                &field(&out, k),
                &field(&cpu_out, k),
                1e-3,
                atol,
            );
        }
        let atol = (2.0 * 2e-4 * 3.0) as f32;
        check(
            &format!("{name} G params"),
            &a.g.get_vec(Buffer::Params).unwrap(),
            cg.params(),
            1e-4,
            atol,
        );
        check(
            &format!("{name} D params"),
            &a.d.get_vec(Buffer::Params).unwrap(),
            cd.params(),
            1e-4,
            atol,
        );
    }
    // A sigmoid D is refused for them, and a linear D for bce.
    let refused = |cfg: GanConfig, d: &Spec| {
        let (g, d) = (
            GpuMlp::new(gs.clone(), dev.clone()).unwrap(),
            GpuMlp::new(d.clone(), dev.clone()).unwrap(),
        );
        GpuGan::new(cfg, &g, &d).err().map(|e| e.message)
    };
    let hinge = gan_config(8).with_loss(GanLoss::Hinge);
    assert!(refused(hinge, &d_sigmoid)
        .unwrap()
        .contains("must end in a linear layer (activation none) for the hinge"));
    assert!(refused(gan_config(8), &ds)
        .unwrap()
        .contains("must end in a sigmoid for the bce loss"));
}

struct Run {
    g: GpuMlp,
    d: GpuMlp,
    gan: GpuGan,
}

/// The CPU backend's run of `steps` steps from the same start as `gpu_run` (params_like seeds 1 and 2): the reference
/// the GPU is compared with. Returns G, D, the trainer and the step outputs `[steps, 4]`.
fn cpu_run(
    gs: &Spec,
    ds: &Spec,
    cfg: GanConfig,
    pixels: &[u8],
    count: usize,
    steps: usize,
) -> (CpuMlp, CpuMlp, CpuGan, Vec<f32>) {
    let mut cg = CpuMlp::new(gs.clone(), 1);
    let mut cd = CpuMlp::new(ds.clone(), 1);
    cg.params_mut().copy_from_slice(&params_like(gs, 1));
    cd.params_mut().copy_from_slice(&params_like(ds, 2));
    let mut cgan = CpuGan::new(cfg, &cg, &cd).unwrap();
    cgan.set_data(pixels, count).unwrap();
    let mut out = vec![0f32; steps * STEP_OUTPUTS];
    for o in out.chunks_exact_mut(STEP_OUTPUTS) {
        cgan.step(&mut cg, &mut cd, 1, o).unwrap();
    }
    (cg, cd, cgan, out)
}

fn gpu_run(
    dev: &Arc<GpuDevice>,
    gs: &Spec,
    ds: &Spec,
    cfg: GanConfig,
    pixels: &[u8],
    count: usize,
) -> Run {
    let mut g = GpuMlp::new(gs.clone(), dev.clone()).unwrap();
    let mut d = GpuMlp::new(ds.clone(), dev.clone()).unwrap();
    g.set(Buffer::Params, &params_like(gs, 1)).unwrap();
    d.set(Buffer::Params, &params_like(ds, 2)).unwrap();
    let mut gan = GpuGan::new(cfg, &g, &d).unwrap();
    gan.set_data(pixels, count).unwrap();
    Run { g, d, gan }
}

#[test]
fn gan_steps_match_cpu_and_one_call_equals_many() {
    let Some(dev) = device() else { return };
    let t = Instant::now();
    let (gs, ds) = seed_like_gan(8, 12);
    let count = 37; // batch 8: 5 batches per epoch, the last of 5 rows
    let pixels: Vec<u8> = rand_vec(count * 12, 99, 0.0, 256.0)
        .iter()
        .map(|&v| v as u8)
        .collect();
    let cfg = gan_config(8);
    let steps = 7; // crosses the epoch boundary after step 5 (the short batch is step 5)

    // CPU reference.
    let (cg, cd, cgan, cpu_out) = cpu_run(&gs, &ds, cfg, &pixels, count, steps);

    // GPU: all steps in one call.
    let mut a = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
    assert_eq!(a.gan.state.batches_per_epoch(), 5);
    let mut out_a = vec![0f32; steps * STEP_OUTPUTS];
    a.gan.step(&mut a.g, &mut a.d, steps, &mut out_a).unwrap();
    assert_eq!(a.gan.state.step, steps as u64);
    assert_eq!(a.gan.state.position(), cgan.state.position());

    // GPU: one step per call.
    let mut b = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
    let mut out_b = vec![0f32; steps * STEP_OUTPUTS];
    for o in out_b.chunks_exact_mut(STEP_OUTPUTS) {
        b.gan.step(&mut b.g, &mut b.d, 1, o).unwrap();
    }
    assert_eq!(
        out_a, out_b,
        "n steps in one call differ from n calls of one step"
    );
    for w in [
        Buffer::Params,
        Buffer::AdamM,
        Buffer::AdamV,
        Buffer::Running,
    ] {
        assert_eq!(
            a.g.get_vec(w).unwrap(),
            b.g.get_vec(w).unwrap(),
            "G {w:?} after one call vs many"
        );
    }
    assert_eq!(
        a.d.get_vec(Buffer::Params).unwrap(),
        b.d.get_vec(Buffer::Params).unwrap(),
        "D params"
    );

    // GPU vs CPU: per-step outputs (the first three steps tightly, then all), parameters, statistics, counters.
    eprintln!("gan cpu losses {:?}", &cpu_out[..12]);
    eprintln!("gan gpu losses {:?}", &out_a[..12]);
    check(
        "gan losses, 3 steps",
        &out_a[..3 * STEP_OUTPUTS],
        &cpu_out[..3 * STEP_OUTPUTS],
        1e-4,
        1e-5,
    );
    check("gan losses, 7 steps", &out_a, &cpu_out, 1e-3, 1e-4);
    // Adam normalizes each gradient, so an element whose gradient is rounding noise (the bias before BatchNorm has
    // gradient 0 in exact arithmetic) may move by up to ~lr per step on either backend: allow 2 lr per step absolute.
    let atol = (2.0 * 2e-4 * steps as f64) as f32;
    let gp = a.g.get_vec(Buffer::Params).unwrap();
    let dp = a.d.get_vec(Buffer::Params).unwrap();
    check("gan G params, 7 steps", &gp, cg.params(), 1e-4, atol);
    // Away from the Linear biases that feed a BatchNorm, the parameters agree tightly.
    let mut mask = vec![true; gs.param_count];
    for l in gs.layers.iter().filter(|l| l.bn.is_some()) {
        mask[l.b..l.b + l.out].fill(false);
    }
    let pick = |v: &[f32]| -> Vec<f32> {
        v.iter()
            .zip(&mask)
            .filter(|(_, &k)| k)
            .map(|(&x, _)| x)
            .collect()
    };
    check(
        "gan G params except biases before BN, 7 steps",
        &pick(&gp),
        &pick(cg.params()),
        1e-4,
        1e-6,
    );
    check("gan D params, 7 steps", &dp, cd.params(), 1e-4, atol);
    let frac = |got: &[f32], want: &[f32]| {
        got.iter()
            .zip(want)
            .filter(|(a, b)| (*a - *b).abs() > 1e-6)
            .count() as f64
            / got.len() as f64
    };
    eprintln!(
        "gan params: fraction differing by more than 1e-6: G {:.4}, D {:.4}",
        frac(&gp, cg.params()),
        frac(&dp, cd.params())
    );
    check(
        "gan G running stats",
        &a.g.get_vec(Buffer::Running).unwrap(),
        &cg.buffers,
        1e-3,
        1e-4,
    );
    assert_eq!(a.g.state.adam_t, cg.state.adam_t);
    assert_eq!(a.d.state.adam_t, cd.state.adam_t);
    assert_eq!(a.g.state.batches_tracked, cg.state.batches_tracked);
    eprintln!("gan parity in {:.2?}", t.elapsed());
}

#[test]
fn gan_three_steps_tight_parity_bigger_batch() {
    let Some(dev) = device() else { return };
    // Batch 40 > 32 rows: D runs over 80 rows (two row tiles), G's BN is fused (40 <= 64).
    let (gs, ds) = seed_like_gan(10, 20);
    let count = 90;
    let pixels: Vec<u8> = (0..count * 20).map(|i| (i * 37 % 256) as u8).collect();
    let cfg = gan_config(40);
    let (cg, cd, _cgan, cpu_out) = cpu_run(&gs, &ds, cfg, &pixels, count, 3);
    let mut r = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
    let mut out = vec![0f32; 3 * STEP_OUTPUTS];
    r.gan.step(&mut r.g, &mut r.d, 3, &mut out).unwrap();
    check("gan batch 40 losses", &out, &cpu_out, 1e-4, 1e-5);
    check(
        "gan batch 40 G grads",
        &r.g.get_vec(Buffer::Grads).unwrap(),
        &cg.grads,
        1e-3,
        1e-4,
    );
    check(
        "gan batch 40 D grads",
        &r.d.get_vec(Buffer::Grads).unwrap(),
        &cd.grads,
        1e-3,
        1e-4,
    );
}

#[test]
fn gan_bn_two_pass_path() {
    let Some(dev) = device() else { return };
    // Batch 70 > 64: G's train-mode BatchNorm takes the two-dispatch path.
    let (gs, ds) = seed_like_gan(6, 10);
    let count = 140;
    let pixels: Vec<u8> = (0..count * 10).map(|i| (i * 91 % 256) as u8).collect();
    let cfg = gan_config(70);
    let (cg, _cd, _cgan, cpu_out) = cpu_run(&gs, &ds, cfg, &pixels, count, 2);
    let mut r = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
    let mut out = vec![0f32; 2 * STEP_OUTPUTS];
    r.gan.step(&mut r.g, &mut r.d, 2, &mut out).unwrap();
    check("gan batch 70 losses", &out, &cpu_out, 1e-4, 1e-5);
    check(
        "gan batch 70 G running stats",
        &r.g.get_vec(Buffer::Running).unwrap(),
        &cg.buffers,
        1e-4,
        1e-5,
    );
}

#[test]
fn errors_not_panics() {
    let Some(dev) = device() else { return };
    let bn = Some(Bn {
        eps: 1e-5,
        momentum: 0.1,
    });
    let spec = Spec::new(4, &[(3, bn, Act::Tanh)]);
    // The fused step records D's two backwards side by side: a D with dropout is refused (it takes the general step).
    let (gs, ds) = seed_like_gan(4, 6);
    let g = GpuMlp::new(gs, dev.clone()).unwrap();
    let d = GpuMlp::new(ds.with_dropout(0, 0.3), dev.clone()).unwrap();
    let e = GpuGan::new(gan_config(4), &g, &d).err().expect("refused");
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("without dropout"), "{}", e.message);
    let mut m = GpuMlp::new(spec.clone(), dev.clone()).unwrap();
    let e = backward(&mut m, &[0.0; 3]).unwrap_err();
    assert_eq!(e.code, Code::InvalidState);
    assert!(
        e.message.contains("backward called before any forward"),
        "{}",
        e.message
    );
    let e = forward(&mut m, &[0.0; 5], 2, true).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(
        e.message.contains("input has 5 values, expected 8"),
        "{}",
        e.message
    );
    let e = forward(&mut m, &[0.0; 4], 1, true).unwrap_err();
    assert!(
        e.message.contains("batch size 1 in train mode"),
        "{}",
        e.message
    );
    assert_eq!(forward(&mut m, &[0.5; 4], 1, false).unwrap().len(), 3);
    let e = forward(&mut m, &[], 0, false).unwrap_err();
    assert!(e.message.contains("at least 1"), "{}", e.message);
    let e = backward(&mut m, &[0.0; 7]).unwrap_err();
    assert!(
        e.message
            .contains("output gradient has 7 values, expected 3"),
        "{}",
        e.message
    );
    let e = m.set(Buffer::Params, &[0.0; 2]).unwrap_err();
    assert!(
        e.message.contains("params has 21 values, got 2"),
        "{}",
        e.message
    );
    let mut bad = vec![0.0; spec.param_count];
    bad[3] = f32::NAN;
    let e = m.set(Buffer::Params, &bad).unwrap_err();
    assert!(e.message.contains("params[3] is NaN"), "{}", e.message);
    assert!(Buffer::from_index(5).is_err());
    // A batch whose work buffer exceeds the device's binding limit is refused, not a panic or an abort.
    let wide = Spec::new(1 << 20, &[(1 << 20, None, Act::None)]);
    match GpuMlp::new(wide, dev.clone()) {
        Ok(mut w) => {
            let e = w.reserve(1 << 12).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{}", e.message);
        }
        Err(e) => assert!(
            matches!(e.code, Code::Backend | Code::InvalidArgument),
            "{}",
            e.message
        ),
    }
    // A wgpu validation error inside an error scope becomes Code::Backend.
    let e = dev
        .scoped("a deliberately invalid buffer", || {
            dev.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        })
        .unwrap_err();
    assert_eq!(e.code, Code::Backend);
    assert!(e.message.contains("validation"), "{}", e.message);
    // The device still works afterwards.
    assert_eq!(forward(&mut m, &[0.5; 8], 2, true).unwrap().len(), 6);

    // GAN validation.
    let (gs, ds) = seed_like_gan(4, 6);
    let g = GpuMlp::new(gs.clone(), dev.clone()).unwrap();
    let d = GpuMlp::new(ds.clone(), dev.clone()).unwrap();
    let dbn = Spec::new(6, &[(1, bn, Act::Sigmoid)]);
    let dd = GpuMlp::new(dbn, dev.clone()).unwrap();
    assert!(GpuGan::new(gan_config(4), &g, &dd)
        .err()
        .unwrap()
        .message
        .contains("without BatchNorm"));
    assert!(GpuGan::new(gan_config(1), &g, &d).is_err());
    let mut gan = GpuGan::new(gan_config(4), &g, &d).unwrap();
    let (mut g, mut d) = (g, d);
    let mut out = vec![0f32; 4];
    let e = gan.step(&mut g, &mut d, 1, &mut out).unwrap_err();
    assert_eq!(e.code, Code::InvalidState);
    assert!(gan
        .set_data(&[0u8; 11], 2)
        .unwrap_err()
        .message
        .contains("expected 2 images x 6 pixels"));
    assert!(gan
        .set_data(&[0u8; 30], 5)
        .unwrap_err()
        .message
        .contains("would hold 1 image"));
    gan.set_data(&[7u8; 36], 6).unwrap();
    assert!(gan.step(&mut g, &mut d, 0, &mut []).is_err());
    assert!(gan
        .step(&mut g, &mut d, 2, &mut out)
        .unwrap_err()
        .message
        .contains("expected 8"));
    gan.step(&mut g, &mut d, 1, &mut out).unwrap();
    assert!(out.iter().all(|v| v.is_finite()), "{out:?}");
}

#[test]
fn pipelines_are_cached() {
    let Some(dev) = device() else { return };
    let spec = Spec::new(3, &[(4, None, Act::Sigmoid)]);
    let mut m = GpuMlp::new(spec, dev.clone()).unwrap();
    forward(&mut m, &[0.1; 6], 2, true).unwrap();
    backward(&mut m, &[0.1; 8]).unwrap();
    let n = dev.pipelines_compiled();
    for _ in 0..3 {
        forward(&mut m, &[0.1; 6], 2, true).unwrap();
        backward(&mut m, &[0.1; 8]).unwrap();
    }
    // Other tests may compile pipelines concurrently, but this MLP's kernels are compiled once: the count of this
    // test's kernels cannot grow (checked loosely: no more than the total number of kernel variants, 20: linear.wgsl
    // `forward` and `forward_split` in 4 modes each and `backward`, block.wgsl 2, adam.wgsl 5, data.wgsl `hash`,
    // softmax and dropout 1 each).
    assert!(dev.pipelines_compiled() >= n && dev.pipelines_compiled() <= 20);
}

#[test]
fn gan_many_steps_several_submissions() {
    let Some(dev) = device() else { return };
    let t = Instant::now();
    let (gs, ds) = seed_like_gan(4, 6);
    // Batch 4 over 22 images: 6 batches per epoch, the last of 2 rows (a generator with BatchNorm refuses 1).
    let count = 22;
    let pixels: Vec<u8> = (0..count * 6).map(|i| (i * 53 % 256) as u8).collect();
    let cfg = gan_config(4);
    let steps = 300; // 38 submissions (37 x 8 + 4), one read-back
    let mut a = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
    let mut out_a = vec![0f32; steps * STEP_OUTPUTS];
    a.gan.step(&mut a.g, &mut a.d, steps, &mut out_a).unwrap();
    assert_eq!(a.gan.last_submissions, steps.div_ceil(STEPS_PER_SUBMIT));
    let mut b = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
    let mut out_b = vec![0f32; steps * STEP_OUTPUTS];
    let (first, rest) = out_b.split_at_mut(100 * STEP_OUTPUTS);
    b.gan.step(&mut b.g, &mut b.d, 100, first).unwrap();
    b.gan.step(&mut b.g, &mut b.d, 200, rest).unwrap();
    assert_eq!(out_a, out_b, "300 steps in one call differ from 100 + 200");
    assert_eq!(
        a.g.get_vec(Buffer::Params).unwrap(),
        b.g.get_vec(Buffer::Params).unwrap()
    );
    assert_eq!(
        a.d.get_vec(Buffer::Params).unwrap(),
        b.d.get_vec(Buffer::Params).unwrap()
    );
    // The CPU over the same 300 steps (50 epochs): the losses stay close.
    let (_cg, _cd, _cgan, cpu_out) = cpu_run(&gs, &ds, cfg, &pixels, count, steps);
    check("gan 300 steps losses", &out_a, &cpu_out, 1e-3, 1e-3);
    eprintln!("300 gan steps x 2 runs in {:.2?}", t.elapsed());
}

/// Submitting every few steps (the default, and an odd count whose submissions cross epochs and the short last batch)
/// gives bitwise the records and parameters of one submission for the whole call.
#[test]
fn submitting_every_few_steps_gives_the_same_bits() {
    let Some(dev) = device() else { return };
    let (gs, ds) = seed_like_gan(4, 6);
    let count = 22; // batch 4: 6 batches per epoch, the last of 2 rows
    let pixels: Vec<u8> = (0..count * 6).map(|i| (i * 53 % 256) as u8).collect();
    let cfg = gan_config(4);
    let steps = 40;
    let mut runs = Vec::new();
    for per_submit in [steps, STEPS_PER_SUBMIT, 3, 1] {
        let mut r = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
        r.gan.steps_per_submit = per_submit;
        let mut out = vec![0f32; steps * STEP_OUTPUTS];
        r.gan.step(&mut r.g, &mut r.d, steps, &mut out).unwrap();
        assert_eq!(r.gan.last_submissions, steps.div_ceil(per_submit));
        let g = r.g.get_vec(Buffer::Params).unwrap();
        let d = r.d.get_vec(Buffer::Params).unwrap();
        let running = r.g.get_vec(Buffer::Running).unwrap();
        runs.push((per_submit, out, g, d, running));
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let (_, out0, g0, d0, r0) = &runs[0];
    for (k, out, g, d, running) in &runs[1..] {
        assert_eq!(bits(out), bits(out0), "records, {k} steps per submission");
        assert_eq!(bits(g), bits(g0), "G params, {k} steps per submission");
        assert_eq!(bits(d), bits(d0), "D params, {k} steps per submission");
        assert_eq!(
            bits(running),
            bits(r0),
            "G running stats, {k} steps per submission"
        );
    }
}

/// The backward's folds (`GpuMlp::folds`) give the bits of the dispatches they replace, one dispatch less each: a
/// BatchNorm block's column pass in the dx epilogue of the block above (batches of at most 64 rows), G's block 0 (its
/// weight GEMM alone) in block 1's dx epilogue, and D's top block of one output in the GEMMs of the block below, which
/// generate their A from its gradients; and Adam in the epilogues of both backwards (the fused step's G and D, each
/// parameter once its gradient is final and its readers are done). In the fused GAN step
/// (train mode, with and without split-K, a full and a partial row tile, several column tiles of which the last is
/// partial; D of two blocks, so the top's dW joins block 0's dispatch) and in a plain backward of an eval-mode forward
/// (running statistics).
#[test]
fn folding_the_column_pass_gives_the_same_bits() {
    let Some(dev) = device() else { return };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let bn = Some(Bn {
        eps: 0.8,
        momentum: 0.1,
    });
    let lr = Act::LeakyRelu(0.2);
    let gs = Spec::new(
        8,
        &[
            (70, None, lr),
            (130, bn, lr),
            (67, bn, lr),
            (20, None, Act::Tanh),
        ],
    );
    let d2 = Spec::new(20, &[(24, None, lr), (1, None, Act::Sigmoid)]);
    let d3 = Spec::new(
        20,
        &[
            (24, None, lr),
            (12, None, Act::Tanh),
            (1, None, Act::Sigmoid),
        ],
    );
    let count = 150;
    let pixels: Vec<u8> = (0..count * 20).map(|i| (i * 29 % 256) as u8).collect();
    let steps = 3;
    for (batch, split, ds) in [(64, 0, &d2), (64, 8, &d3), (37, 0, &d3), (37, 8, &d2)] {
        let mut runs = Vec::new();
        for fold in [false, true] {
            let mut r = gpu_run(&dev, &gs, ds, gan_config(batch), &pixels, count);
            (r.g.folds, r.d.folds) = (fold, fold);
            (r.g.split_target, r.d.split_target) = (split, split);
            let mut out = vec![0f32; steps * STEP_OUTPUTS];
            r.gan.step(&mut r.g, &mut r.d, steps, &mut out).unwrap();
            let g = r.g.get_vec(Buffer::Params).unwrap();
            let running = r.g.get_vec(Buffer::Running).unwrap();
            let d = r.d.get_vec(Buffer::Params).unwrap();
            runs.push((out, g, running, r.gan.last_dispatches, d));
        }
        let label = format!(
            "batch {batch}, split target {split}, D of {} blocks",
            ds.layers.len()
        );
        assert_eq!(bits(&runs[1].0), bits(&runs[0].0), "records, {label}");
        assert_eq!(bits(&runs[1].1), bits(&runs[0].1), "G params, {label}");
        assert_eq!(bits(&runs[1].2), bits(&runs[0].2), "G running, {label}");
        assert_eq!(bits(&runs[1].4), bits(&runs[0].4), "D params, {label}");
        // G's two BatchNorm blocks' column passes, G's block 0 (its dW alone) and D's top block (one output); and
        // the Adam dispatch, when D's Adam folds too (not in a D of two blocks, whose top weights block 0's GEMMs
        // read in the dispatch of their dW).
        let adam = (ds.layers.len() > 2) as usize;
        assert_eq!(
            runs[1].3 + (4 + adam) * steps,
            runs[0].3,
            "dispatches, {label}"
        );
    }
    let rows = 50;
    let x = rand_vec(rows * gs.input, 5, -2.0, 2.0);
    let dout = rand_vec(rows * gs.output(), 6, -1.0, 1.0);
    let mut got = Vec::new();
    for fold in [false, true] {
        let (mut c, mut g) = pair(&gs, &dev, 7);
        g.folds = fold;
        forward(&mut g, &x, rows, false).unwrap();
        let dx = backward(&mut g, &dout).unwrap();
        got.push((dx, g.get_vec(Buffer::Grads).unwrap()));
        if fold {
            forward(&mut c, &x, rows, false).unwrap();
            let dxc = backward(&mut c, &dout).unwrap();
            check("eval backward, folded: dx", &got[1].0, &dxc, 1e-4, 1e-5);
            check(
                "eval backward, folded: grads",
                &got[1].1,
                &c.grads,
                1e-4,
                1e-5,
            );
        }
    }
    assert_eq!(bits(&got[1].0), bits(&got[0].0), "eval backward: dx");
    assert_eq!(bits(&got[1].1), bits(&got[0].1), "eval backward: grads");
}

/// `gan_gan_info`'s cost of the last call: dispatches and barriers per step, the CPU time recording them, the
/// submissions; on the fused GPU step, the general step on the GPU's MLPs, and the CPU backend (which records none).
#[test]
fn the_step_cost_is_counted_and_reported() {
    let Some(dev) = device() else { return };
    let (gs, ds) = seed_like_gan(4, 6);
    let count = 22;
    let pixels: Vec<u8> = (0..count * 6).map(|i| (i * 53 % 256) as u8).collect();
    let cfg = gan_config(4);
    let n = 6;
    let mut out = vec![0f32; n * STEP_OUTPUTS];
    let mut r = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
    r.gan.step(&mut r.g, &mut r.d, n, &mut out).unwrap(); // the first call compiles the pipelines as it records
    r.gan.step(&mut r.g, &mut r.d, n, &mut out).unwrap();
    let info = r.gan.info();
    eprintln!("fused step on the GPU: {info}");
    let per = |k: &str| info[k].as_f64().unwrap();
    // G forward 3 (the first drawing the noise and gathering the real rows), D forward 2 (the last ending in the
    // losses), D's two backwards side by side 1 (its top block of one output folded into the GEMMs below it), G
    // backward 2 (its BatchNorm block's column pass folded into the dx GEMM above it, and block 0's weight GEMM into
    // block 1's dx epilogue), Adam on both 1 (the module notes of gpu/gan.rs); no GEMM here is big enough to split K.
    assert_eq!(per("dispatches_per_step"), 9.0);
    assert_eq!(r.gan.last_dispatches, 9 * n);
    let subs = info["submissions"].as_u64().unwrap();
    assert_eq!(subs, r.gan.last_submissions as u64);
    // Every dispatch after the first of its pass binds a buffer an earlier one bound (all read_write).
    assert_eq!(
        per("barriers_per_step"),
        (9 * n as u64 - subs) as f64 / n as f64
    );
    assert!(per("record_us_per_step") > 0.0);

    let fcfg = GanConfig::parse(
        r#"{"batch_size": 4, "lr": 5e-5, "b1": 0.5, "b2": 0.999, "eps": 1e-8, "seed": 77, "model": "wgan"}"#,
    )
    .unwrap();
    let mut dl = ds.clone();
    let last = dl.layers.len() - 1;
    dl.layers[last].act = Act::None;
    let mut g = GpuMlp::new(gs.clone(), dev.clone()).unwrap();
    let mut d = GpuMlp::new(dl.clone(), dev.clone()).unwrap();
    g.set(Buffer::Params, &params_like(&gs, 1)).unwrap();
    d.set(Buffer::Params, &params_like(&dl, 2)).unwrap();
    let mut ft = FamilyGan::<GpuMlp>::new(fcfg, &gs, &dl, None).unwrap();
    ft.set_data(&pixels, count).unwrap();
    ft.step(&mut g, &mut d, n, &mut out).unwrap();
    ft.step(&mut g, &mut d, n, &mut out).unwrap();
    let info = ft.info();
    eprintln!("general step (wgan) on the GPU: {info}");
    assert!(info["dispatches_per_step"].as_f64().unwrap() > 0.0);
    assert!(info["submissions"].as_u64().unwrap() >= n as u64);
    assert!(info["record_us_per_step"].as_f64().unwrap() > 0.0);
    assert!(
        info["barriers_per_step"].as_f64().unwrap() < info["dispatches_per_step"].as_f64().unwrap()
    );

    let (mut cg, mut cd) = (CpuMlp::new(gs.clone(), 1), CpuMlp::new(ds.clone(), 1));
    cg.params_mut().copy_from_slice(&params_like(&gs, 1));
    cd.params_mut().copy_from_slice(&params_like(&ds, 2));
    let mut ct = CpuGan::new(cfg, &cg, &cd).unwrap();
    ct.set_data(&pixels, count).unwrap();
    ct.step(&mut cg, &mut cd, n, &mut out).unwrap();
    let info = ct.info();
    for k in [
        "dispatches_per_step",
        "barriers_per_step",
        "record_us_per_step",
        "submit_us_per_step",
    ] {
        assert_eq!(info[k], 0.0, "{k} on the CPU backend");
    }
    assert_eq!(info["submissions"], 0);
}

/// The seed's model at batch 64 (and 256): time per step on this device and on the CPU backend. Run with
/// `cargo test --release --test gpu_parity -- --ignored --nocapture bench`.
#[test]
#[ignore]
fn bench_seed_gan_step() {
    let Some(dev) = device() else { return };
    let (gs, ds) = seed_gan();
    let count = 10_000;
    let pixels = bench_pixels(count);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let quick = dev.is_software();
    for batch in [64usize, 256] {
        let cfg = gan_config(batch);
        let mut r = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
        let n = if quick { 4 } else { 200 };
        let mut out = vec![0f32; n * STEP_OUTPUTS];
        r.gan.step(&mut r.g, &mut r.d, n, &mut out).unwrap(); // warm-up: pipelines, bind groups, buffers
        let t = Instant::now();
        r.gan.step(&mut r.g, &mut r.d, n, &mut out).unwrap();
        let gpu_ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        let per_step = r.gan.last_dispatches / n;
        let t = Instant::now();
        let mut one = vec![0f32; STEP_OUTPUTS];
        for _ in 0..n.min(20) {
            r.gan.step(&mut r.g, &mut r.d, 1, &mut one).unwrap();
        }
        let gpu_one_ms = t.elapsed().as_secs_f64() * 1e3 / n.min(20) as f64;
        let default_target = r.g.split_target;
        for target in [0u32, 64, 128, 512, 1024] {
            r.g.split_target = target;
            r.d.split_target = target;
            r.gan.step(&mut r.g, &mut r.d, n, &mut out).unwrap();
            let t = Instant::now();
            r.gan.step(&mut r.g, &mut r.d, n, &mut out).unwrap();
            eprintln!(
                "bench seed GAN batch {batch}, split target {target}: GPU {:.3} ms/step, {} dispatches per step",
                t.elapsed().as_secs_f64() * 1e3 / n as f64,
                r.gan.last_dispatches / n
            );
        }
        r.g.split_target = default_target;
        r.d.split_target = default_target;

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (cpu_ms, cpu_out) = pool.install(|| {
            let mut cg = CpuMlp::new(gs.clone(), threads);
            let mut cd = CpuMlp::new(ds.clone(), threads);
            cg.params_mut().copy_from_slice(&params_like(&gs, 1));
            cd.params_mut().copy_from_slice(&params_like(&ds, 2));
            let mut cgan = CpuGan::new(cfg, &cg, &cd).unwrap();
            cgan.set_data(&pixels, count).unwrap();
            let mut o = vec![0f32; STEP_OUTPUTS];
            cgan.step(&mut cg, &mut cd, 1, &mut o).unwrap();
            let m = if quick { 4 } else { 50 };
            let t = Instant::now();
            for _ in 0..m {
                cgan.step(&mut cg, &mut cd, 1, &mut o).unwrap();
            }
            (t.elapsed().as_secs_f64() * 1e3 / m as f64, o)
        });
        eprintln!(
            "bench seed GAN batch {batch} on {} (split target {default_target}): GPU {gpu_ms:.3} ms/step ({n} steps per call, {per_step} dispatches per \
             step), GPU {gpu_one_ms:.3} ms/step (1 step per call), CPU ({threads} threads) {cpu_ms:.3} ms/step; last \
             GPU losses {:?}, CPU {:?}",
            dev.info()["name"],
            &out[out.len() - 4..],
            cpu_out
        );
    }
}

/// Issue 15, stage 2, side by side in one run: the seed's model at batch 64, calls of 64 steps, submitted in one
/// submission (as before) or every `STEPS_PER_SUBMIT` steps (now), alternating; wall ms/step, the recording CPU
/// us/step and the dispatches / barriers per step from the GAN's info. Run with
/// `cargo test --release --test gpu_parity -- --ignored --nocapture bench_submission_overlap`
/// (`GAN_BENCH_ROUNDS` rounds, default 2 on a software adapter, 10 on a hardware one).
#[test]
#[ignore]
fn bench_submission_overlap() {
    let Some(dev) = device() else { return };
    let (gs, ds) = seed_gan();
    let count = 10_000;
    let pixels = bench_pixels(count);
    let rounds: usize = std::env::var("GAN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if dev.is_software() { 2 } else { 10 });
    let n = 64;
    let mut r = gpu_run(&dev, &gs, &ds, gan_config(64), &pixels, count);
    let mut out = vec![0f32; n * STEP_OUTPUTS];
    r.gan.steps_per_submit = STEPS_PER_SUBMIT;
    r.gan
        .step(&mut r.g, &mut r.d, 8, &mut out[..8 * STEP_OUTPUTS])
        .unwrap(); // warm-up: pipelines, bind groups
    type Row = (usize, Vec<f64>, Vec<f64>, Vec<f64>, serde_json::Value);
    let mut rows: Vec<Row> = [n, STEPS_PER_SUBMIT]
        .iter()
        .map(|&k| {
            (
                k,
                Vec::new(),
                Vec::new(),
                Vec::new(),
                serde_json::Value::Null,
            )
        })
        .collect();
    for round in 0..rounds {
        for row in rows.iter_mut() {
            r.gan.steps_per_submit = row.0;
            let t = Instant::now();
            r.gan.step(&mut r.g, &mut r.d, n, &mut out).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
            let info = r.gan.info();
            row.1.push(ms);
            let us = |k: &str| info[k].as_f64().unwrap();
            row.2.push(us("record_us_per_step"));
            row.3.push(us("submit_us_per_step"));
            eprintln!(
                "round {round}: {} steps per submission: {ms:.3} ms/step, record {:.1} us/step, submit {:.1} us/step",
                row.0,
                us("record_us_per_step"),
                us("submit_us_per_step")
            );
            row.4 = info;
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    for (k, ms, rec, sub, info) in rows.iter_mut() {
        eprintln!(
            "bench submission overlap on {}: batch 64, {n} steps per call, {k} steps per submission ({} submissions): \
             median {:.3} ms/step, record {:.1} us/step, submit {:.1} us/step, {} dispatches and {:.2} barriers per \
             step ({rounds} rounds)",
            dev.info()["name"],
            info["submissions"],
            median(ms),
            median(rec),
            median(sub),
            info["dispatches_per_step"],
            info["barriers_per_step"].as_f64().unwrap(),
        );
    }
}

#[test]
fn split_k_paths_match_cpu() {
    let Some(dev) = device() else { return };
    let t = Instant::now();
    // K of 128..150 splits into 2 slices when forced (slices hold at least 4 K steps of 16).
    let bn = Some(Bn {
        eps: 0.8,
        momentum: 0.1,
    });
    let spec = Spec::new(
        150,
        &[
            (140, bn, Act::LeakyRelu(0.2)),
            (130, None, Act::Sigmoid),
            (9, None, Act::Tanh),
        ],
    );
    for (rows, train) in [(2, true), (64, true), (65, true), (3, false), (130, false)] {
        let (mut c, mut g) = pair(&spec, &dev, 40 + rows as u32);
        g.split_target = 100_000;
        let label = format!("split-K, batch {rows}, train {train}");
        let x = rand_vec(rows * spec.input, 41, -2.0, 2.0);
        let yc = forward(&mut c, &x, rows, train).unwrap();
        let yg = forward(&mut g, &x, rows, train).unwrap();
        check(&format!("{label} forward"), &yg, &yc, 1e-4, 1e-5);
        check(
            &format!("{label} running stats"),
            &g.get_vec(Buffer::Running).unwrap(),
            &c.buffers,
            1e-4,
            1e-5,
        );
        let dout = rand_vec(rows * spec.output(), 42, -1.0, 1.0);
        let dxc = backward(&mut c, &dout).unwrap();
        let dxg = backward(&mut g, &dout).unwrap();
        check(&format!("{label} dx"), &dxg, &dxc, 1e-4, 1e-5);
        check(
            &format!("{label} param grads"),
            &g.get_vec(Buffer::Grads).unwrap(),
            &c.grads,
            1e-4,
            1e-5,
        );
    }

    // A GAN whose every GEMM with K >= 128 is split, batch 8 (fused statistics otherwise) and 70 (two-pass otherwise).
    let gs = Spec::new(
        128,
        &[
            (130, None, Act::LeakyRelu(0.2)),
            (140, bn, Act::LeakyRelu(0.2)),
            (150, None, Act::Tanh),
        ],
    );
    let ds = Spec::new(
        150,
        &[(130, None, Act::LeakyRelu(0.2)), (1, None, Act::Sigmoid)],
    );
    for batch in [8usize, 70] {
        let count = 2 * batch + 3;
        let pixels: Vec<u8> = (0..count * 150).map(|i| (i * 29 % 256) as u8).collect();
        let cfg = gan_config(batch);
        let steps = 4; // the third step is the short batch of 3 rows
        let (cg, cd, _cgan, cpu_out) = cpu_run(&gs, &ds, cfg, &pixels, count, steps);
        let mut r = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
        r.g.split_target = 100_000;
        r.d.split_target = 100_000;
        let mut out = vec![0f32; steps * STEP_OUTPUTS];
        r.gan.step(&mut r.g, &mut r.d, steps, &mut out).unwrap();
        check(
            &format!("split-K gan batch {batch} losses"),
            &out,
            &cpu_out,
            1e-4,
            1e-5,
        );
        check(
            &format!("split-K gan batch {batch} D grads"),
            &r.d.get_vec(Buffer::Grads).unwrap(),
            &cd.grads,
            1e-3,
            1e-4,
        );
        check(
            &format!("split-K gan batch {batch} G running stats"),
            &r.g.get_vec(Buffer::Running).unwrap(),
            &cg.buffers,
            1e-3,
            1e-4,
        );
        // Unsplit on the same device: close to the split run (different summation order only).
        let mut u = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
        u.g.split_target = 0;
        u.d.split_target = 0;
        let mut out_u = vec![0f32; steps * STEP_OUTPUTS];
        u.gan.step(&mut u.g, &mut u.d, steps, &mut out_u).unwrap();
        // Each split GEMM's last arriver sums its slices: splitting adds no dispatch.
        assert_eq!(
            r.gan.last_dispatches, u.gan.last_dispatches,
            "split-K adds no reduction dispatch"
        );
        check(
            &format!("split vs unsplit gan batch {batch}"),
            &out,
            &out_u,
            1e-4,
            1e-5,
        );
        // Whichever slice arrives last, it sums the slices in order: a second run gives the same bits.
        let mut again = gpu_run(&dev, &gs, &ds, cfg, &pixels, count);
        again.g.split_target = 100_000;
        again.d.split_target = 100_000;
        let mut out_again = vec![0f32; steps * STEP_OUTPUTS];
        again
            .gan
            .step(&mut again.g, &mut again.d, steps, &mut out_again)
            .unwrap();
        assert_eq!(out, out_again, "split-K gan batch {batch}: run to run");
        assert_eq!(
            r.d.get_vec(Buffer::Params).unwrap(),
            again.d.get_vec(Buffer::Params).unwrap(),
            "split-K gan batch {batch}: D's parameters run to run"
        );
    }
    eprintln!("split-K parity in {:.2?}", t.elapsed());
}

/// The general step of every model it runs (bgan, softmax_gan, wgan, wgan_gp, wgan_div) on the GPU's MLPs against
/// the CPU's: 4 steps from the library's own noise, interpolation weights and dataset, the records and both networks'
/// parameters. Tolerances as in the loss test: the first step tightly, then about lr per element and step (Adam's
/// and RMSprop's normalized updates of rounding-noise gradients), 10 lr for RMSprop's first step.
#[test]
fn family_models_match_cpu() {
    let Some(dev) = device() else { return };
    let (gs, d_sigmoid) = seed_like_gan(8, 12);
    let mut d_linear = d_sigmoid.clone();
    let last = d_linear.layers.len() - 1;
    d_linear.layers[last].act = Act::None;
    let count = 37;
    let pixels: Vec<u8> = rand_vec(count * 12, 11, 0.0, 256.0)
        .iter()
        .map(|&v| v as u8)
        .collect();
    let base = r#""batch_size": 8, "b1": 0.5, "b2": 0.999, "eps": 1e-8, "seed": 77"#;
    for (model, extra, lr) in [
        ("bgan", "", 2e-4),
        ("softmax_gan", "", 2e-4),
        ("wgan", "", 5e-5),
        ("wgan_gp", r#", "n_critic": 2"#, 2e-4),
        ("wgan_div", r#", "div_k": 100.0"#, 2e-4),
        ("gan", r#", "optimizer": "adam""#, 2e-4), // with a dropout D: the general step
    ] {
        let cfg = GanConfig::parse(&format!(
            r#"{{{base}, "lr": {lr}, "model": "{model}"{extra}}}"#
        ))
        .unwrap();
        let d_dropout = d_sigmoid.clone().with_dropout(0, 0.4);
        let ds = match model {
            "bgan" => &d_sigmoid,
            "gan" => &d_dropout,
            _ => &d_linear,
        };
        let (mut cg, mut cd) = (CpuMlp::new(gs.clone(), 1), CpuMlp::new(ds.clone(), 1));
        cg.params_mut().copy_from_slice(&params_like(&gs, 1));
        cd.params_mut().copy_from_slice(&params_like(ds, 2));
        let mut g = GpuMlp::new(gs.clone(), dev.clone()).unwrap();
        let mut d = GpuMlp::new(ds.clone(), dev.clone()).unwrap();
        g.set(Buffer::Params, cg.params()).unwrap();
        d.set(Buffer::Params, cd.params()).unwrap();
        let mut ct = FamilyGan::<CpuMlp>::new(cfg, &gs, ds, None).unwrap();
        let mut gt = FamilyGan::<GpuMlp>::new(cfg, &gs, ds, None).unwrap();
        ct.set_data(&pixels, count).unwrap();
        gt.set_data(&pixels, count).unwrap();
        let (mut co, mut go) = (vec![0f32; 4 * STEP_OUTPUTS], vec![0f32; 4 * STEP_OUTPUTS]);
        ct.step(&mut cg, &mut cd, 4, &mut co).unwrap();
        gt.step(&mut g, &mut d, 4, &mut go).unwrap();
        eprintln!("{model}: cpu {:?} gpu {:?}", &co[..4], &go[..4]);
        check(
            &format!("{model} losses, step 1"),
            &go[..STEP_OUTPUTS],
            &co[..STEP_OUTPUTS],
            1e-4,
            1e-5,
        );
        let move_ = if model == "wgan" { 10.0 * lr } else { lr } as f32;
        check(
            &format!("{model} records, 4 steps"),
            &go,
            &co,
            1e-3,
            2.0 * move_ * 4.0,
        );
        let atol = 2.0 * move_ * 4.0;
        check(
            &format!("{model} G params"),
            &g.get_vec(Buffer::Params).unwrap(),
            cg.params(),
            1e-4,
            atol,
        );
        check(
            &format!("{model} D params"),
            &d.get_vec(Buffer::Params).unwrap(),
            cd.params(),
            1e-4,
            atol,
        );
    }
}

/// The gradient penalties' second-order pass on the GPU (gpu/penalty.rs) against the host pass (core/penalty.rs,
/// itself checked by finite differences), on a critic with a LeakyReLU top and one with a linear top, added to
/// existing gradients.
#[test]
fn input_grad_backward_matches_the_host_pass() {
    let Some(dev) = device() else { return };
    for top in [Act::None, Act::LeakyRelu(0.2)] {
        let spec = Spec::new(
            70,
            &[
                (33, None, Act::LeakyRelu(0.2)),
                (17, None, Act::LeakyRelu(0.2)),
                (2, None, top),
            ],
        );
        let rows = 9;
        let params = params_like(&spec, 5);
        let (x, v) = (
            rand_vec(rows * 70, 6, -1.0, 1.0),
            rand_vec(rows * 70, 7, -1.0, 1.0),
        );
        let dy = rand_vec(rows * 2, 8, 0.5, 1.5);
        let before = rand_vec(spec.param_count, 9, -0.1, 0.1);
        let mut want = before.clone();
        gan_native::core::penalty::input_grad_backward_host(&spec, &params, &x, &dy, &v, &mut want);
        let mut g = GpuMlp::new(spec.clone(), dev.clone()).unwrap();
        g.set(Buffer::Params, &params).unwrap();
        g.set(Buffer::Grads, &before).unwrap();
        forward(&mut g, &x[..3 * 70], 3, true).unwrap(); // a smaller forward first: the pass lays out its own regions
        g.input_grad_backward(&x, &dy, &v).unwrap();
        check(
            &format!("input-gradient backward, top {top:?}"),
            &g.get_vec(Buffer::Grads).unwrap(),
            &want,
            1e-4,
            1e-5,
        );
        // Twice in a row (the regions stay), and the MLP still runs a normal forward and backward afterwards.
        g.set(Buffer::Grads, &before).unwrap();
        g.input_grad_backward(&x, &dy, &v).unwrap();
        check(
            "input-gradient backward, again",
            &g.get_vec(Buffer::Grads).unwrap(),
            &want,
            1e-4,
            1e-5,
        );
        forward(&mut g, &x, rows, true).unwrap();
        backward(&mut g, &dy).unwrap();
    }
}

/// Dropout (core/dropout.rs) on the GPU against the CPU: the same integer hash, so the same masks bit for bit (the
/// zeros of the outputs coincide), then the outputs, the input gradients and the parameter gradients of a backward
/// over all rows and over the first rows; a forward of another pass draws other masks on both.
#[test]
fn dropout_matches_cpu() {
    let Some(dev) = device() else { return };
    use gan_native::core::dropout::DropoutStream;
    let lr = Act::LeakyRelu(0.2);
    let spec = Spec::new(40, &[(70, None, lr), (33, None, lr), (3, None, Act::None)])
        .with_dropout(0, 0.4)
        .with_dropout(1, 0.1);
    for (rows, pass) in [(9, 0), (130, 5)] {
        let (mut c, mut g) = pair(&spec, &dev, 3);
        let s = DropoutStream {
            seed: 21,
            stream: 7,
            pass,
        };
        c.set_dropout_stream(s);
        g.set_dropout_stream(s);
        let x = rand_vec(rows * 40, 4, -1.0, 1.0);
        let (yc, yg) = (
            forward(&mut c, &x, rows, true).unwrap(),
            forward(&mut g, &x, rows, true).unwrap(),
        );
        check(
            &format!("dropout forward, {rows} rows"),
            &yg,
            &yc,
            1e-4,
            1e-5,
        );
        let dy = rand_vec(rows * 3, 5, -1.0, 1.0);
        let (dc, dg) = (
            backward(&mut c, &dy).unwrap(),
            backward(&mut g, &dy).unwrap(),
        );
        check(&format!("dropout dx, {rows} rows"), &dg, &dc, 1e-4, 1e-5);
        check(
            &format!("dropout grads, {rows} rows"),
            &g.get_vec(Buffer::Grads).unwrap(),
            &c.get_vec(Buffer::Grads).unwrap(),
            1e-4,
            1e-5,
        );
        // The masks themselves: the first layer's zeros, read through a net that stops there.
        let first = Spec::new(40, &[(70, None, lr)]).with_dropout(0, 0.4);
        let (mut c1, mut g1) = pair(&first, &dev, 3);
        c1.set_dropout_stream(s);
        g1.set_dropout_stream(s);
        let (a, b) = (
            forward(&mut c1, &x, rows, true).unwrap(),
            forward(&mut g1, &x, rows, true).unwrap(),
        );
        let zeros = |v: &[f32]| v.iter().map(|&t| t == 0.0).collect::<Vec<_>>();
        assert_eq!(zeros(&a), zeros(&b), "the masks differ");
        let kept = a.iter().filter(|&&t| t != 0.0).count() as f64 / a.len() as f64;
        assert!((kept - 0.6).abs() < 0.1, "kept {kept}");
    }
}

/// cgan on the GPU against the CPU: label embeddings (the table read and its gradient written by range), a D with
/// dropout drawn per pass, 4 steps of the general step.
#[test]
fn cgan_matches_cpu() {
    let Some(dev) = device() else { return };
    let (g0, d0) = seed_like_gan(8, 12);
    let e = |first: bool, name: &str| Embed {
        classes: 5,
        dim: 5,
        first,
        name: name.into(),
    };
    let gs = g0.with_embedding(e(true, "label_emb"));
    let mut d_linear = d0.with_dropout(0, 0.4);
    let last = d_linear.layers.len() - 1;
    d_linear.layers[last].act = Act::None;
    let ds = d_linear.with_embedding(e(false, "label_embedding"));
    let count = 37;
    let pixels: Vec<u8> = rand_vec(count * 12, 11, 0.0, 256.0)
        .iter()
        .map(|&v| v as u8)
        .collect();
    let labels: Vec<u32> = (0..count as u32).map(|i| i * 3 % 5).collect();
    let cfg = GanConfig::parse(
        r#"{"batch_size": 8, "b1": 0.5, "b2": 0.999, "eps": 1e-8, "seed": 77, "lr": 2e-4, "model": "cgan"}"#,
    )
    .unwrap();
    let (mut cg, mut cd) = (CpuMlp::new(gs.clone(), 1), CpuMlp::new(ds.clone(), 1));
    cg.params_mut().copy_from_slice(&params_like(&gs, 1));
    cd.params_mut().copy_from_slice(&params_like(&ds, 2));
    let mut g = GpuMlp::new(gs.clone(), dev.clone()).unwrap();
    let mut d = GpuMlp::new(ds.clone(), dev.clone()).unwrap();
    g.set(Buffer::Params, cg.params()).unwrap();
    d.set(Buffer::Params, cd.params()).unwrap();
    let mut ct = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, None).unwrap();
    let mut gt = FamilyGan::<GpuMlp>::new(cfg, &gs, &ds, None).unwrap();
    for t in [&mut ct as &mut dyn Gan, &mut gt] {
        t.set_data(&pixels, count).unwrap();
        t.set_labels(&labels).unwrap();
    }
    let (mut co, mut go) = (vec![0f32; 4 * STEP_OUTPUTS], vec![0f32; 4 * STEP_OUTPUTS]);
    ct.step(&mut cg, &mut cd, 4, &mut co).unwrap();
    gt.step(&mut g, &mut d, 4, &mut go).unwrap();
    check(
        "cgan losses, step 1",
        &go[..STEP_OUTPUTS],
        &co[..STEP_OUTPUTS],
        1e-4,
        1e-5,
    );
    check("cgan records, 4 steps", &go, &co, 1e-3, 2e-3);
    for (what, gpu, cpu) in [
        ("G params", g.get_vec(Buffer::Params).unwrap(), cg.params()),
        ("D params", d.get_vec(Buffer::Params).unwrap(), cd.params()),
        ("G grads", g.get_vec(Buffer::Grads).unwrap(), &cg.grads[..]),
    ] {
        check(&format!("cgan {what}"), &gpu, cpu, 1e-4, 2e-3);
    }
    // The tables themselves moved, alike on both backends.
    assert_ne!(cg.params()[..25], params_like(&gs, 1)[..25]);
}

/// aae on the GPU against the CPU: the encoder with its two heads, the reparameterization, the decoder and D on the
/// code, 4 steps of the general step (the three networks' parameters compared).
#[test]
fn aae_matches_cpu() {
    let Some(dev) = device() else { return };
    let (lr, bn) = (
        Act::LeakyRelu(0.2),
        Some(Bn {
            eps: 1e-5,
            momentum: 0.1,
        }),
    );
    let gs = Spec::new(4, &[(16, None, lr), (16, bn, lr), (12, None, Act::Tanh)]);
    let ds = Spec::new(4, &[(10, None, lr), (6, None, lr), (1, None, Act::Sigmoid)]);
    let mut es = Spec::new(12, &[(16, None, lr), (16, bn, lr), (8, None, Act::None)]);
    es.layers[2].heads = vec![("mu".into(), 4), ("logvar".into(), 4)];
    let count = 37;
    let pixels: Vec<u8> = rand_vec(count * 12, 13, 0.0, 256.0)
        .iter()
        .map(|&v| v as u8)
        .collect();
    let cfg = GanConfig::parse(
        r#"{"batch_size": 8, "b1": 0.5, "b2": 0.999, "eps": 1e-8, "seed": 78, "lr": 2e-4, "model": "aae"}"#,
    )
    .unwrap();
    let specs = [&gs, &ds, &es];
    let mut cpu: Vec<CpuMlp> = specs.iter().map(|s| CpuMlp::new((*s).clone(), 1)).collect();
    let mut gpu: Vec<GpuMlp> = specs
        .iter()
        .map(|s| GpuMlp::new((*s).clone(), dev.clone()).unwrap())
        .collect();
    for (k, (c, g)) in cpu.iter_mut().zip(gpu.iter_mut()).enumerate() {
        c.params_mut()
            .copy_from_slice(&params_like(specs[k], k as u32 + 3));
        g.set(Buffer::Params, c.params()).unwrap();
    }
    let mut ct = FamilyGan::<CpuMlp>::new(cfg, &gs, &ds, Some(&es)).unwrap();
    let mut gt = FamilyGan::<GpuMlp>::new(cfg, &gs, &ds, Some(&es)).unwrap();
    ct.set_data(&pixels, count).unwrap();
    gt.set_data(&pixels, count).unwrap();
    let (mut co, mut go) = (vec![0f32; 4 * STEP_OUTPUTS], vec![0f32; 4 * STEP_OUTPUTS]);
    let [cg, cd, ce] = &mut cpu[..] else {
        unreachable!()
    };
    ct.step_with(cg, cd, Some(ce), 4, &mut co).unwrap();
    let [gg, gd, ge] = &mut gpu[..] else {
        unreachable!()
    };
    gt.step_with(gg, gd, Some(ge), 4, &mut go).unwrap();
    check(
        "aae losses, step 1",
        &go[..STEP_OUTPUTS],
        &co[..STEP_OUTPUTS],
        1e-4,
        1e-5,
    );
    check("aae records, 4 steps", &go, &co, 1e-3, 2e-3);
    for (k, what) in ["decoder", "discriminator", "encoder"].iter().enumerate() {
        check(
            &format!("aae {what} params"),
            &gpu[k].get_vec(Buffer::Params).unwrap(),
            cpu[k].params(),
            1e-4,
            2e-3,
        );
    }
    assert_eq!(cpu[2].state.adam_t, 4, "the encoder updated every step");
}
