// data.wgsl: the inputs of a GAN step, drawn on the device.
//
// Entry `noise`: standard normal noise exactly as rng.rs `fill_normal(out[..n], seed, domain, stream)`: the key and the u32
// draws are bit-identical (pure integer hash), Box-Muller runs in f32 (log / sqrt / cos / sin agree to rounding).
//   b2 destination [n] at u.dst_off.  One thread per pair (elements 2p, 2p + 1); grid ceil(ceil(n / 2) / 256).
//
// Entry `gather`: the input of D over [fake; real], [2 rows, feat] at u.dst_off of b2:
//   rows 0..rows:        copied from G's output b3 [rows, feat] at u.src_off
//   rows rows..2 rows:   dataset image idx[u.idx_off + r] scaled to [-1, 1] as (p / 255 - 0.5) / 0.5
//   b0 dataset words: [0, 256) a lookup table of the 256 scaled values (f32 bits, computed on the host so the scaling
//      is bit-identical on every device), then the pixels packed 4 per u32 (little-endian), pixel q at byte q
//   b1 batch indices (u32)   b2 D's work buffer   b3 G's work buffer
//   One thread per element of [2 rows, feat]; grid ceil(2 rows feat / 256).
//
// Entry `hash`: b4[u.dst_off + i] = rand(key(seed, domain, stream), i) for i < n (tests: bit-identical to rng.rs).

struct DataU {
    n: u32, seed_lo: u32, seed_hi: u32, stream: u32,
    domain: u32, dst_off: u32, src_off: u32, idx_off: u32,
    rows: u32, feat: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read_write> b0: array<u32>;
@group(0) @binding(1) var<storage, read_write> b1: array<u32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<u32>;
@group(1) @binding(0) var<uniform> u: DataU;

const TAU: f32 = 6.28318530717958647692;

@compute @workgroup_size(256)
fn noise(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = linear_group(wg, nwg) * 256u + lid;
    let i = 2u * p;
    if (i >= u.n) {
        return;
    }
    let k = rng_key(u.seed_lo, u.seed_hi, u.domain, u.stream);
    let scale = 1.0 / 16777216.0;
    let u1 = f32((rng_rand(k, i) >> 8u) + 1u) * scale;
    let u2 = f32(rng_rand(k, i + 1u) >> 8u) * scale;
    let r = sqrt(-2.0 * log(u1));
    let t = TAU * u2;
    b2[u.dst_off + i] = r * cos(t);
    if (i + 1u < u.n) {
        b2[u.dst_off + i + 1u] = r * sin(t);
    }
}

@compute @workgroup_size(256)
fn gather(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = linear_group(wg, nwg) * 256u + lid;
    let total = 2u * u.rows * u.feat;
    if (e >= total) {
        return;
    }
    let half = u.rows * u.feat;
    if (e < half) {
        b2[u.dst_off + e] = b3[u.src_off + e];
        return;
    }
    let r = (e - half) / u.feat;
    let f = (e - half) % u.feat;
    let q = b1[u.idx_off + r] * u.feat + f;
    let byte = (b0[256u + q / 4u] >> ((q % 4u) * 8u)) & 255u;
    b2[u.dst_off + e] = bitcast<f32>(b0[byte]);
}

@compute @workgroup_size(256)
fn hash(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_group(wg, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    let k = rng_key(u.seed_lo, u.seed_hi, u.domain, u.stream);
    b4[u.dst_off + i] = rng_rand(k, i);
}
