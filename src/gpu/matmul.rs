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

/// How a GEMM of `shape` (a batch counted as its stacked rows) is recorded: `(slices, chunk)`,
/// K split into `slices` of `chunk` (1 slice: whole), as the builder's scratch has room for.
fn split_plan(pb: &ProgramBuilder, (m, n, k): (usize, usize, usize)) -> (usize, usize) {
    let slices = match pb.split_scratch {
        Some((_, room)) => k_slices((m, n, k)).min(room / (m * n).max(1)),
        None => 1,
    };
    let chunk = k.div_ceil(slices.max(1));
    (k.div_ceil(chunk.max(1)), chunk)
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
    let (slices, chunk) = split_plan(pb, (m, n, k));
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

/// One product of a batch ([`matmul_batch`]): where its A, B and C start, and its N.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Product {
    pub a: usize,
    pub b: usize,
    pub c: usize,
    pub n: usize,
}

/// Products one batched dispatch holds (the shader's `probs`).
pub(crate) const BATCH: usize = 12;

/// Records `C_q[m, n_q] = op(A_q)[m, k] · B_q[k, n_q]` for every product q, twelve per dispatch
/// (pair): the products share M, K, A's strides (`a`'s, whose offset is ignored) and the three
/// buffers; each B and C is row-major with its own N columns. With a scratch region and few
/// tiles, K is split as in [`matmul`], all the products' slices in one dispatch and their sums
/// in a second.
pub(crate) fn matmul_batch(
    pb: &mut ProgramBuilder,
    (m, k): (usize, usize),
    a: Operand,
    (b_buf, c_buf): (Buf, Buf),
    products: &[Product],
) -> Result<()> {
    let main = |bufs| Kernel { bufs: Some(bufs), ..Kernel::new(Family::Matmul, "main") };
    let none = u32::MAX as usize;
    for chunk in products.chunks(BATCH) {
        let count = chunk.len();
        let widest = chunk.iter().map(|q| q.n).max().unwrap_or(0);
        let all_n: usize = chunk.iter().map(|q| q.n).sum();
        let grid = [cdiv(widest, TILE_N), cdiv(m, TILE_M)];
        // The batch's tiles as one tall product, for the split: the grid holds every product.
        let (slices, chunk_k) = split_plan(pb, (m * count, widest, k));
        let table: Vec<usize> = chunk.iter().flat_map(|q| [q.a, q.b, q.c, q.n]).collect();
        let head = |c_off: usize, k_chunk: usize, stride: usize| {
            let mut w = vec![m, widest, k, 0, a.rs, a.cs, 0, widest, 1, c_off, widest, none, 0, k_chunk, stride, count];
            w.extend(&table);
            w
        };
        match pb.split_scratch {
            Some((scratch, _)) if slices > 1 => {
                let stride = m * widest;
                let cost = Cost::new(64, 64 * chunk_k, m * all_n * k);
                let z = (slices * count) as u32;
                pb.dispatch(
                    main((a.buf, b_buf, Buf::Work)),
                    block(&head(scratch, chunk_k, stride)),
                    [grid[0], grid[1], z],
                    cost,
                )?;
                let sum =
                    Kernel { bufs: Some((Buf::Work, Buf::Work, c_buf)), ..Kernel::new(Family::Matmul, "sum_split") };
                // sum_split reads the partials from a_off and the slice count from k_chunk.
                let mut w = head(0, slices, stride);
                w[3] = scratch;
                let cost = Cost::new(256, slices + 2, m * all_n * slices);
                let [x, y, _] = grid_1d(m * widest, 256, pb.max_groups);
                pb.dispatch(sum, block(&w), [x, y, count as u32], cost)?;
            }
            _ => {
                let cost = Cost::new(64, 64 * k, m * all_n * k);
                pb.dispatch(
                    main((a.buf, b_buf, c_buf)),
                    block(&head(0, 0, 0)),
                    [grid[0], grid[1], count as u32],
                    cost,
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch shapes `tests/gpu_kernels.rs` runs take the paths it says they do: a long K on
    /// few tiles splits (main, then sum_split over every product), a short one runs whole, and
    /// 13 products take two dispatches.
    #[test]
    fn batches_split_long_k_and_chunk_past_twelve_products() {
        let record = |(m, k): (usize, usize), ns: &[usize]| {
            let list: Vec<Product> = ns.iter().map(|&n| Product { a: 0, b: 0, c: 0, n }).collect();
            let widest = ns.iter().copied().max().unwrap();
            let room = split_words((m * ns.len().min(BATCH), widest, k));
            let mut pb = ProgramBuilder::dry(65_535);
            pb.split_scratch = Some((0, room));
            matmul_batch(&mut pb, (m, k), Operand::mat(Buf::Work, 0, m).t(), (Buf::Work, Buf::Grads), &list).unwrap();
            pb.plan().iter().map(|d| (d.kernel, d.groups[2])).collect::<Vec<_>>()
        };
        // Two slices of K for each of three products: z = 6; the sums: one z per product.
        assert_eq!(record((37, 300), &[86, 148, 148]), vec![("main", 6), ("sum_split", 3)]);
        assert_eq!(record((70, 50), &[5, 130, 67]), vec![("main", 3)]);
        let ns: Vec<usize> = (1..=13).map(|q| 3 * q + 1).collect();
        assert_eq!(record((9, 20), &ns), vec![("main", 12), ("main", 1)]);
    }
}
