"""Fallback rules: injective (elementwise / broadcast / layout) and generic reduction kernels."""
from __future__ import annotations

from tvm import s_tir, tirx

from ._common import (
    NccRule,
    all_blocks,
    int_extent,
    is_spatial_only,
    lanes,
    num_cores,
    schedule_injective_block,
)


class Injective(NccRule):
    """All blocks spatial: inline everything into the last block, parallel outer, vectorize inner."""

    name = "injective"

    def apply(self, func, target, tunable=False):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        blocks = all_blocks(sch)
        if not blocks or not all(is_spatial_only(sch.get(b)) for b in blocks):
            return None
        for b in blocks[:-1]:
            try:
                sch.compute_inline(b)
            except Exception:
                pass
        blocks = all_blocks(sch)
        for b in blocks:
            if not sch.get_loops(b):
                continue
            schedule_injective_block(sch, b, target)
        return sch


class GenericReduction(NccRule):
    """Any kernel with reduction blocks: parallelize the leading spatial loops of each block, unroll
    short innermost reductions, fuse the elementwise epilogue under the parallel loop."""

    name = "reduction-generic"

    def apply(self, func, target, tunable=False):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        blocks = all_blocks(sch)
        if not blocks:
            return None
        for b in blocks:
            if is_spatial_only(sch.get(b)) and b is not blocks[-1]:
                try:
                    sch.compute_inline(b)
                except Exception:
                    pass
        blocks = all_blocks(sch)
        # try folding trailing elementwise blocks into their producer reduction
        for b in reversed(blocks[1:]):
            if is_spatial_only(sch.get(b)):
                try:
                    sch.reverse_compute_inline(b)
                except Exception:
                    pass
        for b in all_blocks(sch):
            stmt = sch.get(b)
            loops = sch.get_loops(b)
            if not loops:
                continue
            if is_spatial_only(stmt):
                schedule_injective_block(sch, b, target)
                continue
            kinds = "".join("S" if iv.iter_type == tirx.IterVar.DataPar else "R" for iv in stmt.iter_vars)
            ns = len(kinds) - len(kinds.lstrip("S"))
            if ns == 0 or len(loops) != len(kinds):
                continue
            sp = sch.fuse(*loops[:ns]) if ns > 1 else loops[0]
            ext = int_extent(sch, sp)
            if num_cores(target) > 1 and (ext is None or ext >= 2):
                sch.parallel(sp)
            inner = sch.get_loops(b)[-1]
            ie = int_extent(sch, inner)
            if ie is not None and ie <= 16:
                sch.unroll(inner)
        return sch
