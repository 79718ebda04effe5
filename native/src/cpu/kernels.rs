//! CPU kernels: the layers' GEMMs (`gemm.rs`), the fused block forward/backward, BCE and Adam.
//!
//! Argument order follows llm.c: outputs, saved state, inputs, weights, sizes. Every buffer carries its shape.
//!
//! Layout: inside the CPU backend, activations and their gradients are *feature-major*: a batch of `rows` samples of
//! `f` features is stored as `[f, ld]` (element `(row b, feature j)` at `j * ld + b`, `ld >= rows`). With weights in
//! PyTorch's `[out, in]` layout this lets every GEMM read the weights in place (no packing copy of `W` per call,
//! which cost a fifth of the step in the row-major layout) and makes BatchNorm's per-feature reductions contiguous.
//! The public API converts to and from row-major at its edges.

use super::gemm::{Epilogue, Gemm, View};
use crate::core::dropout::LayerMask;
use crate::core::spec::{Act, Layer};
use rayon::prelude::*;

/// Elementwise work below this many elements runs on one thread.
const PAR_MIN_ELEMS: usize = 1 << 16;

/// The vector kernels the CPU backend runs on this machine: AVX-512 (built with the `avx512` feature, the default, on
/// a CPU with AVX-512 F/BW/DQ/VL), AVX2+FMA, or baseline x86-64 (and on other targets, the compiler's baseline).
/// The `gemm` crate picks its own kernels by itself (AVX-512F, else FMA, else scalar); its AVX-512 ones exist only
/// with its `x86-v4` feature, which our `avx512` turns on, so both stop at AVX2 in a build without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimdLevel {
    Avx512,
    Avx2,
    Baseline,
}

impl SimdLevel {
    /// `avx512`, `avx2` or `baseline` (as `gan_context_info` reports it).
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Avx512 => "avx512",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Baseline => "baseline",
        }
    }
}

/// The level of this build on this CPU (see [`SimdLevel`]); the features are detected once by `std` and cached.
pub fn simd_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(feature = "avx512")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return SimdLevel::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return SimdLevel::Avx2;
        }
    }
    SimdLevel::Baseline
}

/// Defines `fn name(args)` three times: for AVX-512, for AVX2+FMA and for baseline x86-64, and picks one at run time
/// by [`simd_level`] (the build itself targets baseline x86-64 so that one library runs everywhere). The bodies are
/// the same code, and Rust never fuses a multiply and an add on its own, so all three give bitwise the same results.
macro_rules! simd_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn inner($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                match simd_level() {
                    // SAFETY: `simd_level` found the features `v4` was compiled for.
                    SimdLevel::Avx512 => return unsafe { v4($($arg),*) },
                    // SAFETY: as above, for `v3`.
                    SimdLevel::Avx2 => return unsafe { v3($($arg),*) },
                    SimdLevel::Baseline => {}
                }
            }
            inner($($arg),*)
        }
    };
}

/// A layer's weights `W [out, inp]` (row-major, as PyTorch holds them), read in place by its GEMMs.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    pub w: &'a [f32],
    pub inp: usize,
    pub out: usize,
}

impl<'a> Weights<'a> {
    /// Layer `l`'s weights in the flat parameters.
    pub fn of(params: &'a [f32], l: &Layer) -> Weights<'a> {
        Weights {
            w: &params[l.w..l.w + l.out * l.inp],
            inp: l.inp,
            out: l.out,
        }
    }

    /// W as the forward's B, `[inp, out]`: B(p, j) = W[j, p].
    fn forward_b(&self) -> View<'a> {
        View::new(self.w, 1, self.inp)
    }

    /// W as the input gradient's B, `[out, inp]`: B(p, j) = W[p, j].
    fn input_grad_b(&self) -> View<'a> {
        View::new(self.w, self.inp, 1)
    }
}

/// Forward matmul: `y[f=out, ld_y]` = `x[f=inp, ld_x]` times `W[out, inp]^T`, over `rows` samples (no bias), then
/// `epilogue` on each output feature's `rows` samples.
pub fn matmul_forward(
    y: &mut [f32],
    ld_y: usize,
    (x, ld_x): (&[f32], usize),
    w: &Weights,
    rows: usize,
    threads: usize,
    epilogue: Option<Epilogue>,
) {
    // As a GEMM over samples: Y[rows, out] = X[rows, inp] W^T, Y and X column-major (feature-major).
    let g = Gemm {
        m: rows,
        n: w.out,
        k: w.inp,
        a: View::new(x, 1, ld_x),
        b: w.forward_b(),
        threads,
    };
    g.run(false, y, ld_y, epilogue);
}

/// Weight gradient: `dw[out, inp]` = sum over samples of `dz[f=out]` times `x[f=inp]` (added to `dw` when `acc`).
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_weight(
    acc: bool,
    dw: &mut [f32],
    (dz, ld_dz): (&[f32], usize),
    (x, ld_x): (&[f32], usize),
    rows: usize,
    inp: usize,
    out: usize,
    threads: usize,
) {
    // dW viewed column-major [inp, out] (element (i, o) at o * inp + i) = X^T[inp, rows] dZ^T[rows, out]:
    // A(i, b) = x[i * ld_x + b], B(b, o) = dz[o * ld_dz + b].
    let g = Gemm {
        m: inp,
        n: out,
        k: rows,
        a: View::new(x, ld_x, 1),
        b: View::new(dz, 1, ld_dz),
        threads,
    };
    g.run(acc, dw, inp, None);
}

/// Input gradient: `dx[f=inp, ld_dx]` = `dz[f=out, ld_dz]` times `W[out, inp]`, over `rows` samples, then
/// `epilogue` on each input feature's `rows` samples.
pub fn matmul_backward_input(
    dx: &mut [f32],
    ld_dx: usize,
    (dz, ld_dz): (&[f32], usize),
    w: &Weights,
    rows: usize,
    threads: usize,
    epilogue: Option<Epilogue>,
) {
    // dX[rows, inp] = dZ[rows, out] W, column-major.
    let g = Gemm {
        m: rows,
        n: w.inp,
        k: w.out,
        a: View::new(dz, 1, ld_dz),
        b: w.input_grad_b(),
        threads,
    };
    g.run(false, dx, ld_dx, epilogue);
}

/// `exp(x)` for float32 (Cephes' `expf`: range reduction by ln 2 and a degree-6 polynomial, about 1 ulp), written
/// without branches so that it vectorizes. Inputs are clamped to [-87, 88].
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5e-1;
    let p = p * r * r + r + 1.0;
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `tanh(x)` for float32 (Cephes' `tanhf`: a polynomial below |x| = 0.625, `1 - 2 / (exp(2|x|) + 1)` above; about
/// 2 ulp), branch-free so that it vectorizes.
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let ax = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let big = (1.0 - 2.0 / (exp_f32(2.0 * ax) + 1.0)).copysign(x);
    if ax < 0.625 {
        small
    } else {
        big
    }
}

/// The activation, exactly as the reference defines it (tanh through `tanh_f32`, sigmoid through libm's `exp`, so
/// that saturated sigmoids underflow to 0 as PyTorch's do).
#[inline(always)]
fn act_forward(act: Act, z: f32) -> f32 {
    match act {
        Act::None => z,
        Act::LeakyRelu(s) => {
            if z > 0.0 {
                z
            } else {
                z * s
            }
        }
        Act::Tanh => tanh_f32(z),
        Act::Sigmoid => 1.0 / (1.0 + (-z).exp()),
    }
}

/// The derivative of the activation, from its saved output `a`.
#[inline(always)]
fn act_grad(act: Act, a: f32) -> f32 {
    match act {
        Act::None => 1.0,
        Act::LeakyRelu(s) => {
            if a > 0.0 {
                1.0
            } else {
                s
            }
        }
        Act::Tanh => 1.0 - a * a,
        Act::Sigmoid => a * (1.0 - a),
    }
}

/// Sum of a slice with 16 independent lanes (so that it vectorizes), then the lanes in order: a fixed order,
/// whatever the thread count.
#[inline(always)]
fn sum16(v: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += x;
    }
    acc.iter().sum()
}

/// `sum(a * b)` with 16 lanes, as `sum16`.
#[inline(always)]
fn dot16(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[i] += x * y;
    }
    acc.iter().sum()
}

simd_fn! {
    /// One feature of a block without BN: `a = act(a + bias)` over its samples.
    fn feature_bias_act(a: &mut [f32], bias: f32, act: Act) {
        match act {
            Act::None => a.iter_mut().for_each(|v| *v += bias),
            Act::LeakyRelu(s) => a.iter_mut().for_each(|v| {
                let z = *v + bias;
                *v = if z > 0.0 { z } else { z * s };
            }),
            Act::Tanh => a.iter_mut().for_each(|v| *v = tanh_f32(*v + bias)),
            Act::Sigmoid => a.iter_mut().for_each(|v| *v = act_forward(Act::Sigmoid, *v + bias)),
        }
    }
}

simd_fn! {
    /// One feature of a BN block: `xhat = (a - mean) * rstd`, `a = act(gamma * xhat + beta)`.
    fn feature_bn_act(a: &mut [f32], xhat: &mut [f32], mean: f32, rstd: f32, gamma: f32, beta: f32, act: Act) {
        for (v, h) in a.iter_mut().zip(xhat.iter_mut()) {
            let x = (*v - mean) * rstd;
            *h = x;
            *v = gamma * x + beta;
        }
        match act {
            Act::None => {}
            Act::LeakyRelu(s) => a.iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { *v * s }),
            Act::Tanh => a.iter_mut().for_each(|v| *v = tanh_f32(*v)),
            Act::Sigmoid => a.iter_mut().for_each(|v| *v = act_forward(Act::Sigmoid, *v)),
        }
    }
}

simd_fn! {
    /// One feature's batch statistics: adds the bias in place and returns (mean, biased variance), two-pass.
    fn feature_stats(a: &mut [f32], bias: f32) -> (f32, f32) {
        a.iter_mut().for_each(|v| *v += bias);
        let n = a.len() as f32;
        let mean = sum16(a) / n;
        let mut acc = [0f32; 16];
        let mut chunks = a.chunks_exact(16);
        for c in &mut chunks {
            for (q, &x) in acc.iter_mut().zip(c) {
                let d = x - mean;
                *q += d * d;
            }
        }
        for (q, &x) in acc.iter_mut().zip(chunks.remainder()) {
            let d = x - mean;
            *q += d * d;
        }
        (mean, acc.iter().sum::<f32>() / n)
    }
}

simd_fn! {
    /// One feature's backward through the activation: `dz *= act'(a)`.
    fn feature_act_grad(dz: &mut [f32], a: &[f32], act: Act) {
        match act {
            Act::None => {}
            Act::LeakyRelu(s) => dz.iter_mut().zip(a).for_each(|(d, &y)| *d *= if y > 0.0 { 1.0 } else { s }),
            Act::Tanh => dz.iter_mut().zip(a).for_each(|(d, &y)| *d *= 1.0 - y * y),
            Act::Sigmoid => dz.iter_mut().zip(a).for_each(|(d, &y)| *d *= act_grad(Act::Sigmoid, y)),
        }
    }
}

simd_fn! {
    /// One feature's BN backward (train mode): returns (dbeta, dgamma) and turns `dz` into `d pre`.
    fn feature_bn_backward(dz: &mut [f32], xhat: &[f32], gamma: f32, rstd: f32) -> (f32, f32) {
        let s1 = sum16(dz);
        let s2 = dot16(dz, xhat);
        let inv = 1.0 / dz.len() as f32;
        let (k, m1, m2) = (gamma * rstd, s1 * inv, s2 * inv);
        for (d, &h) in dz.iter_mut().zip(xhat) {
            *d = k * (*d - m1 - h * m2);
        }
        (s1, s2)
    }
}

simd_fn! {
    /// `v *= k` over a slice.
    fn scale(v: &mut [f32], k: f32) {
        v.iter_mut().for_each(|x| *x *= k);
    }
}

/// Per-feature outputs that a GEMM's epilogue writes from several threads: feature `j` owns elements
/// `[j * stride, (j + 1) * stride)`. The GEMM hands each feature to exactly one epilogue call, which is what makes
/// the writes disjoint.
struct Cols<'a> {
    ptr: *mut f32,
    len: usize,
    stride: usize,
    _borrow: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: a `Cols` only hands out feature `j`'s elements, and the GEMM calls each feature's epilogue once.
unsafe impl Sync for Cols<'_> {}

impl<'a> Cols<'a> {
    fn new(v: &'a mut [f32], stride: usize) -> Cols<'a> {
        Cols {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            stride,
            _borrow: std::marker::PhantomData,
        }
    }

    /// Feature `j`'s elements.
    ///
    /// # Safety
    /// No other live reference to feature `j`'s elements may exist (each feature is taken once, by its epilogue).
    #[allow(clippy::mut_from_ref)]
    unsafe fn take(&self, j: usize) -> &mut [f32] {
        assert!(
            (j + 1) * self.stride <= self.len,
            "feature {j} out of range"
        );
        std::slice::from_raw_parts_mut(self.ptr.add(j * self.stride), self.stride)
    }
}

/// What one block saves in its forward for its backward (feature-major, leading dimension = the forward's rows).
pub struct Saved<'a> {
    /// Output of the activation, `[out, rows]`.
    pub a: &'a mut [f32],
    /// Normalized pre-activation `(pre - mean) * rstd`, `[out, rows]` (BN layers only, else empty).
    pub xhat: &'a mut [f32],
    /// `1 / sqrt(var + eps)` of the statistics used, `[out]` (BN layers only).
    pub rstd: &'a mut [f32],
}

/// Fused block forward: Linear + bias + BatchNorm (batch statistics and the running-statistics update in train mode,
/// running statistics in eval mode) + activation. `x [inp, rows]` feature-major; the outputs are `[out, rows]`.
/// `params`/`buffers` are the flat buffers of the MLP. Everything after the matmul runs in its epilogue, on each
/// feature while it is in cache, on the thread that computed it.
#[allow(clippy::too_many_arguments)]
pub fn block_forward(
    s: Saved,
    x: &[f32],
    params: &[f32],
    buffers: &mut [f32],
    l: &Layer,
    rows: usize,
    train: bool,
    threads: usize,
) {
    let (inp, out) = (l.inp, l.out);
    let a = &mut s.a[..out * rows];
    let (x, w) = (&x[..inp * rows], Weights::of(params, l));
    let bias = &params[l.b..l.b + out];
    let act = l.act;
    let Some(bn) = l.bn else {
        let epi = |j: usize, v: &mut [f32]| feature_bias_act(v, bias[j], act);
        matmul_forward(a, rows, (x, rows), &w, rows, threads, Some(&epi));
        return;
    };
    let gamma = &params[l.gamma..l.gamma + out];
    let beta = &params[l.beta..l.beta + out];
    let xhat = Cols::new(&mut s.xhat[..out * rows], rows);
    let rstd = Cols::new(&mut s.rstd[..out], 1);
    let (rm, rv) = buffers[l.rmean..l.rvar + out].split_at_mut(out);
    let (rm, rv) = (Cols::new(rm, 1), Cols::new(rv, 1));
    let unbias = rows as f32 / (rows as f32 - 1.0);
    // Per feature, over its contiguous samples: bias, statistics, running statistics, normalize, activate.
    let epi = |j: usize, v: &mut [f32]| {
        // SAFETY: the GEMM runs each feature's epilogue once, so feature j's elements are taken once.
        let (h, rstd, rm, rv) = unsafe {
            (
                xhat.take(j),
                &mut rstd.take(j)[0],
                &mut rm.take(j)[0],
                &mut rv.take(j)[0],
            )
        };
        let mean = if train {
            let (mean, var) = feature_stats(v, bias[j]);
            *rm = (1.0 - bn.momentum) * *rm + bn.momentum * mean;
            *rv = (1.0 - bn.momentum) * *rv + bn.momentum * var * unbias;
            *rstd = 1.0 / (var + bn.eps).sqrt();
            mean
        } else {
            *rstd = 1.0 / (*rv + bn.eps).sqrt();
            *rm - bias[j] // the bias is not added in eval mode: fold it into the mean
        };
        feature_bn_act(v, h, mean, *rstd, gamma[j], beta[j], act);
    };
    matmul_forward(a, rows, (x, rows), &w, rows, threads, Some(&epi));
}

/// What a block's forward saved, read by the backward: `a`, `xhat [out, ld]`, `rstd [out]` (see [`Saved`]), and the
/// dropout mask the forward applied to `a`, if any.
#[derive(Clone, Copy)]
pub struct SavedRef<'a> {
    pub l: &'a Layer,
    pub a: &'a [f32],
    pub xhat: &'a [f32],
    pub rstd: &'a [f32],
    pub mask: Option<LayerMask>,
}

impl SavedRef<'_> {
    /// Turns feature `j`'s `d loss / d a` (`d [rows]`, in place) into `d loss / d pre-activation`: the dropout mask,
    /// the activation's derivative, BatchNorm's backward (batch statistics when `train`, else a scale). Writes the
    /// feature's bias (and, with BN, beta and gamma) gradients into `grads` (the flat gradient buffer) when given.
    fn feature_dz(
        &self,
        j: usize,
        d: &mut [f32],
        ld: usize,
        params: &[f32],
        train: bool,
        grads: Option<&Cols>,
    ) {
        let (l, rows) = (self.l, d.len());
        if let Some(m) = &self.mask {
            d.iter_mut()
                .enumerate()
                .for_each(|(r, v)| *v *= m.at(r, j, l.out));
        }
        if l.act != Act::None {
            feature_act_grad(d, &self.a[j * ld..j * ld + rows], l.act);
        }
        let (mut dbeta, mut dgamma) = (0.0, 0.0);
        if l.bn.is_some() {
            let (h, gamma) = (&self.xhat[j * ld..j * ld + rows], params[l.gamma + j]);
            (dbeta, dgamma) = if train {
                feature_bn_backward(d, h, gamma, self.rstd[j])
            } else {
                let sums = (sum16(d), dot16(d, h));
                scale(d, gamma * self.rstd[j]);
                sums
            };
        }
        let Some(g) = grads else { return };
        // SAFETY: the bias, beta and gamma entries of feature j are taken once (by this feature's call).
        unsafe {
            g.take(l.b + j)[0] = sum16(d);
            if l.bn.is_some() {
                g.take(l.beta + j)[0] = dbeta;
                g.take(l.gamma + j)[0] = dgamma;
            }
        }
    }
}

/// `dz [out, rows]` (a block's `d loss / d a`, from outside the network) into `d loss / d pre-activation` in place,
/// feature by feature, with the block's bias/beta/gamma gradients into `grads` when given. Inside the network the
/// same is done by the input-gradient GEMM's epilogue of the block above (see [`block_backward`]).
pub fn output_dz(
    dz: &mut [f32],
    s: &SavedRef,
    ld: usize,
    params: &[f32],
    train: bool,
    grads: Option<&mut [f32]>,
) {
    let rows = dz.len() / s.l.out;
    let grads = grads.map(|g| Cols::new(g, 1));
    for (j, d) in dz.chunks_exact_mut(rows).enumerate() {
        s.feature_dz(j, d, ld, params, train, grads.as_ref());
    }
}

/// Fused block backward over the first `rows` samples of a forward over `ld` samples. `dz [out, rows]` holds
/// `d loss / d pre-activation` (see [`output_dz`]); `x [inp, ld]` is the block's input. Writes the weight gradient
/// into `grads` (flat layout; the bias, beta and gamma gradients were written with `dz`) when given, and
/// `dx [inp, rows]` when given: with `below` (the block under this one), `dx` comes out as *its*
/// `d loss / d pre-activation`, each feature finished in the GEMM's epilogue with its gradients written, so that
/// the next block starts from its GEMMs. BN in train mode needs `rows == ld` (its statistics couple all samples).
#[allow(clippy::too_many_arguments)]
pub fn block_backward(
    dx: Option<(&mut [f32], Option<SavedRef>)>,
    grads: Option<&mut [f32]>,
    dz: &[f32],
    x: &[f32],
    ld: usize,
    params: &[f32],
    l: &Layer,
    rows: usize,
    train: bool,
    threads: usize,
) {
    let (inp, out) = (l.inp, l.out);
    let dz = &dz[..out * rows];
    let w = Weights::of(params, l);
    let mut grads = grads;
    if let Some(g) = grads.as_deref_mut() {
        let dw = &mut g[l.w..l.w + out * inp];
        matmul_backward_weight(false, dw, (dz, rows), (x, ld), rows, inp, out, threads);
    }
    let Some((dx, below)) = dx else { return };
    let dx = &mut dx[..inp * rows];
    let Some(below) = below else {
        matmul_backward_input(dx, rows, (dz, rows), &w, rows, threads, None);
        return;
    };
    let g = grads.map(|g| Cols::new(g, 1));
    let epi = |j: usize, d: &mut [f32]| below.feature_dz(j, d, ld, params, train, g.as_ref());
    matmul_backward_input(dx, rows, (dz, rows), &w, rows, threads, Some(&epi));
}

/// Multiplies `d [out, rows]` (feature-major) by the activation's derivative read from its saved output `a [out, ld]`
/// (the first `rows` samples of each feature).
pub fn act_grad_apply(d: &mut [f32], a: &[f32], ld: usize, rows: usize, act: Act) {
    if act == Act::None {
        return;
    }
    for (j, dj) in d.chunks_exact_mut(rows).enumerate() {
        feature_act_grad(dj, &a[j * ld..j * ld + rows], act);
    }
}

/// Transposes `src [r, c]` (row-major) into `dst [c, r]`.
pub fn transpose(dst: &mut [f32], src: &[f32], r: usize, c: usize) {
    for i in 0..r {
        for j in 0..c {
            dst[j * r + i] = src[i * c + j];
        }
    }
}

/// PyTorch's clamp of each log term in BCE.
const LOG_CLAMP: f32 = -100.0;
/// PyTorch's floor on `p (1 - p)` in the BCE gradient.
const BCE_EPS: f32 = 1e-12;

/// Sum (not mean) of the BCE terms of `p [n]` against `y [n]`, accumulated in f64.
pub fn bce_sum(p: &[f32], y: impl Fn(usize) -> f32) -> f64 {
    p.iter()
        .enumerate()
        .map(|(i, &pi)| {
            let t = y(i);
            let lp = pi.ln().max(LOG_CLAMP);
            let lq = (1.0 - pi).ln().max(LOG_CLAMP);
            -((t * lp + (1.0 - t) * lq) as f64)
        })
        .sum()
}

/// `dp[i] = scale * (p - y) / max(p (1 - p), 1e-12)`: PyTorch's BCE gradient (scale = grad_output / n).
pub fn bce_grad(dp: &mut [f32], p: &[f32], y: impl Fn(usize) -> f32, scale: f32) {
    for (i, (d, &pi)) in dp.iter_mut().zip(p).enumerate() {
        *d = scale * (pi - y(i)) / (pi * (1.0 - pi)).max(BCE_EPS);
    }
}

/// Softmax cross-entropy over `rows` rows of `classes` logits (`z [rows, classes]`, row-major) against integer
/// labels, as PyTorch's `CrossEntropyLoss` (mean reduction): returns the sum over rows of
/// `logsumexp(z_r) - z_r[y_r]` (f64); when `dz` is given, writes `dz = (softmax(z_r) - onehot(y_r)) * scale`.
/// Each row is shifted by its maximum before `exp` (no overflow); the row sum is kept in f64.
pub fn softmax_ce(
    z: &[f32],
    labels: &[u32],
    classes: usize,
    mut dz: Option<&mut [f32]>,
    scale: f32,
) -> f64 {
    let mut total = 0f64;
    for (r, row) in z.chunks_exact(classes).enumerate() {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f64 = row.iter().map(|&v| ((v - m) as f64).exp()).sum();
        let y = labels[r] as usize;
        total += (m as f64 + sum.ln()) - row[y] as f64;
        if let Some(d) = dz.as_deref_mut() {
            let d = &mut d[r * classes..(r + 1) * classes];
            for (k, (dk, &v)) in d.iter_mut().zip(row).enumerate() {
                let p = (((v - m) as f64).exp() / sum) as f32;
                *dk = scale * (p - if k == y { 1.0 } else { 0.0 });
            }
        }
    }
    total
}

#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    act_forward(Act::Sigmoid, z)
}

/// Adam with PyTorch's update and bias correction (`t` counts from 1), over flat buffers.
#[allow(clippy::too_many_arguments)]
pub fn adam(
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    t: u64,
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    threads: usize,
) -> bool {
    let bc1 = 1.0 - b1.powf(t as f64);
    let bc2 = 1.0 - b2.powf(t as f64);
    let step = (lr / bc1) as f32;
    let bc2s = bc2.sqrt() as f32;
    let (w1, w2, b2f, epsf) = ((1.0 - b1) as f32, (1.0 - b2) as f32, b2 as f32, eps as f32);
    let k = AdamScalars {
        step,
        bc2s,
        w1,
        w2,
        b2: b2f,
        eps: epsf,
    };
    let kernel =
        |p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]| adam_chunk(p, m, v, g, &k);
    let n = p.len();
    if threads > 1 && n >= PAR_MIN_ELEMS {
        let c = n.div_ceil(threads * 4).max(4096);
        p.par_chunks_mut(c)
            .zip(m.par_chunks_mut(c))
            .zip(v.par_chunks_mut(c))
            .zip(g.par_chunks(c))
            .map(|(((p, m), v), g)| kernel(p, m, v, g))
            .reduce(|| true, |a, b| a && b)
    } else {
        kernel(p, m, v, g)
    }
}

/// The per-step constants of Adam, in float32 as PyTorch applies them.
struct AdamScalars {
    step: f32,
    bc2s: f32,
    w1: f32,
    w2: f32,
    b2: f32,
    eps: f32,
}

/// The Adam update over one chunk; returns whether every new parameter is finite (a NaN or infinite gradient makes
/// its parameter NaN, so this catches divergence in the step that causes it, at no extra pass over memory).
#[inline(always)]
fn adam_body(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: &AdamScalars) -> bool {
    let mut bad = 0u32;
    for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
        let mi = *m + k.w1 * (g - *m);
        let vi = *v * k.b2 + k.w2 * g * g;
        *m = mi;
        *v = vi;
        *p -= k.step * (mi / (vi.sqrt() / k.bc2s + k.eps));
        bad |= ((p.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
    }
    bad == 0
}

simd_fn! {
    /// `adam_body` compiled for the best vector extension of this CPU.
    fn adam_chunk(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: &AdamScalars) -> bool {
        adam_body(p, m, v, g, k)
    }
}
