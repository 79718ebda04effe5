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

// Linear workgroup index of a 1-D logical grid spread over x and y (see `grid1d` in device.rs).
fn linear_group(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.y * nwg.x + wg.x;
}
