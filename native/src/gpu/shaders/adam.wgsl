// adam.wgsl: the optimizers over the whole flat parameter buffer, one dispatch each: PyTorch's Adam (common.wgsl
// `adam_update`, which linear.wgsl's backward epilogues also run in the GAN step), RMSprop (core/optim.rs
// `rmsprop_update`, term for term) and the clamp of every parameter (core/optim.rs `clamp_all`).
// The bias corrections are computed on the host in f64 exactly as the CPU does and passed as f32:
//   step = lr / (1 - b1^t), bc2s = sqrt(1 - b2^t), w1 = 1 - b1, w2 = 1 - b2.
//
//   b0 params [n]   b1 grads [n]   b2 m [n]   b3 v [n]
// Grid: ceil(n / 256) workgroups of 256 (spread over x and y by `grid1d`).
//
// Entry `adam_pair`: Adam over two networks in one dispatch (the GAN step's G and D, with their own settings):
//   b0..b3 as above for the first (u.a.n parameters), b4 params, b5 grads, b6 m, b7 v of the second (u.b.n); the
//   first ceil(u.a.n / 256) workgroups update the first, the rest the second. Term for term the same as two `adam` dispatches.

struct AdamU {
    n: u32, _p0: u32, _p1: u32, _p2: u32,
    step: f32, bc2s: f32, w1: f32, w2: f32,
    b2: f32, eps: f32, _p3: u32, _p4: u32,
}

@group(0) @binding(0) var<storage, read_write> b0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> b5: array<f32>;
@group(0) @binding(6) var<storage, read_write> b6: array<f32>;
@group(0) @binding(7) var<storage, read_write> b7: array<f32>;
// The uniform: the settings of the (first) network, then the second network's (`adam_pair` only; zeros otherwise).
struct AdamPairU {
    a: AdamU,
    b: AdamU,
}

@group(1) @binding(0) var<uniform> u: AdamPairU;

@compute @workgroup_size(256)
fn adam(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.a.n) {
        return;
    }
    adam_first(u.a, i);
}

// Adam on parameter i of the first network (b0..b3) with its settings `a`.
fn adam_first(a: AdamU, i: u32) {
    let r = adam_update(b0[i], b1[i], b2[i], b3[i], a.step, a.bc2s, a.w1, a.w2, a.b2, a.eps);
    b0[i] = r.x;
    b2[i] = r.y;
    b3[i] = r.z;
}

// The same update of the second network's parameter i (b4..b7) with its settings `a`.
fn adam_second(a: AdamU, i: u32) {
    let r = adam_update(b4[i], b5[i], b6[i], b7[i], a.step, a.bc2s, a.w1, a.w2, a.b2, a.eps);
    b4[i] = r.x;
    b6[i] = r.y;
    b7[i] = r.z;
}

@compute @workgroup_size(256)
fn adam_pair(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let gi = linear_group(wg, nwg);
    let first = (u.a.n + 255u) / 256u;
    if (gi >= first) {
        let i = (gi - first) * 256u + lid;
        if (i < u.b.n) {
            adam_second(u.b, i);
        }
        return;
    }
    let i = gi * 256u + lid;
    if (i >= u.a.n) {
        return;
    }
    adam_first(u.a, i);
}

// RMSprop: u.a.step = lr, u.a.b2 = alpha, u.a.w2 = 1 - alpha, u.a.eps; b3 holds the squared-gradient average.
//   v = v * alpha + (1 - alpha) * g * g;  p = p + (-lr) * (g / (sqrt(v) + eps))
@compute @workgroup_size(256)
fn rmsprop(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.a.n) {
        return;
    }
    let g = b1[i];
    let v = b3[i] * u.a.b2 + u.a.w2 * g * g;
    b3[i] = v;
    b0[i] = b0[i] + (-u.a.step) * (g / (sqrt(v) + u.a.eps));
}

// The clamp of every parameter to [-c, c], c = u.a.step.
@compute @workgroup_size(256)
fn clamp_all(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.a.n) {
        return;
    }
    b0[i] = clamp(b0[i], -u.a.step, u.a.step);
}

// grads += the penalty's gradients: b1 grads, b3 the penalty's [n] (core/penalty.rs; gpu/penalty.rs).
@compute @workgroup_size(256)
fn accumulate(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.a.n) {
        return;
    }
    b1[i] = b1[i] + b3[i];
}
