//! Without an adapter the GPU backend returns a clear error instead of panicking. Runs on every
//! machine: the test re-runs itself in a child process whose wgpu may only use a backend this
//! build lacks (WGPU_BACKEND=gl; the crate is built with Vulkan only), so no adapter exists.

use folklstm::Error;
use folklstm::backend::Sampler;
use folklstm::gpu::{GpuSampler, GpuTrainer, NO_ADAPTER, adapter_info};
use folklstm::model::{BatchConfig, ModelConfig, Params};

const CHILD: &str = "FOLKLSTM_NO_ADAPTER_CHILD";

fn expect_no_adapter<T>(what: &str, r: folklstm::Result<T>) {
    match r {
        Err(Error::Gpu(msg)) => assert!(msg.starts_with(NO_ADAPTER), "{what}: {msg}"),
        Err(e) => panic!("{what}: wrong error {e}"),
        Ok(_) => panic!("{what}: found an adapter with WGPU_BACKEND=gl"),
    }
}

#[test]
fn no_adapter_is_a_clear_error_not_a_panic() {
    if std::env::var_os(CHILD).is_some() {
        let cfg = ModelConfig { vocab: 5, embed: 3, hidden: 4, layers: 1, dropout: 0.0 };
        let p = Params::<f32>::zeros(&cfg);
        expect_no_adapter("adapter_info", adapter_info());
        expect_no_adapter("GpuTrainer::new", GpuTrainer::new(p.clone(), None, BatchConfig::default()));
        expect_no_adapter("GpuSampler::new", GpuSampler::new(&p).map(|s| s.config().vocab));
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "no_adapter_is_a_clear_error_not_a_panic", "--nocapture"])
        .env(CHILD, "1")
        .env("WGPU_BACKEND", "gl")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child did not run the test:\n{text}");
}
