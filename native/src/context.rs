//! A compute context: the backend, its threads, and (with the GPU backend) its device. The context is the one place
//! that knows both backends: it makes the MLPs and GAN trainers of its backend, behind the core's traits, and holds
//! its backend's context-level ops (softmax cross-entropy).

use crate::core::spec::check_encoder;
use crate::core::{backend_of, FamilyGan, Gan, GanConfig, MlpBackend, Model, Ops, Optimizer, Spec};
use crate::cpu::{CpuGan, CpuMlp, CpuOps};
use crate::error::{bad_arg, Code, Error, Result};
use crate::gpu::device::GpuDevice;
use crate::gpu::{GpuGan, GpuMlp, GpuOps};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Cpu,
    Gpu,
}

pub struct Context {
    pub backend: BackendKind,
    pub threads: usize,
    /// The GPU device of the gpu backend.
    pub gpu: Option<Arc<GpuDevice>>,
    /// Why `auto` chose the CPU (no hardware adapter), for `info`.
    pub auto_note: Option<String>,
    pool: rayon::ThreadPool,
    /// The context-level ops of the backend (on the GPU, on this context's device).
    ops: Box<dyn Ops>,
}

impl Context {
    /// `backend` is `cpu`, `gpu` (any adapter, a software one included) or `auto` (a hardware GPU when there is
    /// one, else the CPU: it never trains on a software adapter); `threads` 0 means the cores available.
    pub fn new(backend: &str, threads: u32) -> Result<Context> {
        let (kind, gpu, auto_note) = match backend {
            "cpu" => (BackendKind::Cpu, None, None),
            "gpu" => (BackendKind::Gpu, Some(GpuDevice::new(true)?), None),
            "auto" => match GpuDevice::new(false) {
                Ok(d) => (BackendKind::Gpu, Some(d), None),
                Err(e) => (BackendKind::Cpu, None, Some(e.message)),
            },
            other => {
                return Err(bad_arg!(
                    "unknown backend \"{other}\" (expected cpu, gpu or auto)"
                ))
            }
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if threads > 4096 {
            return Err(bad_arg!("threads must be in [0, 4096], got {threads}"));
        }
        let threads = if threads == 0 {
            cores
        } else {
            threads as usize
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("gan-cpu-{i}"))
            .build()
            .map_err(|e| {
                Error::new(
                    Code::Backend,
                    format!("cannot start {threads} threads: {e}"),
                )
            })?;
        let ops: Box<dyn Ops> = match &gpu {
            Some(dev) => Box::new(GpuOps::new(dev.clone())),
            None => Box::new(CpuOps),
        };
        Ok(Context {
            backend: kind,
            threads,
            gpu,
            auto_note,
            pool,
            ops,
        })
    }

    /// The context-level ops of this context's backend (call them inside [`Context::run`]).
    pub fn ops(&self) -> &dyn Ops {
        self.ops.as_ref()
    }

    /// Runs `f` where this context computes: on the CPU backend inside its thread pool (so GEMM and elementwise work
    /// use exactly its threads), on the GPU backend on the calling thread.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match self.backend {
            BackendKind::Cpu => self.pool.install(f),
            BackendKind::Gpu => f(),
        }
    }

    /// A new MLP of layout `spec` on this context's backend.
    pub fn new_mlp(&self, spec: Spec) -> Result<Box<dyn MlpBackend>> {
        Ok(match &self.gpu {
            Some(dev) => Box::new(GpuMlp::new(spec, dev.clone())?),
            None => Box::new(CpuMlp::new(spec, self.threads)),
        })
    }

    /// A new GAN trainer on this context's backend for generator `g` and discriminator `d` (and aae's encoder `e`;
    /// MLPs of this context): the backend's fused step for the seed's recipe (model `gan` with Adam), the general step
    /// (`FamilyGan`) for every other.
    pub fn new_gan(
        &self,
        config: GanConfig,
        g: &dyn MlpBackend,
        d: &dyn MlpBackend,
        e: Option<&dyn MlpBackend>,
    ) -> Result<Box<dyn Gan>> {
        let r = &config.recipe;
        let e = e.map(|e| e.spec());
        check_encoder(r, g.spec(), e)?;
        // The fused step runs one D forward per step and draws no dropout masks of its own.
        let dropout = g.spec().has_dropout() || d.spec().has_dropout();
        let fused = r.model == Model::Gan && matches!(r.g_opt, Optimizer::Adam(_)) && !dropout;
        if !fused {
            return Ok(match self.backend {
                BackendKind::Gpu => {
                    Box::new(FamilyGan::<GpuMlp>::new(config, g.spec(), d.spec(), e)?)
                }
                BackendKind::Cpu => {
                    Box::new(FamilyGan::<CpuMlp>::new(config, g.spec(), d.spec(), e)?)
                }
            });
        }
        Ok(match self.backend {
            BackendKind::Gpu => Box::new(GpuGan::new(config, backend_of(g)?, backend_of(d)?)?),
            BackendKind::Cpu => Box::new(CpuGan::new(config, backend_of(g)?, backend_of(d)?)?),
        })
    }

    pub fn info(&self) -> serde_json::Value {
        #[allow(unused_mut)] // stays empty on targets other than these two
        let mut simd: Vec<&str> = Vec::new();
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("neon") {
                simd.push("neon");
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                simd.push("avx512f");
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                simd.push("avx2");
            }
            if std::arch::is_x86_feature_detected!("fma") {
                simd.push("fma");
            }
        }
        serde_json::json!({
            "backend": match self.backend { BackendKind::Cpu => "cpu", BackendKind::Gpu => "gpu" },
            "threads": self.threads,
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "simd": simd,
            "cpu_kernels": crate::cpu::kernels::simd_level().name(),
            "adapter": self.gpu.as_ref().map(|g| g.info()),
            "auto": self.auto_note,
            "version": env!("CARGO_PKG_VERSION"),
        })
    }
}
