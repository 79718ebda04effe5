// loss.wgsl: the adversarial losses and gradients of one GAN step (the formulas of native/src/core/loss.rs, where the
// table of the five losses is; the BCE with PyTorch's semantics: each log term clamped at -100, the gradient's
// denominator p (1 - p) floored at 1e-12). One workgroup of 256 threads.
//
//   b0 D's work buffer: o [2 rows] at u.p_off (D's outputs over [fake; real], one column: probabilities for bce,
//       raw scores otherwise)
//       writes gdout [rows] at u.gdout: the G step's gradient at D's last pre-activation (for bce the BCE gradient
//           times sigmoid' from the output, the CPU's two steps in the CPU's order; for the others, whose D ends in a
//           linear layer, the loss's gradient itself)
//       and ddout [2 rows] at u.ddout: the D step's, the same way
//   b1 losses: [4] at u.loss_off: d_loss, g_loss, mean D(x), mean D(G(z)); d_loss and g_loss are NaN when any o is
//       NaN or infinite (training diverged), whatever the compiler assumes about floats
//
// Three phases over the batch: the means of o_f and o_r (the relativistic average loss needs them first); the loss
// terms, and the gradients of every loss but that one; then its gradients, which need the sums of phase 2.

struct LossU {
    rows: u32, p_off: u32, gdout: u32, ddout: u32,
    loss_off: u32, inv_rows: f32, half_inv: f32, loss: u32,
}

const LOSS_BCE: u32 = 0u;
const LOSS_MSE: u32 = 1u;
const LOSS_HINGE: u32 = 2u;
const LOSS_RS: u32 = 3u;
const LOSS_RA: u32 = 4u;

@group(0) @binding(0) var<storage, read_write> b0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(1) @binding(0) var<uniform> u: LossU;

var<workgroup> red: array<vec4<f32>, 256>;  // phase 1: sum o_f, sum o_r; phase 2: the loss terms
var<workgroup> red2: array<vec4<f32>, 256>; // phase 2: RaGAN's sums of sigmoids
var<workgroup> bad: atomic<u32>;            // set when an output is NaN or infinite

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

// Sums red[0..256] and red2[0..256] into red[0] and red2[0].
fn reduce(tid: u32) {
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (tid < w) {
            red[tid] = red[tid] + red[tid + w];
            red2[tid] = red2[tid] + red2[tid + w];
        }
        workgroupBarrier();
    }
}

// Phase 2 for row i: the loss terms (into the returned sums) and the gradients of every loss but RaGAN's.
// (mf, mr): the batch means; for RaGAN, `extra` collects its sums of sigmoids.
fn row_terms(i: u32, mf: f32, mr: f32, extra: ptr<function, vec4<f32>>) -> vec4<f32> {
    let n = u.rows;
    let of_ = b0[u.p_off + i];
    let or_ = b0[u.p_off + n + i];
    let inv = u.inv_rows;
    switch u.loss {
        case LOSS_MSE: {
            b0[u.gdout + i] = 2.0 * (of_ - 1.0) * inv;
            b0[u.ddout + i] = of_ * inv;
            b0[u.ddout + n + i] = (or_ - 1.0) * inv;
            // sums: (o_f - 1)^2, o_f^2, (o_r - 1)^2
            return vec4<f32>((of_ - 1.0) * (of_ - 1.0), of_ * of_, (or_ - 1.0) * (or_ - 1.0), 0.0);
        }
        case LOSS_HINGE: {
            b0[u.gdout + i] = -inv;
            b0[u.ddout + i] = select(0.0, inv, 1.0 + of_ > 0.0);
            b0[u.ddout + n + i] = select(0.0, -inv, 1.0 - or_ > 0.0);
            return vec4<f32>(max(1.0 - or_, 0.0), max(1.0 + of_, 0.0), 0.0, 0.0);
        }
        case LOSS_RS: {
            let t = or_ - of_;
            let sd = sigm(-t);
            b0[u.ddout + n + i] = -sd * inv;
            b0[u.ddout + i] = sd * inv;
            b0[u.gdout + i] = -sigm(t) * inv;
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
            b0[u.gdout + i] = bce_grad(inv, of_, 1.0);
            b0[u.ddout + i] = bce_grad(u.half_inv, of_, 0.0);
            b0[u.ddout + n + i] = bce_grad(u.half_inv, or_, 1.0);
            // sums: -log D(fake), -log(1 - D(fake)), -log D(real)
            return vec4<f32>(-clamped_log(of_), -clamped_log(1.0 - of_), -clamped_log(or_), 0.0);
        }
    }
}

@compute @workgroup_size(256)
fn gan_loss(@builtin(local_invocation_index) tid: u32) {
    let n = u.rows;
    if (tid == 0u) {
        atomicStore(&bad, 0u);
    }
    // Phase 1: the means.
    var sp = vec2<f32>(0.0); // sum D(fake), sum D(real)
    for (var i = tid; i < n; i += 256u) {
        let of_ = b0[u.p_off + i];
        let or_ = b0[u.p_off + n + i];
        if (not_finite(of_) || not_finite(or_)) {
            atomicOr(&bad, 1u);
        }
        sp = sp + vec2<f32>(of_, or_);
    }
    red[tid] = vec4<f32>(sp.x, sp.y, 0.0, 0.0);
    red2[tid] = vec4<f32>(0.0);
    reduce(tid);
    let fn_ = f32(n);
    let sums = red[0];
    let mf = sums.x / fn_;
    let mr = sums.y / fn_;
    workgroupBarrier(); // every thread has read red[0] before phase 2 overwrites it
    // Phase 2: the loss terms and (but for RaGAN) the gradients.
    var s = vec4<f32>(0.0);
    var extra = vec4<f32>(0.0);
    for (var i = tid; i < n; i += 256u) {
        s = s + row_terms(i, mf, mr, &extra);
    }
    red[tid] = s;
    red2[tid] = extra;
    reduce(tid);
    let t = red[0];
    let e = red2[0];
    // Phase 3: RaGAN's gradients, from its sums of sigmoids (the paths through the means).
    if (u.loss == LOSS_RA) {
        let inv = u.inv_rows;
        for (var i = tid; i < n; i += 256u) {
            let tr = b0[u.p_off + n + i] - mf;
            let tf = b0[u.p_off + i] - mr;
            b0[u.ddout + n + i] = 0.5 * (-sigm(-tr) * inv - e.y * inv * inv);
            b0[u.ddout + i] = 0.5 * (sigm(tf) * inv + e.x * inv * inv);
            b0[u.gdout + i] = 0.5 * (-sigm(-tf) * inv - e.z * inv * inv);
        }
    }
    if (tid == 0u) {
        var d_loss: f32;
        var g_loss: f32;
        switch u.loss {
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
        if (atomicLoad(&bad) != 0u) {
            // Diverged: report NaN losses (by their bits) so that the host stops training.
            d_loss = bitcast<f32>(0x7fc00000u);
            g_loss = bitcast<f32>(0x7fc00000u);
        }
        b1[u.loss_off] = d_loss;
        b1[u.loss_off + 1u] = g_loss;
        b1[u.loss_off + 2u] = mr;
        b1[u.loss_off + 3u] = mf;
    }
}
