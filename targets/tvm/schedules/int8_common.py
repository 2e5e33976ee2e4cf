"""Shared helpers of the int8 CPU schedule rules (conv2d_int8, dense_int8)."""

from tvm import s_tir, tirx

from ._common import has_feature, is_x86

PREPROC = "meta_schedule.layout_rewrite_preproc"


class Isa:
    """What the target offers for u8/s8 x s8 -> s32 dot products."""

    def __init__(self, target):
        self.target = target
        triple = str(target.attrs.get("mtriple", ""))
        self.cores = int(target.attrs.get("num-cores", 1) or 1)
        self.x86 = is_x86(target)
        self.arm = target.kind.name == "llvm" and triple.startswith(("aarch64", "arm64"))

        def has(feature):
            return has_feature(target, feature)

        self.vnni512 = self.x86 and has("avx512vnni") and has("avx512bw")
        self.avx512 = self.x86 and has("avx512f")
        self.avx2 = self.x86 and has("avx2")
        self.neon = self.arm and has("neon")
        self.sdot = self.arm and has("dotprod")
        # int32 lanes of one vector register
        if self.avx512:
            self.i32_lanes = 16
        elif self.avx2:
            self.i32_lanes = 8
        elif self.neon or self.x86:
            self.i32_lanes = 4
        else:
            self.i32_lanes = 4


def _buf(node):
    return node.source if hasattr(node, "source") else node.buffer


def _is_load(node):
    return type(node).__name__ in ("TensorLoad", "BufferLoad")


def is_int_mac(block_stmt):
    """C[...] = C[...] + cast(i32, A[...]) * cast(i32, B[...]) with an int32 C:
    returns the loads [A, B] or None."""
    body = block_stmt.body
    if type(body).__name__ != "BufferStore" or str(body.buffer.dtype) != "int32":
        return None
    value = body.value
    if type(value).__name__ != "Add" or not _is_load(value.a) or not _buf(value.a).same_as(body.buffer):
        return None
    mul = value.b
    if type(mul).__name__ != "Mul":
        return None
    loads = []
    for operand in (mul.a, mul.b):
        if type(operand).__name__ == "Cast" and _is_load(operand.value):
            loads.append(operand.value)
        else:
            return None
    if any(str(_buf(load).dtype) not in ("int8", "uint8") for load in loads):
        return None
    return loads


def param_index(func, buffer):
    for i, param in enumerate(func.params):
        if param.same_as(buffer):
            return i
    return None


def buffer_of(load):
    return _buf(load)


def layout_free(func):
    attrs = func.attrs
    if attrs is None or "layout_free_buffers" not in attrs:
        return set()
    return {int(i) for i in attrs["layout_free_buffers"]}


def inline_elementwise(sch, keep):
    """Inline every block but those in `keep` and the function's outputs into
    its neighbours; returns False if some block could not be inlined."""
    root = sch.get_sblock("root") if _has_root(sch) else None
    blocks = sch.get_child_blocks(root) if root is not None else None
    keep_names = {sch.get(b).name_hint for b in keep}
    outputs = {sch.get(b).name_hint for b in sch.get_output_blocks(root)}
    for block in blocks:
        name = sch.get(block).name_hint
        if name in keep_names or name in outputs:
            continue
        try:
            sch.compute_inline(block)
        except Exception:  # pylint: disable=broad-except
            try:
                sch.reverse_compute_inline(block)
            except Exception:  # pylint: disable=broad-except
                return False
    return True


def _has_root(sch):
    try:
        sch.get_sblock("root")
        return True
    except Exception:  # pylint: disable=broad-except
        return False


def largest_divisor(n, limit):
    for d in range(min(n, limit), 0, -1):
        if n % d == 0:
            return d
    return 1
