// dropout.wgsl: the dropout mask of one layer (core/dropout.rs, rng.rs `dropout_mask`: the same integer hash, so the
// same bits as the CPU) multiplied into `y [rows, out]` at `off` of b0, in place: the layer's output after its
// activation in a train-mode forward, or the gradient arriving at that output in the backward.
//   element (r, j): keep when (rng_rand(key, r * out + j) >> 8) < threshold; y *= keep ? scale : 0
// Grid: ceil(rows * out / 256) workgroups of 256 (spread over x and y by `grid1d`).

struct DropU {
    rows: u32, out: u32, off: u32, key: u32,
    threshold: u32, scale: f32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read_write> b0: array<f32>;
@group(1) @binding(0) var<uniform> u: DropU;

@compute @workgroup_size(256)
fn dropout(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.rows * u.out) {
        return;
    }
    var s = 0.0;
    if ((rng_rand(u.key, i) >> 8u) < u.threshold) {
        s = u.scale;
    }
    b0[u.off + i] = b0[u.off + i] * s;
}
