// columns.wgsl: the column pass of a block's backward (activation', BatchNorm backward, bias / gamma / beta gradients)
// over 16 columns of a row-major [rows, n] gradient, and the workgroup scratch of the column reductions. Prepended
// (after common.wgsl) to block.wgsl, whose `backward` runs it as a dispatch of its own, and to linear.wgsl, whose
// `backward` folds it into the epilogue of the dx GEMM that produces the gradient when one row tile holds the batch.
// One home for both: the same sums in the same order, so both give the same bits.
//
// Threads: 256 invocations as 16 columns (lx) x 16 row lanes (lane); lane l walks rows l, l + 16, ...; lane 0 sums the
// 16 lanes in order. The including file provides the storage accessors:
//   cg_dz(i) / cg_set_dz(i, v)   the gradient (d loss / d a on entry, d loss / d pre on exit, in place)
//   cg_saved(i)                  the block's saved forward: a, xhat, rstd
//   cg_param(i)                  its parameters (gamma)
//   cg_set_grad(i, v)            its gradients (db, dgamma, dbeta)

// A column pass: the block's [rows, n] gradient at y_off (leading dimension n); act' of `act` first unless ACT_NONE
// (a at a_off); mode 0 no BatchNorm, 1 BatchNorm with batch statistics (train), 2 with running statistics (eval),
// xhat [rows, n] at xhat, rstd [n] at rstd, gamma at gamma; the gradients written at g_b, g_gamma, g_beta when
// write_grads != 0.
struct ColPass {
    rows: u32, n: u32, act: u32, slope: f32,
    mode: u32, write_grads: u32, y_off: u32, a_off: u32,
    xhat: u32, rstd: u32, gamma: u32, g_b: u32,
    g_gamma: u32, g_beta: u32, inv_rows: f32,
}

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

// The column pass `p` over column `c` (lane `lane` of its 16, column `lx` of the workgroup's 16). Every invocation
// calls it in uniform control flow (it synchronizes the workgroup); it ends with a barrier, so it may run again at
// once over other columns.
fn col_backward(p: ColPass, c: u32, lane: u32, lx: u32) {
    let valid = c < p.n;
    let n = p.n;
    let bn = p.mode != 0u;
    // Pass 1: dz = da * act'(a) in place; column sums of dz and dz * xhat.
    var s1 = 0.0;
    var s2 = 0.0;
    if (valid) {
        for (var r = lane; r < p.rows; r += 16u) {
            let i = r * n + c;
            var d = cg_dz(p.y_off + i);
            if (p.act != ACT_NONE) {
                d = d * act_grad(p.act, p.slope, cg_saved(p.a_off + i));
                cg_set_dz(p.y_off + i, d);
            }
            s1 = s1 + d;
            if (bn) {
                s2 = s2 + d * cg_saved(p.xhat + i);
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
        if (valid && p.write_grads != 0u) {
            if (bn) {
                cg_set_grad(p.g_beta + c, t1);
                cg_set_grad(p.g_gamma + c, t2);
            } else {
                cg_set_grad(p.g_b + c, t1);
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
        let gr = cg_param(p.gamma + c) * cg_saved(p.rstd + c);
        let inv = p.inv_rows;
        for (var r = lane; r < p.rows; r += 16u) {
            let i = r * n + c;
            var d = cg_dz(p.y_off + i);
            if (p.mode == 1u) {
                d = gr * (d - t1 * inv - cg_saved(p.xhat + i) * t2 * inv);
            } else {
                d = d * gr;
            }
            cg_set_dz(p.y_off + i, d);
            sb = sb + d;
        }
    }
    red1[lane * 16u + lx] = sb;
    workgroupBarrier();
    if (lane == 0u && valid && p.write_grads != 0u) {
        cg_set_grad(p.g_b + c, lane_sum1(lx));
    }
    workgroupBarrier();
}
