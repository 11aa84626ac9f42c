//! The checkpoints a server offers, and the few it keeps loaded.

use crate::abc::prime::CorpusStyle;
use crate::corpus::Vocab;
use crate::cpu::CpuSampler;
use crate::error::{Error, Result};
use crate::model::Params;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Loaded models kept in memory at once; a request for another evicts the least recently used.
const KEEP_LOADED: usize = 3;

/// One checkpoint on offer.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its name in the API and on the page: `DIR/EPOCH` (`model/100`).
    pub name: String,
    /// The checkpoint file.
    pub path: PathBuf,
    /// The folder it is in (where `style.json` is looked for).
    pub dir: PathBuf,
    /// Its epoch (or `epoch+window`), as `sample` takes it.
    pub id: String,
}

/// What sampling needs of a checkpoint.
pub struct Loaded {
    /// The weights.
    pub params: Params<f32>,
    /// Its vocabulary.
    pub vocab: Vocab,
    /// The header style of its corpus (`style.json` beside it), if any.
    pub style: Option<CorpusStyle>,
    /// The one tonic its tunes were written on (`train --tonic`), if any.
    pub tonic: Option<String>,
    /// Samplers of this model between requests. Building one copies and packs the weights (about
    /// twice the checkpoint's size), so requests reuse them: a sampler per request would churn
    /// that much memory each time, and the allocator keeps much of it.
    idle: Mutex<Vec<CpuSampler>>,
}

impl Loaded {
    /// A sampler of this model with `threads` CPU threads: an idle one, or a new one.
    pub fn sampler(&self, threads: Option<usize>) -> Result<CpuSampler> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(s) => Ok(s),
            None => CpuSampler::new(&self.params, threads),
        }
    }

    /// Keeps `s` for the next request ([`Sampler::reset`](crate::backend::Sampler::reset) starts
    /// its streams afresh); at most as many as ran at once are kept.
    pub fn give_back(&self, s: CpuSampler) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(s);
    }
}

/// The checkpoints of the model folders, newest last within each folder.
pub struct Catalog {
    /// Every checkpoint on offer, folder by folder.
    pub entries: Vec<Entry>,
    loaded: Mutex<Vec<(String, Arc<Loaded>)>>,
}

impl Catalog {
    /// Lists the checkpoints of `dirs`, each folder's `best` (`train --keep-best`) after its
    /// epochs, so that it is the folder's default; an error when there are none at all.
    pub fn scan(dirs: &[PathBuf]) -> Result<Catalog> {
        let mut entries = Vec::new();
        for dir in dirs {
            let label = dir.display().to_string();
            let label = label.trim_end_matches('/');
            for (id, path) in crate::run::list(dir)? {
                entries.push(Entry { name: format!("{label}/{id}"), path, dir: dir.clone(), id: id.to_string() });
            }
            let best = dir.join(crate::run::BEST_FILE);
            if best.is_file() {
                entries.push(Entry { name: format!("{label}/best"), path: best, dir: dir.clone(), id: "best".into() });
            }
        }
        if entries.is_empty() {
            let dirs = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
            return Err(Error::Config(format!(
                "no checkpoints (weights.EPOCH.safetensors or weights.best.safetensors) in {dirs}: pass --model-dir with \
                 a folder that holds some, or train first"
            )));
        }
        Ok(Catalog { entries, loaded: Mutex::new(Vec::new()) })
    }

    /// The checkpoint used when a request names none: the newest of the first folder.
    pub fn default_entry(&self) -> &Entry {
        let first = &self.entries[0].dir;
        self.entries.iter().rev().find(|e| &e.dir == first).unwrap_or(&self.entries[0])
    }

    /// The entry for `spec`: a listed name, or an epoch or `latest` of the first folder (as
    /// `sample EPOCH` reads it).
    pub fn find(&self, spec: &str) -> Option<&Entry> {
        if let Some(e) = self.entries.iter().find(|e| e.name == spec) {
            return Some(e);
        }
        let first = &self.default_entry().dir;
        if spec == "latest" {
            return Some(self.default_entry());
        }
        self.entries.iter().find(|e| &e.dir == first && e.id == spec)
    }

    /// The model of `entry`, loaded once and kept while it is among the few most recently used.
    pub fn load(&self, entry: &Entry) -> Result<Arc<Loaded>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = loaded.iter().position(|(n, _)| n == &entry.name) {
            let hit = loaded.remove(k);
            let model = hit.1.clone();
            loaded.push(hit);
            return Ok(model);
        }
        let ck = crate::checkpoint::load(&entry.path)?;
        let style = CorpusStyle::read(&entry.dir).map_err(Error::Config)?;
        let model = Arc::new(Loaded {
            params: ck.params,
            vocab: ck.vocab,
            style,
            tonic: ck.meta.tonic,
            idle: Mutex::new(Vec::new()),
        });
        if loaded.len() >= KEEP_LOADED {
            loaded.remove(0);
        }
        loaded.push((entry.name.clone(), model.clone()));
        Ok(model)
    }
}
