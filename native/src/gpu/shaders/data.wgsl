// data.wgsl: the counter-based hash on the device (tests: bit-identical to rng.rs). The GAN step draws its noise and
// gathers its batch inside linear.wgsl's first GEMMs (`rng_normal` in common.wgsl).
//
// Entry `hash`: b4[u.dst_off + i] = rand(key(seed, domain, stream), i) for i < n.

struct DataU {
    n: u32, seed_lo: u32, seed_hi: u32, stream: u32,
    domain: u32, dst_off: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(4) var<storage, read_write> b4: array<u32>;
@group(1) @binding(0) var<uniform> u: DataU;

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
