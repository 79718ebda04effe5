//! The shape table of issue 17: every GEMM of the seed's step (forward, input gradient, weight gradient) at batch 64,
//! 256 and 1024, in the strides the CPU backend calls them with (`native/src/cpu/kernels.rs`: activations
//! feature-major, weights `[out, in]`), timed through the `gemm` crate (the library's), `matrixmultiply`, `faer` and
//! OpenBLAS's `cblas_sgemm` (loaded at run time, for reference), beside the machine's FMA peak measured by a loop of
//! independent FMAs (per core and on all cores at once).
//!
//! ```sh
//! gemm_shapes --threads 2 --batches 64,256,1024 --json out.jsonl   # one JSON line per measurement, a table on stdout
//! ```
//!
//! Built with the `v4` feature (the default) the `gemm` crate may pick its AVX-512 kernels as the library does; built
//! with `--no-default-features` it has AVX2+FMA kernels only, which is how `bench/gemm_shapes/run.sh` measures the
//! AVX2 path on an AVX-512 machine. `matrixmultiply`, `faer` and OpenBLAS pick their own kernels at run time (on an
//! AVX-512 machine all three run faster than the AVX2 FMA peak allows, so they use 512-bit vectors there).

mod libs;
mod peak;

use libs::{Lib, Operand};
use std::io::Write;
use std::time::Instant;

/// One GEMM of the step: `c[m, n] = a[m, k] b[k, n]`, each operand by its strides.
#[derive(Clone, Copy)]
struct Gemm {
    /// `fwd`, `dx` or `dw`.
    kind: &'static str,
    /// `G` or `D`, and the layer's (in, out).
    net: &'static str,
    inp: usize,
    out: usize,
    /// Samples in this call (D runs over [fake; real]: 2 batch).
    rows: usize,
}

impl Gemm {
    /// `(m, n, k)` and the strides of c, a and b, exactly as `kernels.rs` passes them to `gemm::gemm`.
    fn layout(&self) -> (usize, usize, usize, Operand, Operand, Operand) {
        let (rows, inp, out) = (self.rows, self.inp, self.out);
        match self.kind {
            // y[rows, out] (column-major) = x[rows, inp] (column-major) W^T (W row-major [out, inp])
            "fwd" => (rows, out, inp, (1, rows), (1, rows), (1, inp)),
            // dx[rows, inp] (column-major) = dz[rows, out] (column-major) W
            "dx" => (rows, inp, out, (1, rows), (1, rows), (inp, 1)),
            // dW[out, inp] (row-major) = dz[out, rows] x[rows, inp]
            _ => (out, inp, rows, (inp, 1), (rows, 1), (1, rows)),
        }
    }

    fn flops(&self) -> f64 {
        2.0 * (self.rows * self.inp * self.out) as f64
    }
}

/// The GEMMs of one seed step at `batch` (the library's order of work, see `native/src/cpu/gan.rs`).
fn step_gemms(batch: usize) -> Vec<Gemm> {
    const G: [usize; 6] = [100, 128, 256, 512, 1024, 784];
    const D: [usize; 4] = [784, 512, 256, 1];
    let mut v = Vec::new();
    let layer = |net, dims: &[usize], l: usize, kind, rows| Gemm {
        kind,
        net,
        inp: dims[l],
        out: dims[l + 1],
        rows,
    };
    for l in 0..5 {
        v.push(layer("G", &G, l, "fwd", batch));
    }
    for l in 0..3 {
        v.push(layer("D", &D, l, "fwd", 2 * batch));
    }
    // The G step: D's input gradients over the fakes (all layers: the gradient reaches the images), then G's.
    for l in (0..3).rev() {
        v.push(layer("D", &D, l, "dx", batch));
    }
    for l in (0..5).rev() {
        v.push(layer("G", &G, l, "dw", batch));
        if l > 0 {
            v.push(layer("G", &G, l, "dx", batch));
        }
    }
    // The D step over [fake; real]: weight gradients, and input gradients inside D only.
    for l in (0..3).rev() {
        v.push(layer("D", &D, l, "dw", 2 * batch));
        if l > 0 {
            v.push(layer("D", &D, l, "dx", 2 * batch));
        }
    }
    v
}

/// Seconds per call: the median of 5 samples, each as many calls as fill `budget` seconds (at least one).
fn time_call(budget: f64, mut f: impl FnMut()) -> f64 {
    f(); // warm-up (packing buffers, thread pools, pages)
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-7);
    let reps = ((budget / 5.0 / once) as usize).clamp(1, 100_000);
    let mut samples: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[2]
}

/// Every library's `c` against the first's: a wrong stride mapping would show here, not as a fast wrong number.
fn check_agree(
    libs: &[Lib],
    (m, n, k): (usize, usize, usize),
    (cs, as_, bs): (Operand, Operand, Operand),
    (a, b): (&[f32], &[f32]),
    g: &Gemm,
) {
    let mut want = vec![0f32; m * n];
    libs[0].sgemm(m, n, k, &mut want, cs, a, as_, b, bs);
    let scale = want.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-30);
    for lib in &libs[1..] {
        let mut got = vec![f32::NAN; m * n];
        lib.sgemm(m, n, k, &mut got, cs, a, as_, b, bs);
        let diff = want
            .iter()
            .zip(&got)
            .fold(0f32, |s, (x, y)| s.max((x - y).abs()));
        if diff.is_nan() || diff > 1e-4 * scale {
            eprintln!("error: {} disagrees with {} on {} {} {}>{} rows {}: max difference {diff}, scale {scale}", lib.name(), libs[0].name(), g.net, g.kind, g.inp, g.out, g.rows);
            std::process::exit(1);
        }
    }
}

struct Args {
    threads: usize,
    batches: Vec<usize>,
    json: Option<String>,
    budget: f64,
    /// Only the libraries whose names start with one of these (all when empty).
    libs: Vec<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        threads: 1,
        batches: vec![64, 256, 1024],
        json: None,
        budget: 0.15,
        libs: Vec::new(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| usage(&format!("{} needs a value", argv[i])));
        match argv[i].as_str() {
            "--threads" => {
                a.threads = value
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("--threads: {value}")))
            }
            "--batches" => {
                a.batches = value
                    .split(',')
                    .map(|s| {
                        s.parse()
                            .unwrap_or_else(|_| usage(&format!("--batches: {s}")))
                    })
                    .collect()
            }
            "--json" => a.json = Some(value),
            "--libs" => a.libs = value.split(',').map(str::to_string).collect(),
            "--budget" => {
                a.budget = value
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("--budget: {value}")))
            }
            other => usage(&format!("unknown option {other}")),
        }
        i += 2;
    }
    if a.threads == 0 {
        usage("--threads must be at least 1");
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}\nusage: gemm_shapes [--threads N] [--batches 64,256,1024] [--json FILE] [--budget S] [--libs ours,gemm,faer,...]");
    std::process::exit(2);
}

fn main() {
    let args = parse_args();
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .expect("rayon pool");
    // Every call is made from a thread of the pool, as the library makes its GEMMs (its FFI calls run inside its
    // pool): from outside, each call that splits its work would also pay a hand-off to the pool and back.
    rayon::scope(|s| s.spawn(|_| measure(args)));
}

/// The peaks, then every library on every GEMM of the step (a table on stdout, JSON lines with --json).
fn measure(args: Args) {
    let isa = if cfg!(feature = "v4") && std::arch::is_x86_feature_detected!("avx512f") {
        "avx512"
    } else {
        "avx2"
    };
    let mut json = args.json.as_ref().map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap_or_else(|e| usage(&format!("{p}: {e}")))
    });
    let mut emit = |line: String| {
        if let Some(f) = json.as_mut() {
            writeln!(f, "{line}").expect("write --json");
        }
    };

    let peaks = peak::measure(args.threads);
    for p in &peaks {
        println!(
            "FMA peak {} x{} threads: {:.1} GFLOP/s",
            p.width, p.threads, p.gflops
        );
        emit(format!(
            r#"{{"kind":"peak","width":"{}","threads":{},"gflops":{:.3}}}"#,
            p.width, p.threads, p.gflops
        ));
    }
    let mut libs = Lib::all(args.threads);
    libs.retain(|l| {
        args.libs.is_empty() || args.libs.iter().any(|p| l.name().starts_with(p.as_str()))
    });
    if libs.is_empty() {
        usage("--libs matches no library (ours, gemm, matrixmultiply, faer, openblas)");
    }
    println!("gemm build: {isa}; threads {}", args.threads);
    print!(
        "{:>5} {:>3} {:>4} {:>4} {:>9} {:>5}",
        "batch", "net", "kind", "rows", "in>out", "MFLOP"
    );
    for l in &libs {
        print!(" {:>15}", l.name());
    }
    println!("   (GFLOP/s)");
    for &batch in &args.batches {
        let mut totals = vec![0.0f64; libs.len()];
        let mut flops = 0.0;
        for g in step_gemms(batch) {
            let (m, n, k, cs, as_, bs) = g.layout();
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 13.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 11.0)
                .collect();
            let mut c = vec![0f32; m * n];
            print!(
                "{batch:>5} {:>3} {:>4} {:>4} {:>9} {:>5.1}",
                g.net,
                g.kind,
                g.rows,
                format!("{}>{}", g.inp, g.out),
                g.flops() / 1e6
            );
            flops += g.flops();
            check_agree(&libs, (m, n, k), (cs, as_, bs), (&a, &b), &g);
            for (li, lib) in libs.iter().enumerate() {
                let s = time_call(args.budget, || {
                    lib.sgemm(m, n, k, &mut c, cs, &a, as_, &b, bs)
                });
                totals[li] += s;
                let gflops = g.flops() / s / 1e9;
                print!(" {gflops:>15.1}");
                emit(format!(
                    r#"{{"kind":"gemm","isa":"{isa}","threads":{},"batch":{batch},"net":"{}","op":"{}","rows":{},"in":{},"out":{},"lib":"{}","seconds":{:.9},"gflops":{:.3}}}"#,
                    args.threads,
                    g.net,
                    g.kind,
                    g.rows,
                    g.inp,
                    g.out,
                    lib.name(),
                    s,
                    gflops
                ));
            }
            println!();
        }
        print!("{batch:>5} all step {:>14} {:>5.0}", "", flops / 1e6);
        for (li, lib) in libs.iter().enumerate() {
            print!(" {:>15.1}", flops / totals[li] / 1e9);
            emit(format!(
                r#"{{"kind":"step","isa":"{isa}","threads":{},"batch":{batch},"lib":"{}","seconds":{:.9},"gflops":{:.3}}}"#,
                args.threads,
                lib.name(),
                totals[li],
                flops / totals[li] / 1e9
            ));
        }
        println!("\n");
    }
}
