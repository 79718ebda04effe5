//! The wgpu device: adapter choice, limits, error capture (no panics), buffers, the pipeline and bind-group caches, and
//! the one way work reaches the GPU ([`GpuDevice::execute`]: a recorded list of dispatches, submitted in one compute
//! pass, optionally followed by read-backs).
//!
//! Binding model (every kernel): `@group(0)` holds eight storage buffers `b0..b7` (all `read_write`, so one buffer may be
//! bound at several slots of one dispatch, which WebGPU allows for writable storage only), `@group(1) @binding(0)` one
//! uniform struct (at most [`SLOT`] bytes) read at a dynamic offset from a per-device uniform arena. Every dispatch of
//! a submission has its own uniform slot, written once with `queue.write_buffer` before the submission. Storage
//! addresses are element offsets carried in the uniforms, so one bind group per buffer tuple serves every layer.

use crate::core::WorkCount;
use crate::error::{Code, Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Bytes per uniform slot (a multiple of every legal `min_uniform_buffer_offset_alignment`, which is at most 256).
pub const SLOT: u64 = 512;
/// Storage bindings per kernel (`b0..b7`; WebGPU guarantees 8 per shader stage).
pub const BINDINGS: usize = 8;

fn backend_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(Code::Backend, format!("GPU {what} failed: {e}"))
}

/// A storage buffer with a device-unique id (the key of the bind-group cache).
pub struct GpuBuf {
    pub id: u64,
    pub buf: wgpu::Buffer,
    /// Size in bytes.
    pub size: u64,
    dev: Arc<GpuDevice>,
}

impl Drop for GpuBuf {
    fn drop(&mut self) {
        self.dev.forget(self.id);
    }
}

/// The shader files, each compiled once per device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Linear,
    Block,
    Softmax,
    Adam,
    Data,
    Dropout,
}

impl Shader {
    fn source(self) -> String {
        let common = include_str!("shaders/common.wgsl");
        // The column pass of a block's backward, shared by the two files that run it.
        let columns = match self {
            Shader::Linear | Shader::Block => include_str!("shaders/columns.wgsl"),
            _ => "",
        };
        let body = match self {
            Shader::Linear => include_str!("shaders/linear.wgsl"),
            Shader::Block => include_str!("shaders/block.wgsl"),
            Shader::Softmax => include_str!("shaders/softmax.wgsl"),
            Shader::Adam => include_str!("shaders/adam.wgsl"),
            Shader::Data => include_str!("shaders/data.wgsl"),
            Shader::Dropout => include_str!("shaders/dropout.wgsl"),
        };
        format!("{common}\n{columns}\n{body}")
    }
}

/// A compute pipeline: shader, entry point, and the value of its `MODE` override constant (if it has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
    pub mode: Option<u32>,
}

impl Kernel {
    pub const fn new(shader: Shader, entry: &'static str) -> Kernel {
        Kernel {
            shader,
            entry,
            mode: None,
        }
    }
    pub const fn with_mode(shader: Shader, entry: &'static str, mode: u32) -> Kernel {
        Kernel {
            shader,
            entry,
            mode: Some(mode),
        }
    }
}

/// A storage bind group (`b0..b7`) and the ids of the buffers it binds (0: the dummy).
pub struct Bind {
    pub group: wgpu::BindGroup,
    pub ids: [u64; BINDINGS],
}

/// One recorded dispatch.
struct Cmd {
    pipe: Arc<wgpu::ComputePipeline>,
    bind: Arc<Bind>,
    slot: u32,
    groups: [u32; 3],
}

/// Dispatches recorded for one submission (in order, one compute pass), with their uniforms.
///
/// It also counts what the submission will cost: its barriers, and the CPU time from its first dispatch until its
/// queue submit (see [`WorkCount`]). **Barriers:** every storage binding is `read_write`, so wgpu orders a dispatch after every earlier
/// dispatch of the pass that bound one of the same buffers (a pipeline barrier before it); a dispatch that binds only
/// buffers no earlier dispatch of the pass bound needs none. The dummy buffer (id 0) bound at unused slots counts as a
/// buffer like any other, as it does for wgpu: in practice every dispatch after the first of a pass waits on the one
/// before it, `barriers = dispatches - 1` per submission. The uniform arena is read-only and is not counted.
#[derive(Default)]
pub struct Batch {
    cmds: Vec<Cmd>,
    uniforms: Vec<u8>,
    /// Distinct storage buffers bound so far (few: a linear scan).
    bound: Vec<u64>,
    barriers: u64,
    /// Workgroups of the dispatches recorded so far.
    workgroups: u64,
    /// When the first dispatch was recorded.
    started: Option<Instant>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }
    pub fn len(&self) -> usize {
        self.cmds.len()
    }
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }
    /// The barriers wgpu will insert between the dispatches recorded so far (see the type's notes).
    pub fn barriers(&self) -> u64 {
        self.barriers
    }
    /// Records `pipe` over `groups` workgroups with bind group `bind` and uniform `u`.
    pub fn dispatch<U: bytemuck::Pod>(
        &mut self,
        pipe: &Arc<wgpu::ComputePipeline>,
        bind: &Arc<Bind>,
        u: &U,
        groups: [u32; 3],
    ) {
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
        let before = self.bound.len();
        let mut waits = false;
        for id in bind.ids {
            if self.bound[..before].contains(&id) {
                waits = true;
            } else if !self.bound[before..].contains(&id) {
                self.bound.push(id);
            }
        }
        self.barriers += waits as u64;
        self.workgroups += groups.iter().map(|&g| g as u64).product::<u64>();
        let bytes = bytemuck::bytes_of(u);
        debug_assert!(bytes.len() as u64 <= SLOT);
        let slot = self.cmds.len() as u32;
        let start = self.uniforms.len();
        self.uniforms.resize(start + SLOT as usize, 0);
        self.uniforms[start..start + bytes.len()].copy_from_slice(bytes);
        self.cmds.push(Cmd {
            pipe: pipe.clone(),
            bind: bind.clone(),
            slot,
            groups,
        });
    }
}

thread_local! {
    /// The GPU work this thread has submitted ([`work_count`]).
    static WORK: std::cell::Cell<WorkCount> = const { std::cell::Cell::new(WorkCount {
        dispatches: 0,
        barriers: 0,
        submissions: 0,
        workgroups: 0,
        record_ns: 0,
        submit_ns: 0,
    }) };
}

/// The GPU work this thread has submitted so far, on every device: a running total (the work of a call is the
/// difference of two snapshots). GPU work is recorded and submitted on the thread that calls the library, so
/// concurrent calls on other threads do not mix into it.
pub fn work_count() -> WorkCount {
    WORK.with(|w| w.get())
}

/// Adds a submitted batch to this thread's [`work_count`]: its queue submit began at `submitting` and returned at
/// `submitted`.
fn count_work(batch: &Batch, submitting: Instant, submitted: Instant) {
    let ns = |a: Instant, z: Instant| z.saturating_duration_since(a).as_nanos() as u64;
    WORK.with(|w| {
        let mut c = w.get();
        c.dispatches += batch.cmds.len() as u64;
        c.barriers += batch.barriers;
        c.submissions += 1;
        c.workgroups += batch.workgroups;
        c.record_ns += batch.started.map(|t| ns(t, submitting)).unwrap_or(0);
        c.submit_ns += ns(submitting, submitted);
        w.set(c);
    });
}

/// A region to copy back after the dispatches: buffer, byte offset, byte length.
pub struct Read<'a> {
    pub buf: &'a GpuBuf,
    pub offset: u64,
    pub len: u64,
}

struct Exec {
    /// The uniform arena (UNIFORM | COPY_DST) and its bind group (one dynamic-offset binding of `SLOT` bytes).
    arena: Option<(wgpu::Buffer, wgpu::BindGroup, u64)>,
    /// Read-back staging (MAP_READ | COPY_DST), grow-only.
    staging: Option<(wgpu::Buffer, u64)>,
}

pub struct GpuDevice {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    adapter: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Errors that escaped every error scope (recorded by the uncaptured-error handler).
    uncaptured: Arc<Mutex<Vec<String>>>,
    /// Set by the device-lost callback.
    lost: Arc<Mutex<Option<String>>>,
    storage_layout: wgpu::BindGroupLayout,
    uniform_layout: wgpu::BindGroupLayout,
    layout: wgpu::PipelineLayout,
    modules: Mutex<HashMap<Shader, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<Kernel, Arc<wgpu::ComputePipeline>>>,
    binds: Mutex<HashMap<[u64; BINDINGS], Arc<Bind>>>,
    /// Bound at unused slots (id 0).
    dummy: wgpu::Buffer,
    next_id: AtomicU64,
    exec: Mutex<Exec>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while holding it; the data are plain caches.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn api_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Vulkan => "Vulkan",
        wgpu::Backend::Metal => "Metal",
        wgpu::Backend::Dx12 => "Dx12",
        wgpu::Backend::Gl => "Gl",
        wgpu::Backend::BrowserWebGpu => "WebGpu",
        _ => "Noop",
    }
}

fn type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// Preference of an adapter type: hardware first (discrete, integrated, virtual), then software (CPU) when allowed.
fn rank(t: wgpu::DeviceType, allow_software: bool) -> Option<u32> {
    match t {
        wgpu::DeviceType::DiscreteGpu => Some(0),
        wgpu::DeviceType::IntegratedGpu => Some(1),
        wgpu::DeviceType::VirtualGpu => Some(2),
        wgpu::DeviceType::Cpu if allow_software => Some(3),
        wgpu::DeviceType::Other if allow_software => Some(4),
        _ => None,
    }
}

/// The best usable adapter (see `GpuDevice::new`), or `Code::Unavailable` naming every adapter seen.
fn pick_adapter(allow_software: bool) -> Result<wgpu::Adapter> {
    let backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let seen: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!(
                "{} ({}, {})",
                i.name,
                api_name(i.backend),
                type_name(i.device_type)
            )
        })
        .collect();
    let best = adapters
        .into_iter()
        .filter_map(|a| {
            let ok = GpuDevice::usable(&a.limits());
            rank(a.get_info().device_type, allow_software)
                .filter(|_| ok)
                .map(|r| (r, a))
        })
        .min_by_key(|(r, _)| *r)
        .map(|(_, a)| a);
    best.ok_or_else(|| {
        let seen = if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        };
        let why = if allow_software {
            ""
        } else {
            " (software adapters not allowed)"
        };
        Error::new(
            Code::Unavailable,
            format!("no usable GPU adapter{why} (adapters seen: {seen})"),
        )
    })
}

/// Installs the handlers that turn wgpu's uncaptured errors and device loss into recorded messages (read by
/// `GpuDevice::check`) instead of panics.
#[allow(clippy::type_complexity)]
fn capture_errors(device: &wgpu::Device) -> (Arc<Mutex<Vec<String>>>, Arc<Mutex<Option<String>>>) {
    let uncaptured = Arc::new(Mutex::new(Vec::new()));
    let u = uncaptured.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        let mut v = lock(&u);
        if v.len() < 16 {
            v.push(e.to_string());
        }
    }));
    let lost = Arc::new(Mutex::new(None));
    let l = lost.clone();
    device.set_device_lost_callback(move |reason, msg| {
        *lock(&l) = Some(format!("{reason:?}: {msg}"));
    });
    (uncaptured, lost)
}

/// The binding model of every kernel (see the module notes): group 0 eight read-write storage buffers, group 1 one
/// uniform slot at a dynamic offset; and the pipeline layout of both.
fn binding_layouts(
    device: &wgpu::Device,
) -> (
    wgpu::BindGroupLayout,
    wgpu::BindGroupLayout,
    wgpu::PipelineLayout,
) {
    let storage = |binding: u32| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let entries: Vec<_> = (0..BINDINGS as u32).map(storage).collect();
    let storage_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("gan storage b0..b7"),
        entries: &entries,
    });
    let uniform_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("gan uniform slot"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: wgpu::BufferSize::new(SLOT),
            },
            count: None,
        }],
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("gan pipeline layout"),
        bind_group_layouts: &[Some(&storage_layout), Some(&uniform_layout)],
        immediate_size: 0,
    });
    (storage_layout, uniform_layout, layout)
}

impl GpuDevice {
    /// Opens the best adapter: a hardware GPU (discrete, integrated, virtual) on Vulkan, Metal or DX12; when there is
    /// none and `allow_software`, a software adapter such as lavapipe. `Code::Unavailable` lists what was seen otherwise.
    pub fn new(allow_software: bool) -> Result<Arc<GpuDevice>> {
        let adapter = pick_adapter(allow_software)?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gan_native"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| {
            Error::new(
                Code::Unavailable,
                format!("cannot open GPU adapter {} : {e}", info.name),
            )
        })?;
        let (uncaptured, lost) = capture_errors(&device);
        let (storage_layout, uniform_layout, layout) = binding_layouts(&device);
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gan dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let dev = GpuDevice {
            device,
            queue,
            adapter: info,
            limits,
            uncaptured,
            lost,
            storage_layout,
            uniform_layout,
            layout,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            binds: Mutex::new(HashMap::new()),
            dummy,
            next_id: AtomicU64::new(1),
            exec: Mutex::new(Exec {
                arena: None,
                staging: None,
            }),
        };
        dev.check()?;
        Ok(Arc::new(dev))
    }

    /// Whether an adapter's limits fit the kernels (256 invocations and 8.5 KiB of workgroup memory per workgroup, eight
    /// storage buffers, two bind groups).
    fn usable(l: &wgpu::Limits) -> bool {
        l.max_compute_invocations_per_workgroup >= 256
            && l.max_compute_workgroup_size_x >= 64
            && l.max_compute_workgroup_size_y >= 16
            && l.max_compute_workgroup_storage_size >= 9 * 1024
            && l.max_storage_buffers_per_shader_stage >= BINDINGS as u32
            && l.max_bind_groups >= 2
            && l.max_uniform_buffer_binding_size >= SLOT
            && l.min_uniform_buffer_offset_alignment as u64 <= SLOT
    }

    /// The adapter, as JSON: name, api, device type, whether it is a software rasterizer, driver.
    pub fn info(&self) -> serde_json::Value {
        let i = &self.adapter;
        serde_json::json!({
            "name": i.name,
            "api": api_name(i.backend),
            "device_type": type_name(i.device_type),
            "software": i.device_type == wgpu::DeviceType::Cpu,
            "driver": i.driver,
            "driver_info": i.driver_info,
            "vendor": i.vendor,
            "device": i.device,
            "max_storage_buffer_binding_size": self.limits.max_storage_buffer_binding_size,
            "max_buffer_size": self.limits.max_buffer_size,
        })
    }

    pub fn is_software(&self) -> bool {
        self.adapter.device_type == wgpu::DeviceType::Cpu
    }

    /// The largest storage buffer (bytes) that one binding can address.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// `Err` when the device was lost or an error escaped the error scopes since the last check.
    pub fn check(&self) -> Result<()> {
        if let Some(m) = lock(&self.lost).clone() {
            return Err(Error::new(Code::Backend, format!("GPU device lost ({m})")));
        }
        let mut u = lock(&self.uncaptured);
        if !u.is_empty() {
            let m = u.join("; ");
            u.clear();
            return Err(Error::new(Code::Backend, format!("GPU error: {m}")));
        }
        Ok(())
    }

    /// Runs `f` inside out-of-memory, validation and internal error scopes; any error becomes `Code::Backend`.
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.check()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let int = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let r = f();
        let errs = [
            pollster::block_on(int.pop()),
            pollster::block_on(val.pop()),
            pollster::block_on(oom.pop()),
        ];
        if let Some(e) = errs.into_iter().flatten().next() {
            let kind = match e {
                wgpu::Error::OutOfMemory { .. } => "out of GPU memory",
                wgpu::Error::Validation { .. } => "validation error",
                wgpu::Error::Internal { .. } => "internal error",
            };
            return Err(Error::new(
                Code::Backend,
                format!("GPU {what} failed ({kind}): {e}"),
            ));
        }
        self.check()?;
        Ok(r)
    }

    /// A zero-initialized storage buffer of `bytes` (at least 16) bytes.
    pub fn buffer(self: &Arc<Self>, label: &str, bytes: u64) -> Result<GpuBuf> {
        let size = bytes.max(16).div_ceil(16) * 16;
        if size > self.max_binding() {
            return Err(Error::new(
                Code::Backend,
                format!(
                    "GPU buffer \"{label}\" of {size} bytes exceeds this device's limit of {} bytes per storage binding",
                    self.max_binding()
                ),
            ));
        }
        let buf = self.scoped(&format!("allocation of \"{label}\" ({size} bytes)"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuBuf {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            buf,
            size,
            dev: self.clone(),
        })
    }

    /// Writes `data` at byte `offset` of `b` (staged; it lands before the next submission's work).
    pub fn write(&self, b: &GpuBuf, offset: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if offset + data.len() as u64 > b.size {
            return Err(Error::new(
                Code::Backend,
                format!(
                    "GPU write of {} bytes at {offset} overflows a buffer of {} bytes",
                    data.len(),
                    b.size
                ),
            ));
        }
        self.scoped("buffer write", || {
            self.queue.write_buffer(&b.buf, offset, data)
        })
    }

    fn forget(&self, id: u64) {
        lock(&self.binds).retain(|k, _| !k.contains(&id));
    }

    /// The pipeline of `k`, compiled on first use and cached.
    pub fn pipeline(&self, k: Kernel) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = lock(&self.pipelines).get(&k) {
            return Ok(p.clone());
        }
        let module = {
            let cached = lock(&self.modules).get(&k.shader).cloned();
            match cached {
                Some(m) => m,
                None => {
                    let src = k.shader.source();
                    let m = self.scoped(&format!("shader compilation ({:?})", k.shader), || {
                        self.device
                            .create_shader_module(wgpu::ShaderModuleDescriptor {
                                label: Some(&format!("{:?}", k.shader)),
                                source: wgpu::ShaderSource::Wgsl(src.into()),
                            })
                    })?;
                    let m = Arc::new(m);
                    lock(&self.modules).insert(k.shader, m.clone());
                    m
                }
            }
        };
        let constants: Vec<(&str, f64)> = k.mode.map(|m| ("MODE", m as f64)).into_iter().collect();
        let p = self.scoped(
            &format!("pipeline creation ({:?}::{})", k.shader, k.entry),
            || {
                self.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(k.entry),
                        layout: Some(&self.layout),
                        module: &module,
                        entry_point: Some(k.entry),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants: &constants,
                            zero_initialize_workgroup_memory: false,
                        },
                        cache: None,
                    })
            },
        )?;
        let p = Arc::new(p);
        lock(&self.pipelines).insert(k, p.clone());
        Ok(p)
    }

    /// The bind group of storage buffers `b0..b7` from `bufs` (at most [`BINDINGS`]; `None` and the slots after them
    /// bind a dummy), created once per tuple and cached.
    pub fn bind(&self, bufs: &[Option<&GpuBuf>]) -> Result<Arc<Bind>> {
        assert!(
            bufs.len() <= BINDINGS,
            "at most {BINDINGS} storage bindings"
        );
        let mut all: [Option<&GpuBuf>; BINDINGS] = [None; BINDINGS];
        all[..bufs.len()].copy_from_slice(bufs);
        let key = all.map(|b| b.map(|b| b.id).unwrap_or(0));
        if let Some(g) = lock(&self.binds).get(&key) {
            return Ok(g.clone());
        }
        let entries: Vec<wgpu::BindGroupEntry> = all
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.map(|b| &b.buf).unwrap_or(&self.dummy).as_entire_binding(),
            })
            .collect();
        let g = self.scoped("bind group creation", || {
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &self.storage_layout,
                entries: &entries,
            })
        })?;
        let g = Arc::new(Bind { group: g, ids: key });
        lock(&self.binds).insert(key, g.clone());
        Ok(g)
    }

    /// Submits the dispatches of `batch` in one compute pass of one command buffer, then copies `reads` into a staging
    /// buffer and returns their bytes (waiting for the GPU only when there is something to read).
    pub fn execute(&self, batch: Batch, reads: &[Read]) -> Result<Vec<Vec<u8>>> {
        let mut ex = lock(&self.exec);
        self.reserve_arena(&mut ex, (batch.uniforms.len() as u64).max(SLOT))?;
        let total: u64 = reads.iter().map(|r| r.len.div_ceil(4) * 4).sum();
        if total > 0 {
            self.reserve_staging(&mut ex, total)?;
        }
        let ex = &*ex;
        let (submitting, submitted) =
            self.scoped("submission", || self.submit(ex, &batch, reads))?;
        if !batch.is_empty() {
            count_work(&batch, submitting, submitted);
        }
        if total == 0 {
            return Ok(Vec::new());
        }
        let (st, _) = ex.staging.as_ref().expect("reserved above");
        self.read_back(st, reads, total)
    }

    /// Grows the uniform arena (and its bind group) to hold `need` bytes of uniform slots.
    fn reserve_arena(&self, ex: &mut Exec, need: u64) -> Result<()> {
        if ex.arena.as_ref().is_some_and(|a| a.2 >= need) {
            return Ok(());
        }
        let size = need.next_power_of_two().max(64 * SLOT);
        let arena = self.scoped("uniform arena allocation", || {
            let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("gan uniform arena"),
                size,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("gan uniform arena"),
                layout: &self.uniform_layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &buf,
                        offset: 0,
                        size: wgpu::BufferSize::new(SLOT),
                    }),
                }],
            });
            (buf, bg, size)
        })?;
        ex.arena = Some(arena);
        Ok(())
    }

    /// Grows the read-back staging buffer to hold `total` bytes.
    fn reserve_staging(&self, ex: &mut Exec, total: u64) -> Result<()> {
        if ex.staging.as_ref().is_some_and(|s| s.1 >= total) {
            return Ok(());
        }
        let size = total.next_power_of_two().max(4096);
        let st = self.scoped("staging allocation", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("gan staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        ex.staging = Some((st, size));
        Ok(())
    }

    /// Writes the batch's uniforms, encodes its dispatches into one compute pass (setting a pipeline or a storage bind
    /// group only when it changes), then the copies of `reads` into the staging buffer, and submits. Returns when the
    /// queue submit began and when it returned.
    fn submit(&self, ex: &Exec, batch: &Batch, reads: &[Read]) -> (Instant, Instant) {
        let (arena, arena_bg, _) = ex.arena.as_ref().expect("reserved by execute");
        if !batch.uniforms.is_empty() {
            self.queue.write_buffer(arena, 0, &batch.uniforms);
        }
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        if !batch.cmds.is_empty() {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            let mut last_pipe: Option<*const wgpu::ComputePipeline> = None;
            let mut last_bind: Option<*const Bind> = None;
            for c in &batch.cmds {
                let pp = Arc::as_ptr(&c.pipe);
                if last_pipe != Some(pp) {
                    pass.set_pipeline(&c.pipe);
                    last_pipe = Some(pp);
                }
                let bp = Arc::as_ptr(&c.bind);
                if last_bind != Some(bp) {
                    pass.set_bind_group(0, &c.bind.group, &[]);
                    last_bind = Some(bp);
                }
                pass.set_bind_group(1, arena_bg, &[c.slot * SLOT as u32]);
                pass.dispatch_workgroups(c.groups[0], c.groups[1], c.groups[2]);
            }
        }
        if let Some((st, _)) = &ex.staging {
            let mut at = 0u64;
            for r in reads {
                let len = r.len.div_ceil(4) * 4;
                if len > 0 {
                    enc.copy_buffer_to_buffer(&r.buf.buf, r.offset, st, at, len);
                }
                at += len;
            }
        }
        let cb = enc.finish();
        let submitting = Instant::now();
        self.queue.submit(Some(cb));
        (submitting, Instant::now())
    }

    /// Maps the first `total` bytes of the staging buffer `st` (waiting for the GPU) and returns each read's bytes.
    fn read_back(&self, st: &wgpu::Buffer, reads: &[Read], total: u64) -> Result<Vec<Vec<u8>>> {
        let slot: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> =
            Arc::new(Mutex::new(None));
        {
            let s = slot.clone();
            st.map_async(wgpu::MapMode::Read, 0..total, move |r| {
                *lock(&s) = Some(r);
            });
        }
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| backend_err("wait", e))?;
        self.check()?;
        match lock(&slot).take() {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(backend_err("read-back", e)),
            None => {
                return Err(Error::new(
                    Code::Backend,
                    "GPU read-back failed: the mapping did not complete",
                ))
            }
        }
        let mut out = Vec::with_capacity(reads.len());
        {
            let view = st
                .get_mapped_range(0..total)
                .map_err(|e| backend_err("read-back", e))?;
            let mut at = 0usize;
            for r in reads {
                out.push(view[at..at + r.len as usize].to_vec());
                at += (r.len.div_ceil(4) * 4) as usize;
            }
        }
        st.unmap();
        Ok(out)
    }

    /// Waits until all submitted work is done (and reports device loss or escaped errors).
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| backend_err("wait", e))?;
        self.check()
    }

    /// Number of pipelines compiled so far (for tests of the cache).
    pub fn pipelines_compiled(&self) -> usize {
        lock(&self.pipelines).len()
    }
}

/// Workgroup counts for `n` workgroups along one logical axis, spread over x and y when `n` exceeds the per-dimension
/// limit. Kernels rebuild the linear index as `wg.y * num_workgroups.x + wg.x` and skip indices `>= n`.
pub fn grid1d(n: u32, max_dim: u32) -> [u32; 3] {
    let n = n.max(1);
    if n <= max_dim {
        [n, 1, 1]
    } else {
        [max_dim, n.div_ceil(max_dim), 1]
    }
}
