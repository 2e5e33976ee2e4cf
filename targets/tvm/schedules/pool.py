"""Pooling rule (max / avg / global avg pooling, NCHW): float32, and the int8 path's
integer max pools."""
from __future__ import annotations

from tvm import s_tir, tirx

from ._common import (
    NccRule,
    all_blocks,
    buf_of,
    inline_epilogue,
    int_extent,
    is_block_of,
    is_load,
    iter_kinds,
    lanes,
    num_cores,
)


POOL_DTYPES = ("float32", "uint8", "int8", "int32")


def _is_pool_block(stmt):
    """4 spatial + 2 reduction iters, out[n,c,h,w] = max/+(out, X[n, c, f(h, r0), g(w, r1)])."""
    kinds = iter_kinds(stmt)
    if kinds != "SSSSRR" or not is_block_of(stmt, POOL_DTYPES) or len(stmt.reads) != 1:
        return False
    st = stmt.body
    if not isinstance(st, tirx.BufferStore):
        return False
    v = st.value
    if not isinstance(v, (tirx.Max, tirx.Add)):
        return False
    a, b = v.a, v.b
    if is_load(b) and buf_of(b).same_as(st.buffer):
        a, b = b, a
    if not (is_load(a) and buf_of(a).same_as(st.buffer) and is_load(b) and len(b.indices) == 4):
        return False
    return True


class Pool2D(NccRule):
    name = "pool2d"

    def apply(self, func, target, tunable=False):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        blocks = all_blocks(sch)
        cand = [b for b in blocks if _is_pool_block(sch.get(b))]
        if len(cand) != 1:
            return None
        blk = cand[0]
        # producers (padding) are inlined; epilogue (avg divide, etc.) fused after the reduction
        names = [sch.get(b).name_hint for b in blocks]
        pname = sch.get(blk).name_hint
        for nm in names[: names.index(pname)]:
            sch.compute_inline(sch.get_sblock(nm))
        epi = inline_epilogue(sch, blk, all_blocks(sch))
        n, c, h, w, r0, r1 = sch.get_loops(blk)
        work = 1
        for lp in (n, c, h, w, r0, r1):
            work *= int_extent(sch, lp) or 1
        outer = sch.fuse(n, c, h)
        if num_cores(target) > 1 and work >= 65536:
            sch.parallel(outer)
        if epi is not None:
            sch.reverse_compute_at(epi, outer, preserve_unit_loops=True)
        e0, e1 = int_extent(sch, r0), int_extent(sch, r1)
        if e0 is not None and e1 is not None and e0 * e1 <= 16:
            sch.unroll(r0)
            sch.unroll(r1)
        sch.decompose_reduction(blk, sch.get_loops(blk)[1])
        return sch
