"""Shared helpers for the ncc default CPU schedule rules (no ncc imports)."""
from __future__ import annotations

import tvm
from tvm import s_tir, tirx
from tvm.target import Target

try:  # dlight base class, if present
    from tvm.s_tir.dlight.base import ScheduleRule as _DlightRule
except Exception:  # pragma: no cover
    _DlightRule = object

PREPROC_ATTR = "meta_schedule.layout_rewrite_preproc"


class NccRule(_DlightRule):
    """dlight-style rule: apply(func, target, tunable) -> Schedule | None."""

    name = "base"

    def is_target_available(self, target: Target) -> bool:
        return target.kind.name == "llvm"

    def apply(self, func, target, tunable):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        return f"<ncc rule {self.name}>"


# --------------------------------------------------------------------------- target info
def is_x86(target: Target) -> bool:
    triple = str(target.attrs.get("mtriple", ""))
    return target.kind.name == "llvm" and (triple.startswith(("x86", "i686")) or triple == "")


def has_feature(target: Target, feature: str) -> bool:
    """Whether LLVM says the target's CPU has `feature` (False where it cannot tell)."""
    from tvm.target import codegen

    try:
        return bool(codegen.target_has_features([feature], target))
    except Exception:  # pylint: disable=broad-except
        return False


def vector_bits(target: Target) -> int:
    """The widest vector register of the target. On x86 it is read from the CPU's features:
    TVM 0.27's llvm_get_vector_width says 512 for AVX2-only CPUs (haswell, znver3), and
    schedules tiled for 16 lanes and 32 registers ran at half speed there (spilling)."""
    from tvm.target import codegen

    if is_x86(target):
        return 512 if has_feature(target, "avx512f") else 256 if has_feature(target, "avx") else 128
    try:
        bits = int(codegen.llvm_get_vector_width(target))
    except Exception:  # pylint: disable=broad-except
        bits = 0
    return bits if bits > 0 else 128


def lanes(target: Target, dtype_bits: int = 32) -> int:
    return max(vector_bits(target) // dtype_bits, 1)


def num_vregs(target: Target) -> int:
    """Number of architectural vector registers (32 on AVX-512 and AArch64, else 16)."""
    triple = str(target.attrs.get("mtriple", ""))
    if "aarch64" in triple or "arm64" in triple:
        return 32
    if vector_bits(target) >= 512:
        return 32
    return 16


def num_cores(target: Target) -> int:
    n = target.attrs.get("num-cores", None)
    try:
        n = int(n)
    except Exception:
        n = 0
    return n if n > 0 else 1


# --------------------------------------------------------------------------- TIR helpers
def int_extent(sch: s_tir.Schedule, loop) -> int | None:
    ext = sch.get(loop).extent
    return int(ext.value) if isinstance(ext, tirx.IntImm) else None


def iter_kinds(block: tirx.stmt) -> str:
    out = []
    for iv in block.iter_vars:
        if iv.iter_type == tirx.IterVar.DataPar:
            out.append("S")
        elif iv.iter_type == tirx.IterVar.CommReduce:
            out.append("R")
        else:
            out.append("O")
    return "".join(out)


def all_blocks(sch: s_tir.Schedule):
    root = sch.get_sblock("root") if _has_root(sch) else None
    return list(sch.get_child_blocks(root)) if root is not None else []


def _has_root(sch):
    try:
        sch.get_sblock("root")
        return True
    except Exception:
        return False


def is_block_of(block, dtypes) -> bool:
    """Whether the block writes something and all it touches has one dtype of `dtypes`."""
    found = {str(buf_of(b).dtype) for b in list(block.reads) + list(block.writes)}
    return bool(block.writes) and len(found) == 1 and found <= set(dtypes)


def is_float32_block(block) -> bool:
    return is_block_of(block, ("float32",))


def is_spatial_only(block) -> bool:
    return all(iv.iter_type == tirx.IterVar.DataPar for iv in block.iter_vars)


def divisors(n: int):
    return [d for d in range(1, n + 1) if n % d == 0]


def split_tile(sch: s_tir.Schedule, loop, inner: int, tunable: bool, max_inner: int | None = None):
    """sch.split(loop, [None, inner]). Tunable (a MetaSchedule design space): the factors are a
    perfect-tile sample whose decision is this default, so the search's tile-size mutator explores
    around it (inner tiles up to `max_inner`, default twice `inner`) and replaying the decision
    gives exactly the default schedule."""
    extent = int_extent(sch, loop)
    if not tunable or extent is None or extent % inner:
        return sch.split(loop, [None, inner])
    factors = sch.sample_perfect_tile(loop, n=2, max_innermost_factor=max(max_inner or 2 * inner, inner),
                                      decision=[extent // inner, inner])
    return sch.split(loop, factors)


def best_divisor(n: int, cap: int) -> int:
    cap = max(cap, 1)
    best = 1
    for d in divisors(n):
        if d <= cap:
            best = d
    return best


def inline_epilogue(sch: s_tir.Schedule, main_block, blocks):
    """compute_inline every elementwise block after `main_block` except the final one.

    Returns the (single) output block consumer, or None if there is no epilogue.
    Raises if the chain cannot be inlined (caller treats it as rule mismatch).
    """
    names = [sch.get(b).name_hint for b in blocks]
    main_name = sch.get(main_block).name_hint
    idx = names.index(main_name)
    after = names[idx + 1 :]
    if not after:
        return None
    for nm in after[:-1]:
        sch.compute_inline(sch.get_sblock(nm))
    return sch.get_sblock(after[-1])


def inline_all_spatial_producers(sch: s_tir.Schedule, main_block, blocks, keep=()):
    names = [sch.get(b).name_hint for b in blocks]
    main_name = sch.get(main_block).name_hint
    for nm in names[: names.index(main_name)]:
        if nm in keep:
            continue
        sch.compute_inline(sch.get_sblock(nm))


def schedule_injective_block(sch: s_tir.Schedule, block, target: Target, max_parallel_ext=None):
    """Fuse all loops, parallelize the outer part and vectorize the inner part."""
    loops = sch.get_loops(block)
    if not loops:
        return
    vl = lanes(target)
    exts = [int_extent(sch, l) for l in loops]
    if any(e is None for e in exts):
        sch.parallel(loops[0])
        return
    fused = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    total = 1
    for e in exts:
        total *= e
    # vectorize the innermost contiguous run when the last dim allows it
    inner = exts[-1]
    vec = 0
    for cand in (vl * 4, vl * 2, vl, vl // 2, 4):
        if cand >= 2 and inner % cand == 0 and total % cand == 0:
            vec = cand
            break
    if vec:
        o, v = sch.split(fused, [None, vec])
        sch.vectorize(v)
    else:
        o = fused
    if total >= 2048 and num_cores(target) > 1:
        sch.parallel(o)


def depthwise_channel_loops(sch: s_tir.Schedule, conv, epilogue, lanes: int):
    """The loops of a depthwise conv whose data, weights and (local) accumulator are blocked by
    `lanes` channels: each block of channels accumulates its whole map, the window unrolled, the
    channels vectorized; the epilogue writes the block back."""
    n, f, y, x, rc, ry, rx = sch.get_loops(conv)
    fo, fi = sch.split(f, [None, lanes])
    sch.reorder(n, fo, y, x, rc, ry, rx, fi)
    sch.unroll(ry)
    sch.unroll(rx)
    sch.vectorize(fi)
    sch.reverse_compute_at(epilogue, fo)
    sch.vectorize(sch.get_loops(epilogue)[-1])
    sch.parallel(sch.fuse(n, fo))
    init = sch.decompose_reduction(conv, rc)
    sch.vectorize(sch.get_loops(init)[-1])


def schedule_pad_block(sch: s_tir.Schedule, block, target: Target):
    """Padding / producer stage: parallel outer loops, plain inner loop (if_then_else is not vectorized)."""
    loops = sch.get_loops(block)
    if len(loops) < 2:
        return
    exts = [int_extent(sch, l) for l in loops]
    if any(e is None for e in exts):
        return
    outer = sch.fuse(*loops[:-1])
    if num_cores(target) > 1:
        sch.parallel(outer)


# --------------------------------------------------------------------------- IR compat (TVM 0.27 TensorLoad/TensorRegion)
from tvm.ir.expr import TensorLoad as _TensorLoad  # noqa: E402


def is_load(e) -> bool:
    return isinstance(e, _TensorLoad)


def buf_of(x):
    """Buffer of a load / store / region (TVM 0.27: .source for loads/regions, .buffer for stores)."""
    for attr in ("source", "buffer"):
        if hasattr(x, attr):
            return getattr(x, attr)
    raise TypeError(type(x))
