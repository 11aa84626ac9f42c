//! The JSON API behind the page: `POST /api/generate` reads its fields (named like `sample`'s
//! flags) with a limit on each, generates on the CPU sampler under a deadline, and judges every
//! tune; `POST /api/midi` renders one tune with our own MIDI writer.

use crate::abc::judge::{self, CorpusIndex};
use crate::abc::prime::{CorpusStyle, Wishes};
use crate::backend::Sampler;
use crate::error::{Error, Result};
use crate::model::ModelConfig;
use crate::sample::{self, Keep, SampleOptions};
use serde_json::{Map, Value, json};
use std::time::Instant;

use super::models::{Catalog, Entry};

/// Most tunes one request may ask for.
pub const MAX_TUNES: usize = 16;
/// Most characters the model may write per tune (a Nottingham tune has 200 to 1,500).
pub const MAX_LEN: usize = 4000;
/// Most characters of a start text (`seed`).
pub const MAX_SEED: usize = 2000;
/// Highest temperature.
pub const MAX_TEMPERATURE: f32 = 4.0;
/// Most characters of a title, meter or key.
pub const MAX_FIELD: usize = 200;
/// Most bytes of a request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Characters per tune when a request gives no `len`: enough for a long tune; generation
/// stops at each tune's end anyway.
pub const DEFAULT_LEN: usize = 1500;
/// Tunes per request when a request gives no `count` (as `sample`).
pub const DEFAULT_COUNT: usize = 1;
/// Tunes `keep` may draw per tune asked for (`sample --max-attempts`'s default).
pub const ATTEMPTS_PER_TUNE: usize = 20;

/// A refused or failed request: the HTTP status, the field at fault, and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// 400 for a bad field, 413 for a body too large, 503 for a request cut off by the deadline.
    pub status: u16,
    /// The request field at fault, if one is.
    pub field: Option<&'static str>,
    /// The message, which names the field and its limit.
    pub message: String,
}

impl ApiError {
    /// A 400 for `field`: the message is `field: what`.
    pub fn bad(field: &'static str, what: impl std::fmt::Display) -> ApiError {
        ApiError { status: 400, field: Some(field), message: format!("{field}: {what}") }
    }

    /// An error with no field.
    pub fn status(status: u16, message: impl Into<String>) -> ApiError {
        ApiError { status, field: None, message: message.into() }
    }

    /// `{"error": message, "field": field}`.
    pub fn to_json(&self) -> Value {
        json!({ "error": self.message, "field": self.field })
    }
}

/// A `POST /api/generate` request, read and checked against the limits.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    /// A checkpoint name from `/api/info`, or an epoch or `latest` of the first model folder.
    pub checkpoint: Option<String>,
    /// Tunes, 1 to [`MAX_TUNES`].
    pub count: usize,
    /// Characters per tune, 1 to [`MAX_LEN`].
    pub len: usize,
    /// Meter and key written into the header; a title too.
    pub meter: Option<String>,
    /// See `meter`.
    pub key: Option<String>,
    /// See `meter`.
    pub title: Option<String>,
    /// Above 0, at most [`MAX_TEMPERATURE`].
    pub temperature: f32,
    /// Draw from the k most likely characters only.
    pub top_k: Option<usize>,
    /// The draws' seed (None: a new one, returned in the answer).
    pub rng_seed: Option<u64>,
    /// Draw until `count` tunes pass.
    pub keep: Option<Keep>,
    /// Guided tunes of two 8-bar parts (`sample --shape`).
    pub shape: bool,
    /// The start of every tune (e.g. another tune's opening): the model continues it.
    pub seed: Option<String>,
}

const FIELDS: [&str; 12] = [
    "checkpoint",
    "count",
    "len",
    "meter",
    "key",
    "title",
    "temperature",
    "top_k",
    "rng_seed",
    "keep",
    "shape",
    "seed",
];

/// The fields of a JSON object body; anything else is refused.
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::status(
            413,
            format!("the request body is {} bytes, more than the limit of {MAX_BODY}", body.len()),
        ));
    }
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        "{}"
    } else {
        std::str::from_utf8(body).map_err(|_| ApiError::status(400, "the request body is not UTF-8 text"))?
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::status(400, "the request body must be a JSON object, e.g. {\"count\": 4}")),
        Err(e) => Err(ApiError::status(400, format!("the request body is not valid JSON: {e}"))),
    }
}

/// A field's value, `None` when absent or null.
fn field<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    m.get(name).filter(|v| !v.is_null())
}

fn whole(m: &Map<String, Value>, name: &'static str, lo: u64, hi: u64, what: &str) -> Result<Option<u64>, ApiError> {
    let Some(v) = field(m, name) else { return Ok(None) };
    match v.as_u64() {
        Some(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::bad(name, format!("{v} is not a whole number from {lo} to {hi} ({what})"))),
    }
}

fn text(m: &Map<String, Value>, name: &'static str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(v) = field(m, name) else { return Ok(None) };
    let Some(s) = v.as_str() else { return Err(ApiError::bad(name, format!("{v} is not a string"))) };
    let n = s.chars().count();
    if n > max {
        return Err(ApiError::bad(name, format!("{n} characters, more than the limit of {max}")));
    }
    Ok((!s.trim().is_empty()).then(|| s.to_string()))
}

impl GenerateRequest {
    /// Reads a request body (a JSON object, every field optional). Each refusal names the
    /// field and its limit.
    pub fn parse(body: &[u8]) -> Result<GenerateRequest, ApiError> {
        let m = object(body)?;
        if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(ApiError::status(
                400,
                format!("{k}: not a field of this API; the fields are {}", FIELDS.join(", ")),
            ));
        }
        let temperature = match field(&m, "temperature") {
            None => 1.0,
            Some(v) => match v.as_f64() {
                Some(t) if t > 0.0 && t <= MAX_TEMPERATURE as f64 => t as f32,
                _ => {
                    return Err(ApiError::bad(
                        "temperature",
                        format!("{v} is not a number above 0 and at most {MAX_TEMPERATURE}"),
                    ));
                }
            },
        };
        let keep = match field(&m, "keep").map(|v| (v, v.as_str())) {
            None => None,
            Some((_, Some("valid"))) => Some(Keep::Valid),
            Some((_, Some("original"))) => Some(Keep::Original),
            Some((_, Some("both"))) => Some(Keep::Both),
            Some((_, Some("shaped"))) => Some(Keep::Shaped),
            Some((v, _)) => {
                return Err(ApiError::bad(
                    "keep",
                    format!("{v} is not one of \"valid\", \"original\", \"both\", \"shaped\" or null"),
                ));
            }
        };
        let shape = match field(&m, "shape") {
            None => false,
            Some(v) => v.as_bool().ok_or_else(|| ApiError::bad("shape", format!("{v} is not true, false or null")))?,
        };
        let req = GenerateRequest {
            checkpoint: text(&m, "checkpoint", MAX_FIELD)?,
            count: whole(&m, "count", 1, MAX_TUNES as u64, "tunes per request")?.map_or(DEFAULT_COUNT, |n| n as usize),
            len: whole(&m, "len", 1, MAX_LEN as u64, "characters per tune")?.map_or(DEFAULT_LEN, |n| n as usize),
            meter: text(&m, "meter", MAX_FIELD)?,
            key: text(&m, "key", MAX_FIELD)?,
            title: text(&m, "title", MAX_FIELD)?,
            temperature,
            top_k: whole(&m, "top_k", 1, 1000, "most likely characters")?.map(|k| k as usize),
            rng_seed: whole(&m, "rng_seed", 0, u64::MAX, "the seed of the draws")?,
            keep,
            shape,
            seed: text(&m, "seed", MAX_SEED)?,
        };
        if let Some(meter) = &req.meter {
            crate::abc::music::Meter::parse(meter.trim())
                .map_err(|e| ApiError::bad("meter", format!("{meter:?}: {e}")))?;
        }
        if let Some(key) = &req.key
            && judge::KeyName::parse(key).is_none()
        {
            return Err(ApiError::bad(
                "key",
                format!("{key:?} is not a key; write a tonic and a mode, e.g. G, Am, Dmix, Edor, F#m"),
            ));
        }
        if let Some(t) = &req.title
            && t.contains('\n')
        {
            return Err(ApiError::bad("title", "must be one line"));
        }
        if req.seed.is_some() && (req.meter.is_some() || req.key.is_some() || req.title.is_some()) {
            return Err(ApiError::bad(
                "seed",
                "a start text and meter/key/title both write the start of the tune; give one or the other",
            ));
        }
        Ok(req)
    }
}

/// What a generation needs besides the request.
pub struct Context<'a> {
    /// The checkpoints.
    pub catalog: &'a Catalog,
    /// The training corpus, when the server was given one.
    pub corpus: Option<&'a (CorpusIndex, CorpusStyle)>,
    /// CPU threads of each sampler (None: one per core).
    pub threads: Option<usize>,
    /// When the request is cut off.
    pub deadline: Instant,
    /// The limit, for the message.
    pub timeout_s: f64,
}

/// A sampler that fails every step once its deadline has passed, so that a generation that
/// runs too long stops cleanly between two steps.
struct Deadline<'a> {
    inner: &'a mut dyn Sampler,
    until: Instant,
    passed: bool,
}

impl Sampler for Deadline<'_> {
    fn config(&self) -> &ModelConfig {
        self.inner.config()
    }
    fn reset(&mut self, count: usize) -> Result<()> {
        self.inner.reset(count)
    }
    fn step(&mut self, tokens: &[u32], logits: &mut [f32]) -> Result<()> {
        if Instant::now() >= self.until {
            self.passed = true;
            return Err(Error::Config("deadline passed".into()));
        }
        self.inner.step(tokens, logits)
    }
}

/// The checkpoint a request names.
fn entry<'a>(catalog: &'a Catalog, spec: Option<&str>) -> Result<&'a Entry, ApiError> {
    match spec {
        None => Ok(catalog.default_entry()),
        Some(s) => catalog.find(s).ok_or_else(|| {
            let names: Vec<&str> = catalog.entries.iter().map(|e| e.name.as_str()).collect();
            ApiError::bad("checkpoint", format!("{s:?} is not one of {} (or `latest`)", names.join(", ")))
        }),
    }
}

/// The message of a request cut off by its deadline.
pub fn too_long(timeout_s: f64) -> ApiError {
    ApiError::status(
        503,
        format!(
            "the request ran past the server's limit of {timeout_s} s (serve --timeout) and was stopped; ask for \
             fewer tunes, a shorter len, or no keep"
        ),
    )
}

/// Generates and judges the tunes of `req`: `{"checkpoint", "rng_seed", "tunes": [{"abc",
/// "judge"}], "warnings", "drawn", "seconds"}`.
pub fn generate(ctx: &Context<'_>, req: &GenerateRequest) -> Result<Value, ApiError> {
    let started = Instant::now();
    if req.keep.is_some_and(Keep::needs_corpus) && ctx.corpus.is_none() {
        return Err(ApiError::bad(
            "keep",
            "\"original\" and \"both\" judge against the training tunes, and this server has none: start it with \
             serve --corpus FILES",
        ));
    }
    let entry = entry(ctx.catalog, req.checkpoint.as_deref())?;
    let model = ctx.catalog.load(entry).map_err(|e| ApiError::status(500, e.to_string()))?;
    if let Some(k) = req.top_k.filter(|&k| k > model.vocab.len()) {
        return Err(ApiError::bad("top_k", format!("{k} is more than the model's {} characters", model.vocab.len())));
    }
    let rng_seed = req.rng_seed.unwrap_or_else(sample::clock_seed);
    let mut opts = SampleOptions {
        seed_text: req.seed.clone(),
        len: req.len,
        temperature: req.temperature,
        top_k: req.top_k,
        rng_seed,
        count: req.count,
        one_tune: true,
        ..Default::default()
    };
    let mut warnings = Vec::new();
    match &req.seed {
        Some(s) => {
            model.vocab.encode(s, "seed").map_err(|e| ApiError::bad("seed", e))?;
        }
        None => {
            // Without a start text every tune still starts with a header in the corpus's layout.
            let style = ctx.corpus.map(|c| &c.1).or(model.style.as_ref());
            // A model on one tonic writes the tune there and it is moved to the key asked.
            let key = match (&model.tonic, &req.key) {
                (Some(t), Some(k)) => {
                    let (written, shift) = sample::key_on_tonic(t, k).map_err(|e| ApiError::bad("key", e))?;
                    opts.transpose = shift;
                    Some(written)
                }
                _ => req.key.clone(),
            };
            let wishes = Wishes { meter: req.meter.clone(), key, title: req.title.clone() };
            warnings = sample::steer(&mut opts, style, &wishes).map_err(|e| ApiError::status(400, e.to_string()))?;
            if let Some(t) = &req.title {
                model.vocab.encode(t, "title").map_err(|e| ApiError::bad("title", e))?;
            }
        }
    }
    // Guided, as `sample`, for a model of ABC; a start text the guide cannot follow is sampled
    // free, with a warning.
    opts.guided = model.vocab.looks_like_abc();
    if opts.guided && !opts.seed_text.as_deref().is_none_or(guide_follows) {
        opts.guided = false;
        warnings.push(
            "the start text is outside the ABC the guide follows, so these tunes are sampled free (unguided)".into(),
        );
    }
    // 8-bar parts are the guide's to write: only where it guides.
    opts.shape = req.shape && opts.guided;
    if req.shape && !opts.guided {
        warnings.push("shape needs guided sampling, which these tunes do not have: their parts are as drawn".into());
    }
    let mut cpu = model.sampler(ctx.threads).map_err(|e| ApiError::status(500, e.to_string()))?;
    let mut sampler = Deadline { inner: &mut cpu, until: ctx.deadline, passed: false };
    let index = ctx.corpus.map(|c| &c.0);
    let result = match req.keep {
        None => sample::generate(&mut sampler, &model.vocab, &opts).map(|t| (t, req.count)),
        Some(what) => {
            let mut verdict = |t: &str| sample::keep_verdict(t, what, index);
            let attempts = req.count * ATTEMPTS_PER_TUNE;
            sample::generate_kept(
                &mut sampler,
                &model.vocab,
                &opts,
                attempts,
                sample::keep_batch(req.count),
                &mut verdict,
            )
            .map(|k| (k.tunes, k.drawn))
        }
    };
    let passed = sampler.passed;
    model.give_back(cpu);
    let (mut tunes, drawn) = match result {
        Ok(r) => r,
        Err(_) if passed => return Err(too_long(ctx.timeout_s)),
        Err(e) => return Err(ApiError::status(400, e.to_string())),
    };
    // A model on one tonic asked for no key: each tune to a key drawn from the corpus's.
    let style = ctx.corpus.map(|c| &c.1).or(model.style.as_ref());
    if let (Some(t), None, None, Some(style)) = (&model.tonic, &req.key, &req.seed, style) {
        let left = sample::move_to_drawn_keys(&mut tunes, &style.keys, rng_seed);
        if left > 0 {
            warnings
                .push(format!("{left} tune(s) left on {t}, the tonic the model writes on: not readable as one tune"));
        }
    }
    if tunes.len() < req.count {
        warnings.push(format!(
            "only {} of the {} tunes asked for passed keep within {drawn} attempts; lower the temperature or keep less",
            tunes.len(),
            req.count
        ));
    }
    let tunes: Vec<Value> =
        tunes.iter().zip(judge_each(&tunes, index)).map(|(t, j)| json!({ "abc": t, "judge": j })).collect();
    Ok(json!({
        "checkpoint": entry.name,
        "rng_seed": rng_seed,
        "sampling": if opts.guided { "guided" } else { "free" },
        "tunes": tunes,
        "warnings": warnings,
        "drawn": drawn,
        "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    }))
}

/// Whether guided sampling can start from `seed`: the guide accepts every character of it.
fn guide_follows(seed: &str) -> bool {
    let mut g = crate::abc::guide::Guide::new();
    seed.chars().all(|c| g.push(c))
}

/// One judge verdict per text (its first tune): validity, form and parts, originality against
/// the corpus when there is one; `null` for a text with no tune.
pub fn judge_each(texts: &[String], corpus: Option<&CorpusIndex>) -> Vec<Value> {
    let files: Vec<(String, String)> = texts.iter().enumerate().map(|(k, t)| (k.to_string(), t.clone())).collect();
    let verdicts = judge::judge(&files, corpus);
    (0..texts.len())
        .map(|k| {
            let Some(v) = verdicts.iter().find(|v| v.file == k.to_string()) else { return Value::Null };
            let mut j = serde_json::to_value(v).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut j {
                m.remove("file");
                m.insert("parts".into(), json!(v.features.sections.len()));
                m.insert("structured".into(), json!(judge::structured(&v.features)));
            }
            j
        })
        .collect()
}

/// `POST /api/midi` with `{"abc": text}`: the MIDI file of its first tune.
pub fn midi(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let m = object(body)?;
    let abc = text(&m, "abc", MAX_BODY)?.ok_or_else(|| ApiError::bad("abc", "missing: give the tune's ABC text"))?;
    let tune = crate::abc::parse_tune(&abc).map_err(|e| ApiError::bad("abc", format!("no MIDI for this tune: {e}")))?;
    crate::abc::tune_to_midi(&tune).map_err(|e| ApiError::bad("abc", format!("no MIDI for this tune: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_default_and_a_limit() {
        let r = GenerateRequest::parse(b"").unwrap();
        assert_eq!((r.count, r.len, r.temperature, r.keep), (DEFAULT_COUNT, DEFAULT_LEN, 1.0, None));
        let r = GenerateRequest::parse(
            br#"{"count": 8, "keep": "valid", "rng_seed": 18446744073709551615, "meter": null}"#,
        )
        .unwrap();
        assert_eq!((r.count, r.keep, r.rng_seed, r.meter), (8, Some(Keep::Valid), Some(u64::MAX), None));
        for (body, field) in [
            (r#"{"count": 0}"#, "count"),
            (r#"{"count": 17}"#, "count"),
            (r#"{"count": 2.5}"#, "count"),
            (r#"{"count": "8"}"#, "count"),
            (r#"{"len": 4001}"#, "len"),
            (r#"{"temperature": 0}"#, "temperature"),
            (r#"{"temperature": 4.5}"#, "temperature"),
            (r#"{"rng_seed": -1}"#, "rng_seed"),
            (r#"{"keep": "nice"}"#, "keep"),
            (r#"{"meter": "6/0"}"#, "meter"),
            (r#"{"key": "H"}"#, "key"),
            (r#"{"title": "a\nb"}"#, "title"),
            (r#"{"top_k": 0}"#, "top_k"),
            (r#"{"seed": "X:1\n", "key": "G"}"#, "seed"),
        ] {
            let e = GenerateRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!((e.status, e.field), (400, Some(field)), "{body}: {e:?}");
            assert!(e.message.starts_with(&format!("{field}: ")), "{}", e.message);
        }
        let e = GenerateRequest::parse(br#"{"cuont": 1}"#).unwrap_err();
        assert!(e.message.contains("cuont") && e.message.contains("count"), "{}", e.message);
        assert_eq!(GenerateRequest::parse(b"[1]").unwrap_err().status, 400);
        assert_eq!(GenerateRequest::parse(&vec![b' '; MAX_BODY + 1]).unwrap_err().status, 413);
    }
}
