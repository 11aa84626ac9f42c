//! Host side of `shaders/matmul.wgsl`: the tiled GEMM `C = op(A)·op(B) (+ C) (+ bias)`.

use super::context::{Buf, Cost, Family, Kernel, ProgramBuilder, block, cdiv};
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

/// Records `C[m, n] = op(A)[m, k] · op(B)[k, n]`, plus C's old value when `acc`, plus
/// `params[bias..bias+n]` on every row when `bias` is set. `c` is row-major with `c_ld` columns
/// (it must not overlap A or B).
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
    let kernel = Kernel { bufs: Some((a.buf, b.buf, c.buf)), ..Kernel::new(Family::Matmul, "main") };
    let words =
        [m, n, k, a.off, a.rs, a.cs, b.off, b.rs, b.cs, c.off, c.rs, bias.unwrap_or(u32::MAX as usize), acc as usize];
    // 8 x 8 invocations, each owning an 8 x 8 block of C: 64 multiply-adds per step of k.
    let cost = Cost::new(64, 64 * k, m * n * k);
    pb.dispatch(kernel, block(&words), [cdiv(n, TILE_N), cdiv(m, TILE_M), 1], cost)
}
