//! [`GpuSampler`]: generation on the GPU, N streams one character at a time.

use super::context::{Gpu, Program, ProgramBuilder, StepUniform, Storage};
use super::net::Net;
use crate::backend::Sampler;
use crate::error::{Error, Result};
use crate::model::{ModelConfig, Params};

/// The device side of a sampler for one stream count.
struct Streams {
    net: Net,
    storage: Storage,
    /// Layers' forward steps, logits, carry.
    step: Program,
    staging: wgpu::Buffer,
}

/// Runs the network one token at a time for N streams on the GPU; the logits come back to the
/// host each step, where the draw happens (so CPU and GPU share one sampling rule).
pub struct GpuSampler {
    gpu: Gpu,
    cfg: ModelConfig,
    params: wgpu::Buffer,
    streams: Option<Streams>,
}

impl GpuSampler {
    /// Uploads `params`; call [`Sampler::reset`] before the first step.
    pub fn new(params: &Params<f32>) -> Result<Self> {
        params.config.validate()?;
        if params.data.len() != params.layout.total {
            return Err(Error::Shape(format!(
                "parameter buffer holds {} values, the layout {}",
                params.data.len(),
                params.layout.total
            )));
        }
        let gpu = Gpu::new()?;
        let buf = gpu.storage("params", params.data.len())?;
        gpu.write(&buf, 0, &params.data);
        Ok(GpuSampler { gpu, cfg: params.config, params: buf, streams: None })
    }

    /// The adapter in use: "name (backend)".
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }

    fn build(&self, count: usize) -> Result<Streams> {
        let gpu = &self.gpu;
        let net = Net::new(&self.cfg, count, 1)?;
        let storage = Storage::with_params(gpu, self.params.clone(), 1, 1, net.work_len, net.ids_len)?;
        // Dropout off: every kernel reads the step uniform, which stays all zero but this.
        gpu.write(&storage.step, 0, std::slice::from_ref(&StepUniform { drop_on: 0, ..Default::default() }));
        // P = embedding · W_ih0 once: the weights do not change while sampling.
        let mut pb = ProgramBuilder::new(gpu);
        net.record_p0(&mut pb)?;
        pb.finish(&storage)?.run::<f32>(gpu, None)?;
        let mut pb = ProgramBuilder::new(gpu);
        net.record_forward(&mut pb, false)?;
        net.record_carry(&mut pb)?;
        let step = pb.finish(&storage)?;
        let staging = gpu.staging(count * self.cfg.vocab)?;
        Ok(Streams { net, storage, step, staging })
    }
}

impl Sampler for GpuSampler {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn reset(&mut self, count: usize) -> Result<()> {
        crate::backend::check_stream_count(count)?;
        match &self.streams {
            Some(s) if s.net.b == count => {
                let zeros = vec![0.0f32; count * self.cfg.hidden];
                for (h, c) in s.net.state_slots() {
                    self.gpu.write(&s.storage.work, h, &zeros);
                    self.gpu.write(&s.storage.work, c, &zeros);
                }
            }
            _ => {
                self.streams = None;
                self.streams = Some(self.build(count)?);
            }
        }
        self.gpu.check()
    }

    fn step(&mut self, tokens: &[u32], logits: &mut [f32]) -> Result<()> {
        let s = self
            .streams
            .as_ref()
            .ok_or_else(|| Error::Config("the sampler needs reset(count) before its first step".into()))?;
        let n = s.net.b;
        let v = self.cfg.vocab;
        if logits.len() != n * v {
            return Err(Error::Shape(format!(
                "logits buffer holds {} values, needs streams*vocab = {n}*{v} = {}",
                logits.len(),
                n * v
            )));
        }
        let ids = s.net.ids_for(tokens, None)?;
        self.gpu.write(&s.storage.ids, 0, &ids);
        let out: Vec<f32> = s.step.run(&self.gpu, Some((&s.storage.work, s.net.logits, n * v, &s.staging)))?;
        logits.copy_from_slice(&out);
        Ok(())
    }
}
