// block.wgsl: the per-column (per-feature) parts of a fused block that reduce over the batch, for any number of rows.
//
// Workgroup 16 x 16: 16 columns (local_invocation_id.x) x 16 row lanes (local_invocation_id.y); each lane walks the rows
// lane, lane + 16, ... and the lanes are reduced in workgroup memory. Grid: ceil(n / 16) workgroups (spread over x and y
// by `grid1d`). All [rows, n] matrices are row-major with leading dimension n.
//
// Entry `epilogue` (the end of a train-mode BatchNorm block's forward over more than 64 rows, after linear.wgsl
// `forward` MODE 3 or `forward_split` MODE 3):
//   b1 params: bias [n] at u.bias (u.g_b), gamma [n] at u.gamma, beta [n] at u.beta
//   b2 work:   y [rows, n] at u.y_off: on entry pre = acc + bias (u.parts == 0, MODE 3) ; on exit a = act(...);
//              xhat [rows, n] at u.xhat, rstd [n] at u.rstd; with u.parts = S > 0 the S split-K partial products
//              [S, rows, n] at u.part_off (b0), summed in slice order first (pre = sum + bias)
//   b3 running stats: mean [n] at u.rmean, var [n] at u.rvar (updated with momentum, unbiased variance)
//
// Entry `backward` (activation' + BatchNorm backward + bias / gamma / beta gradients):
//   b0 dz buffer: d loss / d a [rows, n] at u.y_off on entry; d loss / d pre on exit (in place)
//   b1 params: gamma at u.gamma          b2 saved: a [rows, n] at u.a_off, xhat [rows, n] at u.xhat, rstd [n] at u.rstd
//   b3 grads: db at u.g_b, dgamma at u.g_gamma, dbeta at u.g_beta (written when u.write_grads != 0)
//   u.mode: 0 no BatchNorm, 1 BatchNorm with batch statistics (train), 2 BatchNorm with running statistics (eval)

struct ColU {
    rows: u32, n: u32, act: u32, slope: f32,
    mode: u32, write_grads: u32, y_off: u32, a_off: u32,
    xhat: u32, rstd: u32, gamma: u32, beta: u32,
    rmean: u32, rvar: u32, g_b: u32, g_gamma: u32,
    g_beta: u32, eps: f32, momentum: f32, inv_rows: f32,
    unbias: f32, parts: u32, part_off: u32, _p0: u32,
}

@group(0) @binding(0) var<storage, read_write> b0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(1) @binding(0) var<uniform> u: ColU;

var<workgroup> red1: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;
var<workgroup> stat: array<f32, 32>;

// Sum of red1 (and red2) over the 16 lanes of column `lx`, by lane 0 (called between barriers).
fn lane_sum1(lx: u32) -> f32 {
    var s = 0.0;
    for (var t = 0u; t < 16u; t++) {
        s = s + red1[t * 16u + lx];
    }
    return s;
}

fn lane_sum2(lx: u32) -> f32 {
    var s = 0.0;
    for (var t = 0u; t < 16u; t++) {
        s = s + red2[t * 16u + lx];
    }
    return s;
}

@compute @workgroup_size(16, 16)
fn epilogue(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let lx = lid.x;
    let lane = lid.y;
    let c = linear_group(wg, nwg) * 16u + lx;
    let valid = c < u.n;
    let n = u.n;
    // Pass 1: the split-K sum (when split) and the column sum for the batch mean.
    var s = 0.0;
    if (u.parts > 0u) {
        if (valid) {
            let bias = b1[u.g_b + c];
            let stride = u.rows * n;
            for (var r = lane; r < u.rows; r += 16u) {
                let i = r * n + c;
                var v = 0.0;
                for (var z = 0u; z < u.parts; z++) {
                    v = v + b0[u.part_off + z * stride + i];
                }
                let p = v + bias;
                b2[u.y_off + i] = p;
                s = s + p;
            }
        }
    } else if (valid) {
        for (var r = lane; r < u.rows; r += 16u) {
            s = s + b2[u.y_off + r * n + c];
        }
    }
    red1[lane * 16u + lx] = s;
    workgroupBarrier();
    if (lane == 0u) {
        stat[lx] = lane_sum1(lx) * u.inv_rows;
    }
    workgroupBarrier();
    let mean = stat[lx];
    // Pass 2: the biased variance (two passes, as the CPU).
    var q = 0.0;
    if (valid) {
        for (var r = lane; r < u.rows; r += 16u) {
            let d = b2[u.y_off + r * n + c] - mean;
            q = q + d * d;
        }
    }
    red1[lane * 16u + lx] = q;
    workgroupBarrier();
    if (lane == 0u) {
        let var_b = lane_sum1(lx) * u.inv_rows;
        let rs = 1.0 / sqrt(var_b + u.eps);
        stat[16u + lx] = rs;
        if (valid) {
            let mom = u.momentum;
            b3[u.rmean + c] = (1.0 - mom) * b3[u.rmean + c] + mom * mean;
            b3[u.rvar + c] = (1.0 - mom) * b3[u.rvar + c] + mom * var_b * u.unbias;
            b2[u.rstd + c] = rs;
        }
    }
    workgroupBarrier();
    let rs = stat[16u + lx];
    // Pass 3: normalize, scale, shift, activate.
    if (valid) {
        let gam = b1[u.gamma + c];
        let bet = b1[u.beta + c];
        for (var r = lane; r < u.rows; r += 16u) {
            let i = r * n + c;
            let h = (b2[u.y_off + i] - mean) * rs;
            b2[u.xhat + i] = h;
            b2[u.y_off + i] = act_forward(u.act, u.slope, gam * h + bet);
        }
    }
}

@compute @workgroup_size(16, 16)
fn backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let lx = lid.x;
    let lane = lid.y;
    let c = linear_group(wg, nwg) * 16u + lx;
    let valid = c < u.n;
    let n = u.n;
    let bn = u.mode != 0u;
    // Pass 1: dz = da * act'(a) in place; column sums of dz and dz * xhat.
    var s1 = 0.0;
    var s2 = 0.0;
    if (valid) {
        for (var r = lane; r < u.rows; r += 16u) {
            let i = r * n + c;
            var d = b0[u.y_off + i];
            if (u.act != ACT_NONE) {
                d = d * act_grad(u.act, u.slope, b2[u.a_off + i]);
                b0[u.y_off + i] = d;
            }
            s1 = s1 + d;
            if (bn) {
                s2 = s2 + d * b2[u.xhat + i];
            }
        }
    }
    red1[lane * 16u + lx] = s1;
    red2[lane * 16u + lx] = s2;
    workgroupBarrier();
    if (lane == 0u) {
        let t1 = lane_sum1(lx);
        let t2 = lane_sum2(lx);
        stat[lx] = t1;
        stat[16u + lx] = t2;
        if (valid && u.write_grads != 0u) {
            if (bn) {
                b3[u.g_beta + c] = t1;
                b3[u.g_gamma + c] = t2;
            } else {
                b3[u.g_b + c] = t1;
            }
        }
    }
    workgroupBarrier();
    if (!bn) {
        return;
    }
    // Pass 2: BatchNorm backward into d loss / d pre, in place; its column sum is the bias gradient.
    let t1 = stat[lx];
    let t2 = stat[16u + lx];
    var sb = 0.0;
    if (valid) {
        let gr = b1[u.gamma + c] * b2[u.rstd + c];
        let inv = u.inv_rows;
        for (var r = lane; r < u.rows; r += 16u) {
            let i = r * n + c;
            var d = b0[u.y_off + i];
            if (u.mode == 1u) {
                d = gr * (d - t1 * inv - b2[u.xhat + i] * t2 * inv);
            } else {
                d = d * gr;
            }
            b0[u.y_off + i] = d;
            sb = sb + d;
        }
    }
    red1[lane * 16u + lx] = sb;
    workgroupBarrier();
    if (lane == 0u && valid && u.write_grads != 0u) {
        b3[u.g_b + c] = lane_sum1(lx);
    }
}
