//! Handles: every native object lives in one table and is named by a `u32` that is never reused, so a freed or forged
//! handle is an error rather than a dangling pointer. The objects dispatch to the CPU or the GPU backend.

use crate::context::Context;
use crate::cpu::gan::{CpuGan, GanConfig};
use crate::cpu::mlp::{AdamConfig, CpuMlp};
use crate::error::{bad_arg, Code, Error, Result};
use crate::gpu::{GpuGan, GpuMlp, Which};
use crate::spec::Spec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// An MLP on one backend.
pub enum MlpImpl {
    Cpu(CpuMlp),
    Gpu(GpuMlp),
}

pub struct Mlp {
    pub ctx: Arc<Context>,
    pub imp: MlpImpl,
}

/// The names of the flat buffers that `get`/`set` address, by selector.
pub const BUFFER_NAMES: [&str; 5] = ["params", "grads", "adam m", "adam v", "running stats"];

impl Mlp {
    /// Builds the MLP on the context's backend.
    pub fn new(ctx: Arc<Context>, spec: Spec) -> Result<Mlp> {
        let imp = match &ctx.gpu {
            Some(dev) => MlpImpl::Gpu(GpuMlp::new(spec, dev.clone())?),
            None => MlpImpl::Cpu(CpuMlp::new(spec, ctx.threads)),
        };
        Ok(Mlp { ctx, imp })
    }

    pub fn spec(&self) -> &Spec {
        match &self.imp {
            MlpImpl::Cpu(m) => &m.spec,
            MlpImpl::Gpu(m) => &m.spec,
        }
    }

    /// (Adam steps, train-mode forwards, rows of the last forward).
    pub fn counters(&self) -> (u64, u64, usize) {
        match &self.imp {
            MlpImpl::Cpu(m) => (m.adam_t, m.batches_tracked, m.last_rows()),
            MlpImpl::Gpu(m) => (m.adam_t, m.batches_tracked, m.last_rows()),
        }
    }

    pub fn set_counters(&mut self, adam_t: u64, batches_tracked: u64) {
        match &mut self.imp {
            MlpImpl::Cpu(m) => (m.adam_t, m.batches_tracked) = (adam_t, batches_tracked),
            MlpImpl::Gpu(m) => (m.adam_t, m.batches_tracked) = (adam_t, batches_tracked),
        }
    }

    /// The size of the flat buffer `which` (0 params, 1 grads, 2 Adam m, 3 Adam v, 4 running stats).
    pub fn buffer_len(&self, which: u32) -> Result<usize> {
        Which::from_index(which)?;
        let s = self.spec();
        Ok(if which == 4 {
            s.buffer_count
        } else {
            s.param_count
        })
    }

    /// Copies the flat buffer `which` into `out` (whose length must be the buffer's).
    pub fn get(&mut self, which: u32, out: &mut [f32]) -> Result<()> {
        let n = self.buffer_len(which)?;
        if out.len() != n {
            return Err(bad_arg!(
                "{} has {n} values, got a buffer of {}",
                BUFFER_NAMES[which as usize],
                out.len()
            ));
        }
        match &mut self.imp {
            MlpImpl::Cpu(m) => out.copy_from_slice(cpu_buffer(m, which)),
            MlpImpl::Gpu(m) => out.copy_from_slice(&m.get(Which::from_index(which)?)?),
        }
        Ok(())
    }

    /// Replaces the flat buffer `which`; every value must be finite.
    pub fn set(&mut self, which: u32, src: &[f32]) -> Result<()> {
        let n = self.buffer_len(which)?;
        let name = BUFFER_NAMES[which as usize];
        if src.len() != n {
            return Err(bad_arg!("{name} has {n} values, got {}", src.len()));
        }
        if let Some(i) = src.iter().position(|x| !x.is_finite()) {
            return Err(bad_arg!(
                "{name}[{i}] is {}, expected a finite number",
                src[i]
            ));
        }
        match &mut self.imp {
            MlpImpl::Cpu(m) => cpu_buffer(m, which).copy_from_slice(src),
            MlpImpl::Gpu(m) => m.set(Which::from_index(which)?, src)?,
        }
        Ok(())
    }

    /// PyTorch's default init from stream `(seed, DOMAIN_INIT, stream)` (see `Spec::init_params`); running
    /// statistics reset to mean 0, var 1; Adam moments and counters untouched.
    pub fn init(&mut self, seed: u64, stream: u32) -> Result<()> {
        let (params, running) = (
            self.spec().init_params(seed, stream),
            self.spec().default_running(),
        );
        self.set(Which::Params as u32, &params)?;
        self.set(Which::Buffers as u32, &running)
    }

    /// Forward of `x [rows, input]` into `y [rows, output]` (both row-major).
    pub fn forward(&mut self, x: &[f32], rows: usize, train: bool, y: &mut [f32]) -> Result<()> {
        let want = rows * self.spec().output();
        if y.len() != want {
            return Err(bad_arg!(
                "forward: output buffer has {} values, expected {want}",
                y.len()
            ));
        }
        let ctx = self.ctx.clone();
        match &mut self.imp {
            MlpImpl::Cpu(m) => {
                ctx.run(|| m.forward(x, rows, train).map(|out| y.copy_from_slice(out)))
            }
            MlpImpl::Gpu(m) => {
                y.copy_from_slice(&m.forward(x, rows, train)?);
                Ok(())
            }
        }
    }

    /// Backward of the last forward from `dy [rows, output]`; writes `dx [rows, input]`.
    pub fn backward(&mut self, dy: &[f32], dx: &mut [f32]) -> Result<()> {
        let ctx = self.ctx.clone();
        let have = dx.len();
        let check = |n: usize| {
            if have != n {
                Err(bad_arg!(
                    "backward: input gradient buffer has {have} values, expected {n}"
                ))
            } else {
                Ok(())
            }
        };
        match &mut self.imp {
            MlpImpl::Cpu(m) => ctx.run(|| {
                let g = m.backward(dy)?;
                check(g.len())?;
                dx.copy_from_slice(g);
                Ok(())
            }),
            MlpImpl::Gpu(m) => {
                let g = m.backward(dy)?;
                check(g.len())?;
                dx.copy_from_slice(&g);
                Ok(())
            }
        }
    }

    /// The output of the last forward `[rows, output]` into `out`.
    pub fn output(&mut self, out: &mut [f32]) -> Result<()> {
        let rows = self.counters().2;
        if rows == 0 {
            return Err(crate::error::bad_state!("no forward has run yet"));
        }
        let n = rows * self.spec().output();
        if out.len() != n {
            return Err(bad_arg!(
                "output buffer has {} values, the last forward produced {n}",
                out.len()
            ));
        }
        match &mut self.imp {
            MlpImpl::Cpu(m) => out.copy_from_slice(m.output_rowmajor()),
            MlpImpl::Gpu(m) => out.copy_from_slice(&m.output()?),
        }
        Ok(())
    }

    /// One Adam step with the current gradients.
    pub fn adam(&mut self, c: AdamConfig) -> Result<()> {
        let ctx = self.ctx.clone();
        match &mut self.imp {
            MlpImpl::Cpu(m) => {
                if ctx.run(|| m.adam_step(c)) {
                    Ok(())
                } else {
                    Err(Error::diverged(
                        None,
                        "a parameter became NaN or infinite after the Adam update",
                    ))
                }
            }
            MlpImpl::Gpu(m) => m.adam_step(c),
        }
    }
}

fn cpu_buffer(m: &mut CpuMlp, which: u32) -> &mut Vec<f32> {
    match which {
        0 => &mut m.params,
        1 => &mut m.grads,
        2 => &mut m.m,
        3 => &mut m.v,
        _ => &mut m.buffers,
    }
}

/// A GAN trainer on one backend.
pub enum GanImpl {
    Cpu(CpuGan),
    Gpu(GpuGan),
}

pub struct Gan {
    pub ctx: Arc<Context>,
    pub g: Arc<Mutex<Mlp>>,
    pub d: Arc<Mutex<Mlp>>,
    pub imp: GanImpl,
    /// The step at which the last `step` call diverged (`None` when it did not).
    pub diverged_step: Option<u64>,
}

impl Gan {
    pub fn new(
        ctx: Arc<Context>,
        g: Arc<Mutex<Mlp>>,
        d: Arc<Mutex<Mlp>>,
        config: GanConfig,
    ) -> Result<Gan> {
        let imp = {
            let (gl, dl) = (lock(&g)?, lock(&d)?);
            if !Arc::ptr_eq(&gl.ctx, &ctx) || !Arc::ptr_eq(&dl.ctx, &ctx) {
                return Err(bad_arg!(
                    "generator and discriminator must belong to the GAN's context"
                ));
            }
            match (&gl.imp, &dl.imp) {
                (MlpImpl::Cpu(gc), MlpImpl::Cpu(dc)) => GanImpl::Cpu(CpuGan::new(config, gc, dc)?),
                (MlpImpl::Gpu(gg), MlpImpl::Gpu(dg)) => GanImpl::Gpu(GpuGan::new(config, gg, dg)?),
                _ => {
                    return Err(bad_arg!(
                        "generator and discriminator must be on the same backend"
                    ))
                }
            }
        };
        Ok(Gan {
            ctx,
            g,
            d,
            imp,
            diverged_step: None,
        })
    }

    pub fn set_data(&mut self, pixels: &[u8], count: usize) -> Result<()> {
        let gm = self.g.clone();
        let gl = lock(&gm)?;
        match (&mut self.imp, &gl.imp) {
            (GanImpl::Cpu(t), MlpImpl::Cpu(g)) => t.set_data(pixels, count, g),
            (GanImpl::Gpu(t), MlpImpl::Gpu(g)) => t.set_data(pixels, count, g),
            _ => unreachable!("checked at creation"),
        }
    }

    /// Runs `out.len() / 4` steps; remembers the step that diverged, if one did.
    pub fn step(&mut self, out: &mut [f32]) -> Result<()> {
        let r = self.step_inner(out);
        self.diverged_step = match &r {
            Err(e) if e.code == Code::Diverged => e.step,
            _ => None,
        };
        r
    }

    fn step_inner(&mut self, out: &mut [f32]) -> Result<()> {
        let (gm, dm, ctx) = (self.g.clone(), self.d.clone(), self.ctx.clone());
        let (mut gl, mut dl) = (lock(&gm)?, lock(&dm)?);
        match (&mut self.imp, &mut gl.imp, &mut dl.imp) {
            (GanImpl::Cpu(t), MlpImpl::Cpu(g), MlpImpl::Cpu(d)) => ctx.run(|| {
                for o in out.chunks_exact_mut(crate::cpu::gan::STEP_OUTPUTS) {
                    t.step(g, d, o)?;
                }
                Ok(())
            }),
            (GanImpl::Gpu(t), MlpImpl::Gpu(g), MlpImpl::Gpu(d)) => {
                let n = out.len() / crate::cpu::gan::STEP_OUTPUTS;
                let first = t.step;
                t.step_n(g, d, n, out)?;
                // The GPU records all n steps before any runs: divergence shows in the losses read back at the end.
                match out.chunks_exact(crate::cpu::gan::STEP_OUTPUTS).position(|o| !(o[0].is_finite() && o[1].is_finite())) {
                    None => Ok(()),
                    Some(i) => Err(Error::diverged(
                        Some(first + i as u64),
                        format!(
                            "D loss {}, G loss {} (the gpu backend checks the losses of a call when it ends: \
                             the parameters went on updating)",
                            out[4 * i],
                            out[4 * i + 1]
                        ),
                    )),
                }
            }
            _ => unreachable!("checked at creation"),
        }
    }

    /// One step on given noise and real rows (CPU backend only).
    pub fn step_explicit(
        &mut self,
        z: &[f32],
        x: &[f32],
        rows: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let (gm, dm, ctx) = (self.g.clone(), self.d.clone(), self.ctx.clone());
        let (mut gl, mut dl) = (lock(&gm)?, lock(&dm)?);
        match (&mut self.imp, &mut gl.imp, &mut dl.imp) {
            (GanImpl::Cpu(t), MlpImpl::Cpu(g), MlpImpl::Cpu(d)) => {
                ctx.run(|| t.step_explicit(g, d, z, x, rows, out))
            }
            _ => Err(Error::new(
                Code::Unavailable,
                "a step on given noise and data (for parity tests) runs on the cpu backend only",
            )),
        }
    }

    /// (epoch, batch, rows) of the next step; batches per epoch; batch size; seed; step.
    pub fn info(&self) -> serde_json::Value {
        let (pos, nb, cfg, step) = match &self.imp {
            GanImpl::Cpu(t) => (t.position(), t.batches_per_epoch(), t.config, t.step),
            GanImpl::Gpu(t) => (t.position(), t.batches_per_epoch(), t.config, t.step),
        };
        serde_json::json!({
            "step": step, "epoch": pos.0, "batch": pos.1, "rows": pos.2,
            "batches_per_epoch": nb, "batch_size": cfg.batch_size, "seed": cfg.seed,
            "diverged_step": self.diverged_step,
        })
    }

    pub fn set_step(&mut self, step: u64) {
        match &mut self.imp {
            GanImpl::Cpu(t) => t.step = step,
            GanImpl::Gpu(t) => t.step = step,
        }
    }
}

#[derive(Clone)]
pub enum Object {
    Context(Arc<Context>),
    Mlp(Arc<Mutex<Mlp>>),
    Gan(Arc<Mutex<Gan>>),
}

impl Object {
    fn kind(&self) -> &'static str {
        match self {
            Object::Context(_) => "context",
            Object::Mlp(_) => "mlp",
            Object::Gan(_) => "gan",
        }
    }
}

struct Table {
    next: u32,
    objects: HashMap<u32, Object>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn table() -> MutexGuard<'static, Option<Table>> {
    // The table holds no invariant that a panic elsewhere could break, so a poisoned lock is still usable.
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn insert(o: Object) -> Result<u32> {
    let mut t = table();
    let t = t.get_or_insert_with(|| Table {
        next: 1,
        objects: HashMap::new(),
    });
    if t.next == u32::MAX {
        return Err(Error::new(Code::Backend, "out of handles"));
    }
    let h = t.next;
    t.next += 1;
    t.objects.insert(h, o);
    Ok(h)
}

fn get(h: u32, want: &'static str) -> Result<Object> {
    let t = table();
    match t.as_ref().and_then(|t| t.objects.get(&h)) {
        Some(o) if o.kind() == want => Ok(o.clone()),
        Some(o) => Err(Error::new(
            Code::InvalidHandle,
            format!("handle {h} is a {}, expected a {want}", o.kind()),
        )),
        None if h == 0 => Err(Error::new(
            Code::InvalidHandle,
            format!("null {want} handle (0)"),
        )),
        None => Err(Error::new(
            Code::InvalidHandle,
            format!("{want} handle {h} is not open (never created or already freed)"),
        )),
    }
}

pub fn context(h: u32) -> Result<Arc<Context>> {
    match get(h, "context")? {
        Object::Context(c) => Ok(c),
        _ => unreachable!(),
    }
}

pub fn mlp(h: u32) -> Result<Arc<Mutex<Mlp>>> {
    match get(h, "mlp")? {
        Object::Mlp(m) => Ok(m),
        _ => unreachable!(),
    }
}

pub fn gan(h: u32) -> Result<Arc<Mutex<Gan>>> {
    match get(h, "gan")? {
        Object::Gan(g) => Ok(g),
        _ => unreachable!(),
    }
}

/// Locks an object; a lock poisoned by a panic in an earlier call makes the object unusable (its state may be torn).
pub fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| {
        Error::new(
            Code::InvalidState,
            "object is unusable after an internal panic; free it",
        )
    })
}

/// Removes a handle of the given kind. The object itself is dropped when its last user lets go.
pub fn remove(h: u32, want: &'static str) -> Result<()> {
    get(h, want)?;
    let mut t = table();
    t.as_mut().and_then(|t| t.objects.remove(&h));
    Ok(())
}

/// Live handles (for leak tests).
pub fn live() -> usize {
    table().as_ref().map(|t| t.objects.len()).unwrap_or(0)
}
