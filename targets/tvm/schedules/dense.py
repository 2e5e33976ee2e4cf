"""float32 dense / matmul rule: out[..., i, j] += A[..., i, k] * B[k, j] (or B[j, k]).

The (layout-free) weight is repacked to [N/B, K, B] (a layout-rewrite preproc block that
SplitLayoutRewritePreproc + FoldConstant fold at compile time), the N axis is vectorized and
kept in registers while K is reduced.
"""
from __future__ import annotations

from tvm import s_tir, tirx

from ._common import (
    PREPROC_ATTR,
    NccRule,
    all_blocks,
    best_divisor,
    buf_of,
    inline_epilogue,
    is_float32_block,
    is_load,
    iter_kinds,
    lanes,
    num_vregs,
)


def _mac_operands(stmt):
    st = stmt.body
    if not isinstance(st, tirx.BufferStore):
        return None
    out = st.buffer
    v = st.value
    if not isinstance(v, tirx.Add):
        return None
    a, b = v.a, v.b
    if is_load(b) and buf_of(b).same_as(out):
        a, b = b, a
    if not (is_load(a) and buf_of(a).same_as(out) and isinstance(b, tirx.Mul)):
        return None
    if not (is_load(b.a) and is_load(b.b)):
        return None
    return b.a, b.b


def match_dense(sch):
    for blk in all_blocks(sch):
        stmt = sch.get(blk)
        kinds = iter_kinds(stmt)
        if not kinds.endswith("SSR") or set(kinds[:-1]) != {"S"} or not is_float32_block(stmt):
            continue
        if len(stmt.reads) != 2 or len(stmt.writes) != 1:
            continue
        ops = _mac_operands(stmt)
        if ops is None:
            continue
        ivs = [iv.var for iv in stmt.iter_vars]
        i, j, k = ivs[-3], ivs[-2], ivs[-1]
        if not all(isinstance(x, tirx.Var) for x in stmt.body.indices):
            continue
        if [x.same_as(v) for x, v in zip(stmt.body.indices, ivs[:-1])] != [True] * (len(ivs) - 1):
            continue
        w = None
        for ld in ops:
            idx = list(ld.indices)
            if len(idx) == 2 and all(isinstance(x, tirx.Var) for x in idx):
                if idx[0].same_as(k) and idx[1].same_as(j):
                    w = (ld, "KN")
                elif idx[0].same_as(j) and idx[1].same_as(k):
                    w = (ld, "NK")
        if w is None:
            continue
        other = ops[0] if w[0] is ops[1] else ops[1]
        oidx = list(other.indices)
        if not oidx or not oidx[-1].same_as(k):
            continue
        read_bufs = [buf_of(r) for r in stmt.reads]
        widx = [n for n, b in enumerate(read_bufs) if b.same_as(buf_of(w[0]))]
        if not widx:
            continue
        exts = [int(iv.dom.extent.value) if isinstance(iv.dom.extent, tirx.IntImm) else None for iv in stmt.iter_vars]
        if any(e is None for e in exts):
            continue
        return blk, widx[0], w[1], exts
    return None


class DenseMatmul(NccRule):
    name = "dense-matmul"

    def apply(self, func, target, tunable=False):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        m = match_dense(sch)
        if m is None:
            return None
        blk, widx, wl, exts = m
        M, N, K = exts[-3], exts[-2], exts[-1]
        V = lanes(target)
        # N block: up to 4 vectors (registers) when M is 1, fewer rows x more vectors otherwise
        if N <= 2 * V:
            B = N
        else:
            B = best_divisor(N, 4 * V)
            if B < V:
                B = V if N % V == 0 else best_divisor(N, 4 * V)
        nvec = max((B + V - 1) // V, 1)
        mt = best_divisor(M, max((num_vregs(target) - 4) // nvec, 1))
        blocks = all_blocks(sch)
        epi = inline_epilogue(sch, blk, blocks)
        # weight repack -> [N/B, K, B]
        wb = sch.cache_read(blk, widx, "global")
        sch.annotate(wb, PREPROC_ATTR, True)
        if wl == "KN":
            sch.transform_layout(blk, ("read", widx), lambda kk, jj: (jj // B, kk, jj % B))
        else:
            sch.transform_layout(blk, ("read", widx), lambda jj, kk: (jj // B, kk, jj % B))
        if epi is None:
            epi = sch.cache_write(blk, 0, "local")
        else:
            sch.set_scope(blk, 0, "local")
        loops = sch.get_loops(blk)
        batch, i, j, k = loops[:-3], loops[-3], loops[-2], loops[-1]
        jo, ji = sch.split(j, [None, B])
        io, ii = sch.split(i, [None, mt])
        sch.reorder(*batch, jo, io, k, ii, ji)
        outer = sch.fuse(*batch, jo, io) if batch else sch.fuse(jo, io)
        sch.parallel(outer)
        sch.reverse_compute_at(epi, outer, preserve_unit_loops=True)
        sch.vectorize(ji)
        sch.unroll(ii)
        init = sch.decompose_reduction(blk, k)
        il = sch.get_loops(init)[-1]
        if sch.get(il).kind == tirx.ForKind.SERIAL:
            sch.vectorize(il)
        el = sch.get_loops(epi)[-1]
        if sch.get(el).kind == tirx.ForKind.SERIAL:
            sch.vectorize(el)
        return sch
