//! The counter-based random numbers shared by every backend (mirrored in `src/backend/rng.ts` and the GPU shaders).
//!
//! `rand(key(seed, domain, stream), counter)` is a keyed integer hash (two rounds of the `lowbias32` mixer), so any
//! element of any stream can be drawn independently, in any order, on the CPU or in a shader, with the same bits.

use crate::error::{bad_arg, Result};

/// Domain of the generator noise: stream = the global step.
pub const DOMAIN_NOISE: u32 = 1;
/// Domain of the per-epoch sample order: stream = the epoch.
pub const DOMAIN_SHUFFLE: u32 = 2;
/// Domain of parameter initialization (`gan_mlp_init`): stream 0 for the generator, 1 for the discriminator.
pub const DOMAIN_INIT: u32 = 3;
/// Domain of the fixed-noise grid that training writes beside each sample grid.
pub const DOMAIN_FIXED: u32 = 4;
/// Domain of the noise of `sample`.
pub const DOMAIN_SAMPLE: u32 = 5;
/// Domain of wgan_gp's interpolation weights: stream = the global step, counter = the row (uniform in [0, 1)).
pub const DOMAIN_ALPHA: u32 = 6;
/// Domain of the dropout masks: stream = the forward's stream (the global step inside a GAN step), one key per layer
/// and pass (`dropout_key`), counter = `row * out + column`.
pub const DOMAIN_DROPOUT: u32 = 7;
/// Domain of cgan's labels of the fakes: stream = the global step, counter = the row (`class`).
pub const DOMAIN_LABELS: u32 = 8;
/// Domain of aae's reparameterization noise: stream = the global step, normals (element `b * latent + c`).
pub const DOMAIN_EPS: u32 = 9;

/// Every domain with its name (the contract's `rng_domains`).
pub const DOMAINS: [(&str, u32); 9] = [
    ("noise", DOMAIN_NOISE),
    ("shuffle", DOMAIN_SHUFFLE),
    ("init", DOMAIN_INIT),
    ("fixed", DOMAIN_FIXED),
    ("sample", DOMAIN_SAMPLE),
    ("alpha", DOMAIN_ALPHA),
    ("dropout", DOMAIN_DROPOUT),
    ("labels", DOMAIN_LABELS),
    ("eps", DOMAIN_EPS),
];

/// The domains whose streams are drawn as standard normals (the ones `gan_rng_normal` accepts).
pub const NORMAL_DOMAINS: [u32; 3] = [DOMAIN_NOISE, DOMAIN_FIXED, DOMAIN_SAMPLE];

/// The name of a domain (`"?"` for an unknown one).
pub fn domain_name(domain: u32) -> &'static str {
    DOMAINS
        .iter()
        .find(|d| d.1 == domain)
        .map(|d| d.0)
        .unwrap_or("?")
}

/// `Ok` for a domain of normal streams; else `InvalidArgument` naming the accepted ones.
pub fn check_normal_domain(domain: u32) -> Result<()> {
    if NORMAL_DOMAINS.contains(&domain) {
        return Ok(());
    }
    let names: Vec<String> = NORMAL_DOMAINS
        .iter()
        .map(|&d| format!("{d} {}", domain_name(d)))
        .collect();
    let (last, rest) = names.split_last().expect("at least one normal domain");
    Err(bad_arg!(
        "rng domain {domain} is not a noise domain (expected {} or {last})",
        rest.join(", ")
    ))
}

/// The `lowbias32` integer mixer (Chris Wellons' hash prospector).
#[inline]
pub fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The key of one stream.
#[inline]
pub fn key(seed: u64, domain: u32, stream: u32) -> u32 {
    let mut k = mix32(seed as u32 ^ 0x9e37_79b9);
    k = mix32(k ^ (seed >> 32) as u32);
    k = mix32(k ^ domain);
    mix32(k ^ stream)
}

/// Element `counter` of the stream with key `k`.
#[inline]
pub fn rand(k: u32, counter: u32) -> u32 {
    mix32(mix32(counter ^ k).wrapping_add(k))
}

/// Standard normal samples by Box-Muller over pairs: elements `2p` and `2p + 1` come from counters `2p` and `2p + 1`.
/// `u1 = ((r1 >> 8) + 1) / 2^24` lies in (0, 1], `u2 = (r2 >> 8) / 2^24` in [0, 1).
pub fn fill_normal(out: &mut [f32], seed: u64, domain: u32, stream: u32) {
    let k = key(seed, domain, stream);
    let scale = 1.0f32 / 16_777_216.0;
    let mut i = 0usize;
    while i < out.len() {
        let u1 = (((rand(k, i as u32) >> 8) + 1) as f32) * scale;
        let u2 = ((rand(k, i as u32 + 1) >> 8) as f32) * scale;
        let r = (-2.0f32 * u1.ln()).sqrt();
        let t = std::f32::consts::TAU * u2;
        out[i] = r * t.cos();
        if i + 1 < out.len() {
            out[i + 1] = r * t.sin();
        }
        i += 2;
    }
}

/// The key of the dropout mask of layer `layer` in pass `pass` of the forwards drawn from stream `stream`.
#[inline]
pub fn dropout_key(seed: u64, stream: u32, pass: u32, layer: u32) -> u32 {
    mix32(
        key(seed, DOMAIN_DROPOUT, stream)
            ^ mix32(pass.wrapping_mul(256).wrapping_add(layer) ^ 0x85eb_ca6b),
    )
}

/// A dropout of probability `p` as an integer test: element `c` is kept when `rand(k, c) >> 8` is below this
/// (PyTorch's `bernoulli_(1 - p)`: a uniform below `1 - p`, with 24 bits).
#[inline]
pub fn dropout_threshold(p: f64) -> u32 {
    ((1.0 - p) * 16_777_216.0).ceil() as u32
}

/// The scale of a kept element, as PyTorch computes it: `keep / (1 - p)` with `1 - p` rounded to float32.
#[inline]
pub fn dropout_scale(p: f64) -> f32 {
    1.0f32 / ((1.0 - p) as f32)
}

/// The mask value (0 or `scale`) of element `counter` under key `k`.
#[inline]
pub fn dropout_mask(k: u32, counter: u32, threshold: u32, scale: f32) -> f32 {
    if (rand(k, counter) >> 8) < threshold {
        scale
    } else {
        0.0
    }
}

/// Element `counter` of the stream with key `k` as a class in `[0, classes)`: `floor(uniform24 * classes)`, exact in
/// f64 (classes at most 2^29: the product needs 53 bits).
pub fn class(k: u32, counter: u32, classes: usize) -> u32 {
    (uniform24(k, counter) * classes as f64) as u32
}

/// Element `counter` of the stream with key `k` as a uniform number in [0, 1) with 24 bits (exact in f32 and f64).
#[inline]
pub fn uniform24(k: u32, counter: u32) -> f64 {
    (rand(k, counter) >> 8) as f64 / 16_777_216.0
}

/// The sample order of one epoch: a Fisher-Yates shuffle of `0..n` drawn from the shuffle stream of `epoch`.
pub fn permutation(out: &mut [u32], seed: u64, epoch: u32) {
    for (i, v) in out.iter_mut().enumerate() {
        *v = i as u32;
    }
    let k = key(seed, DOMAIN_SHUFFLE, epoch);
    for i in (1..out.len()).rev() {
        let j = ((rand(k, i as u32) as u64 * (i as u64 + 1)) >> 32) as usize;
        out.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_moments() {
        let mut v = vec![0f32; 200_001];
        fill_normal(&mut v, 42, DOMAIN_NOISE, 7);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn permutation_is_a_permutation_and_differs_by_epoch() {
        let mut a = vec![0u32; 1000];
        let mut b = vec![0u32; 1000];
        permutation(&mut a, 1, 0);
        permutation(&mut b, 1, 1);
        let mut s = a.clone();
        s.sort();
        assert!(s.iter().enumerate().all(|(i, &v)| v == i as u32));
        assert_ne!(a, b);
    }

    #[test]
    fn only_normal_domains_draw_normals() {
        for d in NORMAL_DOMAINS {
            assert!(check_normal_domain(d).is_ok());
        }
        let e = check_normal_domain(DOMAIN_SHUFFLE).unwrap_err();
        assert_eq!(
            e.message,
            "rng domain 2 is not a noise domain (expected 1 noise, 4 fixed or 5 sample)"
        );
        assert!(check_normal_domain(99).is_err());
    }
}
