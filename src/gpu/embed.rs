//! Host side of `shaders/embed.wgsl`: layer 0's per-symbol gather and scatter-add, bias
//! gradients, the transpose of W_hh and copies inside `work`.

use super::context::{Cost, Family, Kernel, ProgramBuilder, block, cdiv, grid_1d};
use crate::error::Result;

const NONE: usize = u32::MAX as usize;

/// `Z[r, :] = P[x_r, :] + b`: `P: [V, cols]` at `src` (work), `Z: [rows, cols]` at `dst` (work),
/// `x: [rows]` at `ids` (ids buffer), `b: [cols]` at `bias` (params).
pub(crate) fn gather_rows(
    pb: &mut ProgramBuilder,
    (rows, cols): (usize, usize),
    src: usize,
    dst: usize,
    ids: usize,
    bias: Option<usize>,
) -> Result<()> {
    let k = Kernel::new(Family::Embed, "gather_rows");
    let w = [rows, cols, src, dst, bias.unwrap_or(NONE), ids, 0, 0];
    // One element per invocation: a load and an addition.
    pb.dispatch(k, block(&w), [cdiv(cols, 64), cdiv(rows, 4), 1], Cost::new(256, 1, rows * cols))
}

/// `G[v, :] = Σ_{r: x_r = v} dZ[r, :]`: `dZ: [.., cols]` at `src`, `G: [vocab, cols]` at `dst`
/// (both work); the rows of symbol v are `ids[rows + csr[v] .. rows + csr[v+1]]`, `tokens` rows
/// in all.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_rows(
    pb: &mut ProgramBuilder,
    (vocab, cols): (usize, usize),
    tokens: usize,
    src: usize,
    dst: usize,
    rows: usize,
    csr: usize,
) -> Result<()> {
    let k = Kernel::new(Family::Embed, "scatter_rows");
    let w = [vocab, cols, src, dst, NONE, rows, csr, 0];
    // An invocation adds the rows of its symbol: tokens / vocab of them when the symbols are
    // equally frequent (the chain depends on the window; the plan assumes that case).
    let cost = Cost::new(256, tokens.div_ceil(vocab.max(1)), tokens * cols);
    pb.dispatch(k, block(&w), [cdiv(cols, 64), cdiv(vocab, 4), 1], cost)
}

/// Regions of one list dispatch (`HelperParams.list` in the shader).
const LIST: usize = 14;

/// The parameter block of a list dispatch: the 8 fixed words, then one vec4 per region.
fn list_block(fixed: [usize; 8], items: &[[usize; 3]]) -> super::context::Block {
    let mut w = fixed.to_vec();
    for it in items {
        w.extend([it[0], it[1], it[2], 0]);
    }
    block(&w)
}

/// `grads[dst + c] = Σ_r work[src + r·cols + c]`: the bias gradient of `[rows, cols]` dZ.
pub(crate) fn col_sums(pb: &mut ProgramBuilder, (rows, cols): (usize, usize), src: usize, dst: usize) -> Result<()> {
    col_sums_list(pb, rows, &[(src, dst, cols)])
}

/// [`col_sums`] of several `[rows, cols_i]` regions `(src, dst, cols_i)`, one dispatch per 14.
pub(crate) fn col_sums_list(pb: &mut ProgramBuilder, rows: usize, items: &[(usize, usize, usize)]) -> Result<()> {
    let k = Kernel::new(Family::Embed, "col_sums");
    for chunk in items.chunks(LIST) {
        let widest = chunk.iter().map(|i| i.2).max().unwrap_or(0);
        let all: usize = chunk.iter().map(|i| i.2).sum();
        let list: Vec<[usize; 3]> = chunk.iter().map(|&(s, d, c)| [s, d, c]).collect();
        // 16 columns x 16 row slices per workgroup: ceil(rows/16) additions, then a 4-level tree.
        let cost = Cost::new(256, rows.div_ceil(16) + 4, rows * all);
        let w = list_block([rows, 0, 0, 0, NONE, 0, 0, 0], &list);
        pb.dispatch(k, w, [cdiv(widest, 16), 1, chunk.len() as u32], cost)?;
    }
    Ok(())
}

/// `work[dst..]: [cols, rows] = params[src..]: [rows, cols]ᵀ`.
pub(crate) fn transpose(pb: &mut ProgramBuilder, (rows, cols): (usize, usize), src: usize, dst: usize) -> Result<()> {
    let k = Kernel::new(Family::Embed, "transpose");
    let w = [rows, cols, src, dst, NONE, 0, 0, 0];
    pb.dispatch(k, block(&w), [cdiv(cols, 16), cdiv(rows, 16), 1], Cost::new(256, 1, rows * cols))
}

/// `work[dst..dst+n] = work[src..src+n]` for each `(src, dst)` (no range may overlap another),
/// one dispatch per 14.
pub(crate) fn copy_list(pb: &mut ProgramBuilder, n: usize, items: &[(usize, usize)]) -> Result<()> {
    let k = Kernel::new(Family::Embed, "copy");
    for chunk in items.chunks(LIST) {
        let list: Vec<[usize; 3]> = chunk.iter().map(|&(s, d)| [s, d, 0]).collect();
        let [x, y, _] = grid_1d(n, 256, pb.max_groups);
        let cost = Cost::new(256, 1, n * chunk.len());
        pb.dispatch(k, list_block([n, 1, 0, 0, NONE, 0, 0, 0], &list), [x, y, chunk.len() as u32], cost)?;
    }
    Ok(())
}
