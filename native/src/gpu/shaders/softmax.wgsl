// softmax.wgsl: softmax cross-entropy over rows of logits (PyTorch's CrossEntropyLoss), one workgroup of 64 threads
// per row (the rows spread over the grid's x and y, see `grid1d`); each thread strides over the row's classes, so any
// number of classes works (4096 classes: 64 per thread).
//
//   b0 data [rows * classes + rows]:
//       z [rows, classes] at 0, row-major, every value finite (checked on the host); overwritten in place with
//           dz = (softmax(z_r) - onehot(y_r)) * u.scale when u.grad is 1 (each element is read, then written, by the
//           thread that owns it, after the row's reductions are done)
//       loss [rows] at u.loss_off: logsumexp(z_r) - z_r[y_r] per row, in f32 (the host sums them in f64 for the mean)
//   b1 labels [rows] (u32, each below classes: checked on the host)
//
// Per row: m = max_k z_k and s = sum_k exp(z_k - m) (max-subtracted, so exp never overflows and s is in [1, classes]),
// both by a tree reduction in a fixed order (deterministic); loss = (m - z_y) + log(s); softmax_k = exp(z_k - m) / s.

struct SoftmaxU {
    rows: u32, classes: u32, loss_off: u32, grad: u32,
    scale: f32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read_write> b0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b1: array<u32>;
@group(1) @binding(0) var<uniform> u: SoftmaxU;

const SM_THREADS: u32 = 64u;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn softmax_ce(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let r = linear_group(wg, nwg);
    if (r >= u.rows) {
        return;
    }
    let c = u.classes;
    let base = r * c;
    let y = min(b1[r], c - 1u);
    // Read before any thread of the row writes its gradient.
    let zy = b0[base + y];
    // The row's maximum.
    var m = b0[base];
    for (var k = tid; k < c; k += SM_THREADS) {
        m = max(m, b0[base + k]);
    }
    red[tid] = m;
    workgroupBarrier();
    for (var w = SM_THREADS / 2u; w > 0u; w = w / 2u) {
        if (tid < w) {
            red[tid] = max(red[tid], red[tid + w]);
        }
        workgroupBarrier();
    }
    let mx = red[0];
    workgroupBarrier();
    // The sum of the shifted exponentials.
    var s = 0.0;
    for (var k = tid; k < c; k += SM_THREADS) {
        s += exp(b0[base + k] - mx);
    }
    red[tid] = s;
    workgroupBarrier();
    for (var w = SM_THREADS / 2u; w > 0u; w = w / 2u) {
        if (tid < w) {
            red[tid] = red[tid] + red[tid + w];
        }
        workgroupBarrier();
    }
    let total = red[0];
    if (tid == 0u) {
        b0[u.loss_off + r] = (mx - zy) + log(total);
    }
    if (u.grad != 0u) {
        for (var k = tid; k < c; k += SM_THREADS) {
            let p = exp(b0[base + k] - mx) / total;
            b0[base + k] = u.scale * (p - select(0.0, 1.0, k == y));
        }
    }
}
