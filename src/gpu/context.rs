//! The device, the one bind-group layout every kernel shares, the storage buffers, and
//! "programs": a fixed list of dispatches recorded into one compute pass and submitted once.
//!
//! Every kernel sees the same bindings (see `shaders/common.wgsl`): its own parameter block
//! (a uniform at a dynamic offset), the per-step uniform, and five storage buffers (params,
//! grads, Adam's moments, work, ids). A program's parameter blocks are written once when it is
//! built, so a step only uploads its tokens and the per-step uniform, records the dispatches
//! and submits.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The message for a machine without a usable adapter.
pub const NO_ADAPTER: &str =
    "no GPU adapter found: install a Vulkan driver, e.g. mesa-vulkan-drivers, or use --device cpu";

/// Bytes of one kernel parameter block (64 words); every kernel's `p` struct fits in it (the
/// largest, `lstm.wgsl`'s, holds three layers' steps).
const BLOCK_BYTES: u64 = 256;

/// Which storage buffer an operand lives in (the numbering of matmul.wgsl's overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Buf {
    /// All parameters, flat.
    Params = 0,
    /// Their gradients.
    Grads = 1,
    /// Activations and scratch.
    Work = 2,
}

/// The shader files, one per kernel family; `common.wgsl` is prepended to each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    Matmul,
    Lstm,
    Embed,
    Xent,
    Adam,
    Sample,
}

impl Family {
    fn source(self) -> &'static str {
        match self {
            Family::Matmul => include_str!("../../shaders/matmul.wgsl"),
            Family::Lstm => include_str!("../../shaders/lstm.wgsl"),
            Family::Embed => include_str!("../../shaders/embed.wgsl"),
            Family::Xent => include_str!("../../shaders/xent.wgsl"),
            Family::Adam => include_str!("../../shaders/adam.wgsl"),
            Family::Sample => include_str!("../../shaders/sample.wgsl"),
        }
    }
}

/// One compute pipeline: a family's entry point, plus matmul's buffer choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Kernel {
    pub family: Family,
    pub entry: &'static str,
    /// Matmul only: buffers of A, B and C.
    pub bufs: Option<(Buf, Buf, Buf)>,
    /// Pipeline-overridable constants of the entry point (`override` in WGSL), e.g. the LSTM
    /// forward step's narrow tiling.
    pub overrides: &'static [(&'static str, u32)],
}

impl Kernel {
    pub const fn new(family: Family, entry: &'static str) -> Self {
        Kernel { family, entry, bufs: None, overrides: &[] }
    }
}

/// A kernel parameter block: 64 words, f32 values stored by their bits.
pub(crate) type Block = [u32; 64];

/// First error reported by wgpu (validation, out of memory, device lost) since the last check.
type ErrorSlot = Arc<Mutex<Option<String>>>;

fn record(slot: &ErrorSlot, msg: String) {
    if let Ok(mut s) = slot.lock()
        && s.is_none()
    {
        *s = Some(msg);
    }
}

/// An open device with the shared layout and a pipeline cache.
pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    errors: ErrorSlot,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    modules: Mutex<HashMap<Family, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
    /// Distance between two parameter blocks in the uniform buffer.
    pub block_stride: u64,
    /// Largest storage buffer binding, in bytes.
    pub max_binding: u64,
    /// Largest workgroup count per dimension.
    pub max_groups: u32,
    /// The adapter writes GPU timestamps at compute pass boundaries ([`Program::time_phases`]).
    pub timestamps: bool,
}

fn instance() -> Result<wgpu::Instance> {
    if wgpu::Instance::enabled_backend_features().is_empty() {
        return Err(Error::Gpu(format!("{NO_ADAPTER} (this build has no wgpu backend for the platform)")));
    }
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN.with_env();
    // No Vulkan validation layers unless asked for (WGPU_VALIDATION=1): wgpu itself still
    // validates every call.
    desc.flags = wgpu::InstanceFlags::empty().with_env();
    Ok(wgpu::Instance::new(desc))
}

fn adapter() -> Result<wgpu::Adapter> {
    let inst = instance()?;
    pollster::block_on(inst.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .map_err(|e| Error::Gpu(format!("{NO_ADAPTER} ({e})")))
}

/// "name (backend)", with ", software" for a CPU implementation such as lavapipe.
pub(crate) fn describe_info(info: &wgpu::AdapterInfo) -> String {
    let soft = if info.device_type == wgpu::DeviceType::Cpu { ", software" } else { "" };
    format!("{} ({}{soft})", info.name, info.backend)
}

/// How a speed table labels figures measured on a software adapter.
pub const SOFTWARE_LABEL: &str = "software adapter, not a GPU figure";

/// True for an adapter that runs shaders on the CPU (Mesa's lavapipe, which names itself
/// llvmpipe; softpipe; SwiftShader; any adapter of device type CPU): its speed says nothing
/// about a GPU.
pub fn is_software(name: &str, driver: &str, device_type_cpu: bool) -> bool {
    let s = format!("{name} {driver}").to_lowercase();
    device_type_cpu || ["llvmpipe", "lavapipe", "softpipe", "swiftshader"].iter().any(|w| s.contains(w))
}

/// The adapter the GPU engines open, as a speed report names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterReport {
    /// The adapter's name.
    pub name: String,
    /// The driver and its version.
    pub driver: String,
    /// True for a software adapter ([`is_software`]).
    pub software: bool,
}

impl AdapterReport {
    /// The line a speed report prints before any figure: the adapter, its driver, and for a
    /// software adapter that its figures are not a GPU's.
    pub fn notice(&self) -> String {
        if self.software {
            format!(
                "GPU adapter: {} (driver {}) runs shaders on the CPU: its figures below are labelled \
                 \"{SOFTWARE_LABEL}\"",
                self.name, self.driver
            )
        } else {
            format!("GPU adapter: {} (driver {})", self.name, self.driver)
        }
    }

    /// The engine name `describe` in a speed table: with [`SOFTWARE_LABEL`] for a software adapter.
    pub fn label(&self, describe: &str) -> String {
        if self.software { format!("{describe} [{SOFTWARE_LABEL}]") } else { describe.to_string() }
    }
}

/// The adapter the GPU engines would open, or [`Error::Gpu`] when there is none.
pub fn adapter_report() -> Result<AdapterReport> {
    let info = adapter()?.get_info();
    Ok(AdapterReport {
        software: is_software(&info.name, &info.driver, info.device_type == wgpu::DeviceType::Cpu),
        driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
        name: info.name,
    })
}

/// Name and backend of the adapter, or [`Error::Gpu`] when there is none.
pub fn adapter_info() -> Result<String> {
    Ok(describe_info(&adapter()?.get_info()))
}

fn storage_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Gpu {
    /// Opens the adapter's device with wgpu's default limits, raised to the adapter's own for
    /// buffer sizes (a larger model then still fits).
    pub fn new() -> Result<Self> {
        let adapter = adapter()?;
        let info = adapter.get_info();
        let have = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            ..Default::default()
        };
        // Timestamps at pass boundaries, where the adapter has them: per-phase GPU time.
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let features = if timestamps { wgpu::Features::TIMESTAMP_QUERY } else { wgpu::Features::empty() };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("folklstm"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("cannot open the GPU {}: {e}", info.name)))?;
        let errors: ErrorSlot = Arc::default();
        {
            let slot = errors.clone();
            // Without a handler wgpu panics on the first validation error; we turn it into Err.
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| record(&slot, format!("GPU error: {e}"))));
            let slot = errors.clone();
            device.set_device_lost_callback(move |reason, msg| {
                record(&slot, format!("GPU device lost ({reason:?}): {msg}"))
            });
        }
        let mut entries = vec![
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(BLOCK_BYTES),
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(StepUniform::BYTES),
                },
                count: None,
            },
        ];
        entries.extend((2..7).map(storage_entry));
        let layout = device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some("folklstm"), entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("folklstm"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let block_stride = BLOCK_BYTES.max(limits.min_uniform_buffer_offset_alignment as u64);
        let gpu = Gpu {
            device,
            queue,
            info,
            errors,
            layout,
            pipeline_layout,
            modules: Mutex::default(),
            pipelines: Mutex::default(),
            block_stride,
            max_binding: limits.max_storage_buffer_binding_size.min(limits.max_buffer_size),
            max_groups: limits.max_compute_workgroups_per_dimension,
            timestamps,
        };
        gpu.check()?;
        Ok(gpu)
    }

    /// "name (backend)".
    pub fn describe(&self) -> String {
        describe_info(&self.info)
    }

    /// Returns the first error wgpu reported since the last check, if any.
    pub fn check(&self) -> Result<()> {
        let msg = self.errors.lock().ok().and_then(|mut s| s.take());
        match msg {
            Some(m) => Err(Error::Gpu(m)),
            None => Ok(()),
        }
    }

    fn module(&self, family: Family) -> Result<wgpu::ShaderModule> {
        let mut modules = self.modules.lock().map_err(|_| Error::Gpu("shader cache poisoned".into()))?;
        if let Some(m) = modules.get(&family) {
            return Ok(m.clone());
        }
        // The constants the shaders share with the host, defined once on the host.
        let src = format!(
            "const DROPOUT_STREAM: u32 = {}u;\n{}\n{}",
            crate::rng::stream::DROPOUT,
            include_str!("../../shaders/common.wgsl"),
            family.source()
        );
        let m = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&format!("{family:?}")),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        self.check()?;
        modules.insert(family, m.clone());
        Ok(m)
    }

    /// The pipeline of `k`, built on first use.
    pub fn pipeline(&self, k: Kernel) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = self.pipelines.lock().map_err(|_| Error::Gpu("pipeline cache poisoned".into()))?.get(&k) {
            return Ok(p.clone());
        }
        let module = self.module(k.family)?;
        let mut constants: Vec<(&str, f64)> = match k.bufs {
            Some((a, b, c)) => vec![("A_BUF", a as u32 as f64), ("B_BUF", b as u32 as f64), ("C_BUF", c as u32 as f64)],
            None => Vec::new(),
        };
        constants.extend(k.overrides.iter().map(|&(name, v)| (name, v as f64)));
        let p = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.entry),
            layout: Some(&self.pipeline_layout),
            module: &module,
            entry_point: Some(k.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                // Every kernel writes its workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        self.check()?;
        self.pipelines.lock().map_err(|_| Error::Gpu("pipeline cache poisoned".into()))?.insert(k, p.clone());
        Ok(p)
    }

    /// A storage buffer of `len` 4-byte words (at least one), zero-filled.
    pub fn storage(&self, label: &str, len: usize) -> Result<wgpu::Buffer> {
        let bytes = (len.max(1) * 4) as u64;
        if bytes > self.max_binding {
            return Err(Error::Gpu(format!(
                "{label} needs {bytes} bytes, more than this GPU binds at once ({} bytes); use a \
                 smaller model or batch, or --device cpu",
                self.max_binding
            )));
        }
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.check()?;
        Ok(b)
    }

    /// Copies `words` 4-byte words from `buf` at word `offset` to the host (its own submission).
    pub fn read<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, offset: usize, words: usize) -> Result<Vec<T>> {
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let staging = self.staging(words)?;
        enc.copy_buffer_to_buffer(buf, offset as u64 * 4, &staging, 0, words as u64 * 4);
        self.queue.submit([enc.finish()]);
        self.map_read(&staging, words)
    }

    /// A host-readable buffer of `words` words.
    pub fn staging(&self, words: usize) -> Result<wgpu::Buffer> {
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (words.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.check()?;
        Ok(b)
    }

    /// Waits for the queue, then reads the first `words` words of a submitted staging buffer.
    pub fn map_read<T: bytemuck::Pod>(&self, staging: &wgpu::Buffer, words: usize) -> Result<Vec<T>> {
        let slice = staging.slice(..words.max(1) as u64 * 4);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        self.check()?;
        rx.recv()
            .map_err(|_| Error::Gpu("the GPU never answered the readback".into()))?
            .map_err(|e| Error::Gpu(format!("cannot read GPU memory: {e}")))?;
        let out = {
            let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("cannot read GPU memory: {e}")))?;
            bytemuck::cast_slice::<u8, T>(&view)[..words].to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// Uploads `data` into `buf` at word `offset` (ordered before the next submission).
    pub fn write<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, offset: usize, data: &[T]) {
        if !data.is_empty() {
            self.queue.write_buffer(buf, offset as u64 * 4, bytemuck::cast_slice(data));
        }
    }
}

/// The per-step values every kernel can read (`struct Step` in `shaders/common.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepUniform {
    pub one_minus_b1: f32,
    pub one_minus_b2: f32,
    pub eps: f32,
    pub clip: f32,
    pub drop_p: f32,
    pub drop_keep: f32,
    pub drop_on: u32,
    pub key0: u32,
    pub key1: u32,
    pub counter: u32,
    /// lr · weight decay: every parameter shrinks by `1 - decay` in the update.
    pub decay: f32,
    /// Adam's t before this submission's steps, and α_t for t = base + 1 ..= base + 16: the
    /// device counts t (`norm`) and picks its α (`update`).
    pub alpha_base: u32,
    pub alphas: [f32; ALPHAS],
}

/// Adam steps one [`StepUniform`] has step sizes for: the most steps submitted before their
/// results are read ([`super::GpuTrainer`]'s `train_steps`).
pub(crate) const ALPHAS: usize = 16;

impl StepUniform {
    /// α_t of `cfg` at `lr` for t = base + 1 ..= base + [`ALPHAS`], computed as the CPU does.
    pub fn alphas(cfg: &crate::optim::AdamConfig, lr: f32, base: u64) -> [f32; ALPHAS] {
        std::array::from_fn(|i| cfg.step_size(lr, base + 1 + i as u64))
    }
}

impl StepUniform {
    const BYTES: u64 = std::mem::size_of::<StepUniform>() as u64;
}

/// The five storage buffers and the step uniform that one model's kernels bind.
pub(crate) struct Storage {
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub opt: wgpu::Buffer,
    pub work: wgpu::Buffer,
    pub ids: wgpu::Buffer,
    pub step: wgpu::Buffer,
}

impl Storage {
    /// Zeroed buffers of the given lengths (words).
    pub fn new(gpu: &Gpu, params: usize, grads: usize, opt: usize, work: usize, ids: usize) -> Result<Self> {
        Self::with_params(gpu, gpu.storage("params", params)?, grads, opt, work, ids)
    }

    /// Buffers around an existing parameter buffer.
    pub fn with_params(
        gpu: &Gpu,
        params: wgpu::Buffer,
        grads: usize,
        opt: usize,
        work: usize,
        ids: usize,
    ) -> Result<Self> {
        let step = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step"),
            size: StepUniform::BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Storage {
            params,
            grads: gpu.storage("grads", grads)?,
            opt: gpu.storage("adam moments", opt)?,
            work: gpu.storage("activations", work)?,
            ids: gpu.storage("token ids", ids)?,
            step,
        })
    }

    /// The buffer behind `b`.
    pub fn buf(&self, b: Buf) -> &wgpu::Buffer {
        match b {
            Buf::Params => &self.params,
            Buf::Grads => &self.grads,
            Buf::Work => &self.work,
        }
    }
}

struct Op {
    pipeline: wgpu::ComputePipeline,
    groups: [u32; 3],
}

/// What one dispatch asks of the device, computed from the shapes it is recorded with (for
/// `bench --plan`, [`super::plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Invocations per workgroup (the kernel's `@workgroup_size`).
    pub threads: u32,
    /// Arithmetic steps (multiply-adds, additions) one invocation performs in sequence: the
    /// longest chain of dependent work any invocation of the dispatch runs.
    pub chain: u64,
    /// Multiply-adds (or elementwise operations) of the whole dispatch.
    pub ops: u64,
}

/// One recorded dispatch: where in the step it sits, which kernel, how many workgroups, and
/// its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchInfo {
    /// The phase of the step (set by `net.rs` as it records).
    pub phase: &'static str,
    /// The kernel's entry point.
    pub kernel: &'static str,
    /// Workgroups in x, y, z.
    pub groups: [u32; 3],
    /// Invocations per workgroup, dependent chain, operations.
    pub cost: Cost,
}

impl Cost {
    /// `threads` per workgroup, `chain` sequential steps per invocation, `ops` in all.
    pub fn new(threads: u32, chain: usize, ops: usize) -> Self {
        Cost { threads, chain: chain as u64, ops: ops as u64 }
    }
}

impl DispatchInfo {
    /// Workgroups of the dispatch.
    pub fn workgroups(&self) -> u64 {
        self.groups.iter().map(|&g| g as u64).product()
    }

    /// Invocations of the dispatch.
    pub fn invocations(&self) -> u64 {
        self.workgroups() * self.cost.threads as u64
    }
}

/// The largest workgroup count per dimension wgpu's default limits promise (a plan recorded
/// without a device assumes it).
pub(crate) const DEFAULT_MAX_GROUPS: u32 = 65_535;

/// Collects the dispatches of a program: kernels, parameter blocks and what each costs. A
/// builder without a device ([`ProgramBuilder::dry`]) records the same list for a plan.
pub(crate) struct ProgramBuilder<'g> {
    gpu: Option<&'g Gpu>,
    /// Largest workgroup count per dimension.
    pub max_groups: u32,
    /// Work scratch (word offset, words) split-K GEMMs may keep their partial products in;
    /// None: GEMMs are not split (`matmul::k_slices`).
    pub split_scratch: Option<(usize, usize)>,
    phase: &'static str,
    kernels: Vec<(Kernel, [u32; 3])>,
    infos: Vec<DispatchInfo>,
    blocks: Vec<Block>,
}

impl<'g> ProgramBuilder<'g> {
    /// A builder for `gpu`'s limits, whose program can run.
    pub fn new(gpu: &'g Gpu) -> Self {
        ProgramBuilder { gpu: Some(gpu), ..Self::dry(gpu.max_groups) }
    }

    /// A builder that only records (for a plan): [`ProgramBuilder::finish`] refuses it.
    pub fn dry(max_groups: u32) -> Self {
        ProgramBuilder {
            gpu: None,
            max_groups,
            split_scratch: None,
            phase: "",
            kernels: Vec::new(),
            infos: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Names the phase the following dispatches belong to.
    pub fn phase(&mut self, name: &'static str) {
        self.phase = name;
    }

    /// Appends one dispatch of `k` with parameter block `block`, `groups` workgroups and the
    /// cost its caller computed from the shapes.
    pub fn dispatch(&mut self, k: Kernel, block: Block, groups: [u32; 3], cost: Cost) -> Result<()> {
        if let Some(&g) = groups.iter().find(|&&g| g > self.max_groups) {
            return Err(Error::Gpu(format!(
                "{}: {g} workgroups in one dimension, this GPU allows {}; use a smaller model or batch",
                k.entry, self.max_groups
            )));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        self.kernels.push((k, groups));
        self.infos.push(DispatchInfo { phase: self.phase, kernel: k.entry, groups, cost });
        self.blocks.push(block);
        Ok(())
    }

    /// The dispatches recorded so far, in order.
    pub fn plan(&self) -> &[DispatchInfo] {
        &self.infos
    }

    /// Builds the pipelines, uploads the parameter blocks and binds them with `storage`.
    pub fn finish(self, storage: &Storage) -> Result<Program> {
        let gpu = self.gpu.ok_or_else(|| Error::Gpu("a plan recorded without a device cannot run".into()))?;
        let mut ops = Vec::with_capacity(self.kernels.len());
        for &(k, groups) in &self.kernels {
            ops.push(Op { pipeline: gpu.pipeline(k)?, groups });
        }
        let stride = gpu.block_stride;
        let size = stride * self.blocks.len().max(1) as u64;
        let uniforms = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel parameters"),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut bytes = vec![0u8; size as usize];
        for (i, b) in self.blocks.iter().enumerate() {
            let at = i * stride as usize;
            bytes[at..at + BLOCK_BYTES as usize].copy_from_slice(bytemuck::cast_slice(b));
        }
        gpu.queue.write_buffer(&uniforms, 0, &bytes);
        fn whole(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
            wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() }
        }
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("folklstm"),
            layout: &gpu.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &uniforms,
                        offset: 0,
                        size: wgpu::BufferSize::new(BLOCK_BYTES),
                    }),
                },
                whole(1, &storage.step),
                whole(2, &storage.params),
                whole(3, &storage.grads),
                whole(4, &storage.opt),
                whole(5, &storage.work),
                whole(6, &storage.ids),
            ],
        });
        gpu.check()?;
        Ok(Program { ops, infos: self.infos, stride: stride as u32, bind_group, _uniforms: uniforms })
    }
}

/// A fixed sequence of dispatches over one [`Storage`], recorded anew for each submission.
pub(crate) struct Program {
    ops: Vec<Op>,
    infos: Vec<DispatchInfo>,
    stride: u32,
    bind_group: wgpu::BindGroup,
    _uniforms: wgpu::Buffer,
}

impl Program {
    /// Number of dispatches.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// What each dispatch was recorded with, in order.
    pub fn plan(&self) -> &[DispatchInfo] {
        &self.infos
    }

    /// Records every dispatch into one compute pass of `enc` (wgpu puts a barrier between
    /// dispatches that touch a read-write buffer, so each sees the previous one's writes).
    pub fn record(&self, enc: &mut wgpu::CommandEncoder) {
        self.record_first(enc, self.ops.len());
    }

    /// Records the first `ops` dispatches only (a program whose prefixes are programs too, as
    /// the sampler's run of K steps).
    pub fn record_first(&self, enc: &mut wgpu::CommandEncoder, ops: usize) {
        let mut pass =
            enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("folklstm"), timestamp_writes: None });
        for i in 0..ops.min(self.ops.len()) {
            self.dispatch(&mut pass, i);
        }
    }

    /// Records dispatch `i` into `pass`.
    fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, i: usize) {
        let op = &self.ops[i];
        pass.set_pipeline(&op.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[i as u32 * self.stride]);
        pass.dispatch_workgroups(op.groups[0], op.groups[1], op.groups[2]);
    }

    /// Runs the program once in one submission, each run of dispatches of the same phase in its
    /// own compute pass with a GPU timestamp at its start and end, and returns each phase's GPU
    /// seconds (summed over its runs) in order of first appearance. The time between passes
    /// (pass boundaries, the barrier) is not in any phase. `None` when the adapter has no
    /// timestamp queries: host timing of single dispatches would mislead on a real GPU.
    pub fn time_phases(&self, gpu: &Gpu) -> Result<Option<Vec<(&'static str, f64)>>> {
        if !gpu.timestamps || self.ops.is_empty() {
            return Ok(None);
        }
        let mut runs: Vec<(&'static str, usize, usize)> = Vec::new();
        for (i, d) in self.infos.iter().enumerate() {
            match runs.last_mut() {
                Some((phase, _, end)) if *phase == d.phase => *end = i + 1,
                _ => runs.push((d.phase, i, i + 1)),
            }
        }
        let count = 2 * runs.len() as u32;
        let bytes = count as u64 * 8;
        let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("phase timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let resolved = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("phase timestamps"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = gpu.staging(2 * count as usize)?;
        let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        for (r, &(_, first, end)) in runs.iter().enumerate() {
            let writes = wgpu::ComputePassTimestampWrites {
                query_set: &queries,
                beginning_of_pass_write_index: Some(2 * r as u32),
                end_of_pass_write_index: Some(2 * r as u32 + 1),
            };
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: Some(writes) });
            for i in first..end {
                self.dispatch(&mut pass, i);
            }
        }
        enc.resolve_query_set(&queries, 0..count, &resolved, 0);
        enc.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
        gpu.queue.submit([enc.finish()]);
        let ticks: Vec<u64> = gpu
            .map_read::<u32>(&staging, 2 * count as usize)?
            .chunks_exact(2)
            .map(|w| w[0] as u64 | (w[1] as u64) << 32)
            .collect();
        // Nanoseconds per tick.
        let period = gpu.queue.get_timestamp_period() as f64;
        let mut out: Vec<(&'static str, f64)> = Vec::new();
        for (r, &(phase, _, _)) in runs.iter().enumerate() {
            let dt = ticks[2 * r + 1].wrapping_sub(ticks[2 * r]) as f64 * period * 1e-9;
            match out.iter_mut().find(|(p, _)| *p == phase) {
                Some(e) => e.1 += dt,
                None => out.push((phase, dt)),
            }
        }
        Ok(Some(out))
    }

    /// Submits the program without waiting, then a copy of `words` words at word `offset` of
    /// `buf` to word `at` of `staging` (read later with [`Gpu::map_read`]).
    pub fn submit_and_copy(
        &self,
        gpu: &Gpu,
        (buf, offset, words): (&wgpu::Buffer, usize, usize),
        (staging, at): (&wgpu::Buffer, usize),
    ) {
        self.submit_first(gpu, self.ops.len(), &[(buf, offset, words, staging, at)]);
    }

    /// Submits the first `ops` dispatches without waiting, then each copy `(buffer, word
    /// offset, words, staging, word at)` of `copies`.
    pub fn submit_first(&self, gpu: &Gpu, ops: usize, copies: &[(&wgpu::Buffer, usize, usize, &wgpu::Buffer, usize)]) {
        let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        self.record_first(&mut enc, ops);
        for &(buf, offset, words, staging, at) in copies {
            enc.copy_buffer_to_buffer(buf, offset as u64 * 4, staging, at as u64 * 4, words as u64 * 4);
        }
        gpu.queue.submit([enc.finish()]);
    }

    /// Runs the program in one submission and, when `readback` names a buffer region
    /// (buffer, word offset, words), copies it to the host in the same submission.
    pub fn run<T: bytemuck::Pod>(
        &self,
        gpu: &Gpu,
        readback: Option<(&wgpu::Buffer, usize, usize, &wgpu::Buffer)>,
    ) -> Result<Vec<T>> {
        if let Some((buf, off, words, staging)) = readback {
            self.submit_and_copy(gpu, (buf, off, words), (staging, 0));
            gpu.map_read(staging, words)
        } else {
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            self.record(&mut enc);
            gpu.queue.submit([enc.finish()]);
            gpu.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
            gpu.check()?;
            Ok(Vec::new())
        }
    }
}

/// Workgroups for `n` items, `per` items per workgroup, as a 2-D grid when one dimension is not
/// enough: (x, y, 1) with x·y ≥ ceil(n / per). Kernels index item = gid.x + gid.y·x·per.
pub(crate) fn grid_1d(n: usize, per: usize, max: u32) -> [u32; 3] {
    let groups = n.div_ceil(per);
    let x = groups.min(max as usize).max(1);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

/// ceil(a / b) as u32.
pub(crate) fn cdiv(a: usize, b: usize) -> u32 {
    a.div_ceil(b) as u32
}

/// f32 into a parameter block word.
pub(crate) fn fbits(x: f32) -> u32 {
    x.to_bits()
}

/// A parameter block from up to 64 words (the rest zero). Offsets and sizes are checked to fit
/// in u32 when the layouts are built (see `net::WorkLayout::new`).
pub(crate) fn block(words: &[usize]) -> Block {
    debug_assert!(words.len() <= 64);
    let mut b = [0u32; 64];
    for (d, &w) in b.iter_mut().zip(words) {
        debug_assert!(w <= u32::MAX as usize, "parameter word {w} overflows u32");
        *d = w as u32;
    }
    b
}
