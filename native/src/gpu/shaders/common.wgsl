// common.wgsl: helpers prepended to every kernel file (no bindings here).
//
// Activation kinds (the `act` field of the uniforms): 0 none, 1 leaky_relu(slope), 2 tanh, 3 sigmoid.
// The counter-based hash is `native/src/rng.rs` bit for bit (pure u32 arithmetic, wrapping multiplies).

const ACT_NONE: u32 = 0u;
const ACT_LEAKY: u32 = 1u;
const ACT_TANH: u32 = 2u;
const ACT_SIGMOID: u32 = 3u;

fn act_forward(kind: u32, slope: f32, z: f32) -> f32 {
    switch kind {
        case 1u: {
            if (z > 0.0) {
                return z;
            }
            return z * slope;
        }
        case 2u: {
            // tanh saturates to +-1 in f32 beyond |z| = 9.1; the clamp keeps drivers that evaluate tanh through
            // exp(2z) away from inf / inf.
            return tanh(clamp(z, -20.0, 20.0));
        }
        case 3u: {
            return 1.0 / (1.0 + exp(-z));
        }
        default: {
            return z;
        }
    }
}

// The derivative of the activation from its saved output `a`.
fn act_grad(kind: u32, slope: f32, a: f32) -> f32 {
    switch kind {
        case 1u: {
            if (a > 0.0) {
                return 1.0;
            }
            return slope;
        }
        case 2u: {
            return 1.0 - a * a;
        }
        case 3u: {
            return a * (1.0 - a);
        }
        default: {
            return 1.0;
        }
    }
}

// lowbias32 (rng.rs `mix32`).
fn mix32(x0: u32) -> u32 {
    var x = x0;
    x = x ^ (x >> 16u);
    x = x * 0x7feb352du;
    x = x ^ (x >> 15u);
    x = x * 0x846ca68bu;
    x = x ^ (x >> 16u);
    return x;
}

// rng.rs `key(seed, domain, stream)` with the u64 seed split into its low and high words.
fn rng_key(seed_lo: u32, seed_hi: u32, domain: u32, stream: u32) -> u32 {
    var k = mix32(seed_lo ^ 0x9e3779b9u);
    k = mix32(k ^ seed_hi);
    k = mix32(k ^ domain);
    return mix32(k ^ stream);
}

// rng.rs `rand(k, counter)`.
fn rng_rand(k: u32, counter: u32) -> u32 {
    return mix32(mix32(counter ^ k) + k);
}

const TAU: f32 = 6.28318530717958647692;

// rng.rs `fill_normal`'s element i of the stream with key k: Box-Muller over the pair of draws (i & ~1, (i & ~1) + 1),
// the cosine for the even element and the sine for the odd one (f32; log / sqrt / cos / sin agree with the CPU to
// rounding).
fn rng_normal(k: u32, i: u32) -> f32 {
    let p = i & ~1u;
    let scale = 1.0 / 16777216.0;
    let u1 = f32((rng_rand(k, p) >> 8u) + 1u) * scale;
    let u2 = f32(rng_rand(k, p + 1u) >> 8u) * scale;
    let r = sqrt(-2.0 * log(u1));
    let t = TAU * u2;
    if ((i & 1u) == 0u) {
        return r * cos(t);
    }
    return r * sin(t);
}

// Linear workgroup index of a 1-D logical grid spread over x and y (see `grid1d` in device.rs).
fn linear_group(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.y * nwg.x + wg.x;
}

// PyTorch's Adam on one parameter p with gradient g and moments (m, v) (cpu/kernels.rs `adam`, term for term), the
// bias corrections folded on the host: step = lr / (1 - b1^t), bc2s = sqrt(1 - b2^t), w1 = 1 - b1, w2 = 1 - b2.
// Returns (p, m, v) updated. The one copy of the update: adam.wgsl's dispatch and linear.wgsl's epilogues call it.
fn adam_update(p: f32, g: f32, m0: f32, v0: f32, step: f32, bc2s: f32, w1: f32, w2: f32, b2: f32, eps: f32) -> vec3<f32> {
    let m = m0 + w1 * (g - m0);
    let v = v0 * b2 + w2 * g * g;
    return vec3<f32>(p - step * (m / (sqrt(v) / bc2s + eps)), m, v);
}
