//! The machine's FMA peak: a loop of independent fused multiply-adds (12 accumulators, more than an FMA's latency
//! times its throughput on any current x86 core), on one thread and on `threads` threads at once, for 256-bit (AVX2)
//! and, where the CPU has it, 512-bit (AVX-512) vectors.

use std::time::Instant;

/// One peak figure.
pub struct Peak {
    /// `avx2` (8 lanes) or `avx512` (16 lanes).
    pub width: &'static str,
    pub threads: usize,
    pub gflops: f64,
}

/// A loop of `iters` rounds of independent FMAs (returns a value so that it is not optimized away).
type FmaLoop = unsafe fn(usize) -> f32;

const ITERS: usize = 20_000_000;
const ACCS: usize = 12;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma256(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(0.0); ACCS];
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut s = _mm256_setzero_ps();
    for x in acc {
        s = _mm256_add_ps(s, x);
    }
    let mut out = [0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(0.0); ACCS];
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for x in acc {
        s = _mm512_add_ps(s, x);
    }
    _mm512_reduce_add_ps(s)
}

/// GFLOP/s of `threads` threads each running `f(ITERS)` at once (2 flops per lane per FMA).
fn run(threads: usize, lanes: usize, f: FmaLoop) -> f64 {
    let best = (0..3)
        .map(|_| {
            let t = Instant::now();
            let sink: f32 = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads)
                    .map(|_| s.spawn(|| unsafe { f(ITERS) }))
                    .collect();
                hs.into_iter().map(|h| h.join().expect("peak thread")).sum()
            });
            std::hint::black_box(sink);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    (threads * ITERS * ACCS * lanes * 2) as f64 / best / 1e9
}

/// The peaks on this CPU: per width, one thread and `threads` threads (one entry when `threads` is 1).
pub fn measure(threads: usize) -> Vec<Peak> {
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        let mut widths: Vec<(&'static str, usize, FmaLoop)> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            widths.push(("avx2", 8, fma256));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            widths.push(("avx512", 16, fma512));
        }
        for (width, lanes, f) in widths {
            let mut counts = vec![1];
            if threads > 1 {
                counts.push(threads);
            }
            for t in counts {
                v.push(Peak {
                    width,
                    threads: t,
                    gflops: run(t, lanes, f),
                });
            }
        }
    }
    v
}
