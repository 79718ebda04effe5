// adam.wgsl: the optimizers over the whole flat parameter buffer, one dispatch each: PyTorch's Adam
// (cpu/kernels.rs `adam`, term for term), RMSprop (core/optim.rs `rmsprop_update`, term for term) and the clamp of
// every parameter (core/optim.rs `clamp_all`).
// The bias corrections are computed on the host in f64 exactly as the CPU does and passed as f32:
//   step = lr / (1 - b1^t), bc2s = sqrt(1 - b2^t), w1 = 1 - b1, w2 = 1 - b2.
//
//   b0 params [n]   b1 grads [n]   b2 m [n]   b3 v [n]
// Grid: ceil(n / 256) workgroups of 256 (spread over x and y by `grid1d`).

struct AdamU {
    n: u32, _p0: u32, _p1: u32, _p2: u32,
    step: f32, bc2s: f32, w1: f32, w2: f32,
    b2: f32, eps: f32, _p3: u32, _p4: u32,
}

@group(0) @binding(0) var<storage, read_write> b0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(1) @binding(0) var<uniform> u: AdamU;

@compute @workgroup_size(256)
fn adam(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    let g = b1[i];
    let m = b2[i] + u.w1 * (g - b2[i]);
    let v = b3[i] * u.b2 + u.w2 * g * g;
    b2[i] = m;
    b3[i] = v;
    b0[i] = b0[i] - u.step * (m / (sqrt(v) / u.bc2s + u.eps));
}

// RMSprop: u.step = lr, u.b2 = alpha, u.w2 = 1 - alpha, u.eps; b3 holds the squared-gradient average.
//   v = v * alpha + (1 - alpha) * g * g;  p = p + (-lr) * (g / (sqrt(v) + eps))
@compute @workgroup_size(256)
fn rmsprop(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    let g = b1[i];
    let v = b3[i] * u.b2 + u.w2 * g * g;
    b3[i] = v;
    b0[i] = b0[i] + (-u.step) * (g / (sqrt(v) + u.eps));
}

// The clamp of every parameter to [-c, c], c = u.step.
@compute @workgroup_size(256)
fn clamp_all(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    b0[i] = clamp(b0[i], -u.step, u.step);
}

// grads += the penalty's gradients: b1 grads, b3 the penalty's [n] (core/penalty.rs; gpu/penalty.rs).
@compute @workgroup_size(256)
fn accumulate(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    b1[i] = b1[i] + b3[i];
}
