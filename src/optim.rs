//! Adam.

/// Adam's moments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdamState {
    /// Number of updates applied.
    pub step: u64,
    /// First moment.
    pub m: Vec<f32>,
    /// Second moment.
    pub v: Vec<f32>,
}
