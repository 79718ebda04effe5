//! The CPU backend's GEMM, shaped for the step: `C[m, n] (+)= A[m, k] B[k, n]` with C *column-major* in the narrow
//! dimension `m` (the batch, in the feature-major layout of `kernels.rs`), A and B through any two strides (the
//! weights `[out, in]` read as they are), then an epilogue on every column of C.
//!
//! - **Microkernels**: a tile of `MR` rows (vectors along m) by `NR` columns (broadcasts along n) held in registers:
//!   AVX2+FMA 16 x 6 (12 accumulators), and a portable 8 x 4 elsewhere. Rows past `m` are masked; columns past `n`
//!   read the last valid column and are not stored. On AVX2 on an AMD (or Hygon) core, `faer` runs instead; on the
//!   AVX-512 level, and on other AVX2 cores for an A larger than half an L2 (batch 256 and above), the `gemm` crate
//!   (`Engine`, and why).
//! - **One rounding order**: every element of C is a single chain of fused multiply-adds over `p = 0..k` in order,
//!   starting from 0 (or from C's old value when accumulating). The tile, the k blocking (a block resumes each chain
//!   from its stored value), B's packing, A's transpose and the thread that runs a panel do not change that chain,
//!   so the result is bitwise the same on any thread count, and the same on AVX2 and aarch64 (the portable
//!   kernel's `mul_add`) wherever our kernels run. Only x86-64 without FMA rounds each product apart; see
//!   [`PORTABLE_FMA`].
//! - **Static split**: the column panels are divided into `TASKS_PER_THREAD` contiguous ranges per thread once per
//!   call (a binary split through `rayon::join`, no allocation).
//! - **Fused epilogue**: once a range's columns are final, the caller's `epilogue(j, column)` runs on each of them
//!   while they are in cache (bias, BatchNorm, activation; or the block below's backward through its activation and
//!   BatchNorm).

use super::kernels::{simd_level, SimdLevel};

/// Work below this many multiply-adds runs on one thread: splitting it costs more than it saves.
const PAR_MIN_MACS: usize = 1 << 20;
/// Tasks per thread in a call: more than one lets a thread that finishes early (or runs while another tenant's load
/// slows the other core) take over work; the split never changes a result.
const TASKS_PER_THREAD: usize = 4;
/// The k block: a panel's B values for this many k stay in L1 while every m-tile uses them.
const KC: usize = 128;
/// The L2 assumed where the machine does not say (`l2_bytes`): 2 MiB, the Xeon's the size rule was first tuned on.
const L2_DEFAULT: usize = 2 << 20;
/// The m block (a multiple of every tile's MR): `[MC, KC]` of A, 128 KiB, stays in L2 while every panel uses it.
const MC: usize = 256;
/// B is packed when its row stride is a multiple of this many floats (see `Job::pack`).
const PACK_STRIDE: usize = 512;
/// Panels packed together (a multiple of 16 columns at both tile widths).
const GROUP: usize = 8;

/// A read-only operand with element `(row r, column c)` at `r * rs + c * cs`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    pub fn new(data: &'a [f32], rs: usize, cs: usize) -> View<'a> {
        View { data, rs, cs }
    }

    /// Whether every element of a `rows x cols` matrix lies inside `data`.
    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || self.data.len() > (rows - 1) * self.rs + (cols - 1) * self.cs
    }
}

/// What runs on each column of C once it is final: `(column index, its m values)`.
pub type Epilogue<'e> = &'e (dyn Fn(usize, &mut [f32]) + Sync);

/// One GEMM: `C[m, n] (+)= A[m, k] B[k, n]`, A and B through their strides.
#[derive(Clone, Copy)]
pub struct Gemm<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: View<'a>,
    pub b: View<'a>,
    pub threads: usize,
}

impl Gemm<'_> {
    /// `C = A B` (or `C += A B` when `acc`), C `[m, n]` column-major with leading dimension `ldc` (element `(i, j)`
    /// at `j * ldc + i`); then `epilogue` on every column. Panics (before any unsafe access) when an operand does
    /// not cover its shape.
    ///
    /// ```ignore
    /// // Y[rows, out] = X[rows, inp] W^T with X feature-major and W `[out, inp]` row-major: B(p, j) = W[j, p].
    /// let g = Gemm { m: rows, n: out, k: inp, a: View::new(&x, 1, rows), b: View::new(&w, 1, inp), threads };
    /// g.run(false, &mut y, rows, None);
    /// ```
    pub fn run(&self, acc: bool, c: &mut [f32], ldc: usize, epilogue: Option<Epilogue>) {
        #[cfg(test)]
        trace::BEGAN.with(|b| b.set(std::time::Instant::now()));
        let (m, n, k) = (self.m, self.n, self.k);
        if m == 0 || n == 0 {
            return;
        }
        assert!(
            ldc >= m && c.len() >= (n - 1) * ldc + m,
            "gemm: c too small"
        );
        assert!(self.a.covers(m, k), "gemm: a too small");
        assert!(self.b.covers(k, n), "gemm: b too small");
        let level = simd_level();
        match Engine::pick(level, m, k) {
            Engine::Ours => return self.ours(acc, c, ldc, Kernel::for_level(level), epilogue),
            // No products: C stays (accumulating) or is zero, whatever a crate makes of an empty k.
            _ if k == 0 => {
                if !acc {
                    c.chunks_mut(ldc).take(n).for_each(|col| col[..m].fill(0.0));
                }
            }
            Engine::Gemm => self.crate_gemm(acc, c, ldc),
            Engine::Faer => self.faer_gemm(acc, c, ldc),
        }
        #[cfg(test)]
        let products = trace::now();
        if let Some(f) = epilogue {
            columns_apply(c, ldc, m, n, self.threads, f);
        }
        #[cfg(test)]
        trace::record(self, acc, products);
    }

    /// `run` through our microkernel `kernel`. An A that is not column-major is transposed first into this
    /// thread's scratch, with a leading dimension that is not a multiple of 512 floats (rows that far apart share
    /// L1 sets).
    fn ours(
        &self,
        acc: bool,
        c: &mut [f32],
        ldc: usize,
        kernel: Kernel,
        epilogue: Option<Epilogue>,
    ) {
        let (m, k) = (self.m, self.k);
        if self.a.rs == 1 {
            return self.ours_colmajor(acc, c, ldc, self.a.data, self.a.cs, kernel, epilogue);
        }
        let lda = if m.is_multiple_of(512) { m + 16 } else { m };
        PACKED_A.with_borrow_mut(|at| {
            if at.len() < k * lda {
                at.resize(k * lda, 0.0);
            }
            transpose_into(&mut at[..k * lda], lda, self.a, m, k, self.threads);
            self.ours_colmajor(acc, c, ldc, at, lda, kernel, epilogue);
        });
    }

    /// `ours` with A column-major `[m, k]`, leading dimension `lda`.
    #[allow(clippy::too_many_arguments)]
    fn ours_colmajor(
        &self,
        acc: bool,
        c: &mut [f32],
        ldc: usize,
        a: &[f32],
        lda: usize,
        kernel: Kernel,
        epilogue: Option<Epilogue>,
    ) {
        let (m, n, k) = (self.m, self.n, self.k);
        let panels = n.div_ceil(kernel.nr);
        let tasks = if m * n * k >= PAR_MIN_MACS {
            (self.threads * TASKS_PER_THREAD).clamp(1, panels)
        } else {
            1
        };
        let job = Job {
            acc,
            m,
            n,
            k,
            ldc,
            a,
            lda,
            b: self.b,
            kernel,
            epilogue,
        };
        job.run(c, 0, panels, tasks);
    }

    /// `run` through `faer`'s matmul (`Engine::Faer`, k > 0): the same checks and the same thread rule as `crate_gemm`.
    /// faer splits C over the threads, never k, so its results too are the same run to run and on any thread count
    /// (tested).
    fn faer_gemm(&self, acc: bool, c: &mut [f32], ldc: usize) {
        let (m, n, k, a, b) = (self.m, self.n, self.k, self.a, self.b);
        let par = if self.threads > 1 && m * n * k >= PAR_MIN_MACS {
            faer::Par::rayon(self.threads)
        } else {
            faer::Par::Seq
        };
        let accum = if acc {
            faer::Accum::Add
        } else {
            faer::Accum::Replace
        };
        // SAFETY: `run` checked that the three slices cover every element their strides reach for these shapes, and
        // C does not alias A or B (a `&mut` beside two `&`).
        unsafe {
            let dst = faer::MatMut::from_raw_parts_mut(c.as_mut_ptr(), m, n, 1, ldc as isize);
            let lhs =
                faer::MatRef::from_raw_parts(a.data.as_ptr(), m, k, a.rs as isize, a.cs as isize);
            let rhs =
                faer::MatRef::from_raw_parts(b.data.as_ptr(), k, n, b.rs as isize, b.cs as isize);
            faer::linalg::matmul::matmul(dst, accum, lhs, rhs, 1.0f32, par);
        }
    }

    /// `run` through the `gemm` crate (`Engine::Gemm`, k > 0). Its kernels
    /// sum in another order than ours, so those results differ from ours in the last bits (each is still the same
    /// run to run and on any thread count). Our AVX-512 tile (64 x 6) reached 88% of the FMA peak with its operands
    /// in cache, but inside the step, where each call reads the weights from memory, the crate's kernel (which packs
    /// them first) was about 25% faster; and at batch 1024 our AVX2 path was 16% slower: see bench/RESULTS.md
    /// (issue 17).
    fn crate_gemm(&self, acc: bool, c: &mut [f32], ldc: usize) {
        let (m, n, k, a, b) = (self.m, self.n, self.k, self.a, self.b);
        let par = if self.threads > 1 && m * n * k >= PAR_MIN_MACS {
            gemm::Parallelism::Rayon(self.threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: `run` checked that the three slices cover every element their strides reach for these shapes.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                ldc as isize,
                1,
                acc,
                a.data.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                b.data.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                par,
            );
        }
    }
}

/// Which kernels run a GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// Our microkernels (`Gemm::ours`).
    Ours,
    /// The `gemm` crate (`Gemm::crate_gemm`).
    Gemm,
    /// `faer` (`Gemm::faer_gemm`).
    Faer,
}

impl Engine {
    /// The engine of a GEMM with A `[m, k]` on `level`: on the AVX-512 level the `gemm` crate; on AVX2, faer on an AMD
    /// or Hygon core (on a Zen 3 it ran the step 1.04-1.22x faster than the `gemm` crate on two threads and level on
    /// one, and the `gemm` crate had beaten our tile there and on a Zen 4 by 1.04-1.4x; bench/RESULTS.md, issue 17),
    /// elsewhere our tile up to `ours_max_a` and the `gemm` crate above (the one Intel Xeon measured ran our tile
    /// 1.07-1.21x faster than the crate); the portable tile everywhere else. Both inputs are read once per process,
    /// so a machine's results stay the same run to run.
    fn pick(level: SimdLevel, m: usize, k: usize) -> Engine {
        match level {
            SimdLevel::Avx512 => Engine::Gemm,
            SimdLevel::Avx2 if amd_core() => Engine::Faer,
            SimdLevel::Avx2 if m * k > ours_max_a() => Engine::Gemm,
            SimdLevel::Avx2 | SimdLevel::Baseline => Engine::Ours,
        }
    }
}

/// Whether this CPU's vendor (CPUID leaf 0) is one whose AVX2 GEMMs go to faer (`Engine::pick`). Read once.
fn amd_core() -> bool {
    static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMD.get_or_init(|| cpu_vendor().is_some_and(|v| amd_vendor(&v)))
}

/// `"AuthenticAMD"` and `"HygonGenuine"` (Hygon's Dhyana is a Zen 1): the vendors of `amd_core`.
fn amd_vendor(vendor: &[u8; 12]) -> bool {
    vendor == b"AuthenticAMD" || vendor == b"HygonGenuine"
}

/// The 12-byte vendor string of CPUID leaf 0 (EBX, EDX, ECX in that order); None off x86-64.
fn cpu_vendor() -> Option<[u8; 12]> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: CPUID exists on every x86-64 CPU, and leaf 0 on every one of them.
        #[allow(unused_unsafe)]
        let r = unsafe { std::arch::x86_64::__cpuid(0) };
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&r.ebx.to_le_bytes());
        v[4..8].copy_from_slice(&r.edx.to_le_bytes());
        v[8..].copy_from_slice(&r.ecx.to_le_bytes());
        Some(v)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// The largest A (in elements) that our kernels take on the AVX2 level off AMD: half the L2 of this machine's first
/// core (1 MiB on a 2 MiB L2). A larger A (the step's larger GEMMs from batch 256 on) goes to the `gemm` crate, whose
/// blocking was faster there (bench/RESULTS.md, issue 17). Read once; the same on every call, so a machine's results
/// stay the same run to run.
fn ours_max_a() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| l2_bytes().unwrap_or(L2_DEFAULT) / 2 / std::mem::size_of::<f32>())
}

/// The L2 data cache of cpu0 in bytes, from Linux's sysfs (`cache/index*/level` 2, a data or unified cache); None
/// elsewhere or when it cannot be read.
fn l2_bytes() -> Option<usize> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).ok();
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let (level, kind) = (read(e.path().join("level"))?, read(e.path().join("type"))?);
        if level.trim() != "2" || kind.trim() == "Instruction" {
            return None;
        }
        parse_cache_size(read(e.path().join("size"))?.trim())
    })
}

/// A sysfs cache size (`"1024K"`, `"2M"`, `"512"`) in bytes; None when it is not one.
fn parse_cache_size(s: &str) -> Option<usize> {
    let (digits, unit) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .map(|n| n * unit)
}

/// `dst [k, lda]` (column p holds A's column p, rows `0..m`) from A through its strides, 16 columns at a time (in
/// parallel when large: each task writes its own columns).
fn transpose_into(dst: &mut [f32], lda: usize, a: View, m: usize, k: usize, threads: usize) {
    const T: usize = 16;
    let block = |(c, dst): (usize, &mut [f32])| {
        let p0 = c * T;
        for i in 0..m {
            for (dp, p) in (p0..(p0 + T).min(k)).enumerate() {
                dst[dp * lda + i] = a.data[i * a.rs + p * a.cs];
            }
        }
    };
    if threads > 1 && m * k >= 1 << 16 {
        use rayon::prelude::*;
        dst.par_chunks_mut(T * lda).enumerate().for_each(block);
    } else {
        dst.chunks_mut(T * lda).enumerate().for_each(block);
    }
}

/// `f(j, column j)` over C's `n` columns (their first `m` values), in parallel when the work is large.
fn columns_apply(c: &mut [f32], ldc: usize, m: usize, n: usize, threads: usize, f: Epilogue) {
    use rayon::prelude::*;
    if threads > 1 && m * n >= 1 << 16 {
        c.par_chunks_mut(ldc)
            .take(n)
            .enumerate()
            .for_each(|(j, col)| f(j, &mut col[..m]));
    } else {
        c.chunks_mut(ldc)
            .take(n)
            .enumerate()
            .for_each(|(j, col)| f(j, &mut col[..m]));
    }
}

/// One call's operands and kernel, shared by its tasks.
struct Job<'a, 'e> {
    acc: bool,
    m: usize,
    n: usize,
    k: usize,
    ldc: usize,
    a: &'a [f32],
    lda: usize,
    b: View<'a>,
    kernel: Kernel,
    epilogue: Option<Epilogue<'e>>,
}

impl Job<'_, '_> {
    /// Runs panels `[p0, p1)` on `tasks` threads; `c` starts at column `p0 * NR` of C.
    fn run(&self, c: &mut [f32], p0: usize, p1: usize, tasks: usize) {
        if tasks <= 1 {
            self.leaf(c, p0, p1);
            return;
        }
        let left = tasks / 2;
        let mid = p0 + (p1 - p0) * left / tasks;
        let split = ((mid - p0) * self.kernel.nr * self.ldc).min(c.len());
        let (lo, hi) = c.split_at_mut(split);
        rayon::join(
            || self.run(lo, p0, mid, left),
            || self.run(hi, mid, p1, tasks - left),
        );
    }

    /// Panels `[p0, p1)` on this thread; `c` starts at panel p0's first column. k runs in blocks of KC, and a later
    /// block resumes each element's chain from its stored value, so the blocking does not change a single rounding.
    /// With rows of B a multiple of 2 KiB apart (see `Job::pack`), `GROUP` panels are packed together here, so that
    /// each k reads whole cache lines of B. The epilogue runs once the range's columns are final.
    fn leaf(&self, c: &mut [f32], p0: usize, p1: usize) {
        let (nr, b) = (self.kernel.nr, self.b);
        let at = |q: usize| (q - p0) * nr * self.ldc;
        let pack = b.cs == 1 && b.rs.is_multiple_of(PACK_STRIDE);
        // Rows in blocks of MC, then k in blocks of KC, then the panels: one block of A (`[MC, KC]`) stays in cache
        // while every panel uses it, and each panel's B values of a k block are reused by the block's m-tiles.
        for i0 in (0..self.m).step_by(MC) {
            let rows = i0..MC.min(self.m - i0) + i0;
            for k0 in (0..self.k.max(1)).step_by(KC) {
                let kb = KC.min(self.k - k0);
                for g0 in (p0..p1).step_by(GROUP) {
                    let g1 = (g0 + GROUP).min(p1);
                    if pack {
                        PACKED.with_borrow_mut(|packed| {
                            let bp = self.pack(packed, g0, g1, k0, kb);
                            for (q, bq) in (g0..g1).zip(bp.chunks(kb.max(1) * nr)) {
                                let bq = View::new(bq, nr, 1);
                                self.tiles(&mut c[at(q)..], bq, q * nr, k0, kb, rows.clone());
                            }
                        });
                    } else {
                        for q in g0..g1 {
                            let bq = View::new(&b.data[q * nr * b.cs + k0 * b.rs..], b.rs, b.cs);
                            self.tiles(&mut c[at(q)..], bq, q * nr, k0, kb, rows.clone());
                        }
                    }
                }
            }
        }
        if let Some(f) = self.epilogue {
            let cols = (p1 * nr).min(self.n) - p0 * nr;
            for (jj, col) in c.chunks_mut(self.ldc).enumerate().take(cols) {
                f(p0 * nr + jj, &mut col[..self.m]);
            }
        }
    }

    /// The m-tiles of `rows` of the panel at column `j0` over `k0..k0 + kb`; `c` starts at column j0, `b` at B's
    /// element `(k0, j0)`.
    #[allow(clippy::too_many_arguments)]
    fn tiles(
        &self,
        c: &mut [f32],
        b: View,
        j0: usize,
        k0: usize,
        kb: usize,
        rows: std::ops::Range<usize>,
    ) {
        let (mr, cols) = (self.kernel.mr, self.kernel.nr.min(self.n - j0));
        let c = &mut c[..(cols - 1) * self.ldc + self.m];
        for i0 in rows.clone().step_by(mr) {
            let tile = Tile {
                k: kb,
                a: self.a.as_ptr().wrapping_add(k0 * self.lda + i0),
                lda: self.lda,
                b: b.data.as_ptr(),
                b_rs: b.rs,
                b_cs: b.cs,
                c: c.as_mut_ptr().wrapping_add(i0),
                ldc: self.ldc,
                rows: mr.min(rows.end - i0),
                cols,
                acc: self.acc || k0 > 0,
            };
            // SAFETY: `gemm` checked that A covers [m, k], B covers [k, n] and C covers [m, n] (a packed group holds
            // [kb, NR] per panel). The tile reads A rows i0..i0+rows (masked past them) at k0..k0+kb and B's `cols`
            // columns (clamped to the last valid one) at kb values of k, and writes C rows i0..i0+rows of its
            // `cols` columns, inside `c` (sliced above).
            unsafe { (self.kernel.tile)(&tile) };
        }
    }

    /// Copies rows `[k0, k0 + kb)` of B's panels `[g0, g1)` (B with unit column stride) into `buf` as `[panel, kb, NR]` (columns past
    /// `n` zero) and returns it. For B's rows a multiple of 2 KiB apart (the weights' rows in the input gradient,
    /// at 512 or 1024 inputs), reading a panel in place maps every k to the same few L1 sets; packing a group
    /// reads each row's `GROUP * NR` values at once instead.
    fn pack<'b>(
        &self,
        buf: &'b mut Vec<f32>,
        g0: usize,
        g1: usize,
        k0: usize,
        kb: usize,
    ) -> &'b [f32] {
        let (nr, b) = (self.kernel.nr, self.b);
        let len = (g1 - g0) * kb.max(1) * nr;
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        let buf = &mut buf[..len];
        let (j0, j1) = (g0 * nr, (g1 * nr).min(self.n));
        let rows = (0..kb).map(|p| &b.data[(k0 + p) * b.rs + j0..(k0 + p) * b.rs + j1]);
        match nr {
            12 => pack_rows::<12>(buf, rows, kb),
            6 => pack_rows::<6>(buf, rows, kb),
            _ => pack_rows::<4>(buf, rows, kb),
        }
        buf
    }
}

/// Scatters `kb` rows of a group's columns into `buf [panel, kb, NR]`, the columns past the rows' end zero. NR is a
/// constant so that each panel's copy is a few vector moves (a library call per NR values would cost more).
fn pack_rows<'r, const NR: usize>(
    buf: &mut [f32],
    rows: impl Iterator<Item = &'r [f32]>,
    kb: usize,
) {
    for (p, row) in rows.enumerate() {
        let (full, tail) = row.split_at(row.len() / NR * NR);
        let panels = buf.chunks_exact_mut(kb * NR);
        for (q, dst) in panels.enumerate() {
            let d: &mut [f32; NR] = (&mut dst[p * NR..(p + 1) * NR])
                .try_into()
                .expect("NR values");
            if let Some(src) = full.get(q * NR..(q + 1) * NR) {
                d.copy_from_slice(src);
            } else {
                *d = [0.0; NR];
                d[..tail.len().min(NR)].copy_from_slice(&tail[..tail.len().min(NR)]);
                break;
            }
        }
    }
}

thread_local! {
    /// Each thread's packed panel of B (`Job::pack`), grown to the largest `k * NR` it has seen.
    static PACKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The calling thread's A transposed to column-major (`gemm`), grown to the largest `k * m` it has seen.
    static PACKED_A: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One microkernel call: rows `rows <= MR`, columns `cols <= NR`, raw pointers at the tile's first elements.
struct Tile {
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    b_rs: usize,
    b_cs: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    acc: bool,
}

/// A microkernel and its tile shape.
#[derive(Clone, Copy)]
struct Kernel {
    mr: usize,
    nr: usize,
    tile: unsafe fn(&Tile),
}

impl Kernel {
    fn for_level(level: SimdLevel) -> Kernel {
        match level {
            // AVX-512 runs the `gemm` crate (see `crate_gemm`), or this kernel in a build without `avx512`.
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 | SimdLevel::Avx2 => Kernel {
                mr: 16,
                nr: 6,
                tile: x86::tile_avx2,
            },
            _ => Kernel {
                mr: 8,
                nr: 4,
                tile: tile_portable,
            },
        }
    }
}

/// The B column offsets of a tile: column `j` of the tile reads column `min(j, cols - 1)`, so that the columns past
/// `n` stay inside B (their results are never stored).
#[inline(always)]
fn col_offsets<const NR: usize>(t: &Tile) -> [usize; NR] {
    std::array::from_fn(|j| j.min(t.cols - 1) * t.b_cs)
}

/// Whether the portable kernel fuses its multiply-adds: on aarch64 `f32::mul_add` is one instruction; x86-64 without
/// FMA (the baseline, older than 2013) would make it a library call, a hundred times slower, so there it rounds the
/// product and the sum apart, and its results differ from the FMA levels in the last bits.
const PORTABLE_FMA: bool = !cfg!(target_arch = "x86_64");

/// `a * b + c`, fused when [`PORTABLE_FMA`].
#[inline(always)]
fn madd(a: f32, b: f32, c: f32) -> f32 {
    if PORTABLE_FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The portable microkernel: 8 x 4, through [`madd`].
///
/// # Safety
/// The tile's pointers must cover its `rows x k` of A, `k x cols` of B and `rows x cols` of C.
unsafe fn tile_portable(t: &Tile) {
    const MR: usize = 8;
    const NR: usize = 4;
    let off = col_offsets::<NR>(t);
    let mut acc = [[0f32; MR]; NR];
    if t.acc {
        for (j, cj) in acc.iter_mut().enumerate().take(t.cols) {
            for (i, v) in cj.iter_mut().enumerate().take(t.rows) {
                *v = *t.c.add(j * t.ldc + i);
            }
        }
    }
    let mut av = [0f32; MR];
    for p in 0..t.k {
        let ap = t.a.add(p * t.lda);
        for (i, v) in av.iter_mut().enumerate() {
            *v = if i < t.rows { *ap.add(i) } else { 0.0 };
        }
        let bp = t.b.add(p * t.b_rs);
        for (cj, &o) in acc.iter_mut().zip(&off) {
            let bj = *bp.add(o);
            for (v, &ai) in cj.iter_mut().zip(&av) {
                *v = madd(ai, bj, *v);
            }
        }
    }
    for (j, cj) in acc.iter().enumerate().take(t.cols) {
        for (i, &v) in cj.iter().enumerate().take(t.rows) {
            *t.c.add(j * t.ldc + i) = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{col_offsets, Tile};
    use std::arch::x86_64::*;

    /// Expands `$m!(j)` for every column index of a tile, so that each accumulator is indexed by a constant (a
    /// loop over a run-time bound would keep them in memory instead of registers).
    macro_rules! each_col {
        (6, $m:ident) => {
            $m!(0);
            $m!(1);
            $m!(2);
            $m!(3);
            $m!(4);
            $m!(5);
        };
    }

    /// AVX2+FMA: 16 x 6 (two 8-lane vectors of rows by six broadcast columns; rows past `rows` masked).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; the tile's pointers must cover its part of A, B and C.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile_avx2(t: &Tile) {
        if t.rows == 16 {
            tile_avx2_rows::<false>(t)
        } else {
            tile_avx2_rows::<true>(t)
        }
    }

    /// `tile_avx2` with the row mask (`MASKED`) or without it (a full 16-row tile).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_avx2_rows<const MASKED: bool>(t: &Tile) {
        let off = col_offsets::<6>(t);
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let r = t.rows as i32;
        let mask = [
            _mm256_cmpgt_epi32(_mm256_set1_epi32(r), lane),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(r - 8), lane),
        ];
        macro_rules! load {
            ($p:expr, $h:expr) => {
                if MASKED {
                    _mm256_maskload_ps($p.add(8 * $h), mask[$h])
                } else {
                    _mm256_loadu_ps($p.add(8 * $h))
                }
            };
        }
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        if t.acc {
            macro_rules! init {
                ($j:literal) => {
                    // Columns past `cols` load the last valid one (never stored).
                    let cp = t.c.add($j.min(t.cols - 1) * t.ldc);
                    acc[$j] = [load!(cp, 0), load!(cp, 1)];
                };
            }
            each_col!(6, init);
        }
        for p in 0..t.k {
            let ap = t.a.add(p * t.lda);
            let (a0, a1) = (load!(ap, 0), load!(ap, 1));
            let bp = t.b.add(p * t.b_rs);
            macro_rules! fma {
                ($j:literal) => {
                    let bj = _mm256_broadcast_ss(&*bp.add(off[$j]));
                    acc[$j][0] = _mm256_fmadd_ps(a0, bj, acc[$j][0]);
                    acc[$j][1] = _mm256_fmadd_ps(a1, bj, acc[$j][1]);
                };
            }
            each_col!(6, fma);
        }
        macro_rules! store {
            ($j:literal) => {
                if $j < t.cols {
                    let cp = t.c.add($j * t.ldc);
                    if MASKED {
                        _mm256_maskstore_ps(cp, mask[0], acc[$j][0]);
                        _mm256_maskstore_ps(cp.add(8), mask[1], acc[$j][1]);
                    } else {
                        _mm256_storeu_ps(cp, acc[$j][0]);
                        _mm256_storeu_ps(cp.add(8), acc[$j][1]);
                    }
                }
            };
        }
        each_col!(6, store);
    }
}

/// The crates' calls as the step makes them, for the profile (`cpu/gan.rs`, `profile_gemms_in_the_step`): with
/// [`trace::start`], each `Gemm::run` through a crate records its shape, its operands' strides and the time its
/// products and its epilogue took.
#[cfg(test)]
pub mod trace {
    use super::Gemm;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// One call: `(m, n, k)`, A's and B's `(rs, cs)`, whether it accumulates, its products' and its epilogue's time.
    #[derive(Clone, Copy, Debug)]
    pub struct Call {
        pub mnk: (usize, usize, usize),
        pub a: (usize, usize),
        pub b: (usize, usize),
        pub acc: bool,
        pub products: Duration,
        pub epilogue: Duration,
    }

    /// The calls recorded since `start` (None: not recording).
    static CALLS: Mutex<Option<Vec<Call>>> = Mutex::new(None);

    /// Starts recording (dropping what was recorded).
    pub fn start() {
        *CALLS.lock().unwrap() = Some(Vec::new());
    }

    /// Stops recording and returns the calls since `start`.
    pub fn take() -> Vec<Call> {
        CALLS.lock().unwrap().take().unwrap_or_default()
    }

    /// When the products ended (the start of the epilogue).
    pub(super) fn now() -> Instant {
        Instant::now()
    }

    /// Records a call through a crate whose products ended at `products`.
    pub(super) fn record(g: &Gemm, acc: bool, products: Instant) {
        let end = Instant::now();
        if let Some(calls) = CALLS.lock().unwrap().as_mut() {
            let began = BEGAN.with(|b| b.get());
            calls.push(Call {
                mnk: (g.m, g.n, g.k),
                a: (g.a.rs, g.a.cs),
                b: (g.b.rs, g.b.cs),
                acc,
                products: products.saturating_duration_since(began),
                epilogue: end - products,
            });
        }
    }

    thread_local! {
        /// When this thread's current `Gemm::run` began.
        pub(super) static BEGAN: std::cell::Cell<Instant> = std::cell::Cell::new(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic fill in [-1, 1).
    fn fill(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The float64 reference of `C (+)= A B` in the layouts of `gemm`.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        acc: bool,
        m: usize,
        n: usize,
        k: usize,
        c0: &[f32],
        ldc: usize,
        a: &[f32],
        lda: usize,
        b: View,
    ) -> Vec<f64> {
        let mut out = vec![0f64; n * ldc];
        for j in 0..n {
            for i in 0..m {
                let mut s = if acc { c0[j * ldc + i] as f64 } else { 0.0 };
                for p in 0..k {
                    s += a[p * lda + i] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                out[j * ldc + i] = s;
            }
        }
        out
    }

    /// The exact chain of multiply-adds (fused, or not for the portable kernel on x86) that every kernel must
    /// reproduce bit for bit.
    fn fma_chain(fused: bool, acc: bool, c0: f32, a: impl Iterator<Item = (f32, f32)>) -> f32 {
        let step = |s: f32, (x, y): (f32, f32)| if fused { x.mul_add(y, s) } else { x * y + s };
        a.fold(if acc { c0 } else { 0.0 }, step)
    }

    /// Every level this machine runs, with the portable kernel always included.
    fn kernels() -> Vec<(&'static str, Kernel)> {
        let mut ks = vec![("portable", Kernel::for_level(SimdLevel::Baseline))];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                ks.push(("avx2", Kernel::for_level(SimdLevel::Avx2)));
            }
        }
        ks
    }

    #[test]
    fn every_kernel_is_the_fma_chain_and_near_the_f64_reference() {
        // (m, n, k): full tiles, row and column tails, k = 0 and 1, one row, one column.
        let shapes = [
            (64, 24, 100),
            (7, 5, 3),
            (100, 13, 33),
            (1, 1, 1),
            (33, 1, 256),
            (16, 6, 0),
            (130, 25, 2),
            (300, 7, 130),
        ];
        for &(m, n, k) in &shapes {
            for acc in [false, true] {
                // C with a leading dimension past m; B as W[n, k] row-major (the forward's view).
                let ldc = m + 3;
                let a = fill(k.max(1) * m, 1);
                let w = fill(n * k.max(1), 2);
                let c0 = fill(n * ldc, 3);
                // B as the forward reads W [n, k], and as the input gradient reads W [k, 512] (packed: see `pack`).
                let wide = fill(k.max(1) * PACK_STRIDE, 6);
                // And through two strides neither of which is 1 (packed element by element).
                let (rs, cs) = (3, 3 * k.max(1) + 1);
                let odd = fill(n * cs, 7);
                let views = [
                    View::new(&w, 1, k.max(1)),
                    View::new(&wide, PACK_STRIDE, 1),
                    View::new(&odd, rs, cs),
                ];
                let cases = views
                    .into_iter()
                    .flat_map(|b| kernels().into_iter().map(move |kn| (b, kn)));
                for (b, (name, kern)) in cases {
                    let want = reference(acc, m, n, k, &c0, ldc, &a, m, b);
                    let mut c = c0.clone();
                    let job = Job {
                        acc,
                        m,
                        n,
                        k,
                        ldc,
                        a: &a,
                        lda: m,
                        b,
                        kernel: kern,
                        epilogue: None,
                    };
                    job.run(&mut c, 0, n.div_ceil(kern.nr), 1);
                    for j in 0..n {
                        for i in 0..ldc {
                            let got = c[j * ldc + i];
                            if i >= m {
                                assert_eq!(
                                    got.to_bits(),
                                    c0[j * ldc + i].to_bits(),
                                    "{name}: pad row touched"
                                );
                                continue;
                            }
                            let bv = |p: usize| b.data[p * b.rs + j * b.cs];
                            let fused = name != "portable" || PORTABLE_FMA;
                            let chain = fma_chain(
                                fused,
                                acc,
                                c0[j * ldc + i],
                                (0..k).map(|p| (a[p * m + i], bv(p))),
                            );
                            assert_eq!(
                                got.to_bits(),
                                chain.to_bits(),
                                "{name} {m}x{n}x{k} acc {acc} at ({i}, {j})"
                            );
                            let r = want[j * ldc + i];
                            assert!(
                                (got as f64 - r).abs() <= 1e-5 * (1.0 + r.abs()),
                                "{name}: {got} against {r}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn thread_counts_layouts_and_epilogue_give_the_same_bits() {
        // The input gradient's view (B = W[k, 512] row-major, packed) at a size that splits, with a tail panel; A
        // column-major and, for the weight gradient's path, row-major (transposed into scratch first).
        let (m, n, k) = (64, 300, 300);
        let a = fill(m * k, 4);
        let mut a_rows = vec![0f32; m * k];
        for i in 0..m {
            for p in 0..k {
                a_rows[i * k + p] = a[p * m + i];
            }
        }
        let w = fill(k * PACK_STRIDE, 5);
        let b = View::new(&w, PACK_STRIDE, 1);
        fn gemm<'g>(
            (m, n, k): (usize, usize, usize),
            a: View<'g>,
            b: View<'g>,
            threads: usize,
        ) -> Gemm<'g> {
            Gemm {
                m,
                n,
                k,
                a,
                b,
                threads,
            }
        }
        let run = |kern: Kernel, a: View, threads: usize| {
            let mut c = vec![0f32; m * n];
            let seen = std::sync::Mutex::new(vec![0u32; n]);
            let epi = |j: usize, col: &mut [f32]| {
                assert_eq!(col.len(), m);
                col.iter_mut().for_each(|v| *v = v.max(0.0));
                seen.lock().unwrap()[j] += 1;
            };
            let g = gemm((m, n, k), a, b, threads);
            pool(threads).install(|| g.ours(false, &mut c, m, kern, Some(&epi)));
            assert!(
                seen.into_inner().unwrap().iter().all(|&s| s == 1),
                "each column's epilogue once"
            );
            c
        };
        let mut all = Vec::new();
        for (name, kern) in kernels() {
            let one = run(kern, View::new(&a, 1, m), 1);
            for t in [2, 3, 8] {
                assert_eq!(
                    run(kern, View::new(&a, 1, m), t),
                    one,
                    "{name}, {t} threads"
                );
                assert_eq!(
                    run(kern, View::new(&a_rows, k, 1), t),
                    one,
                    "{name}, A row-major, {t} threads"
                );
            }
            assert!(one.iter().all(|&v| v >= 0.0) && one.iter().any(|&v| v > 0.0));
            all.push((name, one));
        }
        // The FMA levels agree bit for bit (the portable kernel too where it fuses).
        for (name, c) in &all[1..] {
            if PORTABLE_FMA {
                assert_eq!(c, &all[0].1, "{name} against portable");
            }
        }
        // And the public entry (on an AVX-512 build and CPU, the `gemm` crate) agrees with them to rounding.
        let mut c = vec![0f32; m * n];
        let g = gemm((m, n, k), View::new(&a, 1, m), b, 2);
        pool(2).install(|| g.run(false, &mut c, m, None));
        let want = &all.last().unwrap().1;
        for (x, y) in c.iter().zip(want) {
            assert!(
                x.max(0.0) == *y || (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{x} against {y}"
            );
        }
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn cache_sizes_read_as_sysfs_writes_them() {
        assert_eq!(parse_cache_size("1024K"), Some(1 << 20));
        assert_eq!(parse_cache_size("2M"), Some(2 << 20));
        assert_eq!(parse_cache_size("49152"), Some(49152));
        for bad in ["", "K", "0K", "1.5M", "-1K", "12G"] {
            assert_eq!(parse_cache_size(bad), None, "{bad:?}");
        }
        // This machine's rule is half an L2 of at least 64 KiB, in floats.
        assert!(ours_max_a() >= (64 << 10) / 2 / 4);
    }

    #[test]
    fn faer_takes_avx2_on_amd_and_hygon_only() {
        assert!(amd_vendor(b"AuthenticAMD"));
        assert!(amd_vendor(b"HygonGenuine"));
        assert!(!amd_vendor(b"GenuineIntel"));
        assert!(!amd_vendor(b"CentaurHauls"));
        // The vendor string reads as a word of letters on this machine (the three registers in the right order).
        #[cfg(target_arch = "x86_64")]
        {
            let v = cpu_vendor().unwrap();
            assert!(v.iter().all(u8::is_ascii_alphanumeric), "{v:?}");
        }
        // The AVX-512 level always uses the gemm crate, the portable kernel never; AVX2 by vendor, then by size.
        assert_eq!(Engine::pick(SimdLevel::Avx512, 1, 1), Engine::Gemm);
        assert_eq!(
            Engine::pick(SimdLevel::Baseline, 1 << 20, 1 << 10),
            Engine::Ours
        );
        let (small, large) = if amd_core() {
            (Engine::Faer, Engine::Faer)
        } else {
            (Engine::Ours, Engine::Gemm)
        };
        assert_eq!(Engine::pick(SimdLevel::Avx2, 1, 1), small);
        assert_eq!(Engine::pick(SimdLevel::Avx2, 1 << 20, 1 << 10), large);
    }

    #[test]
    fn an_empty_k_zeroes_c_or_leaves_it() {
        // Through the engine this machine picks (on an AMD AVX2 core faer, on AVX-512 the gemm crate).
        let none: [f32; 0] = [];
        let g = Gemm {
            m: 8,
            n: 3,
            k: 0,
            a: View::new(&none, 1, 8),
            b: View::new(&none, 1, 0),
            threads: 1,
        };
        for acc in [false, true] {
            let mut c = vec![1f32; 8 * 3];
            g.run(acc, &mut c, 8, None);
            assert!(
                c.iter().all(|&x| x == if acc { 1.0 } else { 0.0 }),
                "{acc}: {c:?}"
            );
        }
    }

    /// faer and the gemm crate against our kernels' result (to rounding), and each the same bits on 1, 2 and 3
    /// threads, accumulating or not, at the step's layouts (A column-major or transposed, B read as W or W^T).
    #[test]
    fn the_crates_agree_and_give_the_same_bits_on_any_thread_count() {
        let (m, n, k) = (130, 70, 300); // 2.7 M multiply-adds: above PAR_MIN_MACS, so the threads split it
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104729) % 997) as f32 / 498.0 - 1.0)
            .collect();
        for (ars, acs) in [(1, m), (k, 1)] {
            for (brs, bcs) in [(1, k), (n, 1)] {
                let g = |threads| Gemm {
                    m,
                    n,
                    k,
                    a: View::new(&a, ars, acs),
                    b: View::new(&w, brs, bcs),
                    threads,
                };
                let mut want = vec![0.5f32; m * n];
                g(1).ours(
                    true,
                    &mut want,
                    m,
                    Kernel::for_level(SimdLevel::Baseline),
                    None,
                );
                for engine in [Engine::Gemm, Engine::Faer] {
                    let mut first: Option<Vec<f32>> = None;
                    for threads in [1, 2, 3] {
                        let mut c = vec![0.5f32; m * n];
                        pool(threads).install(|| match engine {
                            Engine::Gemm => g(threads).crate_gemm(true, &mut c, m),
                            _ => g(threads).faer_gemm(true, &mut c, m),
                        });
                        for (x, y) in c.iter().zip(&want) {
                            assert!(
                                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                                "{engine:?}: {x} against {y}"
                            );
                        }
                        match &first {
                            None => first = Some(c),
                            Some(f) => assert!(
                                f.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()),
                                "{engine:?} on {threads} threads"
                            ),
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "gemm: b too small")]
    fn a_short_operand_panics_before_any_access() {
        let (a, mut c, w) = (vec![0f32; 8 * 4], vec![0f32; 8 * 3], vec![0f32; 11]);
        let g = Gemm {
            m: 8,
            n: 3,
            k: 4,
            a: View::new(&a, 1, 8),
            b: View::new(&w, 1, 4),
            threads: 1,
        };
        g.run(false, &mut c, 8, None);
    }
}
