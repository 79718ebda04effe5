// block.wgsl: the per-column (per-feature) parts of a fused block that reduce over the batch, for any number of rows.
//
// Workgroup 16 x 16: 16 columns (local_invocation_id.x) x 16 row lanes (local_invocation_id.y); each lane walks the rows
// lane, lane + 16, ... and the lanes are reduced in workgroup memory (columns.wgsl's scratch). Grid: ceil(n / 16) workgroups (spread over x and y
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
// Entry `backward` (activation' + BatchNorm backward + bias / gamma / beta gradients: columns.wgsl `col_backward`, which
// linear.wgsl `backward` also runs in its dx epilogue when one row tile holds the batch):
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
    let p = ColPass(u.rows, u.n, u.act, u.slope, u.mode, u.write_grads, u.y_off, u.a_off, u.xhat, u.rstd, u.gamma,
                    u.g_b, u.g_gamma, u.g_beta, u.inv_rows);
    col_backward(p, linear_group(wg, nwg) * 16u + lid.x, lid.y, lid.x);
}

// columns.wgsl's storage: dz in b0, the saved forward in b2, gamma in b1, the gradients in b3.
fn cg_dz(i: u32) -> f32 {
    return b0[i];
}

fn cg_set_dz(i: u32, v: f32) {
    b0[i] = v;
}

fn cg_saved(i: u32) -> f32 {
    return b2[i];
}

fn cg_param(i: u32) -> f32 {
    return b1[i];
}

fn cg_set_grad(i: u32, v: f32) {
    b3[i] = v;
}
