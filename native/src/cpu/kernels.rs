//! CPU kernels: GEMM wrappers over the `gemm` crate, the fused block forward/backward, BCE and Adam.
//!
//! Argument order follows llm.c: outputs, saved state, inputs, weights, sizes. Every buffer carries its shape.
//!
//! Layout: inside the CPU backend, activations and their gradients are *feature-major*: a batch of `rows` samples of
//! `f` features is stored as `[f, ld]` (element `(row b, feature j)` at `j * ld + b`, `ld >= rows`). With weights in
//! PyTorch's `[out, in]` layout this lets every GEMM read the weights in place (no packing copy of `W` per call,
//! which cost a fifth of the step in the row-major layout) and makes BatchNorm's per-feature reductions contiguous.
//! The public API converts to and from row-major at its edges.

use crate::core::spec::{Act, Layer};
use gemm::Parallelism;
use rayon::prelude::*;

/// Work below this many multiply-adds runs on one thread: splitting it costs more than it saves.
const PAR_MIN_MACS: usize = 1 << 20;
/// Elementwise work below this many elements runs on one thread.
const PAR_MIN_ELEMS: usize = 1 << 16;

fn par(threads: usize, macs: usize) -> Parallelism {
    if threads > 1 && macs >= PAR_MIN_MACS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

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

/// A strided matrix operand: `(row stride, column stride)` in elements.
type Strides = (usize, usize);

/// `c[m, n] = a[m, k] * b[k, n]` (or `c += a * b` when `acc`), every operand given by its slice and strides. Each
/// slice is checked to cover every element its strides can reach before the unsafe call.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    acc: bool,
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    cs: Strides,
    a: &[f32],
    as_: Strides,
    b: &[f32],
    bs: Strides,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        c.len() > (m - 1) * cs.0 + (n - 1) * cs.1,
        "gemm: c too small"
    );
    if k == 0 {
        if acc {
            return;
        }
        for i in 0..m {
            for j in 0..n {
                c[i * cs.0 + j * cs.1] = 0.0;
            }
        }
        return;
    }
    assert!(
        a.len() > (m - 1) * as_.0 + (k - 1) * as_.1,
        "gemm: a too small"
    );
    assert!(
        b.len() > (k - 1) * bs.0 + (n - 1) * bs.1,
        "gemm: b too small"
    );
    // SAFETY: the asserts above bound every element that the strides can reach inside the three slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            cs.1 as isize,
            cs.0 as isize,
            acc,
            a.as_ptr(),
            as_.1 as isize,
            as_.0 as isize,
            b.as_ptr(),
            bs.1 as isize,
            bs.0 as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par(threads, m * n * k),
        );
    }
}

/// Forward matmul: `y[f=out, ld_y]` = `x[f=inp, ld_x]` times `W[out, inp]^T`, over `rows` samples (no bias).
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward(
    y: &mut [f32],
    ld_y: usize,
    x: &[f32],
    ld_x: usize,
    w: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
    threads: usize,
) {
    // As a GEMM over samples: Y[rows, out] = X[rows, inp] W^T, with Y and X column-major (feature-major).
    sgemm(
        false,
        rows,
        out,
        inp,
        y,
        (1, ld_y),
        x,
        (1, ld_x),
        w,
        (1, inp),
        threads,
    );
}

/// Weight gradient: `dw[out, inp]` = sum over samples of `dz[f=out]` times `x[f=inp]` (added to `dw` when `acc`).
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_weight(
    acc: bool,
    dw: &mut [f32],
    dz: &[f32],
    ld_dz: usize,
    x: &[f32],
    ld_x: usize,
    rows: usize,
    inp: usize,
    out: usize,
    threads: usize,
) {
    sgemm(
        acc,
        out,
        inp,
        rows,
        dw,
        (inp, 1),
        dz,
        (ld_dz, 1),
        x,
        (1, ld_x),
        threads,
    );
}

/// Input gradient: `dx[f=inp, ld_dx]` = `dz[f=out, ld_dz]` times `W[out, inp]`, over `rows` samples.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_input(
    dx: &mut [f32],
    ld_dx: usize,
    dz: &[f32],
    ld_dz: usize,
    w: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
    threads: usize,
) {
    sgemm(
        false,
        rows,
        inp,
        out,
        dx,
        (1, ld_dx),
        dz,
        (1, ld_dz),
        w,
        (inp, 1),
        threads,
    );
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

/// Runs `f(feature index, that feature's samples)` over the features of a feature-major matrix `[f, ld]` (using the
/// first `rows` of each), in parallel when the work is large.
fn features_apply(
    y: &mut [f32],
    ld: usize,
    rows: usize,
    threads: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    let feats = y.len() / ld;
    if threads > 1 && feats * rows >= PAR_MIN_ELEMS {
        y.par_chunks_mut(ld)
            .enumerate()
            .for_each(|(j, c)| f(j, &mut c[..rows]));
    } else {
        for (j, c) in y.chunks_mut(ld).enumerate().take(feats) {
            f(j, &mut c[..rows]);
        }
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
/// `params`/`buffers` are the flat buffers of the MLP.
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
    matmul_forward(
        a,
        rows,
        &x[..inp * rows],
        rows,
        &params[l.w..l.w + out * inp],
        rows,
        inp,
        out,
        threads,
    );
    let bias = &params[l.b..l.b + out];
    let act = l.act;
    let Some(bn) = l.bn else {
        features_apply(a, rows, rows, threads, |j, v| {
            feature_bias_act(v, bias[j], act)
        });
        return;
    };
    let rstd = &mut s.rstd[..out];
    let gamma = &params[l.gamma..l.gamma + out];
    let beta = &params[l.beta..l.beta + out];
    let xhat = &mut s.xhat[..out * rows];
    let (rm, rv) = buffers[l.rmean..l.rvar + out].split_at_mut(out);
    let unbias = rows as f32 / (rows as f32 - 1.0);
    // One pass per feature over contiguous samples: bias, statistics, running statistics, normalize, activate.
    for (j, (v, h)) in a
        .chunks_exact_mut(rows)
        .zip(xhat.chunks_exact_mut(rows))
        .enumerate()
    {
        let mean = if train {
            let (mean, var) = feature_stats(v, bias[j]);
            rm[j] = (1.0 - bn.momentum) * rm[j] + bn.momentum * mean;
            rv[j] = (1.0 - bn.momentum) * rv[j] + bn.momentum * var * unbias;
            rstd[j] = 1.0 / (var + bn.eps).sqrt();
            mean
        } else {
            rstd[j] = 1.0 / (rv[j] + bn.eps).sqrt();
            rm[j] - bias[j] // the bias is not added in eval mode: fold it into the mean
        };
        feature_bn_act(v, h, mean, rstd[j], gamma[j], beta[j], act);
    }
}

/// Fused block backward over the first `rows` samples of a forward over `ld` samples. `dz [out, rows]` holds
/// `d loss / d a` on entry and is used as scratch. Writes the parameter gradients of this layer into `grads` (flat
/// layout) when given, and `dx [inp, rows]` when given. `a`, `xhat [out, ld]`, `rstd [out]` are what `block_forward`
/// saved; `x [inp, ld]` is the block's input. BN in train mode needs `rows == ld` (its statistics couple all samples).
#[allow(clippy::too_many_arguments)]
pub fn block_backward(
    dx: Option<&mut [f32]>,
    grads: Option<&mut [f32]>,
    dz: &mut [f32],
    a: &[f32],
    xhat: &[f32],
    rstd: &[f32],
    x: &[f32],
    ld: usize,
    params: &[f32],
    l: &Layer,
    rows: usize,
    train: bool,
    threads: usize,
) {
    let (inp, out) = (l.inp, l.out);
    let dz = &mut dz[..out * rows];
    let act = l.act;
    if act != Act::None {
        for (j, d) in dz.chunks_exact_mut(rows).enumerate() {
            feature_act_grad(d, &a[j * ld..j * ld + rows], act);
        }
    }
    let mut grads = grads;
    if l.bn.is_some() {
        let gamma = &params[l.gamma..l.gamma + out];
        for (j, d) in dz.chunks_exact_mut(rows).enumerate() {
            let h = &xhat[j * ld..j * ld + rows];
            let (dbeta, dgamma) = if train {
                feature_bn_backward(d, h, gamma[j], rstd[j])
            } else {
                let sums = (sum16(d), dot16(d, h));
                scale(d, gamma[j] * rstd[j]);
                sums
            };
            if let Some(g) = grads.as_deref_mut() {
                g[l.beta + j] = dbeta;
                g[l.gamma + j] = dgamma;
            }
        }
    }
    let dz = &*dz;
    if let Some(g) = grads {
        for (j, d) in dz.chunks_exact(rows).enumerate() {
            g[l.b + j] = sum16(d);
        }
        matmul_backward_weight(
            false,
            &mut g[l.w..l.w + out * inp],
            dz,
            rows,
            x,
            ld,
            rows,
            inp,
            out,
            threads,
        );
    }
    if let Some(dx) = dx {
        matmul_backward_input(
            &mut dx[..inp * rows],
            rows,
            dz,
            rows,
            &params[l.w..l.w + out * inp],
            rows,
            inp,
            out,
            threads,
        );
    }
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
