// linear.wgsl: tiled GEMM for the Linear layers, with the fused block epilogues of the forward.
//
// C[m, n] = sum_k A(m, k) B(k, n), A(m, k) = b0[a_off + m * a_rs + k * a_cs], B(k, n) = src[b_off + k * b_rs + n * b_cs]
// with src = b1 (b_src 1) or b2 (b_src 2); any strides, any sizes (tiles are masked at the edges).
// Tiles: 64 x 64 outputs per workgroup of 256 threads, 4 x 4 per thread (rows 4 ty + i, columns 4 tx + j), K in
// steps of 16 through workgroup memory held as vec4 (one 16-byte load of A and one of B per 16 multiply-adds).
//
// Entry `forward` (override MODE), one dispatch of ceil(n / 64) x ceil(m / 64) workgroups, u.g[0] describes
// y = x W^T:  m = rows, n = out, k = in, A = x [rows, in] (b0), B(k, n) = W[n, k] (b1, params), C -> b2.
//   b0 x (any f32 buffer)   b1 params [P]   b2 output buffer: a / pre [rows, out] at c_off, xhat [rows, out] at u.xhat,
//   rstd [out] at u.rstd    b3 running stats: mean at u.rmean, var at u.rvar (BN layers)
//   MODE 0: a = act(acc + bias)                                  (no BatchNorm)
//   MODE 1: BatchNorm with running statistics (eval): xhat = (acc - (rmean - bias)) / sqrt(rvar + eps), a = act(...)
//   MODE 2: BatchNorm with batch statistics (train) fused, requires m <= 64 (one row tile holds the whole batch):
//           column mean / biased variance in the workgroup, running statistics updated, xhat, rstd, a
//   MODE 3: pre = acc + bias (train-mode BatchNorm over more than 64 rows; block.wgsl `epilogue` finishes it)
// The GAN step feeds its first GEMMs (u.gen; 0 for every other GEMM): G's block 0 draws its input, the noise, as it
// loads A (gen 1: A(m, k) = rng_normal(u.key, m * k_total + k), rng.rs `fill_normal` of the step's stream), and D's
// block 0 copies its first u.fake_rows input rows, the fakes, from G's output (gen 2: b4 at u.fake_off, [fake_rows,
// in]); the workgroups of the first column tile store those A values to their place in b0 for the backward. G's
// block 0 also gathers the batch's real rows into D's input: the workgroups past its column tiles (grid x beyond
// ceil(n / 64), slice 0) write u.real_rows rows of u.real_feat pixels to b4 at u.real_dst (D's work buffer), pixel f
// of image b7[u.real_idx + r] scaled through the table that starts b6 (the dataset: 256 f32 bit patterns, then the
// pixels packed 4 per u32, little-endian). D's last block ends in the step's losses (u.lo_rows > 0; `gan_loss`):
// the workgroup that finishes its last tile computes them over the block's outputs.
//
// Entry `forward_split` (override MODE), the same GEMM split along K (for small grids: a batch of 64 rows is one row
// tile, so without splitting only ceil(out / 64) workgroups would run): grid z = g.splits slices of g.kc (a multiple
// of 16) along K; slice z writes its raw partial product to b2[u.part0 + z * m * n + r * n + c]. Then the tile's
// "last arriver" (an atomic counter per tile in b5; the slice that arrives last, whichever it is) sums the partials in
// slice order, so the result does not depend on which slice finished last, and runs the epilogue of MODE 0, 1 or 2 on
// the sums; it resets the counter for the next split GEMM. No workgroup waits on another. MODE 3: partials only
// (train-mode BatchNorm over more than 64 rows; block.wgsl `epilogue` sums them and finishes the block).
//   b5 the tile counters (u32, zero between dispatches; tile t at 3 t)
//
// Entry `backward`, up to three GEMMs in one dispatch, one workgroup per tile and slice of each (a 1-D grid of
// sum_j tiles_j * splits_j workgroups spread over x and y; `backward_task`): GEMM 0's tiles slice by slice, then GEMM
// 1's, then GEMM 2's (splits 0 for an unused GEMM). A GEMM split along K writes raw partial products
// (b2 at GEMM j's region u.part0 / part1 / part2, + slice * m * n, row-major m x n) and the tile's last arriver (as in `forward_split`) sums them in
// slice order and stores the result as an unsplit GEMM would.
//   b0 dpre [rows, out]   b1 params (W)   b2 layer input x   b3 grads   b4 dx destination (may be another MLP's work)
//   b5 the tile counters: GEMM j's tile t at 3 t + j
//   dW[out, in] = dpre^T x: m = out, n = in (+ 1), k = rows, A(m, k) = dpre[k * out + m], B = x (b2), C -> b3 (c_dst 3)
//     with `ones` set, B gets a column of ones at n - 1 whose output, the bias gradient db[out] = sum_rows dpre, goes
//     to b3[db_off + m] (each output is one thread's sequential sum over k, as the CPU sums db row by row)
//   dx[rows, in] = dpre W:  m = rows, n = in, k = out, A = dpre, B = W (b1), C -> b4 (c_dst 4)
//     with e_act != 0 the epilogue multiplies by act'(a) of the layer that receives dx, a [rows, in] read from the
//     destination buffer at e_a_off (so the receiving block starts from dz = da * act'(a), as the CPU computes it)
//   A GEMM with g.a_gen != 0 generates its A instead of reading it: the gradient d loss / d pre [rows, a_ld] of the
//   block below a top block of one output, d[r, c] = top[r] * W_top[c] * act'(a[r, c]) (`outer_a`), from that top
//   block's output gradient top [rows] at g.a_top of b0, its weights [a_ld] at u.o_w of b1 and the saved output a
//   [rows, a_ld] of the block below at u.o_a of b0, whose activation is u.o_act (u.o_slope): the GAN step's paired
//   backward through D skips the top block's own dispatch this way (`passes::record_backward_pair`).
//   With u.dw_on, the tiles of dx GEMM u.dw_from (rows <= 64) also run the weight GEMM u.g[u.dw_j] of the block that
//   receives them, whose own splits are 0 (no workgroups of its own): each over the dW rows of its 64 columns and all
//   of dW's columns, reading its A (that block's d loss / d pre, just stored) from b4 (a_src 4), with the sums of
//   its own unsplit dispatch (`dw_fold`): the last block of a backward without an input gradient needs no dispatch.
//   With u.col_on, the dx GEMM u.col_j (rows <= 64: one row tile holds the batch) also runs the column pass of the
//   BatchNorm block that receives it (columns.wgsl `col_backward`, u.col_mode 1 train / 2 eval) over each tile's 64
//   columns once its dx is stored, in place of block.wgsl `backward`'s dispatch, with the same bits: d loss / d pre
//   of that block, and (u.col_grads) its db, dgamma, dbeta at u.bias, u.gamma, u.beta of b3; gamma at u.gamma of b1,
//   xhat [rows, in] at u.xhat and rstd [in] at u.rstd of b4 (the receiving block's saved forward); u.inv_rows = 1 / rows.
//   The GAN step's Adam runs in these epilogues (common.wgsl `adam_update` with u.ad_step, ad_bc2s, ad_w1, ad_w2,
//   ad_b2, ad_eps; m in b6 and v in b7 as f32 bits, at the parameters' offsets), on each parameter once its gradient
//   is final and nothing in the step reads it any more: the weight GEMMs in bit mask u.ad_direct update their tile's
//   weights (and biases, from the column of ones) right after storing it; those in u.ad_hs (weights that dx GEMMs of
//   the same dispatch read as B: GEMM r reads those of GEMM (u.ad_reads >> 4 r & 15) - 1) count the arrivals at
//   their tile's Adam counter (b5 past the split-K counters), the tile's own and each reader workgroup's once its K
//   loop is done, and the last to arrive updates the tile (`adam_after_dw`, `adam_after_read`); with u.ad_col, the
//   column pass updates the bias, gamma and beta of its columns after writing their gradients.
//   b6 Adam m   b7 Adam v (u.ad_direct | u.ad_hs | u.ad_col != 0)

struct Gemm {
    m: u32, n: u32, k: u32, b_src: u32,
    a_off: u32, a_rs: u32, a_cs: u32, b_off: u32,
    b_rs: u32, b_cs: u32, c_off: u32, c_rs: u32,
    c_dst: u32, ones: u32, db_off: u32, e_act: u32,
    e_slope: f32, e_a_off: u32, splits: u32, kc: u32,
    a_gen: u32, a_top: u32, a_ld: u32, a_src: u32,
}

struct LinearU {
    g: array<Gemm, 3>,
    act: u32, slope: f32, bias: u32, gamma: u32,
    beta: u32, rmean: u32, rvar: u32, xhat: u32,
    rstd: u32, eps: f32, momentum: f32, inv_rows: f32,
    unbias: f32, part0: u32, part1: u32, part2: u32,
    gen: u32, key: u32, fake_rows: u32, fake_off: u32,
    real_rows: u32, real_idx: u32, real_dst: u32, real_feat: u32,
    lo_rows: u32, lo_rec: u32, lo_g: u32, lo_d: u32,
    lo_inv: f32, lo_half: f32, lo_code: u32, _l0: u32,
    col_on: u32, col_j: u32, col_mode: u32, col_grads: u32,
    o_w: u32, o_a: u32, o_act: u32, o_slope: f32,
    dw_on: u32, dw_from: u32, dw_j: u32, ad_col: u32,
    ad_direct: u32, ad_hs: u32, ad_reads: u32, ad_step: f32,
    ad_bc2s: f32, ad_w1: f32, ad_w2: f32, ad_b2: f32,
    ad_eps: f32, _a0: u32, _a1: u32, _a2: u32,
}

@group(0) @binding(0) var<storage, read_write> b0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> cnt: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> b6: array<u32>;
@group(0) @binding(7) var<storage, read_write> b7: array<u32>;
@group(1) @binding(0) var<uniform> u: LinearU;

override MODE: u32 = 0u;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

// LinearU.gen: A is read from b0 (0), drawn as noise (1), or its first u.fake_rows rows copied from b4 (2).
const GEN_NONE: u32 = 0u;
const GEN_NOISE: u32 = 1u;
const GEN_FAKE: u32 = 2u;
// Gemm.a_gen: A is read (0), or generated as the outer product below a one-output top block, A(m, k) = d[m, k] (1) or
// d[k, m] (2) (`outer_a`).
const AGEN_NONE: u32 = 0u;
const AGEN_ROWS: u32 = 1u;
const AGEN_COLS: u32 = 2u;

var<workgroup> sa: array<vec4<f32>, 256>; // [BK][BM / 4]: A tile, k-major, 4 consecutive rows per vec4
var<workgroup> sb: array<vec4<f32>, 256>; // [BK][BN / 4]: B tile, k-major, 4 consecutive columns per vec4
// Accumulators in registers: row 4 ty + i in acc_i, column 4 tx + j in component j. (Plain vec4 values; no array
// indexed at run time, which drivers may place in slow local memory.)
var<private> acc0: vec4<f32>;
var<private> acc1: vec4<f32>;
var<private> acc2: vec4<f32>;
var<private> acc3: vec4<f32>;
// Whether this workgroup stores the A values it draws or copies (u.gen != 0): those of the first column tile.
var<private> keep_a: bool;
// Split K: 1 in the workgroup that arrived last at its tile.
var<workgroup> arrived_last: u32;

fn acc_row(i: u32) -> vec4<f32> {
    switch i {
        case 0u: {
            return acc0;
        }
        case 1u: {
            return acc1;
        }
        case 2u: {
            return acc2;
        }
        default: {
            return acc3;
        }
    }
}

fn acc_get(i: u32, j: u32) -> f32 {
    let r = acc_row(i);
    return r[j];
}

// A's element `i`: from b0, or (a_src 4) from b4, where a dispatch's own dx stores went (`dw_fold`).
fn load_a(src: u32, i: u32) -> f32 {
    if (src == 4u) {
        return b4[i];
    }
    return b0[i];
}

fn load_b(src: u32, i: u32) -> f32 {
    if (src == 1u) {
        return b1[i];
    }
    return b2[i];
}

fn load_c(dst: u32, i: u32) -> f32 {
    if (dst == 3u) {
        return b3[i];
    } else if (dst == 4u) {
        return b4[i];
    }
    return b2[i];
}

fn store_c(dst: u32, i: u32, v: f32) {
    if (dst == 3u) {
        b3[i] = v;
    } else if (dst == 4u) {
        b4[i] = v;
    } else {
        b2[i] = v;
    }
}

// Element `e` (0..1024) of the A tile at (m0, k0): its position in `sa` and its value (0 outside the matrix). The thread
// order follows A's contiguous dimension.
fn a_slot(g: Gemm, e: u32) -> u32 {
    if (g.a_cs == 1u) {
        return (e % BK) * BM + e / BK;
    }
    return (e / BM) * BM + e % BM;
}

// Scalar views of the workgroup tiles (index = k * 64 + row or column; also the epilogue's scratch).
fn sa_set(i: u32, v: f32) {
    sa[i >> 2u][i & 3u] = v;
}

fn sa_get(i: u32) -> f32 {
    return sa[i >> 2u][i & 3u];
}

fn sb_set(i: u32, v: f32) {
    sb[i >> 2u][i & 3u] = v;
}

fn sb_get(i: u32) -> f32 {
    return sb[i >> 2u][i & 3u];
}

fn fetch_a(g: Gemm, m0: u32, k0: u32, ke: u32, e: u32) -> f32 {
    var mm: u32;
    var ka: u32;
    if (g.a_cs == 1u) {
        ka = e % BK;
        mm = e / BK;
    } else {
        mm = e % BM;
        ka = e / BM;
    }
    let gm = m0 + mm;
    let gk = k0 + ka;
    if (gm < g.m && gk < ke) {
        if (g.a_gen != AGEN_NONE) {
            return outer_a(g, gm, gk);
        }
        let at = g.a_off + gm * g.a_rs + gk * g.a_cs;
        if (u.gen == GEN_NONE) {
            return load_a(g.a_src, at);
        }
        return generated_a(g, gm, gk, at);
    }
    return 0.0;
}

// A(gm, gk) of a GAN step's first forward GEMMs (u.gen, see the header): G's noise drawn here, or D's fake rows
// copied from G's output (b4); stored to A's place in b0 by the first column tile's workgroups, where the backward
// reads it.
fn generated_a(g: Gemm, gm: u32, gk: u32, at: u32) -> f32 {
    var v: f32;
    if (u.gen == GEN_NOISE) {
        v = rng_normal(u.key, gm * g.k + gk);
    } else if (gm < u.fake_rows) {
        v = b4[u.fake_off + gm * g.k + gk];
    } else {
        return b0[at];
    }
    if (keep_a) {
        b0[at] = v;
    }
    return v;
}

// A(gm, gk) of a backward GEMM whose A is the gradient below a top block of one output, never stored (g.a_gen, see
// the header): d[r, c] = (top[r] * w[c]) * act'(a[r, c]), (r, c) = (gm, gk) for AGEN_ROWS, (gk, gm) for AGEN_COLS.
// The same bits as the top block's dx GEMM (k = 1) and its act' epilogue would store.
fn outer_a(g: Gemm, gm: u32, gk: u32) -> f32 {
    var r = gm;
    var c = gk;
    if (g.a_gen == AGEN_COLS) {
        r = gk;
        c = gm;
    }
    let v = b0[g.a_top + r] * b1[u.o_w + c];
    return v * act_grad(u.o_act, u.o_slope, b0[u.o_a + r * g.a_ld + c]);
}

fn b_slot(g: Gemm, e: u32) -> u32 {
    if (g.b_cs == 1u) {
        return (e / BN) * BN + e % BN;
    }
    return (e % BK) * BN + e / BK;
}

fn fetch_b(g: Gemm, n0: u32, k0: u32, ke: u32, e: u32) -> f32 {
    var nn: u32;
    var kb: u32;
    if (g.b_cs == 1u) {
        nn = e % BN;
        kb = e / BN;
    } else {
        kb = e % BK;
        nn = e / BK;
    }
    let gn = n0 + nn;
    let gk = k0 + kb;
    if (gn < g.n && gk < ke) {
        if (g.ones != 0u && gn == g.n - 1u) {
            return 1.0;
        }
        return load_b(g.b_src, g.b_off + gk * g.b_rs + gn * g.b_cs);
    }
    return 0.0;
}

// acc = the (m0, n0) tile of C summed over k in [kb, ke) (kb a multiple of 16). The next K tile is fetched into
// registers while the current one is multiplied.
fn gemm(g: Gemm, m0: u32, n0: u32, kb: u32, ke: u32, tid: u32) {
    keep_a = n0 == 0u;
    acc0 = vec4<f32>(0.0);
    acc1 = vec4<f32>(0.0);
    acc2 = vec4<f32>(0.0);
    acc3 = vec4<f32>(0.0);
    let tx = tid % 16u;
    let ty = tid / 16u;
    var pa = vec4<f32>(fetch_a(g, m0, kb, ke, tid), fetch_a(g, m0, kb, ke, tid + 256u),
                       fetch_a(g, m0, kb, ke, tid + 512u), fetch_a(g, m0, kb, ke, tid + 768u));
    var pb = vec4<f32>(fetch_b(g, n0, kb, ke, tid), fetch_b(g, n0, kb, ke, tid + 256u),
                       fetch_b(g, n0, kb, ke, tid + 512u), fetch_b(g, n0, kb, ke, tid + 768u));
    for (var k0 = kb; k0 < ke; k0 += BK) {
        sa_set(a_slot(g, tid), pa.x);
        sa_set(a_slot(g, tid + 256u), pa.y);
        sa_set(a_slot(g, tid + 512u), pa.z);
        sa_set(a_slot(g, tid + 768u), pa.w);
        sb_set(b_slot(g, tid), pb.x);
        sb_set(b_slot(g, tid + 256u), pb.y);
        sb_set(b_slot(g, tid + 512u), pb.z);
        sb_set(b_slot(g, tid + 768u), pb.w);
        workgroupBarrier();
        let kn = k0 + BK;
        if (kn < ke) {
            pa = vec4<f32>(fetch_a(g, m0, kn, ke, tid), fetch_a(g, m0, kn, ke, tid + 256u),
                           fetch_a(g, m0, kn, ke, tid + 512u), fetch_a(g, m0, kn, ke, tid + 768u));
            pb = vec4<f32>(fetch_b(g, n0, kn, ke, tid), fetch_b(g, n0, kn, ke, tid + 256u),
                           fetch_b(g, n0, kn, ke, tid + 512u), fetch_b(g, n0, kn, ke, tid + 768u));
        }
        for (var kk = 0u; kk < BK; kk++) {
            let av = sa[kk * 16u + ty];
            let bv = sb[kk * 16u + tx];
            acc0 = fma(vec4<f32>(av.x), bv, acc0);
            acc1 = fma(vec4<f32>(av.y), bv, acc1);
            acc2 = fma(vec4<f32>(av.z), bv, acc2);
            acc3 = fma(vec4<f32>(av.w), bv, acc3);
        }
        workgroupBarrier();
    }
}

// The end of a forward block on the tile in the accumulators: `mode` as linear.wgsl MODE 0..3 (see the header).
// Called in uniform control flow (MODE 2 synchronizes the workgroup).
fn finish_forward(mode: u32, g: Gemm, m0: u32, n0: u32, tid: u32) {
    let tx = tid % 16u;
    let ty = tid / 16u;
    let ld = g.c_rs;
    if (mode == 0u || mode == 3u) {
        for (var j = 0u; j < 4u; j++) {
            let c = n0 + 4u * tx + j;
            if (c >= g.n) {
                continue;
            }
            let bias = b1[u.bias + c];
            for (var i = 0u; i < 4u; i++) {
                let r = m0 + 4u * ty + i;
                if (r < g.m) {
                    let z = acc_get(i, j) + bias;
                    if (mode == 0u) {
                        b2[g.c_off + r * ld + c] = act_forward(u.act, u.slope, z);
                    } else {
                        b2[g.c_off + r * ld + c] = z;
                    }
                }
            }
        }
        return;
    }

    if (mode == 1u) {
        for (var j = 0u; j < 4u; j++) {
            let c = n0 + 4u * tx + j;
            if (c >= g.n) {
                continue;
            }
            // The CPU folds the bias into the mean: (acc - (rmean - bias)) * rstd.
            let mean = b3[u.rmean + c] - b1[u.bias + c];
            let rs = 1.0 / sqrt(b3[u.rvar + c] + u.eps);
            let gam = b1[u.gamma + c];
            let bet = b1[u.beta + c];
            if (m0 == 0u && ty == 0u) {
                b2[u.rstd + c] = rs;
            }
            for (var i = 0u; i < 4u; i++) {
                let r = m0 + 4u * ty + i;
                if (r < g.m) {
                    let h = (acc_get(i, j) - mean) * rs;
                    b2[u.xhat + r * ld + c] = h;
                    b2[g.c_off + r * ld + c] = act_forward(u.act, u.slope, gam * h + bet);
                }
            }
        }
        return;
    }

    // MODE 2: the whole batch (m <= 64 rows) is in this workgroup's row tile; statistics per column in workgroup memory.
    // sa[ty * 64 + local column] holds per-thread partial sums, sb[0..64] the means, sb[64..128] the rstds.
    var bv = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let c = n0 + 4u * tx + j;
        if (c < g.n) {
            bv[j] = b1[u.bias + c];
        }
    }
    acc0 = acc0 + bv;
    acc1 = acc1 + bv;
    acc2 = acc2 + bv;
    acc3 = acc3 + bv;
    for (var j = 0u; j < 4u; j++) {
        var s = 0.0;
        for (var i = 0u; i < 4u; i++) {
            let r = 4u * ty + i;
            if (r < g.m) {
                s = s + acc_get(i, j);
            }
        }
        sa_set(ty * 64u + 4u * tx + j, s);
    }
    workgroupBarrier();
    if (tid < 64u) {
        var s = 0.0;
        for (var t = 0u; t < 16u; t++) {
            s = s + sa_get(t * 64u + tid);
        }
        sb_set(tid, s * u.inv_rows);
    }
    workgroupBarrier();
    for (var j = 0u; j < 4u; j++) {
        let mean = sb_get(4u * tx + j);
        var q = 0.0;
        for (var i = 0u; i < 4u; i++) {
            let r = 4u * ty + i;
            if (r < g.m) {
                let d = acc_get(i, j) - mean;
                q = q + d * d;
            }
        }
        sa_set(ty * 64u + 4u * tx + j, q);
    }
    workgroupBarrier();
    if (tid < 64u) {
        var q = 0.0;
        for (var t = 0u; t < 16u; t++) {
            q = q + sa_get(t * 64u + tid);
        }
        let var_b = q * u.inv_rows;
        let rs = 1.0 / sqrt(var_b + u.eps);
        sb_set(64u + tid, rs);
        let c = n0 + tid;
        if (c < g.n) {
            let mom = u.momentum;
            b3[u.rmean + c] = (1.0 - mom) * b3[u.rmean + c] + mom * sb_get(tid);
            b3[u.rvar + c] = (1.0 - mom) * b3[u.rvar + c] + mom * var_b * u.unbias;
            b2[u.rstd + c] = rs;
        }
    }
    workgroupBarrier();
    for (var j = 0u; j < 4u; j++) {
        let lc = 4u * tx + j;
        let c = n0 + lc;
        if (c >= g.n) {
            continue;
        }
        let mean = sb_get(lc);
        let rs = sb_get(64u + lc);
        let gam = b1[u.gamma + c];
        let bet = b1[u.beta + c];
        for (var i = 0u; i < 4u; i++) {
            let r = 4u * ty + i;
            if (r < g.m) {
                let h = (acc_get(i, j) - mean) * rs;
                b2[u.xhat + r * ld + c] = h;
                b2[g.c_off + r * ld + c] = act_forward(u.act, u.slope, gam * h + bet);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// The adversarial losses of the GAN step (the formulas of native/src/core/loss.rs, where the table of the five losses
// is; the BCE with PyTorch's semantics: each log term clamped at -100, the gradient's denominator p (1 - p) floored at
// 1e-12), run at the end of D's last forward block by the workgroup that finishes its last tile (u.lo_rows > 0):
//   b2 D's work buffer: o [2 rows] at the block's output (D's outputs over [fake; real], one column: probabilities
//       for bce, raw scores otherwise)
//       writes the G step's gradient at D's last pre-activation [rows] at u.lo_g (for bce the BCE gradient times
//           sigmoid' from the output, the CPU's two steps in the CPU's order; for the others, whose D ends in a
//           linear layer, the loss's gradient itself), and the D step's [2 rows] at u.lo_d, the same way
//   b7 the step records: [4] at u.lo_rec, float bits: d_loss, g_loss, mean D(x), mean D(G(z)); d_loss and g_loss are
//       NaN when any o is NaN or infinite (training diverged), whatever the compiler assumes about floats
// Three phases over the batch: the means of o_f and o_r (the relativistic average loss needs them first); the loss
// terms, and the gradients of every loss but that one; then its gradients, which need the sums of phase 2. The
// reductions use the GEMM's tiles `sa` and `sb` as scratch (free once the block's outputs are stored).

const LOSS_BCE: u32 = 0u;
const LOSS_MSE: u32 = 1u;
const LOSS_HINGE: u32 = 2u;
const LOSS_RS: u32 = 3u;
const LOSS_RA: u32 = 4u;

var<workgroup> bad: atomic<u32>; // set when an output is NaN or infinite
const NAN_BITS: u32 = 0x7fc00000u;

// NaN or infinite, tested on the bits: WGSL lets compilers assume floats are finite, so a float comparison cannot be
// trusted to see a NaN (max(NaN, -100) may well return -100), but integer operations can.
fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// max(log(p), -100) with log(0) taken as -inf whatever the driver returns.
fn clamped_log(p: f32) -> f32 {
    if (p > 0.0) {
        return max(log(p), -100.0);
    }
    return -100.0;
}

// PyTorch's BCE gradient, then the sigmoid's derivative from its output (block backward's act').
fn bce_grad(scale: f32, p: f32, y: f32) -> f32 {
    let dp = scale * (p - y) / max(p * (1.0 - p), 1e-12);
    return dp * act_grad(ACT_SIGMOID, 0.0, p);
}

// ln(1 + e^t) without overflow.
fn softplus(t: f32) -> f32 {
    return max(t, 0.0) + log(1.0 + exp(-abs(t)));
}

// 1 / (1 + e^-t) without overflow.
fn sigm(t: f32) -> f32 {
    if (t >= 0.0) {
        return 1.0 / (1.0 + exp(-t));
    }
    let e = exp(t);
    return e / (1.0 + e);
}

// Sums sa[0..256] and sb[0..256] into sa[0] and sb[0].
fn loss_reduce(tid: u32) {
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (tid < w) {
            sa[tid] = sa[tid] + sa[tid + w];
            sb[tid] = sb[tid] + sb[tid + w];
        }
        workgroupBarrier();
    }
}

// Phase 2 for row i: the loss terms (into the returned sums) and the gradients of every loss but RaGAN's.
// (mf, mr): the batch means; for RaGAN, `extra` collects its sums of sigmoids.
fn row_terms(p: u32, i: u32, mf: f32, mr: f32, extra: ptr<function, vec4<f32>>) -> vec4<f32> {
    let n = u.lo_rows;
    let of_ = b2[p + i];
    let or_ = b2[p + n + i];
    let inv = u.lo_inv;
    switch u.lo_code {
        case LOSS_MSE: {
            b2[u.lo_g + i] = 2.0 * (of_ - 1.0) * inv;
            b2[u.lo_d + i] = of_ * inv;
            b2[u.lo_d + n + i] = (or_ - 1.0) * inv;
            // sums: (o_f - 1)^2, o_f^2, (o_r - 1)^2
            return vec4<f32>((of_ - 1.0) * (of_ - 1.0), of_ * of_, (or_ - 1.0) * (or_ - 1.0), 0.0);
        }
        case LOSS_HINGE: {
            b2[u.lo_g + i] = -inv;
            b2[u.lo_d + i] = select(0.0, inv, 1.0 + of_ > 0.0);
            b2[u.lo_d + n + i] = select(0.0, -inv, 1.0 - or_ > 0.0);
            return vec4<f32>(max(1.0 - or_, 0.0), max(1.0 + of_, 0.0), 0.0, 0.0);
        }
        case LOSS_RS: {
            let t = or_ - of_;
            let sd = sigm(-t);
            b2[u.lo_d + n + i] = -sd * inv;
            b2[u.lo_d + i] = sd * inv;
            b2[u.lo_g + i] = -sigm(t) * inv;
            return vec4<f32>(softplus(-t), softplus(t), 0.0, 0.0);
        }
        case LOSS_RA: {
            let tr = or_ - mf;
            let tf = of_ - mr;
            *extra = *extra + vec4<f32>(sigm(-tr), sigm(tf), sigm(tr), 0.0);
            // A, B (D) and C, E (G): see core/loss.rs
            return vec4<f32>(softplus(-tr), softplus(tf), softplus(-tf), softplus(tr));
        }
        default: {
            b2[u.lo_g + i] = bce_grad(inv, of_, 1.0);
            b2[u.lo_d + i] = bce_grad(u.lo_half, of_, 0.0);
            b2[u.lo_d + n + i] = bce_grad(u.lo_half, or_, 1.0);
            // sums: -log D(fake), -log(1 - D(fake)), -log D(real)
            return vec4<f32>(-clamped_log(of_), -clamped_log(1.0 - of_), -clamped_log(or_), 0.0);
        }
    }
}

// The losses over D's outputs at element p of b2 (see above); every thread of the workgroup, uniform control flow.
fn gan_loss(p: u32, tid: u32) {
    let n = u.lo_rows;
    if (tid == 0u) {
        atomicStore(&bad, 0u);
    }
    // Phase 1: the means.
    var sp = vec2<f32>(0.0); // sum D(fake), sum D(real)
    for (var i = tid; i < n; i += 256u) {
        let of_ = b2[p + i];
        let or_ = b2[p + n + i];
        if (not_finite(of_) || not_finite(or_)) {
            atomicOr(&bad, 1u);
        }
        sp = sp + vec2<f32>(of_, or_);
    }
    sa[tid] = vec4<f32>(sp.x, sp.y, 0.0, 0.0);
    sb[tid] = vec4<f32>(0.0);
    loss_reduce(tid);
    let fn_ = f32(n);
    let sums = sa[0];
    let mf = sums.x / fn_;
    let mr = sums.y / fn_;
    workgroupBarrier(); // every thread has read sa[0] before phase 2 overwrites it
    // Phase 2: the loss terms and (but for RaGAN) the gradients.
    var s = vec4<f32>(0.0);
    var extra = vec4<f32>(0.0);
    for (var i = tid; i < n; i += 256u) {
        s = s + row_terms(p, i, mf, mr, &extra);
    }
    sa[tid] = s;
    sb[tid] = extra;
    loss_reduce(tid);
    let t = sa[0];
    let e = sb[0];
    // Phase 3: RaGAN's gradients, from its sums of sigmoids (the paths through the means).
    if (u.lo_code == LOSS_RA) {
        let inv = u.lo_inv;
        for (var i = tid; i < n; i += 256u) {
            let tr = b2[p + n + i] - mf;
            let tf = b2[p + i] - mr;
            b2[u.lo_d + n + i] = 0.5 * (-sigm(-tr) * inv - e.y * inv * inv);
            b2[u.lo_d + i] = 0.5 * (sigm(tf) * inv + e.x * inv * inv);
            b2[u.lo_g + i] = 0.5 * (-sigm(-tf) * inv - e.z * inv * inv);
        }
    }
    if (tid == 0u) {
        var d_loss: f32;
        var g_loss: f32;
        switch u.lo_code {
            case LOSS_MSE: {
                d_loss = (t.z / fn_ + t.y / fn_) / 2.0;
                g_loss = t.x / fn_;
            }
            case LOSS_HINGE: {
                d_loss = t.x / fn_ + t.y / fn_;
                g_loss = -mf;
            }
            case LOSS_RS: {
                d_loss = t.x / fn_;
                g_loss = t.y / fn_;
            }
            case LOSS_RA: {
                d_loss = (t.x + t.y) / (2.0 * fn_);
                g_loss = (t.z + t.w) / (2.0 * fn_);
            }
            default: {
                d_loss = (t.z / fn_ + t.y / fn_) / 2.0;
                g_loss = t.x / fn_;
            }
        }
        // Diverged: NaN losses (written as bits, never as a float constant) so that the host stops training.
        let diverged = atomicLoad(&bad) != 0u;
        b7[u.lo_rec] = select(bitcast<u32>(d_loss), NAN_BITS, diverged);
        b7[u.lo_rec + 1u] = select(bitcast<u32>(g_loss), NAN_BITS, diverged);
        b7[u.lo_rec + 2u] = bitcast<u32>(mr);
        b7[u.lo_rec + 3u] = bitcast<u32>(mf);
    }
}

// The GAN step's real rows, gathered by the workgroups past the GEMM's column tiles (slice 0) of G's first forward:
// b4[u.real_dst + r * feat + f] = the scaled pixel f of dataset image b7[u.real_idx + r], r < u.real_rows, through
// the table at the start of b6 (see the header). Workgroup `first` of `groups` takes every groups-th run of 256.
fn gather_real(first: u32, groups: u32, tid: u32) {
    let feat = u.real_feat;
    let total = u.real_rows * feat;
    for (var e = first * 256u + tid; e < total; e += groups * 256u) {
        let q = b7[u.real_idx + e / feat] * feat + e % feat;
        let byte = (b6[256u + q / 4u] >> ((q % 4u) * 8u)) & 255u;
        b4[u.real_dst + e] = bitcast<f32>(b6[byte]);
    }
}

// Whether this workgroup is past the GEMM's column tiles: then it gathers the real rows (slice 0 only) and is done.
fn gathered(g: Gemm, wg: vec3<u32>, nwg: vec3<u32>, tid: u32) -> bool {
    let tiles_n = (g.n + BN - 1u) / BN;
    if (wg.x < tiles_n) {
        return false;
    }
    let extra = nwg.x - tiles_n;
    if (wg.z == 0u) {
        gather_real(wg.y * extra + wg.x - tiles_n, extra * nwg.y, tid);
    }
    return true;
}

@compute @workgroup_size(256)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let g = u.g[0];
    if (gathered(g, wg, nwg, tid)) {
        return;
    }
    let m0 = wg.y * BM;
    let n0 = wg.x * BN;
    gemm(g, m0, n0, 0u, g.k, tid);
    finish_forward(MODE, g, m0, n0, tid);
    losses_after(g, tid);
}

// Split K: stores slice `slice`'s partial product of the tile at (m0, n0) to b2[part + slice * m * n + ...].
fn store_partial(g: Gemm, part: u32, slice: u32, m0: u32, n0: u32, tid: u32) {
    let tx = tid % 16u;
    let ty = tid / 16u;
    let base = part + slice * g.m * g.n;
    for (var i = 0u; i < 4u; i++) {
        let r = m0 + 4u * ty + i;
        for (var j = 0u; j < 4u; j++) {
            let c = n0 + 4u * tx + j;
            if (r < g.m && c < g.n) {
                b2[base + r * g.n + c] = acc_get(i, j);
            }
        }
    }
}

// Split K, after `store_partial` (every thread, uniform control flow): whether this workgroup is the last of the
// tile's g.splits slices to arrive (its counter `tile` in b5 then goes back to 0).
fn last_arriver(g: Gemm, tile: u32, tid: u32) -> bool {
    return last_of(tile, g.splits, tid);
}

// Whether this workgroup is the last of `count` to arrive at counter `at` of b5 (which then goes back to 0), after
// storing what the last one reads (every thread, uniform control flow). The storage barriers order this workgroup's
// stores before its arrival, and the other workgroups' stores before the last one's loads.
fn last_of(at: u32, count: u32, tid: u32) -> bool {
    storageBarrier();
    if (tid == 0u) {
        let arrived = atomicAdd(&cnt[at], 1u) + 1u;
        arrived_last = select(0u, 1u, arrived == count);
        if (arrived == count) {
            atomicStore(&cnt[at], 0u);
        }
    }
    let is_last = workgroupUniformLoad(&arrived_last) == 1u;
    storageBarrier();
    return is_last;
}

// The counter of D's last forward block's finished tiles (b5; a forward's tiles use 3 t, so 1 is free there).
const TILES_DONE: u32 = 1u;

// D's last forward block in a GAN step (u.lo_rows > 0), after this workgroup's tile is final: the workgroup that
// finishes the block's last tile runs the losses over its outputs (every thread, uniform control flow).
fn losses_after(g: Gemm, tid: u32) {
    if (u.lo_rows == 0u) {
        return;
    }
    let tiles = ((g.n + BN - 1u) / BN) * ((g.m + BM - 1u) / BM);
    if (last_of(TILES_DONE, tiles, tid)) {
        gan_loss(g.c_off, tid);
    }
}

// Row r of the tile, columns c0..c0 + 3: the partial products at `part` summed over the slices in order (0 outside C).
fn partial_sum(g: Gemm, part: u32, r: u32, c0: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (r >= g.m) {
        return v;
    }
    let stride = g.m * g.n;
    for (var j = 0u; j < 4u; j++) {
        let c = c0 + j;
        if (c < g.n) {
            var s = 0.0;
            for (var z = 0u; z < g.splits; z++) {
                s = s + b2[part + z * stride + r * g.n + c];
            }
            v[j] = s;
        }
    }
    return v;
}

// The accumulators = the tile's partial products at `part` summed in slice order.
fn gather_partials(g: Gemm, part: u32, m0: u32, n0: u32, tid: u32) {
    let r = m0 + 4u * (tid / 16u);
    let c0 = n0 + 4u * (tid % 16u);
    acc0 = partial_sum(g, part, r, c0);
    acc1 = partial_sum(g, part, r + 1u, c0);
    acc2 = partial_sum(g, part, r + 2u, c0);
    acc3 = partial_sum(g, part, r + 3u, c0);
}

// The counter of tile (tx, ty) of GEMM j (of up to 3 in one dispatch) in b5.
fn counter(g: Gemm, j: u32, tx: u32, ty: u32) -> u32 {
    return 3u * (ty * ((g.n + BN - 1u) / BN) + tx) + j;
}

@compute @workgroup_size(256)
fn forward_split(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let g = u.g[0];
    if (gathered(g, wg, nwg, tid)) {
        return;
    }
    let m0 = wg.y * BM;
    let n0 = wg.x * BN;
    let kb = wg.z * g.kc;
    gemm(g, m0, n0, kb, min(kb + g.kc, g.k), tid);
    store_partial(g, u.part0, wg.z, m0, n0, tid);
    if (MODE == 3u) {
        return;
    }
    if (!last_arriver(g, counter(g, 0u, wg.x, wg.y), tid)) {
        return;
    }
    gather_partials(g, u.part0, m0, n0, tid);
    finish_forward(MODE, g, m0, n0, tid);
    losses_after(g, tid);
}

// A backward workgroup's task: GEMM j (3 past the last task), its slice along K and its output tile (tx, ty).
struct Task {
    j: u32,
    slice: u32,
    tx: u32,
    ty: u32,
}

// The task of backward workgroup `gi`: the workgroups take GEMM 0's tiles slice by slice, then GEMM 1's, then GEMM
// 2's, so the grid has no workgroup to spare.
fn backward_task(gi: u32) -> Task {
    var t = gi;
    for (var j = 0u; j < 3u; j++) {
        let g = u.g[j];
        let tn = (g.n + BN - 1u) / BN;
        let per_slice = tn * ((g.m + BM - 1u) / BM);
        let count = per_slice * g.splits;
        if (t < count) {
            let r = t % per_slice;
            return Task(j, t / per_slice, r % tn, r / tn);
        }
        t = t - count;
    }
    return Task(3u, 0u, 0u, 0u);
}

// The offset of GEMM j's partial-product region.
fn part_of(j: u32) -> u32 {
    if (j == 1u) {
        return u.part1;
    } else if (j == 2u) {
        return u.part2;
    }
    return u.part0;
}

@compute @workgroup_size(256)
fn backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let task = backward_task(linear_group(wg, nwg));
    if (task.j == 3u) {
        return;
    }
    let g = u.g[task.j];
    let part = part_of(task.j);
    let slice = task.slice;
    let m0 = task.ty * BM;
    let n0 = task.tx * BN;
    let kb = slice * g.kc;
    let ke = min(kb + g.kc, g.k);
    gemm(g, m0, n0, kb, ke, tid);
    adam_after_read(task.j, kb, ke, n0, tid);
    if (g.splits > 1u) {
        store_partial(g, part, slice, m0, n0, tid);
        if (!last_arriver(g, counter(g, task.j, task.tx, task.ty), tid)) {
            return;
        }
        gather_partials(g, part, m0, n0, tid);
    }
    store_tile(g, m0, n0, tid);
    adam_after_dw(task.j, g, m0, n0, tid);
    if (u.col_on != 0u && task.j == u.col_j) {
        col_fold(g, n0, tid);
    }
    if (u.dw_on != 0u && task.j == u.dw_from) {
        dw_fold(u.g[u.dw_j], n0, tid);
    }
}

// The backward's store of the tile at (m0, n0) in the accumulators: the bias gradient from the column of ones, or C,
// times the receiver's act' when g.e_act is set.
fn store_tile(g: Gemm, m0: u32, n0: u32, tid: u32) {
    let tx = tid % 16u;
    let ty = tid / 16u;
    for (var i = 0u; i < 4u; i++) {
        let r = m0 + 4u * ty + i;
        if (r >= g.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let c = n0 + 4u * tx + j;
            if (c >= g.n) {
                continue;
            }
            let v = acc_get(i, j);
            if (g.ones != 0u && c == g.n - 1u) {
                store_c(g.c_dst, g.db_off + r, v);
            } else if (g.e_act != ACT_NONE) {
                let at = g.c_off + r * g.c_rs + c;
                store_c(g.c_dst, at, v * act_grad(g.e_act, g.e_slope, load_c(g.c_dst, g.e_a_off + r * g.c_rs + c)));
            } else {
                store_c(g.c_dst, g.c_off + r * g.c_rs + c, v);
            }
        }
    }
}

// The weight GEMM gw of the block that receives this dx tile's columns n0..n0 + 63 (u.dw_on, see the header), over
// those features (its rows m0 = n0) and all its columns, once the tile is stored (all rows: the dx GEMM's m <= 64):
// the sums of its own unsplit dispatch. Every thread, uniform control flow.
fn dw_fold(gw: Gemm, m0: u32, tid: u32) {
    storageBarrier();
    for (var n0 = 0u; n0 < gw.n; n0 += BN) {
        gemm(gw, m0, n0, 0u, gw.k, tid);
        store_tile(gw, m0, n0, tid);
        adam_after_dw(u.dw_j, gw, m0, n0, tid);
    }
}

// The column pass of the BatchNorm block that receives dx GEMM g (u.col_on, see the header) over this tile's columns
// n0..n0 + 63, once the tile is stored (all rows: g.m <= 64). Every thread, uniform control flow.
fn col_fold(g: Gemm, n0: u32, tid: u32) {
    let p = ColPass(g.m, g.n, ACT_NONE, 0.0, u.col_mode, u.col_grads, g.c_off, 0u, u.xhat, u.rstd, u.gamma, u.bias,
                    u.gamma, u.beta, u.inv_rows);
    storageBarrier();
    for (var q = 0u; q < BN; q += 16u) {
        col_backward(p, n0 + q + tid % 16u, tid / 16u, tid % 16u);
    }
    if (u.ad_col != 0u) {
        storageBarrier();
        let c = n0 + tid;
        if (tid < BN && c < g.n) {
            adam_at(u.bias + c);
            adam_at(u.gamma + c);
            adam_at(u.beta + c);
        }
    }
}

// columns.wgsl's storage in `backward`: the gradient and the saved forward in the dx destination b4, gamma in b1, the
// gradients in b3.
fn cg_dz(i: u32) -> f32 {
    return b4[i];
}

fn cg_set_dz(i: u32, v: f32) {
    b4[i] = v;
}

fn cg_saved(i: u32) -> f32 {
    return b4[i];
}

fn cg_param(i: u32) -> f32 {
    return b1[i];
}

fn cg_set_grad(i: u32, v: f32) {
    b3[i] = v;
}

// ---------------------------------------------------------------------------------------------------------------------
// The GAN step's Adam in the backward's epilogues (u.ad_*, see the header).

// Where the Adam counters start in b5: past the split-K counters of GEMMS x COUNTER_TILES tiles (mlp.rs).
const ADAM_COUNTERS: u32 = 12288u;

// Adam on parameter i: b1 params, b3 grads, b6 m, b7 v.
fn adam_at(i: u32) {
    let r = adam_update(b1[i], b3[i], bitcast<f32>(b6[i]), bitcast<f32>(b7[i]), u.ad_step, u.ad_bc2s, u.ad_w1,
                        u.ad_w2, u.ad_b2, u.ad_eps);
    b1[i] = r.x;
    b6[i] = bitcast<u32>(r.y);
    b7[i] = bitcast<u32>(r.z);
}

// Adam on the parameters of weight GEMM gw's output tile at (m0, n0): W[m, n] at gw.c_off + m * gw.c_rs + n, and the
// bias db_off + m for the column of ones.
fn adam_tile(gw: Gemm, m0: u32, n0: u32, tid: u32) {
    for (var e = tid; e < BM * BN; e += 256u) {
        let r = m0 + e / BN;
        let c = n0 + e % BN;
        if (r < gw.m && c < gw.n) {
            if (gw.ones != 0u && c == gw.n - 1u) {
                adam_at(gw.db_off + r);
            } else {
                adam_at(gw.c_off + r * gw.c_rs + c);
            }
        }
    }
}

// 1 + the weight GEMM whose weights GEMM r reads as B (0: none).
fn reads_of(r: u32) -> u32 {
    return (u.ad_reads >> (4u * r)) & 15u;
}

// The arrivals at the Adam counter of weight GEMM j's tile (mi, nj): its own, and one per workgroup of each dx GEMM
// that reads those weights (W rows mi * 64.. are that GEMM's K, W columns its n): its row tiles times the K slices
// that overlap the tile's rows.
fn adam_arrivals(j: u32, mi: u32, nj: u32) -> u32 {
    var e = 1u;
    for (var r = 0u; r < 3u; r++) {
        let g = u.g[r];
        let k0 = mi * BM;
        if (reads_of(r) != j + 1u || nj * BN >= g.n || k0 >= g.k) {
            continue;
        }
        let k1 = min(k0 + BM, g.k) - 1u;
        e += ((g.m + BM - 1u) / BM) * (k1 / g.kc - k0 / g.kc + 1u);
    }
    return e;
}

// The Adam counter of weight GEMM j's (gw's) tile (mi, nj) in b5.
fn adam_counter(gw: Gemm, j: u32, mi: u32, nj: u32) -> u32 {
    return ADAM_COUNTERS + 3u * (mi * ((gw.n + BN - 1u) / BN) + nj) + j;
}

// After weight GEMM j (gw) stored its tile at (m0, n0): its Adam, at once (u.ad_direct) or by the last arriver
// (u.ad_hs). Every thread, uniform control flow.
fn adam_after_dw(j: u32, gw: Gemm, m0: u32, n0: u32, tid: u32) {
    if (((u.ad_direct >> j) & 1u) != 0u) {
        storageBarrier();
        adam_tile(gw, m0, n0, tid);
    } else if (((u.ad_hs >> j) & 1u) != 0u) {
        let mi = m0 / BM;
        let nj = n0 / BN;
        if (last_of(adam_counter(gw, j, mi, nj), adam_arrivals(j, mi, nj), tid)) {
            adam_tile(gw, m0, n0, tid);
        }
    }
}

// After GEMM r's K loop over [kb, ke) for its columns n0..n0 + 63 (its reads of B done): when B is the weights of a
// weight GEMM j of this dispatch, one arrival at each of j's tiles it read, and the last to arrive updates the tile.
// Every thread, uniform control flow.
fn adam_after_read(r: u32, kb: u32, ke: u32, n0: u32, tid: u32) {
    let f = reads_of(r);
    if (f == 0u) {
        return;
    }
    let j = f - 1u;
    let gw = u.g[j];
    let nj = n0 / BN;
    for (var mi = kb / BM; mi * BM < ke; mi++) {
        if (last_of(adam_counter(gw, j, mi, nj), adam_arrivals(j, mi, nj), tid)) {
            adam_tile(gw, mi * BM, nj * BN, tid);
        }
    }
}
