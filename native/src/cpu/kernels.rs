//! CPU kernels: GEMM wrappers over the `gemm` crate, the fused block forward/backward, BCE and Adam.
//!
//! Argument order follows llm.c: outputs, saved state, inputs, weights, sizes. Every buffer carries its shape.

use crate::spec::{Act, Layer};
use gemm::Parallelism;
use rayon::prelude::*;

/// Work below this many multiply-adds runs on one thread: splitting it costs more than it saves.
const PAR_MIN_MACS: usize = 1 << 18;
/// Elementwise work below this many elements runs on one thread.
const PAR_MIN_ELEMS: usize = 1 << 16;

fn par(threads: usize, macs: usize) -> Parallelism {
    if threads > 1 && macs >= PAR_MIN_MACS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// `c[m, n] = a * b` (or `c += a * b` when `acc`), every operand given by pointer and (row, column) strides.
/// Safety is established by the callers below, which check every slice length first.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    c_rs: usize,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    acc: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * c_rs + n, "gemm: c too small");
    if k > 0 {
        assert!(
            a.len() > (m - 1) * a_rs + (k - 1) * a_cs,
            "gemm: a too small"
        );
        assert!(
            b.len() > (k - 1) * b_rs + (n - 1) * b_cs,
            "gemm: b too small"
        );
    } else {
        if !acc {
            for r in 0..m {
                c[r * c_rs..r * c_rs + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the asserts above bound every element that the strides can reach inside the three slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            acc,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par(threads, m * n * k),
        );
    }
}

/// `y[rows, out] = x[rows, inp] W[out, inp]^T` (no bias).
pub fn matmul_forward(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
    threads: usize,
) {
    sgemm(
        rows,
        out,
        inp,
        y,
        out,
        x,
        (inp, 1),
        w,
        (1, inp),
        false,
        threads,
    );
}

/// `dw[out, inp] = dy[rows, out]^T x[rows, inp]`.
pub fn matmul_backward_weight(
    dw: &mut [f32],
    dy: &[f32],
    x: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
    threads: usize,
) {
    sgemm(
        out,
        inp,
        rows,
        dw,
        inp,
        dy,
        (1, out),
        x,
        (inp, 1),
        false,
        threads,
    );
}

/// `dx[rows, inp] = dy[rows, out] W[out, inp]`.
pub fn matmul_backward_input(
    dx: &mut [f32],
    dy: &[f32],
    w: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
    threads: usize,
) {
    sgemm(
        rows,
        inp,
        out,
        dx,
        inp,
        dy,
        (out, 1),
        w,
        (inp, 1),
        false,
        threads,
    );
}

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
        Act::Tanh => z.tanh(),
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

/// Runs `f` on each row of `y` (rows of `width` floats), in parallel when the work is large.
fn rows_apply(y: &mut [f32], width: usize, threads: usize, f: impl Fn(&mut [f32]) + Sync) {
    if threads > 1 && y.len() >= PAR_MIN_ELEMS {
        let chunk = y.len().div_ceil(width).div_ceil(threads * 4).max(1) * width;
        y.par_chunks_mut(chunk)
            .for_each(|c| c.chunks_exact_mut(width).for_each(&f));
    } else {
        y.chunks_exact_mut(width).for_each(f);
    }
}

/// What one block saves in its forward for its backward.
pub struct Saved<'a> {
    /// Output of the activation, `[rows, out]`.
    pub a: &'a mut [f32],
    /// Normalized pre-activation `(pre - mean) * rstd`, `[rows, out]` (BN layers only, else empty).
    pub xhat: &'a mut [f32],
    /// `1 / sqrt(var + eps)` of the statistics used, `[out]` (BN layers only).
    pub rstd: &'a mut [f32],
}

/// Fused block forward: Linear + bias + BatchNorm (batch statistics and the running-statistics update in train mode,
/// running statistics in eval mode) + activation. `x [rows, inp]`, `params`/`buffers` the flat buffers of the MLP,
/// `mean [out]` scratch.
#[allow(clippy::too_many_arguments)]
pub fn block_forward(
    s: Saved,
    mean: &mut [f32],
    x: &[f32],
    params: &[f32],
    buffers: &mut [f32],
    l: &Layer,
    rows: usize,
    train: bool,
    threads: usize,
) {
    let (inp, out) = (l.inp, l.out);
    let a = &mut s.a[..rows * out];
    matmul_forward(
        a,
        &x[..rows * inp],
        &params[l.w..l.w + out * inp],
        rows,
        inp,
        out,
        threads,
    );
    let bias = &params[l.b..l.b + out];
    let act = l.act;
    let Some(bn) = l.bn else {
        rows_apply(a, out, threads, |r| {
            for (v, &b) in r.iter_mut().zip(bias) {
                *v = act_forward(act, *v + b);
            }
        });
        return;
    };
    let rstd = &mut s.rstd[..out];
    let mean = &mut mean[..out];
    if train {
        // Pass 1: bias and the batch mean.
        mean.fill(0.0);
        for r in a.chunks_exact_mut(out) {
            for ((v, &b), m) in r.iter_mut().zip(bias).zip(mean.iter_mut()) {
                *v += b;
                *m += *v;
            }
        }
        let inv = 1.0 / rows as f32;
        mean.iter_mut().for_each(|m| *m *= inv);
        // Pass 2: the biased variance (two passes for accuracy).
        rstd.fill(0.0);
        for r in a.chunks_exact(out) {
            for ((&v, &m), q) in r.iter().zip(mean.iter()).zip(rstd.iter_mut()) {
                let d = v - m;
                *q += d * d;
            }
        }
        let unbias = rows as f32 / (rows as f32 - 1.0);
        let (rm, rv) = buffers[l.rmean..l.rvar + out].split_at_mut(out);
        for j in 0..out {
            let var = rstd[j] * inv;
            rm[j] = (1.0 - bn.momentum) * rm[j] + bn.momentum * mean[j];
            rv[j] = (1.0 - bn.momentum) * rv[j] + bn.momentum * var * unbias;
            rstd[j] = 1.0 / (var + bn.eps).sqrt();
        }
    } else {
        let (rm, rv) = buffers[l.rmean..l.rvar + out].split_at(out);
        for j in 0..out {
            mean[j] = rm[j] - bias[j];
            rstd[j] = 1.0 / (rv[j] + bn.eps).sqrt();
        }
    }
    // Pass 3: normalize, scale, shift, activate. In eval mode the bias is folded into `mean` above.
    let gamma = &params[l.gamma..l.gamma + out];
    let beta = &params[l.beta..l.beta + out];
    let (mean, rstd) = (&*mean, &*rstd);
    let xhat = &mut s.xhat[..rows * out];
    for (r, xh) in a.chunks_exact_mut(out).zip(xhat.chunks_exact_mut(out)) {
        for j in 0..out {
            let h = (r[j] - mean[j]) * rstd[j];
            xh[j] = h;
            r[j] = act_forward(act, gamma[j] * h + beta[j]);
        }
    }
}

/// Fused block backward. `dz [rows, out]` holds `d loss / d a` on entry and is used as scratch. Writes the parameter
/// gradients of this layer into `grads` (flat layout) when given, and `dx [rows, inp]` when given. `colsum [2 * out]`
/// scratch. `a`, `xhat`, `rstd` are what `block_forward` saved; `x [rows, inp]` is the block's input.
#[allow(clippy::too_many_arguments)]
pub fn block_backward(
    dx: Option<&mut [f32]>,
    grads: Option<&mut [f32]>,
    dz: &mut [f32],
    colsum: &mut [f32],
    a: &[f32],
    xhat: &[f32],
    rstd: &[f32],
    x: &[f32],
    params: &[f32],
    l: &Layer,
    rows: usize,
    train: bool,
    threads: usize,
) {
    let (inp, out) = (l.inp, l.out);
    let dz = &mut dz[..rows * out];
    let a = &a[..rows * out];
    let act = l.act;
    if act != Act::None {
        for (d, &y) in dz.iter_mut().zip(a) {
            *d *= act_grad(act, y);
        }
    }
    let (s1, s2) = colsum[..2 * out].split_at_mut(out);
    let mut grads = grads;
    if let Some(bn) = l.bn {
        let _ = bn;
        let xhat = &xhat[..rows * out];
        s1.fill(0.0);
        s2.fill(0.0);
        for (d, h) in dz.chunks_exact(out).zip(xhat.chunks_exact(out)) {
            for j in 0..out {
                s1[j] += d[j];
                s2[j] += d[j] * h[j];
            }
        }
        if let Some(g) = grads.as_deref_mut() {
            g[l.beta..l.beta + out].copy_from_slice(s1);
            g[l.gamma..l.gamma + out].copy_from_slice(s2);
        }
        let gamma = &params[l.gamma..l.gamma + out];
        let rstd = &rstd[..out];
        if train {
            let inv = 1.0 / rows as f32;
            for (d, h) in dz.chunks_exact_mut(out).zip(xhat.chunks_exact(out)) {
                for j in 0..out {
                    d[j] = gamma[j] * rstd[j] * (d[j] - s1[j] * inv - h[j] * s2[j] * inv);
                }
            }
        } else {
            for d in dz.chunks_exact_mut(out) {
                for j in 0..out {
                    d[j] *= gamma[j] * rstd[j];
                }
            }
        }
    }
    let dz = &*dz;
    if let Some(g) = grads {
        let db = &mut g[l.b..l.b + out];
        db.fill(0.0);
        for d in dz.chunks_exact(out) {
            for (s, &v) in db.iter_mut().zip(d) {
                *s += v;
            }
        }
        matmul_backward_weight(
            &mut g[l.w..l.w + out * inp],
            dz,
            &x[..rows * inp],
            rows,
            inp,
            out,
            threads,
        );
    }
    if let Some(dx) = dx {
        matmul_backward_input(
            &mut dx[..rows * inp],
            dz,
            &params[l.w..l.w + out * inp],
            rows,
            inp,
            out,
            threads,
        );
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
) {
    let bc1 = 1.0 - b1.powf(t as f64);
    let bc2 = 1.0 - b2.powf(t as f64);
    let step = (lr / bc1) as f32;
    let bc2s = bc2.sqrt() as f32;
    let (w1, w2, b2f, epsf) = ((1.0 - b1) as f32, (1.0 - b2) as f32, b2 as f32, eps as f32);
    let kernel = |p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]| {
        for i in 0..p.len() {
            let gi = g[i];
            let mi = m[i] + w1 * (gi - m[i]);
            let vi = v[i] * b2f + w2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] -= step * (mi / (vi.sqrt() / bc2s + epsf));
        }
    };
    let n = p.len();
    if threads > 1 && n >= PAR_MIN_ELEMS {
        let c = n.div_ceil(threads * 4).max(4096);
        p.par_chunks_mut(c)
            .zip(m.par_chunks_mut(c))
            .zip(v.par_chunks_mut(c))
            .zip(g.par_chunks(c))
            .for_each(|(((p, m), v), g)| kernel(p, m, v, g));
    } else {
        kernel(p, m, v, g);
    }
}
