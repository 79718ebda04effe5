//! The GEMM libraries compared, behind one call: `c[m, n] = a[m, k] b[k, n]`, each operand given by its
//! `(row stride, column stride)` in elements.

use gan_native::cpu::gemm::{Gemm, View};
use gemm::Parallelism;

/// `(row stride, column stride)` in elements.
pub type Operand = (usize, usize);

type CblasSgemm = unsafe extern "C" fn(
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    f32,
    *const f32,
    i32,
    *const f32,
    i32,
    f32,
    *mut f32,
    i32,
);

/// One library, set up for a number of threads.
pub enum Lib {
    /// The library's own entry, `gan_native::cpu::gemm::Gemm::run`, as `native/src/cpu/kernels.rs` calls it: our
    /// AVX2+FMA microkernel, or the `gemm` crate where it routes there (the AVX-512 level; on AVX2 an A above half the
    /// L2).
    Ours(usize),
    /// The `gemm` crate, called directly.
    Gemm(usize),
    /// `matrixmultiply` (its own thread pool, `MATMUL_NUM_THREADS`).
    MatrixMultiply,
    /// `faer`'s matmul on rayon.
    Faer(usize),
    /// OpenBLAS's `cblas_sgemm`, loaded at run time (the library stays loaded for the process).
    OpenBlas(CblasSgemm),
}

impl Lib {
    /// Every library at hand, set to `threads` threads (OpenBLAS only when `libopenblas.so.0` loads).
    pub fn all(threads: usize) -> Vec<Lib> {
        // SAFETY: set before matrixmultiply's pool first reads it, while this process runs no other thread.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", threads.to_string()) };
        let mut v = vec![
            Lib::Ours(threads),
            Lib::Gemm(threads),
            Lib::MatrixMultiply,
            Lib::Faer(threads),
        ];
        match openblas(threads) {
            Ok(f) => v.push(Lib::OpenBlas(f)),
            Err(e) => eprintln!("OpenBLAS left out: {e}"),
        }
        v
    }

    pub fn name(&self) -> &'static str {
        match self {
            Lib::Ours(_) => "ours",
            Lib::Gemm(_) => "gemm 0.19",
            Lib::MatrixMultiply => "matrixmultiply",
            Lib::Faer(_) => "faer",
            Lib::OpenBlas(_) => "openblas",
        }
    }

    /// `c = a b` (overwriting `c`). The slices must cover every element the strides reach (checked).
    #[allow(clippy::too_many_arguments)]
    pub fn sgemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        c: &mut [f32],
        cs: Operand,
        a: &[f32],
        as_: Operand,
        b: &[f32],
        bs: Operand,
    ) {
        assert!(c.len() > (m - 1) * cs.0 + (n - 1) * cs.1);
        assert!(a.len() > (m - 1) * as_.0 + (k - 1) * as_.1);
        assert!(b.len() > (k - 1) * bs.0 + (n - 1) * bs.1);
        // SAFETY (every arm): the asserts above bound every element the strides reach inside the three slices.
        match *self {
            // The library's entry writes a column-major C: a row-major `c` (the weight gradient's, `[out, in]`) is
            // computed as `c^T = b^T a^T`, as the library does.
            Lib::Ours(_) if cs.0 != 1 => {
                let t = |s: Operand| (s.1, s.0);
                self.sgemm(n, m, k, c, t(cs), b, t(bs), a, t(as_))
            }
            Lib::Ours(threads) => {
                let (a, b) = (View::new(a, as_.0, as_.1), View::new(b, bs.0, bs.1));
                Gemm {
                    m,
                    n,
                    k,
                    a,
                    b,
                    threads,
                }
                .run(false, c, cs.1, None)
            }
            Lib::Gemm(threads) => unsafe {
                let par = if threads > 1 {
                    Parallelism::Rayon(threads)
                } else {
                    Parallelism::None
                };
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    cs.1 as isize,
                    cs.0 as isize,
                    false,
                    a.as_ptr(),
                    as_.1 as isize,
                    as_.0 as isize,
                    b.as_ptr(),
                    bs.1 as isize,
                    bs.0 as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                )
            },
            Lib::MatrixMultiply => unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    as_.0 as isize,
                    as_.1 as isize,
                    b.as_ptr(),
                    bs.0 as isize,
                    bs.1 as isize,
                    0.0,
                    c.as_mut_ptr(),
                    cs.0 as isize,
                    cs.1 as isize,
                )
            },
            Lib::Faer(threads) => unsafe {
                let dst = faer::MatMut::from_raw_parts_mut(
                    c.as_mut_ptr(),
                    m,
                    n,
                    cs.0 as isize,
                    cs.1 as isize,
                );
                let lhs =
                    faer::MatRef::from_raw_parts(a.as_ptr(), m, k, as_.0 as isize, as_.1 as isize);
                let rhs =
                    faer::MatRef::from_raw_parts(b.as_ptr(), k, n, bs.0 as isize, bs.1 as isize);
                let par = if threads > 1 {
                    faer::Par::rayon(threads)
                } else {
                    faer::Par::Seq
                };
                faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0f32, par);
            },
            Lib::OpenBlas(f) => unsafe { cblas(f, m, n, k, c, cs, a, as_, b, bs) },
        }
    }
}

/// Loads OpenBLAS and sets its threads.
fn openblas(threads: usize) -> Result<CblasSgemm, libloading::Error> {
    // SAFETY: OpenBLAS's initializers are plain C; the library is leaked so that the symbol stays valid.
    unsafe {
        let lib = Box::leak(Box::new(libloading::Library::new("libopenblas.so.0")?));
        let set: libloading::Symbol<unsafe extern "C" fn(i32)> =
            lib.get(b"openblas_set_num_threads")?;
        set(threads as i32);
        Ok(*lib.get::<CblasSgemm>(b"cblas_sgemm")?)
    }
}

const COL_MAJOR: i32 = 102;
const NO_TRANS: i32 = 111;
const TRANS: i32 = 112;

/// `c = a b` through column-major `cblas_sgemm`: an operand with unit row stride is column-major (NoTrans, its
/// column stride the leading dimension), one with unit column stride is stored transposed (Trans, its row stride).
/// A row-major `c` is computed as `c^T = b^T a^T`.
///
/// # Safety
/// The slices cover every element the strides reach (see [`Lib::sgemm`]).
#[allow(clippy::too_many_arguments)]
unsafe fn cblas(
    f: CblasSgemm,
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    cs: Operand,
    a: &[f32],
    as_: Operand,
    b: &[f32],
    bs: Operand,
) {
    let t = |s: Operand| (s.1, s.0);
    if cs.0 != 1 {
        return cblas(f, n, m, k, c, t(cs), b, t(bs), a, t(as_));
    }
    let op = |s: Operand| {
        if s.0 == 1 {
            (NO_TRANS, s.1)
        } else {
            (TRANS, s.0)
        }
    };
    let ((ta, lda), (tb, ldb)) = (op(as_), op(bs));
    f(
        COL_MAJOR,
        ta,
        tb,
        m as i32,
        n as i32,
        k as i32,
        1.0,
        a.as_ptr(),
        lda.max(1) as i32,
        b.as_ptr(),
        ldb.max(1) as i32,
        0.0,
        c.as_mut_ptr(),
        cs.1.max(1) as i32,
    );
}
