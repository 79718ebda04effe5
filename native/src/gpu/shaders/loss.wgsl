// loss.wgsl: the BCE losses and gradients of one GAN step (PyTorch semantics: each log term clamped at -100, the
// gradient's denominator p (1 - p) floored at 1e-12). One workgroup of 256 threads.
//
//   b0 D's work buffer: p [2 rows] at u.p_off (D's sigmoid output over [fake; real], one column)
//       writes gdout [rows] at u.gdout: the G step's gradient at D's last pre-activation,
//           dz = ((p - 1) / rows / max(p (1 - p), 1e-12)) * p (1 - p)   (BCE gradient, then sigmoid' from the output,
//           the CPU's two steps in the CPU's order)
//       and ddout [2 rows] at u.ddout: the D step's, each BCE term scaled by 0.5 / rows, times p (1 - p)
//   b1 losses: [4] at u.loss_off: d_loss, g_loss, mean D(x), mean D(G(z)); d_loss and g_loss are NaN when any p is NaN
//       or infinite (training diverged), whatever the compiler assumes about floats

struct LossU {
    rows: u32, p_off: u32, gdout: u32, ddout: u32,
    loss_off: u32, inv_rows: f32, half_inv: f32, _p0: u32,
}

@group(0) @binding(0) var<storage, read_write> b0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(1) @binding(0) var<uniform> u: LossU;

var<workgroup> red: array<vec4<f32>, 256>; // sums of -log D(fake), -log(1 - D(fake)), -log D(real), D(fake)
var<workgroup> red5: array<f32, 256>;       // sums of D(real)
var<workgroup> bad: atomic<u32>;            // set when a probability is NaN or infinite

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

@compute @workgroup_size(256)
fn gan_loss(@builtin(local_invocation_index) tid: u32) {
    let n = u.rows;
    if (tid == 0u) {
        atomicStore(&bad, 0u);
    }
    workgroupBarrier();
    var s = vec4<f32>(0.0);
    var sp = vec2<f32>(0.0); // sum D(fake), sum D(real)
    for (var i = tid; i < n; i += 256u) {
        let pf = b0[u.p_off + i];
        let pr = b0[u.p_off + n + i];
        if (not_finite(pf) || not_finite(pr)) {
            atomicOr(&bad, 1u);
        }
        s = s + vec4<f32>(-clamped_log(pf), -clamped_log(1.0 - pf), -clamped_log(pr), 0.0);
        sp = sp + vec2<f32>(pf, pr);
        b0[u.gdout + i] = bce_grad(u.inv_rows, pf, 1.0);
        b0[u.ddout + i] = bce_grad(u.half_inv, pf, 0.0);
        b0[u.ddout + n + i] = bce_grad(u.half_inv, pr, 1.0);
    }
    red[tid] = vec4<f32>(s.x, s.y, s.z, sp.x);
    red5[tid] = sp.y;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (tid < w) {
            red[tid] = red[tid] + red[tid + w];
            red5[tid] = red5[tid] + red5[tid + w];
        }
        workgroupBarrier();
    }
    if (tid == 0u) {
        let fn_ = f32(n);
        let t = red[0];
        let g_loss = t.x / fn_;
        var d_loss = (t.z / fn_ + t.y / fn_) / 2.0;
        var g_loss_out = g_loss;
        if (atomicLoad(&bad) != 0u) {
            // Diverged: report NaN losses (by their bits) so that the host stops training.
            d_loss = bitcast<f32>(0x7fc00000u);
            g_loss_out = bitcast<f32>(0x7fc00000u);
        }
        b1[u.loss_off] = d_loss;
        b1[u.loss_off + 1u] = g_loss_out;
        b1[u.loss_off + 2u] = red5[0] / fn_;
        b1[u.loss_off + 3u] = t.w / fn_;
    }
}
