"""Default (untuned) schedule for the integer dense/matmul kernels of ncc's
int8 path: C[..., i, j] = sum_k cast(i32, A[..., i, k]) * cast(i32, B[k, j])
(A uint8/int8 activations, B the constant int8 weight, transposed by
FoldConstant to [K, N]) fused with its rescale/bias/requantize epilogue.

- x86 AVX512-VNNI, uint8 A, N % 16 == 0, K % 4 == 0: B prepacked at compile
  time to [N/16, K/4, 16, 4]; the 16x4 product tensorized with vpdpbusd into a
  register accumulator tile.
- otherwise: B kept [K, N], the N axis vectorized (int32 lanes; LLVM emits
  the widening multiply-add: vpmaddwd/vpdpwssd on x86, smlal on aarch64).
"""

from tvm import s_tir

from .int8_common import Isa, buffer_of, inline_elementwise, is_int_mac, largest_divisor, layout_free, param_index
from .int8_common import PREPROC

try:
    from tvm.s_tir.dlight.base import ScheduleRule
except ImportError:  # pragma: no cover
    ScheduleRule = object


class DenseInt8(ScheduleRule):
    """Integer matmul with its fused epilogue."""

    name = "dense-int8"

    def __init__(self, use_vnni=True):
        self.use_vnni = use_vnni

    def apply(self, func, target, tunable=False):  # pylint: disable=unused-argument
        if target.kind.name != "llvm":
            return None
        try:
            sch = s_tir.Schedule(func)
            blocks = sch.get_child_blocks(sch.get_sblock("root"))
        except Exception:  # pylint: disable=broad-except
            return None
        mms = [b for b in blocks if sch.get(b).name_hint in ("matmul", "T_matmul", "T_dense", "dense")]
        if len(mms) != 1:
            return None
        mm = mms[0]
        stmt = sch.get(mm)
        loads = is_int_mac(stmt)
        if loads is None:
            return None
        kinds = "".join("S" if int(iv.iter_type) == 0 else "R" for iv in stmt.iter_vars)
        if not kinds.endswith("SSR") or set(kinds[:-1]) != {"S"}:
            return None
        a_buf, b_buf = buffer_of(loads[0]), buffer_of(loads[1])
        b_index = param_index(func, b_buf)
        if b_index is None or b_index not in layout_free(func) or len(b_buf.shape) != 2:
            return None
        # B[k, j] with k the reduction var and j the last spatial var
        ivars = [iv.var for iv in stmt.iter_vars]
        b_idx = list(loads[1].indices)
        if not (b_idx[0].same_as(ivars[-1]) and b_idx[1].same_as(ivars[-2])):
            return None
        extents = [int(iv.dom.extent) for iv in stmt.iter_vars]
        n, k = extents[-2], extents[-1]
        isa = Isa(target)
        try:
            return self._schedule(sch, mm, a_buf, isa, n, k)
        except Exception:  # pylint: disable=broad-except
            return None

    def _schedule(self, sch, mm, a_buf, isa, n, k):
        if not inline_elementwise(sch, [mm]):
            return None
        root = sch.get_sblock("root")
        outputs = sch.get_output_blocks(root)
        if len(outputs) != 1:
            return None
        epilogue = outputs[0]
        if sch.get(epilogue).name_hint == sch.get(mm).name_hint:
            epilogue = sch.cache_write(mm, 0, "local")
        vnni = self.use_vnni and isa.vnni512 and str(a_buf.dtype) == "uint8" and n % 16 == 0 and k % 4 == 0
        loops = sch.get_loops(mm)
        spatial, lj, lk = loops[:-2], loops[-2], loops[-1]
        if vnni:
            from .int8_intrin import VNNI_LOCAL
            cached = sch.cache_read(mm, 1, "global")
            sch.annotate(cached, PREPROC, True)
            sch.transform_layout(mm, ("read", 1), lambda kk, j: (j // 16, kk // 4, j % 16, kk % 4))
            fb = largest_divisor(n // 16, 4)
            jo, jb, ji = sch.split(lj, [None, fb, 16])
            ko, ki = sch.split(lk, [None, 4])
            sch.reorder(*spatial, jo, ko, jb, ji, ki)
            sch.unroll(jb)
            tile = jo
        else:
            vec = isa.i32_lanes * (2 if n >= 2 * isa.i32_lanes else 1)
            vec = min(vec, n)
            jo, ji = sch.split(lj, [None, vec])
            sch.reorder(*spatial, jo, lk, ji)
            tile = jo
            sch.vectorize(ji)
        if epilogue is not None:
            sch.set_scope(mm, 0, "local")
            sch.reverse_compute_at(epilogue, tile)
            sch.vectorize(sch.get_loops(epilogue)[-1])
        outer = list(spatial) + [jo]
        fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
        if isa.cores > 1 and n * k >= 1 << 16:
            sch.parallel(fused)
        init = sch.decompose_reduction(mm, ko if vnni else lk)
        sch.vectorize(sch.get_loops(init)[-1])
        if vnni:
            sch.tensorize(ji, VNNI_LOCAL)
        sch.annotate(sch.get_sblock("root"), "ncc.int8_strategy", "dense_vnni" if vnni else "dense_widening")
        return sch
