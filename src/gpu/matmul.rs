//! Host side of `shaders/matmul.wgsl`: the tiled GEMM `C = op(A)·op(B) (+ C) (+ bias)`.

use super::context::{Buf, Cost, Family, Kernel, ProgramBuilder, block, cdiv, grid_1d};
use crate::error::Result;

/// One GEMM operand: element (i, k) sits at `buf[off + i·rs + k·cs]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Operand {
    pub buf: Buf,
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Operand {
    /// A row-major matrix with `cols` columns starting at word `off` of `buf`.
    pub fn mat(buf: Buf, off: usize, cols: usize) -> Self {
        Operand { buf, off, rs: cols, cs: 1 }
    }

    /// The same matrix, transposed (strides swapped, nothing moves).
    pub fn t(self) -> Self {
        Operand { rs: self.cs, cs: self.rs, ..self }
    }
}

/// Rows and columns of C per workgroup.
const TILE_M: usize = 64;
const TILE_N: usize = 64;

/// Workgroups a GEMM with a long K is split towards: about two per SM of a large GPU (an
/// H100 has 132), so that the 64-invocation workgroups can fill it.
const TARGET_GROUPS: usize = 256;
/// Shortest slice of K a split leaves: each partial element costs a write and a read, against
/// 128 multiply-adds.
const MIN_K_SLICE: usize = 128;

/// Slices K is split into for an `m x n x k` GEMM (1: not split): enough to bring its tiles
/// towards [`TARGET_GROUPS`] workgroups, none shorter than [`MIN_K_SLICE`].
pub(crate) fn k_slices((m, n, k): (usize, usize, usize)) -> usize {
    let tiles = m.div_ceil(TILE_M) * n.div_ceil(TILE_N);
    if tiles >= TARGET_GROUPS {
        return 1;
    }
    (k / MIN_K_SLICE).min(TARGET_GROUPS.div_ceil(tiles)).max(1)
}

/// Words of work scratch a split of `shape` needs ([`ProgramBuilder::split_scratch`]).
pub(crate) fn split_words(shape: (usize, usize, usize)) -> usize {
    let s = k_slices(shape);
    if s > 1 { s * shape.0 * shape.1 } else { 0 }
}

/// Records `C[m, n] = op(A)[m, k] · op(B)[k, n]`, plus C's old value when `acc`, plus
/// `params[bias..bias+n]` on every row when `bias` is set. `c` is row-major with `c_ld` columns
/// (it must not overlap A or B). With a scratch region in the builder and a long K on few
/// tiles ([`k_slices`]), K is split across the grid's z and a second dispatch sums the slices.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    pb: &mut ProgramBuilder,
    (m, n, k): (usize, usize, usize),
    a: Operand,
    b: Operand,
    c: Operand,
    bias: Option<usize>,
    acc: bool,
) -> Result<()> {
    debug_assert!(c.cs == 1, "C is row-major");
    let bias = bias.unwrap_or(u32::MAX as usize);
    let grid = [cdiv(n, TILE_N), cdiv(m, TILE_M)];
    let slices = match pb.split_scratch {
        Some((_, room)) => k_slices((m, n, k)).min(room / (m * n).max(1)),
        None => 1,
    };
    let chunk = k.div_ceil(slices.max(1));
    let slices = k.div_ceil(chunk.max(1));
    let main = |bufs| Kernel { bufs: Some(bufs), ..Kernel::new(Family::Matmul, "main") };
    // 8 x 8 invocations, each owning an 8 x 8 block of C: 64 multiply-adds per step of k.
    match pb.split_scratch {
        Some((scratch, _)) if slices > 1 => {
            // Partial products of each slice into the scratch, [slices, m, n]; then their sums.
            let mn = m * n;
            let words = [m, n, k, a.off, a.rs, a.cs, b.off, b.rs, b.cs, scratch, n, u32::MAX as usize, 0, chunk, mn];
            let cost = Cost::new(64, 64 * chunk, mn * k);
            pb.dispatch(main((a.buf, b.buf, Buf::Work)), block(&words), [grid[0], grid[1], slices as u32], cost)?;
            let sum = Kernel { bufs: Some((Buf::Work, Buf::Work, c.buf)), ..Kernel::new(Family::Matmul, "sum_split") };
            let words = [m, n, k, scratch, 0, 0, 0, 0, 0, c.off, c.rs, bias, acc as usize, slices, mn];
            // One element per invocation: the slices in order, then bias and C.
            let cost = Cost::new(256, slices + 2, mn * slices);
            pb.dispatch(sum, block(&words), grid_1d(mn, 256, pb.max_groups), cost)
        }
        _ => {
            let words = [m, n, k, a.off, a.rs, a.cs, b.off, b.rs, b.cs, c.off, c.rs, bias, acc as usize, 0, 0];
            let cost = Cost::new(64, 64 * k, m * n * k);
            pb.dispatch(main((a.buf, b.buf, c.buf)), block(&words), [grid[0], grid[1], 1], cost)
        }
    }
}
