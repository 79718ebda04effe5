//! The C ABI: every `extern "C"` function of the library and the only `unsafe` code that touches caller memory.
//!
//! Conventions:
//! - functions that create an object return its handle, a `u32` that is never 0 on success; 0 means failure;
//! - other functions return a status code (`0` success, see `error::Code`), or for JSON getters the byte length of the
//!   JSON (`>= 0`) or `-code`;
//! - on failure the message is kept per thread and read with `gan_last_error`;
//! - every body runs inside `catch_unwind`: a panic becomes `Code::Panic`, never an abort across the boundary;
//! - every pointer is checked for null and alignment, every length against the object's shapes.
//!
//! The functions are safe to call from Rust's point of view only with valid pointers; they are not marked `unsafe`
//! because their one caller is the FFI, whose contract (buffers of the stated lengths) is documented on each.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::context::Context;
use crate::core::config::adam_diverged;
use crate::core::{
    recipe::models_contract, AdamConfig, Buffer, Gan, GanConfig, Mlp, MlpBackend, Spec, GAN_LOSSES,
    STEP_FIELDS,
};
use crate::cpu::kernels;
use crate::error::{bad_arg, Code, Error, Result};
use crate::registry::{self, lock, GanObject, MlpObject, Object};
use crate::rng;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// Bumped on any change of a signature below; `src/native/ffi.ts` checks it.
pub const ABI_VERSION: u32 = 6;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static LAST_STATUS: Cell<i32> = const { Cell::new(0) };
}

fn set_error(e: &Error) {
    LAST_ERROR.with(|s| *s.borrow_mut() = e.message.clone());
    LAST_STATUS.with(|s| s.set(e.code as i32));
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (a bug in gan_native, please report it): {what}")
}

fn run<T>(f: impl FnOnce() -> Result<T>) -> std::result::Result<T, Code> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            set_error(&e);
            Err(e.code)
        }
        Err(p) => {
            set_error(&Error::new(Code::Panic, panic_message(p)));
            Err(Code::Panic)
        }
    }
}

/// A status-returning body.
fn status(f: impl FnOnce() -> Result<()>) -> i32 {
    match run(f) {
        Ok(()) => Code::Ok as i32,
        Err(c) => c as i32,
    }
}

/// A handle-returning body (0 on failure).
fn handle(f: impl FnOnce() -> Result<u32>) -> u32 {
    run(f).unwrap_or(0)
}

/// A JSON-returning body: writes the UTF-8 JSON into `buf` when `cap` is large enough; returns its length or -code.
fn json(buf: *mut u8, cap: usize, f: impl FnOnce() -> Result<serde_json::Value>) -> i64 {
    match run(|| {
        let s = f()?.to_string();
        if cap >= s.len() {
            let out = unsafe { slice_mut(buf, s.len(), "buf")? };
            out.copy_from_slice(s.as_bytes());
        }
        Ok(s.len() as i64)
    }) {
        Ok(n) => n,
        Err(c) => -(c as i64),
    }
}

/// # Safety
/// `p` must be null or valid for reads of `len` elements for the duration of the call.
unsafe fn slice<'a, T>(p: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(bad_arg!("{what} is a null pointer with length {len}"));
    }
    if !(p as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(bad_arg!(
            "{what} is not aligned to {} bytes",
            std::mem::align_of::<T>()
        ));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>() {
        return Err(bad_arg!("{what} length {len} is too large"));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// # Safety
/// `p` must be null or valid for writes of `len` elements for the duration of the call.
unsafe fn slice_mut<'a, T>(p: *mut T, len: usize, what: &str) -> Result<&'a mut [T]> {
    slice(p as *const T, len, what)?;
    Ok(if len == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(p, len)
    })
}

unsafe fn str_arg<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a str> {
    std::str::from_utf8(slice(p, len, what)?).map_err(|_| bad_arg!("{what} is not valid UTF-8"))
}

/// A C flag: 0 or 1.
fn flag(v: u32, what: &str) -> Result<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(bad_arg!("{what} must be 0 or 1, got {v}")),
    }
}

/// Runs `f` on the MLP of handle `h` (locked), where its context computes.
fn with_mlp<T: Send>(h: u32, f: impl FnOnce(&mut dyn MlpBackend) -> Result<T> + Send) -> Result<T> {
    let m = registry::mlp(h)?;
    let mut m = lock(&m)?;
    let MlpObject { ctx, net } = &mut *m;
    let net = net.as_mut();
    ctx.run(move || f(net))
}

/// Runs `f` on the trainer of GAN handle `h` (locked), where its context computes.
fn with_trainer<T: Send>(h: u32, f: impl FnOnce(&mut dyn Gan) -> Result<T> + Send) -> Result<T> {
    let gan = registry::gan(h)?;
    let mut gan = lock(&gan)?;
    let GanObject { ctx, trainer, .. } = &mut *gan;
    let trainer = trainer.as_mut();
    ctx.run(move || f(trainer))
}

/// The networks of a GAN handle as [`with_gan`] lends them.
type Nets<'a> = (
    &'a mut dyn MlpBackend,
    &'a mut dyn MlpBackend,
    Option<&'a mut dyn MlpBackend>,
);

/// Runs `f` on the trainer of GAN handle `h` with its generator, discriminator and encoder, if any (all locked, in
/// that order).
fn with_gan<T: Send>(
    h: u32,
    f: impl FnOnce(&mut dyn Gan, Nets<'_>) -> Result<T> + Send,
) -> Result<T> {
    let gan = registry::gan(h)?;
    let mut gan = lock(&gan)?;
    let GanObject {
        ctx,
        g,
        d,
        e,
        trainer,
    } = &mut *gan;
    let (mut g, mut d) = (lock(g)?, lock(d)?);
    let mut e = match e {
        Some(e) => Some(lock(e)?),
        None => None,
    };
    let e = e.as_mut().map(|e| e.net.as_mut());
    let (trainer, g, d) = (trainer.as_mut(), g.net.as_mut(), d.net.as_mut());
    ctx.run(move || f(trainer, (g, d, e)))
}

// ---------------------------------------------------------------------------------------------------------------------
// Library and errors

/// `uint32_t gan_abi_version(void)`
#[no_mangle]
pub extern "C" fn gan_abi_version() -> u32 {
    ABI_VERSION
}

/// The contract between the library and its callers, as data: the ABI version, the status codes, the fields of the
/// per-step record, the buffer selectors and the random-stream domains, each generated from its one definition.
pub fn contract() -> serde_json::Value {
    let status: serde_json::Map<String, serde_json::Value> = Code::ALL
        .iter()
        .map(|&c| (c.name().to_string(), (c as i32).into()))
        .collect();
    let domains: serde_json::Map<String, serde_json::Value> = rng::DOMAINS
        .iter()
        .map(|&(name, d)| (name.to_string(), d.into()))
        .collect();
    serde_json::json!({
        "abi_version": ABI_VERSION,
        "status": status,
        "step_fields": STEP_FIELDS,
        "buffers": Buffer::ALL.map(Buffer::name),
        "rng_domains": domains,
        "gan_losses": GAN_LOSSES.map(|(_, name)| name),
        "models": models_contract(),
    })
}

/// `int64_t gan_contract(uint8_t* buf, size_t cap)`: JSON `{"abi_version", "status": {name: code}, "step_fields":
/// [...], "buffers": [...], "rng_domains": {name: domain}, "gan_losses": [...]}`; `buffers[i]` names selector `i` of
/// `gan_mlp_get` / `gan_mlp_set`, `step_fields` the floats of one step in `gan_gan_step`'s output, `gan_losses` the
/// values of the GAN config's `loss`.
#[no_mangle]
pub extern "C" fn gan_contract(buf: *mut u8, cap: usize) -> i64 {
    json(buf, cap, || Ok(contract()))
}

/// `size_t gan_last_error(uint8_t* buf, size_t cap)`: copies up to `cap` bytes of this thread's last error message
/// (UTF-8, not NUL-terminated) and returns its full length.
#[no_mangle]
pub extern "C" fn gan_last_error(buf: *mut u8, cap: usize) -> usize {
    LAST_ERROR.with(|s| {
        let s = s.borrow();
        let n = s.len().min(cap);
        if n > 0 && !buf.is_null() {
            // SAFETY: the caller gives `cap` writable bytes at `buf`; we write `n <= cap`.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), buf, n) };
        }
        s.len()
    })
}

/// `int32_t gan_last_status(void)`: this thread's last failure code (for calls that return a handle).
#[no_mangle]
pub extern "C" fn gan_last_status() -> i32 {
    LAST_STATUS.with(|s| s.get())
}

/// `uint32_t gan_live_handles(void)`: the number of open handles (for leak tests).
#[no_mangle]
pub extern "C" fn gan_live_handles() -> u32 {
    registry::live() as u32
}

// ---------------------------------------------------------------------------------------------------------------------
// Contexts

/// `uint32_t gan_context_new(const uint8_t* backend, size_t backend_len, uint32_t threads)`: backend is "cpu", "gpu" or
/// "auto"; threads 0 means the cores available.
#[no_mangle]
pub extern "C" fn gan_context_new(backend: *const u8, backend_len: usize, threads: u32) -> u32 {
    handle(|| {
        let b = unsafe { str_arg(backend, backend_len, "backend")? };
        registry::insert(Object::Context(Arc::new(Context::new(b, threads)?)))
    })
}

/// `int64_t gan_context_info(uint32_t ctx, uint8_t* buf, size_t cap)`: JSON.
#[no_mangle]
pub extern "C" fn gan_context_info(ctx: u32, buf: *mut u8, cap: usize) -> i64 {
    json(buf, cap, || Ok(registry::context(ctx)?.info()))
}

/// `int32_t gan_context_free(uint32_t ctx)`
#[no_mangle]
pub extern "C" fn gan_context_free(ctx: u32) -> i32 {
    status(|| registry::remove(ctx, "context"))
}

// ---------------------------------------------------------------------------------------------------------------------
// MLPs

/// `uint32_t gan_mlp_new(uint32_t ctx, const uint8_t* spec_json, size_t len)`: parameters start at PyTorch's BN
/// defaults (gamma 1, beta 0, running var 1) and zero elsewhere; set them with `gan_mlp_set` or `gan_mlp_init`.
#[no_mangle]
pub extern "C" fn gan_mlp_new(ctx: u32, spec: *const u8, len: usize) -> u32 {
    handle(|| {
        let ctx = registry::context(ctx)?;
        let spec = Spec::parse(unsafe { str_arg(spec, len, "spec")? })?;
        let net = ctx.new_mlp(spec)?;
        registry::insert(Object::Mlp(Arc::new(Mutex::new(MlpObject { ctx, net }))))
    })
}

/// `int64_t gan_spec_info(const uint8_t* spec_json, size_t len, uint8_t* buf, size_t cap)`: validates a spec and
/// returns its layout as JSON (as `gan_mlp_info` without the counters), allocating none of the MLP's buffers: for
/// memory estimates and to name tensors before an MLP exists.
#[no_mangle]
pub extern "C" fn gan_spec_info(spec: *const u8, len: usize, buf: *mut u8, cap: usize) -> i64 {
    json(buf, cap, || {
        Ok(Spec::parse(unsafe { str_arg(spec, len, "spec")? })?.describe())
    })
}

/// `int64_t gan_mlp_info(uint32_t mlp, uint8_t* buf, size_t cap)`: JSON with the layout (names, shapes, offsets),
/// `adam_step`, `num_batches_tracked` and `last_rows`.
#[no_mangle]
pub extern "C" fn gan_mlp_info(mlp: u32, buf: *mut u8, cap: usize) -> i64 {
    json(buf, cap, || with_mlp(mlp, |m| Ok(m.info())))
}

/// `int32_t gan_mlp_get(uint32_t mlp, uint32_t which, float* out, size_t len)`: copies a flat buffer out (selector
/// `which`: 0 params, 1 grads, 2 Adam m, 3 Adam v, 4 running stats, as the contract's `buffers`); `len` must equal
/// its size.
#[no_mangle]
pub extern "C" fn gan_mlp_get(mlp: u32, which: u32, out: *mut f32, len: usize) -> i32 {
    status(|| {
        let which = Buffer::from_index(which)?;
        let out = unsafe { slice_mut(out, len, "out")? };
        with_mlp(mlp, |m| m.get(which, out))
    })
}

/// `int32_t gan_mlp_set(uint32_t mlp, uint32_t which, const float* src, size_t len)`: copies a flat buffer in; every
/// value must be finite.
#[no_mangle]
pub extern "C" fn gan_mlp_set(mlp: u32, which: u32, src: *const f32, len: usize) -> i32 {
    status(|| {
        let which = Buffer::from_index(which)?;
        let src = unsafe { slice(src, len, "src")? };
        with_mlp(mlp, |m| m.set(which, src))
    })
}

/// `int32_t gan_mlp_init(uint32_t mlp, uint64_t seed, uint32_t stream)`: PyTorch's default init drawn from the init
/// stream `(seed, 3, stream)` (stream 0 for a generator, 1 for a discriminator): Linear weights and biases
/// `U(-1/sqrt(in), 1/sqrt(in))`, BN gamma 1 and beta 0, running mean 0 and var 1; Adam moments and counters untouched.
#[no_mangle]
pub extern "C" fn gan_mlp_init(mlp: u32, seed: u64, stream: u32) -> i32 {
    status(|| with_mlp(mlp, |m| m.init(seed, stream)))
}

/// `int32_t gan_mlp_set_counters(uint32_t mlp, uint64_t adam_step, uint64_t num_batches_tracked)`
#[no_mangle]
pub extern "C" fn gan_mlp_set_counters(mlp: u32, adam_step: u64, batches_tracked: u64) -> i32 {
    status(|| {
        with_mlp(mlp, |m| {
            m.set_counters(adam_step, batches_tracked);
            Ok(())
        })
    })
}

/// `int32_t gan_mlp_forward(uint32_t mlp, const float* x, size_t x_len, uint32_t rows, uint32_t train, float* y,
/// size_t y_len)`: `x [rows, input]` -> `y [rows, output]`; train 1 uses batch statistics and updates the running ones.
#[no_mangle]
pub extern "C" fn gan_mlp_forward(
    mlp: u32,
    x: *const f32,
    x_len: usize,
    rows: u32,
    train: u32,
    y: *mut f32,
    y_len: usize,
) -> i32 {
    status(|| {
        let train = flag(train, "train")?;
        let x = unsafe { slice(x, x_len, "x")? };
        let y = unsafe { slice_mut(y, y_len, "y")? };
        with_mlp(mlp, |m| m.forward(x, rows as usize, train, y))
    })
}

/// `int32_t gan_mlp_forward_labeled(uint32_t mlp, const float* x, size_t x_len, const uint32_t* labels, size_t
/// labels_len, uint32_t rows, uint32_t train, float* y, size_t y_len)`: as `gan_mlp_forward` for an MLP with a label
/// embedding: `x [rows, input]` (without the embedding's columns) and `labels [rows]`, each a class of the embedding.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn gan_mlp_forward_labeled(
    mlp: u32,
    x: *const f32,
    x_len: usize,
    labels: *const u32,
    labels_len: usize,
    rows: u32,
    train: u32,
    y: *mut f32,
    y_len: usize,
) -> i32 {
    status(|| {
        let train = flag(train, "train")?;
        let x = unsafe { slice(x, x_len, "x")? };
        let labels = unsafe { slice(labels, labels_len, "labels")? };
        let y = unsafe { slice_mut(y, y_len, "y")? };
        with_mlp(mlp, |m| {
            m.forward_labeled(x, labels, rows as usize, train, y)
        })
    })
}

/// `int32_t gan_mlp_backward(uint32_t mlp, const float* dy, size_t dy_len, float* dx, size_t dx_len)`: backward of the
/// last forward; parameter gradients land in the grads buffer (overwritten), `dx [rows, input]` in `dx`.
#[no_mangle]
pub extern "C" fn gan_mlp_backward(
    mlp: u32,
    dy: *const f32,
    dy_len: usize,
    dx: *mut f32,
    dx_len: usize,
) -> i32 {
    status(|| {
        let dy = unsafe { slice(dy, dy_len, "dy")? };
        let dx = unsafe { slice_mut(dx, dx_len, "dx")? };
        with_mlp(mlp, |m| m.backward(dy, dx))
    })
}

/// `int32_t gan_mlp_output(uint32_t mlp, float* out, size_t len)`: the output of the last forward, `[rows, output]`
/// (inside a GAN step, the generator's last forward is that step's fake batch).
#[no_mangle]
pub extern "C" fn gan_mlp_output(mlp: u32, out: *mut f32, len: usize) -> i32 {
    status(|| {
        let out = unsafe { slice_mut(out, len, "out")? };
        with_mlp(mlp, |m| m.output(out))
    })
}

/// `int32_t gan_mlp_adam(uint32_t mlp, double lr, double b1, double b2, double eps)`: one Adam step with the current
/// gradients (PyTorch's update; the step counter advances first, so the first step uses t = 1).
#[no_mangle]
pub extern "C" fn gan_mlp_adam(mlp: u32, lr: f64, b1: f64, b2: f64, eps: f64) -> i32 {
    status(|| {
        let c = AdamConfig::new(lr, b1, b2, eps)?;
        with_mlp(mlp, |m| m.adam(c))
    })
}

/// `int32_t gan_mlp_free(uint32_t mlp)`
#[no_mangle]
pub extern "C" fn gan_mlp_free(mlp: u32) -> i32 {
    status(|| registry::remove(mlp, "mlp"))
}

// ---------------------------------------------------------------------------------------------------------------------
// Losses, Adam and random numbers on caller buffers

fn bce_args<'a>(
    p: *const f32,
    y: *const f32,
    n: usize,
    dp: *mut f32,
    dp_len: usize,
) -> Result<(&'a [f32], &'a [f32], &'a mut [f32])> {
    if n == 0 {
        return Err(bad_arg!("BCE over 0 values"));
    }
    let p = unsafe { slice(p, n, "input")? };
    let y = unsafe { slice(y, n, "target")? };
    if dp_len != 0 && dp_len != n {
        return Err(bad_arg!(
            "gradient buffer has {dp_len} values, expected {n} (or 0 for none)"
        ));
    }
    let dp = unsafe { slice_mut(dp, dp_len, "grad")? };
    if let Some(i) = y.iter().position(|t| !(0.0..=1.0).contains(t)) {
        return Err(bad_arg!(
            "target[{i}] is {}, expected a value in [0, 1]",
            y[i]
        ));
    }
    Ok((p, y, dp))
}

/// `int32_t gan_bce(const float* p, const float* y, size_t n, float* loss, float* dp, size_t dp_len)`: mean BCE of
/// probabilities `p [n]` against targets `y [n]` with PyTorch's clamps; its gradient into `dp` when `dp_len == n`.
#[no_mangle]
pub extern "C" fn gan_bce(
    p: *const f32,
    y: *const f32,
    n: usize,
    loss: *mut f32,
    dp: *mut f32,
    dp_len: usize,
) -> i32 {
    status(|| {
        let (p, y, dp) = bce_args(p, y, n, dp, dp_len)?;
        if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
            return Err(bad_arg!(
                "input[{i}] is {}, expected a probability in [0, 1]",
                p[i]
            ));
        }
        let l = unsafe { slice_mut(loss, 1, "loss")? };
        l[0] = (kernels::bce_sum(p, |i| y[i]) / n as f64) as f32;
        if !dp.is_empty() {
            kernels::bce_grad(dp, p, |i| y[i], 1.0 / n as f32);
        }
        Ok(())
    })
}

/// `int32_t gan_sigmoid_bce(const float* logits, const float* y, size_t n, float* loss, float* dlogits, size_t len)`:
/// the fused sigmoid + BCE; the gradient is exactly the composition of PyTorch's sigmoid and BCE gradients.
#[no_mangle]
pub extern "C" fn gan_sigmoid_bce(
    logits: *const f32,
    y: *const f32,
    n: usize,
    loss: *mut f32,
    dz: *mut f32,
    dz_len: usize,
) -> i32 {
    status(|| {
        let (z, y, dz) = bce_args(logits, y, n, dz, dz_len)?;
        if let Some(i) = z.iter().position(|v| v.is_nan()) {
            return Err(bad_arg!("logits[{i}] is NaN"));
        }
        let p: Vec<f32> = z.iter().map(|&v| kernels::sigmoid(v)).collect();
        let l = unsafe { slice_mut(loss, 1, "loss")? };
        l[0] = (kernels::bce_sum(&p, |i| y[i]) / n as f64) as f32;
        if !dz.is_empty() {
            kernels::bce_grad(dz, &p, |i| y[i], 1.0 / n as f32);
            for (d, &q) in dz.iter_mut().zip(&p) {
                *d *= q * (1.0 - q);
            }
        }
        Ok(())
    })
}

/// `int32_t gan_softmax_ce(uint32_t ctx, const float* logits, size_t logits_len, const uint32_t* labels, size_t rows,
/// uint32_t classes, float* loss, float* dlogits, size_t dlogits_len)`: mean softmax cross-entropy of
/// `logits [rows, classes]` against `labels [rows]` (each below `classes`), as PyTorch's `CrossEntropyLoss`, computed by
/// the context's backend (on the GPU backend, on its device); its gradient into `dlogits` when
/// `dlogits_len == rows * classes` (0 for none). Every argument is checked before any work.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn gan_softmax_ce(
    ctx: u32,
    logits: *const f32,
    logits_len: usize,
    labels: *const u32,
    rows: usize,
    classes: u32,
    loss: *mut f32,
    dlogits: *mut f32,
    dlogits_len: usize,
) -> i32 {
    status(|| {
        let ctx = registry::context(ctx)?;
        let z = unsafe { slice(logits, logits_len, "logits")? };
        let y = unsafe { slice(labels, rows, "labels")? };
        let dz = unsafe { slice_mut(dlogits, dlogits_len, "dlogits")? };
        let l = unsafe { slice_mut(loss, 1, "loss")? };
        l[0] = ctx.run(|| ctx.ops().softmax_ce(z, y, classes as usize, dz))?;
        Ok(())
    })
}

/// `int32_t gan_adam(float* params, const float* grads, float* m, float* v, size_t n, uint64_t t, double lr, double b1,
/// double b2, double eps)`: one Adam step over caller buffers, `t` the step number (from 1).
#[no_mangle]
pub extern "C" fn gan_adam(
    params: *mut f32,
    grads: *const f32,
    m: *mut f32,
    v: *mut f32,
    n: usize,
    t: u64,
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
) -> i32 {
    status(|| {
        let c = AdamConfig::new(lr, b1, b2, eps)?;
        if t == 0 {
            return Err(bad_arg!("Adam step t counts from 1, got 0"));
        }
        let p = unsafe { slice_mut(params, n, "params")? };
        let g = unsafe { slice(grads, n, "grads")? };
        let m = unsafe { slice_mut(m, n, "m")? };
        let v = unsafe { slice_mut(v, n, "v")? };
        if kernels::adam(p, m, v, g, t, c.lr, c.b1, c.b2, c.eps, 1) {
            Ok(())
        } else {
            Err(adam_diverged())
        }
    })
}

/// `int32_t gan_rng_normal(uint64_t seed, uint32_t domain, uint32_t stream, float* out, size_t n)`: `n` standard
/// normals of stream `(seed, domain, stream)`; the domain is one of the normal ones: 1 noise (stream = the step),
/// 4 fixed, 5 sample.
#[no_mangle]
pub extern "C" fn gan_rng_normal(
    seed: u64,
    domain: u32,
    stream: u32,
    out: *mut f32,
    n: usize,
) -> i32 {
    status(|| {
        rng::check_normal_domain(domain)?;
        rng::fill_normal(unsafe { slice_mut(out, n, "out")? }, seed, domain, stream);
        Ok(())
    })
}

/// `int32_t gan_rng_permutation(uint64_t seed, uint32_t epoch, uint32_t* out, size_t n)`: the sample order of an epoch.
#[no_mangle]
pub extern "C" fn gan_rng_permutation(seed: u64, epoch: u32, out: *mut u32, n: usize) -> i32 {
    status(|| {
        if n > u32::MAX as usize {
            return Err(bad_arg!("permutation of {n} items is too large"));
        }
        rng::permutation(unsafe { slice_mut(out, n, "out")? }, seed, epoch);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------------------------------
// GAN training

/// `uint32_t gan_gan_new(uint32_t ctx, uint32_t g, uint32_t d, const uint8_t* config_json, size_t len)`: config is
/// `{"batch_size", "lr", "b1", "b2", "eps", "seed"}` (seed an integer below 2^53) with `model` and its options.
#[no_mangle]
pub extern "C" fn gan_gan_new(ctx: u32, g: u32, d: u32, config: *const u8, len: usize) -> u32 {
    handle(|| new_gan(ctx, g, d, None, unsafe { str_arg(config, len, "config")? }))
}

/// `uint32_t gan_gan_new_with_encoder(uint32_t ctx, uint32_t g, uint32_t d, uint32_t e, const uint8_t* config_json,
/// size_t len)`: as `gan_gan_new` with a third MLP, the encoder of model aae (whose generator is its decoder); every
/// step trains it too. Other models refuse an encoder.
#[no_mangle]
pub extern "C" fn gan_gan_new_with_encoder(
    ctx: u32,
    g: u32,
    d: u32,
    e: u32,
    config: *const u8,
    len: usize,
) -> u32 {
    handle(|| {
        new_gan(ctx, g, d, Some(e), unsafe {
            str_arg(config, len, "config")?
        })
    })
}

/// A GAN trainer of the networks with handles `g`, `d` (and `e`): distinct MLPs of context `ctx`.
fn new_gan(ctx: u32, g: u32, d: u32, e: Option<u32>, config: &str) -> Result<u32> {
    let ctx = registry::context(ctx)?;
    let (g, d) = (registry::mlp(g)?, registry::mlp(d)?);
    let e = e.map(registry::mlp).transpose()?;
    if Arc::ptr_eq(&g, &d) {
        return Err(bad_arg!(
            "generator and discriminator must be two different MLPs"
        ));
    }
    if e.as_ref()
        .is_some_and(|e| Arc::ptr_eq(e, &g) || Arc::ptr_eq(e, &d))
    {
        return Err(bad_arg!(
            "the encoder must be a third MLP, not the generator or the discriminator"
        ));
    }
    let config = GanConfig::parse(config)?;
    let trainer = {
        let (gl, dl) = (lock(&g)?, lock(&d)?);
        let el = match &e {
            Some(e) => Some(lock(e)?),
            None => None,
        };
        let ours = |m: &MlpObject| Arc::ptr_eq(&m.ctx, &ctx);
        if !ours(&gl) || !ours(&dl) || el.as_deref().is_some_and(|m| !ours(m)) {
            return Err(bad_arg!(
                "generator, discriminator and encoder must belong to the GAN's context"
            ));
        }
        ctx.new_gan(
            config,
            gl.net.as_ref(),
            dl.net.as_ref(),
            el.as_deref().map(|m| m.net.as_ref()),
        )?
    };
    let gan = GanObject {
        ctx,
        g,
        d,
        e,
        trainer,
    };
    registry::insert(Object::Gan(Arc::new(Mutex::new(gan))))
}

/// `int32_t gan_gan_set_data(uint32_t gan, const uint8_t* pixels, size_t len, uint32_t count)`: the dataset as u8
/// pixels `[count, features]`, copied into the library once.
#[no_mangle]
pub extern "C" fn gan_gan_set_data(gan: u32, pixels: *const u8, len: usize, count: u32) -> i32 {
    status(|| {
        let px = unsafe { slice(pixels, len, "pixels")? };
        with_trainer(gan, |t| t.set_data(px, count as usize))
    })
}

/// `int32_t gan_gan_set_labels(uint32_t gan, const uint32_t* labels, size_t len)`: the labels `[count]` of the
/// dataset just set, for a conditional model (cgan); each a class of its embeddings. `gan_gan_set_data` drops them.
#[no_mangle]
pub extern "C" fn gan_gan_set_labels(gan: u32, labels: *const u32, len: usize) -> i32 {
    status(|| {
        let labels = unsafe { slice(labels, len, "labels")? };
        with_trainer(gan, |t| t.set_labels(labels))
    })
}

/// `int32_t gan_gan_step(uint32_t gan, uint32_t n, float* out, size_t out_len)`: runs `n` training steps; writes one
/// step record per step (the contract's `step_fields`: d_loss, g_loss, mean D(x), mean D(G(z))), `out_len == 4 n`.
#[no_mangle]
pub extern "C" fn gan_gan_step(gan: u32, n: u32, out: *mut f32, out_len: usize) -> i32 {
    status(|| {
        let out = unsafe { slice_mut(out, out_len, "out")? };
        with_gan(gan, |t, (g, d, e)| t.step_with(g, d, e, n as usize, out))
    })
}

/// `int32_t gan_gan_step_explicit(uint32_t gan, const float* z, size_t z_len, const float* x_real, size_t x_len,
/// const float* aux, size_t aux_len, uint32_t rows, float* out, size_t out_len)`: one training step on the given
/// noise `z [rows, latent]`, real batch `x_real [rows, features]` (in [-1, 1]), both row-major, and the step's other
/// draws `aux` (wgan_gp's interpolation weights `alpha [rows]`; cgan's labels of the fakes then of the real rows,
/// `[2 rows]`, as integer floats; empty, and may be null, for every other model);
/// writes its step record. For parity tests (not the seed's fused GPU step).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn gan_gan_step_explicit(
    gan: u32,
    z: *const f32,
    z_len: usize,
    x_real: *const f32,
    x_len: usize,
    aux: *const f32,
    aux_len: usize,
    rows: u32,
    out: *mut f32,
    out_len: usize,
) -> i32 {
    status(|| {
        let out = unsafe { slice_mut(out, out_len, "out")? };
        let z = unsafe { slice(z, z_len, "z")? };
        let x = unsafe { slice(x_real, x_len, "x_real")? };
        let aux = unsafe { slice(aux, aux_len, "aux")? };
        with_gan(gan, |t, (g, d, e)| {
            t.step_explicit_with(g, d, e, z, x, aux, rows as usize, out)
        })
    })
}

/// `int64_t gan_gan_info(uint32_t gan, uint8_t* buf, size_t cap)`: JSON with step, epoch, batch, rows,
/// batches_per_epoch, batch_size, seed, diverged_step (the global step at which the last `gan_gan_step` call
/// returned `Diverged`, null when it did not), and the last call's GPU cost (`core::CallCost`): dispatches_per_step,
/// barriers_per_step, workgroups_per_step, record_us_per_step, submit_us_per_step, submissions (all 0 on the CPU
/// backend).
#[no_mangle]
pub extern "C" fn gan_gan_info(gan: u32, buf: *mut u8, cap: usize) -> i64 {
    json(buf, cap, || with_trainer(gan, |t| Ok(t.info())))
}

/// `int32_t gan_gan_set_step(uint32_t gan, uint64_t step)`: moves the run to a global step (for resume).
#[no_mangle]
pub extern "C" fn gan_gan_set_step(gan: u32, step: u64) -> i32 {
    status(|| with_trainer(gan, |t| t.set_step(step)))
}

/// `int32_t gan_gan_free(uint32_t gan)`
#[no_mangle]
pub extern "C" fn gan_gan_free(gan: u32) -> i32 {
    status(|| registry::remove(gan, "gan"))
}

#[cfg(test)]
mod tests {
    //! The C ABI's validation, called from Rust as a C caller would.
    use super::*;
    use crate::core::STEP_OUTPUTS;

    fn last() -> String {
        let mut buf = vec![0u8; 1024];
        let n = gan_last_error(buf.as_mut_ptr(), buf.len());
        String::from_utf8_lossy(&buf[..n.min(1024)]).into_owned()
    }

    fn ctx() -> u32 {
        let b = b"cpu";
        let h = gan_context_new(b.as_ptr(), b.len(), 1);
        assert_ne!(h, 0, "{}", last());
        h
    }

    fn mlp(c: u32, spec: &str) -> u32 {
        gan_mlp_new(c, spec.as_ptr(), spec.len())
    }

    const SMALL: &str =
        r#"{"input":3,"layers":[{"out":2,"bn":{"eps":0.8,"momentum":0.1},"act":{"kind":"tanh"}}]}"#;

    #[test]
    fn handles_null_freed_and_of_the_wrong_kind() {
        let c = ctx();
        let m = mlp(c, SMALL);
        assert_ne!(m, 0, "{}", last());
        let mut out = [0f32; 14];
        assert_eq!(
            gan_mlp_get(0, 0, out.as_mut_ptr(), 14),
            Code::InvalidHandle as i32
        );
        assert_eq!(last(), "null mlp handle (0)");
        assert_eq!(
            gan_mlp_get(c, 0, out.as_mut_ptr(), 14),
            Code::InvalidHandle as i32
        );
        assert!(
            last().contains("is a context, expected a mlp"),
            "{}",
            last()
        );
        assert_eq!(gan_mlp_free(m), 0);
        assert_eq!(gan_mlp_free(m), Code::InvalidHandle as i32);
        assert!(last().contains("not open (never created or already freed)"));
        assert_eq!(gan_context_free(c), 0);
    }

    #[test]
    fn pointers_and_lengths() {
        let c = ctx();
        let m = mlp(c, SMALL);
        assert_eq!(
            gan_mlp_get(m, 0, std::ptr::null_mut(), 12),
            Code::InvalidArgument as i32
        );
        assert_eq!(last(), "out is a null pointer with length 12");
        let mut small = [0f32; 3];
        assert_eq!(
            gan_mlp_get(m, 0, small.as_mut_ptr(), 3),
            Code::InvalidArgument as i32
        );
        assert_eq!(last(), "params has 12 values, got a buffer of 3");
        let x = [0f32; 6];
        let mut y = [0f32; 4];
        assert_eq!(
            gan_mlp_forward(m, x.as_ptr(), 6, 2, 1, y.as_mut_ptr(), 4),
            0,
            "{}",
            last()
        );
        let x9 = [0f32; 9];
        assert_eq!(
            gan_mlp_forward(m, x9.as_ptr(), 9, 3, 1, y.as_mut_ptr(), 4),
            Code::InvalidArgument as i32
        );
        assert_eq!(last(), "forward: output buffer has 4 values, expected 6");
        // The input is checked first: a short x is named even when the output buffer is empty.
        assert_eq!(
            gan_mlp_forward(m, x.as_ptr(), 6, 3, 1, y.as_mut_ptr(), 0),
            Code::InvalidArgument as i32
        );
        assert_eq!(
            last(),
            "forward: input has 6 values, expected 9 (batch 3 x input 3)"
        );
        assert_eq!(
            gan_mlp_forward(m, x.as_ptr(), 3, 1, 1, y.as_mut_ptr(), 2),
            Code::InvalidArgument as i32
        );
        assert!(
            last().starts_with("batch size 1 in train mode"),
            "{}",
            last()
        );
        let bytes = [0u8; 8];
        let misaligned = unsafe { bytes.as_ptr().add(1) } as *const f32;
        assert_eq!(
            gan_mlp_set(m, 0, misaligned, 1),
            Code::InvalidArgument as i32
        );
        gan_mlp_free(m);
        gan_context_free(c);
    }

    /// aae through the ABI: the encoder is a third MLP of the context, named as upstream's (`mu`, `logvar` heads); every
    /// step trains it; the other models refuse one, aae needs one.
    #[test]
    fn aae_trains_its_encoder_through_the_abi() {
        let c = ctx();
        let lr = r#"{"kind":"leaky_relu","slope":0.2}"#;
        let g = mlp(
            c,
            &format!(
                r#"{{"input":2,"layers":[{{"out":4,"bn":null,"act":{lr}}},{{"out":9,"bn":null,"act":{{"kind":"tanh"}}}}]}}"#
            ),
        );
        let d = mlp(
            c,
            &format!(
                r#"{{"input":2,"layers":[{{"out":3,"bn":null,"act":{lr}}},{{"out":1,"bn":null,"act":{{"kind":"sigmoid"}}}}]}}"#
            ),
        );
        let e = mlp(
            c,
            &format!(
                r#"{{"input":9,"layers":[{{"out":5,"bn":null,"act":{lr}}},{{"out":4,"bn":null,"act":{{"kind":"none"}},
               "heads":[{{"name":"mu","out":2}},{{"name":"logvar","out":2}}]}}]}}"#
            ),
        );
        assert!(g != 0 && d != 0 && e != 0, "{}", last());
        for (k, m) in [g, d, e].into_iter().enumerate() {
            assert_eq!(gan_mlp_init(m, 5, k as u32), 0, "{}", last());
        }
        let names: Vec<String> = json_of(|b, n| gan_mlp_info(e, b, n))["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "model.0.weight",
                "model.0.bias",
                "mu.weight",
                "logvar.weight",
                "mu.bias",
                "logvar.bias"
            ]
        );
        let aae =
            r#"{"batch_size":4,"seed":1,"lr":0.0002,"b1":0.5,"b2":0.999,"eps":1e-8,"model":"aae"}"#;
        assert_eq!(gan_gan_new(c, g, d, aae.as_ptr(), aae.len()), 0);
        assert!(last().contains("model aae needs an encoder"), "{}", last());
        assert_eq!(
            gan_gan_new_with_encoder(c, g, d, g, aae.as_ptr(), aae.len()),
            0
        );
        assert!(
            last().contains("the encoder must be a third MLP"),
            "{}",
            last()
        );
        let gan_cfg = r#"{"batch_size":4,"seed":1,"lr":0.0002,"b1":0.5,"b2":0.999,"eps":1e-8}"#;
        assert_eq!(
            gan_gan_new_with_encoder(c, g, d, e, gan_cfg.as_ptr(), gan_cfg.len()),
            0
        );
        assert_eq!(last(), "model gan takes no encoder");
        let gan = gan_gan_new_with_encoder(c, g, d, e, aae.as_ptr(), aae.len());
        assert!(gan != 0, "{}", last());
        let px: Vec<u8> = (0..90).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(
            gan_gan_set_data(gan, px.as_ptr(), px.len(), 10),
            0,
            "{}",
            last()
        );
        let before = get(e, 0, 5 * 9 + 5 + 4 * 5 + 4);
        let mut out = [0f32; 4 * 3];
        assert_eq!(
            gan_gan_step(gan, 3, out.as_mut_ptr(), out.len()),
            0,
            "{}",
            last()
        );
        assert!(out.iter().all(|v| v.is_finite()));
        assert_ne!(get(e, 0, before.len()), before, "the encoder trained");
        assert_eq!(gan_gan_free(gan), 0);
        for h in [g, d, e] {
            assert_eq!(gan_mlp_free(h), 0);
        }
        assert_eq!(gan_context_free(c), 0);
    }

    #[test]
    fn specs_and_configs() {
        let c = ctx();
        assert_eq!(mlp(c, "{oops"), 0);
        assert!(last().starts_with("Invalid MLP spec: not JSON"));
        assert_eq!(
            mlp(
                c,
                r#"{"input":3,"layers":[{"out":1048576,"bn":null,"act":{"kind":"none"}},{"out":1048576,"bn":null,"act":{"kind":"none"}}]}"#
            ),
            0
        );
        assert_eq!(
            last(),
            "Invalid MLP spec: more than 2^31 parameters (1099516870656 after layers[1])"
        );
        let bad_utf8 = [0xffu8, 0xfe];
        assert_eq!(gan_context_new(bad_utf8.as_ptr(), 2, 0), 0);
        assert_eq!(last(), "backend is not valid UTF-8");
        let g = mlp(
            c,
            r#"{"input":2,"layers":[{"out":4,"bn":null,"act":{"kind":"tanh"}}]}"#,
        );
        let d = mlp(
            c,
            r#"{"input":4,"layers":[{"out":1,"bn":null,"act":{"kind":"sigmoid"}}]}"#,
        );
        let cfg = r#"{"batch_size":2,"seed":1,"lr":0.0002,"b1":0.5,"b2":1.5,"eps":1e-8}"#;
        assert_eq!(gan_gan_new(c, g, d, cfg.as_ptr(), cfg.len()), 0);
        assert_eq!(last(), "betas must be in [0, 1), got (0.5, 1.5)");
        let cfg = r#"{"batch_size":2,"seed":1,"lr":0.0002,"b1":0.5,"b2":0.999,"eps":1e-8}"#;
        let gan = gan_gan_new(c, g, d, cfg.as_ptr(), cfg.len());
        assert_ne!(gan, 0, "{}", last());
        let mut out = [0f32; 4];
        assert_eq!(
            gan_gan_step(gan, 1, out.as_mut_ptr(), 4),
            Code::InvalidState as i32
        );
        assert_eq!(last(), "no dataset: call set_data before training");
        assert_eq!(gan_gan_set_step(gan, 1 << 40), Code::InvalidArgument as i32);
        assert_eq!(gan_gan_free(gan), 0);
        gan_mlp_free(g);
        gan_mlp_free(d);
        gan_context_free(c);
    }

    #[test]
    fn a_whole_training_run_through_the_abi() {
        let c = ctx();
        let g = mlp(
            c,
            r#"{"input":4,"layers":[{"out":8,"bn":null,"act":{"kind":"leaky_relu","slope":0.2}},{"out":16,"bn":{"eps":0.8,"momentum":0.1},"act":{"kind":"leaky_relu","slope":0.2}},{"out":9,"bn":null,"act":{"kind":"tanh"}}]}"#,
        );
        let d = mlp(
            c,
            r#"{"input":9,"layers":[{"out":6,"bn":null,"act":{"kind":"leaky_relu","slope":0.2}},{"out":1,"bn":null,"act":{"kind":"sigmoid"}}]}"#,
        );
        let mut p = vec![0f32; 4 * 8 + 8 + 8 * 16 + 16 * 3 + 16 * 9 + 9];
        for (i, v) in p.iter_mut().enumerate() {
            *v = ((i * 37 % 17) as f32 - 8.0) * 0.03;
        }
        assert_eq!(gan_mlp_set(g, 0, p.as_ptr(), p.len()), 0, "{}", last());
        let cfg = r#"{"batch_size":4,"seed":3,"lr":0.0002,"b1":0.5,"b2":0.999,"eps":1e-8}"#;
        let gan = gan_gan_new(c, g, d, cfg.as_ptr(), cfg.len());
        let px: Vec<u8> = (0..10 * 9).map(|i| (i * 29 % 256) as u8).collect();
        assert_eq!(
            gan_gan_set_data(gan, px.as_ptr(), px.len(), 10),
            0,
            "{}",
            last()
        );
        let mut out = [0f32; 4 * 7];
        assert_eq!(
            gan_gan_step(gan, 7, out.as_mut_ptr(), out.len()),
            0,
            "{}",
            last()
        );
        assert!(out.iter().all(|v| v.is_finite()));
        let mut y = [0f32; 9];
        assert_eq!(
            gan_mlp_output(g, y.as_mut_ptr(), 0),
            Code::InvalidArgument as i32
        );
        let z = [0.5f32; 4];
        assert_eq!(
            gan_mlp_forward(g, z.as_ptr(), 4, 1, 0, y.as_mut_ptr(), 9),
            0,
            "{}",
            last()
        );
        let mut dz = [0f32; 4];
        assert_eq!(
            gan_mlp_backward(g, y.as_ptr(), 9, dz.as_mut_ptr(), 4),
            0,
            "{}",
            last()
        );
        assert_eq!(gan_gan_free(gan), 0);
        assert_eq!(gan_mlp_free(g), 0);
        assert_eq!(gan_mlp_free(d), 0);
        assert_eq!(gan_context_free(c), 0);
    }

    /// Reads a JSON getter as C would: ask for the length, then fill a buffer of that size.
    fn json_of(f: impl Fn(*mut u8, usize) -> i64) -> serde_json::Value {
        let n = f(std::ptr::null_mut(), 0);
        assert!(n >= 0, "{}", last());
        let mut buf = vec![0u8; n as usize];
        assert_eq!(f(buf.as_mut_ptr(), buf.len()), n);
        serde_json::from_slice(&buf).expect("the library writes valid JSON")
    }

    fn get(m: u32, which: u32, n: usize) -> Vec<f32> {
        let mut v = vec![0f32; n];
        assert_eq!(gan_mlp_get(m, which, v.as_mut_ptr(), n), 0, "{}", last());
        v
    }

    fn set(m: u32, which: u32, v: &[f32]) {
        assert_eq!(gan_mlp_set(m, which, v.as_ptr(), v.len()), 0, "{}", last());
    }

    const G_SPEC: &str = r#"{"input":4,"layers":[{"out":8,"bn":null,"act":{"kind":"leaky_relu","slope":0.2}},{"out":16,"bn":{"eps":0.8,"momentum":0.1},"act":{"kind":"leaky_relu","slope":0.2}},{"out":9,"bn":null,"act":{"kind":"tanh"}}]}"#;
    const D_SPEC: &str = r#"{"input":9,"layers":[{"out":6,"bn":null,"act":{"kind":"leaky_relu","slope":0.2}},{"out":1,"bn":null,"act":{"kind":"sigmoid"}}]}"#;

    #[test]
    fn the_contract_is_data() {
        let v = json_of(|buf, cap| gan_contract(buf, cap));
        assert_eq!(
            v,
            serde_json::json!({
                "abi_version": 6,
                "status": {"Ok":0,"InvalidArgument":1,"InvalidHandle":2,"InvalidState":3,"Backend":4,"Unavailable":5,
                           "Panic":6,"Diverged":7},
                "step_fields": ["d_loss","g_loss","d_real","d_fake"],
                "buffers": ["params","grads","adam_m","adam_v","running"],
                "rng_domains": {"noise":1,"shuffle":2,"init":3,"fixed":4,"sample":5,"alpha":6,"dropout":7,
                                "labels":8,"eps":9},
                "gan_losses": ["bce","mse","hinge","relativistic","relativistic_avg"],
                "models": crate::core::recipe::models_contract(),
            })
        );
        assert_eq!(v["models"]["wgan_gp"]["options"]["lambda_gp"], 10.0);
        assert_eq!(v["models"]["cgan"]["options"]["loss"], "mse");
        assert_eq!(v["abi_version"], gan_abi_version());
        assert_eq!(v["step_fields"].as_array().unwrap().len(), STEP_OUTPUTS);
        // Too small a buffer: nothing is written, the length is returned.
        let mut small = [7u8; 4];
        let n = gan_contract(small.as_mut_ptr(), small.len());
        assert!(n > 4);
        assert_eq!(small, [7u8; 4]);
    }

    #[test]
    fn mlp_init_is_pytorchs_default_from_the_init_stream() {
        let c = ctx();
        let spec = Spec::parse(G_SPEC).unwrap();
        let (np, nb) = (spec.param_count, spec.buffer_count);
        let [a, b, other] = [0; 3].map(|_| mlp(c, G_SPEC));
        // Init touches the parameters and the running statistics only.
        set(a, 2, &vec![0.25; np]);
        set(a, 4, &vec![3.0; nb]);
        set(a, 1, &vec![0.5; np]);
        assert_eq!(gan_mlp_set_counters(a, 5, 6), 0);
        assert_eq!(gan_mlp_init(a, 7, 0), 0, "{}", last());
        assert_eq!(gan_mlp_init(b, 7, 0), 0, "{}", last());
        assert_eq!(gan_mlp_init(other, 7, 1), 0, "{}", last());
        let (pa, pb, po) = (get(a, 0, np), get(b, 0, np), get(other, 0, np));
        assert_eq!(pa, pb, "the same seed and stream give the same parameters");
        assert_ne!(pa, po, "stream 0 and stream 1 differ");
        for l in &spec.layers {
            let bound = (1.0 / (l.inp as f64).sqrt()) as f32;
            let wb = &pa[l.w..l.b + l.out];
            assert!(
                wb.iter().all(|v| v.abs() <= bound),
                "within U(-{bound}, {bound})"
            );
            assert!(wb.iter().any(|&v| v > bound / 2.0) && wb.iter().any(|&v| v < -bound / 2.0));
            if l.bn.is_some() {
                assert!(
                    pa[l.gamma..l.gamma + l.out].iter().all(|&v| v == 1.0),
                    "gamma 1"
                );
                assert!(
                    pa[l.beta..l.beta + l.out].iter().all(|&v| v == 0.0),
                    "beta 0"
                );
            }
        }
        let running = get(a, 4, nb);
        for l in spec.layers.iter().filter(|l| l.bn.is_some()) {
            assert!(
                running[l.rmean..l.rmean + l.out].iter().all(|&v| v == 0.0),
                "running mean 0"
            );
            assert!(
                running[l.rvar..l.rvar + l.out].iter().all(|&v| v == 1.0),
                "running var 1"
            );
        }
        assert!(get(a, 2, np).iter().all(|&v| v == 0.25), "Adam m untouched");
        assert!(get(a, 1, np).iter().all(|&v| v == 0.5), "grads untouched");
        let info = json_of(|buf, cap| gan_mlp_info(a, buf, cap));
        assert_eq!(
            (
                info["adam_step"].as_u64(),
                info["num_batches_tracked"].as_u64()
            ),
            (Some(5), Some(6))
        );
        assert_eq!(gan_mlp_init(c, 7, 0), Code::InvalidHandle as i32);
        for m in [a, b, other] {
            assert_eq!(gan_mlp_free(m), 0);
        }
        gan_context_free(c);
    }

    #[test]
    fn rng_normal_draws_the_noise_domains_only() {
        let mut out = [0f32; 5];
        for d in [0, 2, 3, 99] {
            assert_eq!(
                gan_rng_normal(1, d, 0, out.as_mut_ptr(), out.len()),
                Code::InvalidArgument as i32
            );
        }
        assert_eq!(
            last(),
            "rng domain 99 is not a noise domain (expected 1 noise, 4 fixed or 5 sample)"
        );
        let mut seen = Vec::new();
        for d in [rng::DOMAIN_NOISE, rng::DOMAIN_FIXED, rng::DOMAIN_SAMPLE] {
            assert_eq!(
                gan_rng_normal(9, d, 3, out.as_mut_ptr(), out.len()),
                0,
                "{}",
                last()
            );
            let mut want = [0f32; 5];
            rng::fill_normal(&mut want, 9, d, 3);
            assert_eq!(out, want);
            seen.push(out);
        }
        assert!(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2]);
        assert_eq!(
            gan_rng_normal(9, 1, 3, std::ptr::null_mut(), 5),
            Code::InvalidArgument as i32
        );
    }

    /// A GAN whose discriminator is poisoned after two good steps diverges in its third step (global step 2), on
    /// every backend there is; `diverged_step` says so, and is null again after a call that does not diverge.
    #[test]
    fn a_diverged_step_is_reported_with_its_number() {
        for backend in ["cpu", "gpu"] {
            let c = gan_context_new(backend.as_ptr(), backend.len(), 1);
            if c == 0 {
                assert_eq!(gan_last_status(), Code::Unavailable as i32, "{}", last());
                eprintln!("SKIPPED on {backend}: {}", last());
                continue;
            }
            let (g, d) = (mlp(c, G_SPEC), mlp(c, D_SPEC));
            assert_eq!(gan_mlp_init(g, 1, 0), 0, "{}", last());
            let cfg = r#"{"batch_size":4,"seed":3,"lr":0.0002,"b1":0.5,"b2":0.999,"eps":1e-8}"#;
            let gan = gan_gan_new(c, g, d, cfg.as_ptr(), cfg.len());
            assert_ne!(gan, 0, "{}", last());
            // White images: every real pixel is 1.0 after scaling.
            let px = [255u8; 10 * 9];
            assert_eq!(
                gan_gan_set_data(gan, px.as_ptr(), px.len(), 10),
                0,
                "{}",
                last()
            );
            let info = || json_of(|buf, cap| gan_gan_info(gan, buf, cap));
            assert!(info()["diverged_step"].is_null());
            let mut out = [0f32; 4 * 3];
            assert_eq!(
                gan_gan_step(gan, 2, out.as_mut_ptr(), 8),
                0,
                "{backend}: {}",
                last()
            );
            assert!(info()["diverged_step"].is_null());
            // The last call's GPU cost: counted on the GPU, 0 on the CPU (which records no GPU work).
            let i = info();
            let dispatches = i["dispatches_per_step"].as_f64().unwrap();
            assert_eq!(dispatches > 0.0, backend == "gpu", "{backend}: {i}");
            assert_eq!(
                i["submissions"].as_u64().unwrap() > 0,
                backend == "gpu",
                "{i}"
            );
            for k in [
                "barriers_per_step",
                "workgroups_per_step",
                "record_us_per_step",
                "submit_us_per_step",
            ] {
                assert!(i[k].as_f64().unwrap() >= 0.0, "{backend}: {k} in {i}");
            }
            let (np_g, np_d) = (
                Spec::parse(G_SPEC).unwrap().param_count,
                Spec::parse(D_SPEC).unwrap().param_count,
            );
            let (g_params, d_params) = (get(g, 0, np_g), get(d, 0, np_d));
            // D's first-layer weights at 3e38: 3e38 + 3e38 overflows on the real rows, 0 * Inf is NaN in the next layer.
            let mut poison = d_params.clone();
            poison[..6 * 9].fill(3e38);
            set(d, 0, &poison);
            assert_eq!(
                gan_gan_step(gan, 3, out.as_mut_ptr(), 12),
                Code::Diverged as i32,
                "{backend}"
            );
            assert!(last().starts_with("step 2: "), "{backend}: {}", last());
            assert_eq!(info()["diverged_step"], 2, "{backend}");
            // Restore every buffer that the diverged step may have touched: the next call trains again.
            for (m, p, n, nb) in [(g, &g_params, np_g, 32), (d, &d_params, np_d, 0)] {
                set(m, 0, p);
                set(m, 2, &vec![0.0; n]);
                set(m, 3, &vec![0.0; n]);
                let running = Spec::parse(if m == g { G_SPEC } else { D_SPEC })
                    .unwrap()
                    .default_running();
                assert_eq!(running.len(), nb);
                set(m, 4, &running);
            }
            assert_eq!(
                gan_gan_step(gan, 1, out.as_mut_ptr(), 4),
                0,
                "{backend}: {}",
                last()
            );
            assert!(info()["diverged_step"].is_null(), "{backend}");
            assert_eq!(gan_gan_free(gan), 0);
            assert_eq!(gan_mlp_free(g), 0);
            assert_eq!(gan_mlp_free(d), 0);
            assert_eq!(gan_context_free(c), 0);
        }
    }

    /// `gan_softmax_ce` runs on the context's backend (every backend there is) with the same checks and messages: the
    /// context handle, then every length, label and logit before any work.
    #[test]
    fn softmax_ce_through_the_abi_on_every_backend() {
        let z = [0.5f32, -1.0, 2.0, 80.0, -80.0, 0.0];
        let y = [2u32, 0];
        let mut want_dz = [0f32; 6];
        let want = (kernels::softmax_ce(&z, &y, 3, Some(&mut want_dz), 0.5) / 2.0) as f32;
        let mut loss = [0f32];
        let mut dz = [0f32; 6];
        assert_eq!(
            gan_softmax_ce(
                0,
                z.as_ptr(),
                6,
                y.as_ptr(),
                2,
                3,
                loss.as_mut_ptr(),
                dz.as_mut_ptr(),
                6
            ),
            Code::InvalidHandle as i32
        );
        assert_eq!(last(), "null context handle (0)");
        for backend in ["cpu", "gpu"] {
            let c = gan_context_new(backend.as_ptr(), backend.len(), 1);
            if c == 0 {
                assert_eq!(gan_last_status(), Code::Unavailable as i32, "{}", last());
                eprintln!("SKIPPED on {backend}: {}", last());
                continue;
            }
            // The status, the loss written (NaN when none) and the message of a failure (empty on success).
            let ce = |z: &[f32], y: &[u32], classes: u32, dz: &mut [f32]| {
                let mut loss = [f32::NAN];
                let code = gan_softmax_ce(
                    c,
                    z.as_ptr(),
                    z.len(),
                    y.as_ptr(),
                    y.len(),
                    classes,
                    loss.as_mut_ptr(),
                    dz.as_mut_ptr(),
                    dz.len(),
                );
                (
                    code,
                    loss[0],
                    if code == 0 { String::new() } else { last() },
                )
            };
            // The CPU backend runs the kernel itself (bit for bit); the GPU's row losses are f32 (the CPU's f64), a
            // few ulp apart.
            let close = |(code, loss, message): (i32, f32, String)| {
                assert_eq!((code, message.as_str()), (0, ""), "{backend}");
                match backend {
                    "cpu" => assert_eq!(loss, want),
                    _ => assert!(
                        (loss - want).abs() <= 1e-6,
                        "{backend}: loss {loss} vs {want}"
                    ),
                }
            };
            close(ce(&z, &y, 3, &mut dz));
            if backend == "cpu" {
                assert_eq!(dz, want_dz);
            }
            for (k, (&g, &w)) in dz.iter().zip(&want_dz).enumerate() {
                assert!((g - w).abs() <= 1e-6, "{backend}: dz[{k}] {g} vs {w}");
            }
            close(ce(&z, &y, 3, &mut []));
            let refused = [
                (
                    ce(&z, &[], 3, &mut []),
                    "softmax cross-entropy over 0 rows of 3 classes: both must be at least 1",
                ),
                (
                    ce(&z, &y, 0, &mut []),
                    "softmax cross-entropy over 2 rows of 0 classes: both must be at least 1",
                ),
                (
                    ce(&z, &y, 2, &mut []),
                    "logits have 6 values, expected 2 rows x 2 classes",
                ),
                (
                    ce(&z, &y, 3, &mut dz[..5]),
                    "gradient buffer has 5 values, expected 6 (or 0 for none)",
                ),
                (
                    ce(&z, &[2, 7], 3, &mut dz),
                    "labels[1] (row 1) is 7, expected a class below 3",
                ),
                (
                    ce(&[0.0, f32::INFINITY], &[0], 2, &mut []),
                    "logits[1] (row 0, class 1) is inf, expected a finite number",
                ),
                (
                    ce(&z, &[0; 1 << 16], 1 << 15, &mut []),
                    "softmax cross-entropy over 65536 rows of 32768 classes: more than 2^30 logits",
                ),
            ];
            for ((code, loss, message), msg) in refused {
                assert_eq!(
                    (code, message.as_str()),
                    (Code::InvalidArgument as i32, msg),
                    "{backend}"
                );
                assert!(loss.is_nan(), "{backend}: nothing written on a refusal");
            }
            assert_eq!(
                gan_softmax_ce(
                    c,
                    z.as_ptr(),
                    6,
                    y.as_ptr(),
                    2,
                    3,
                    std::ptr::null_mut(),
                    dz.as_mut_ptr(),
                    6
                ),
                Code::InvalidArgument as i32
            );
            assert_eq!(last(), "loss is a null pointer with length 1");
            assert_eq!(gan_context_free(c), 0);
        }
    }

    #[test]
    fn a_panic_becomes_a_status() {
        let code = status(|| panic!("boom"));
        assert_eq!(code, Code::Panic as i32);
        assert!(last().contains("internal error") && last().contains("boom"));
    }
}
