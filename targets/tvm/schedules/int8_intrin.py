"""Tensor intrinsics of the int8 rules: TVM's VNNI 16x4 dot product with the
accumulator in a local (register) buffer, and AVX2's int16 pair dot product
(vpmaddwd) for x86 without VNNI. The LLVM that TVM 0.27 links declares
llvm.x86.avx512.vpdpbusd.512 as (<16 x i32>, <64 x i8>, <64 x i8>), which TVM's
own dot_16x4_vnni (int32x16 operands) no longer matches."""

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

VNNI_LOCAL = "ncc_dot_16x4_u8s8s32_vnni_local"
VNNI8_LOCAL = "ncc_dot_8x4_u8s8s32_vnni_local"


def _channels_desc(lanes, depth, data_dtype):
    """C[0:lanes] (output channels, int32) += sum_k A[k] * B[i, k] over `depth` input channels."""

    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((depth,), data_dtype, offset_factor=1),
        B: T.Buffer((lanes, depth), "int8", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:depth])
            T.writes(C[0:lanes])
            for i in T.serial(0, lanes):
                for k in T.serial(0, depth):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

    return desc


def _vnni_channels(lanes):
    """One vpdpbusd: the 4 activation bytes broadcast against `lanes` x 4 weight bytes."""
    llvm = "llvm.x86.avx512.vpdpbusd.512" if lanes == 16 else "llvm.x86.avx512.vpdpbusd.256"

    @T.prim_func(s_tir=True)
    def impl(
        A: T.Buffer((4,), "uint8", offset_factor=1),
        B: T.Buffer((lanes, 4), "int8", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:4], B[0:lanes, 0:4])
            T.writes(C[0:lanes])
            A_i32 = T.reinterpret(A.vload([0], "uint8x4"), dtype="int32")
            C[T.ramp(T.int32(0), 1, lanes)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(llvm),
                C.vload([0], dtype=f"int32x{lanes}"),
                T.reinterpret(T.broadcast(A_i32, lanes), dtype=f"uint8x{lanes * 4}"),
                B.vload([0, 0], dtype=f"int8x{lanes * 4}"),
                dtype=f"int32x{lanes}",
            )

    return _channels_desc(lanes, 4, "uint8"), impl


def _register_once(name, desc, impl):
    try:
        TensorIntrin.get(name)
    except Exception:  # pylint: disable=broad-except
        TensorIntrin.register(name, desc, impl)


_register_once(VNNI_LOCAL, *_vnni_channels(16))
_register_once(VNNI8_LOCAL, *_vnni_channels(8))


def _make_xvec(lanes):
    """C[0:lanes] (pixels, int32) += sum_k A[i, k] (u8: lanes pixels x 4 channels) * B[k] (s8)."""
    nbytes = lanes * 4
    llvm = "llvm.x86.avx512.vpdpbusd.512" if lanes == 16 else "llvm.x86.avx512.vpdpbusd.256"

    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((lanes, 4), "uint8", offset_factor=1),
        B: T.Buffer((4,), "int8", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:lanes, 0:4], B[0:4])
            T.writes(C[0:lanes])
            for i in T.serial(0, lanes):
                for k in T.serial(0, 4):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vi, vk], "int32") * T.cast(B[vk], "int32")

    @T.prim_func(s_tir=True)
    def impl(
        A: T.Buffer((lanes, 4), "uint8", offset_factor=1),
        B: T.Buffer((4,), "int8", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:lanes, 0:4], B[0:4])
            T.writes(C[0:lanes])
            B_i32 = T.reinterpret(B.vload([0], "int8x4"), dtype="int32")
            C[T.ramp(T.int32(0), 1, lanes)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(llvm),
                C.vload([0], dtype=f"int32x{lanes}"),
                A.vload([0, 0], dtype=f"uint8x{nbytes}"),
                T.reinterpret(T.broadcast(B_i32, lanes), dtype=f"int8x{nbytes}"),
                dtype=f"int32x{lanes}",
            )

    return desc, impl


VNNI_XVEC = {16: "ncc_dot_x16_u8s8s32_vnni_local", 8: "ncc_dot_x8_u8s8s32_vnni_local"}
for _lanes, _name in VNNI_XVEC.items():
    _register_once(_name, *_make_xvec(_lanes))


def _make_pmaddwd(data_dtype):
    """C[0:8] (output channels, int32) += sum_k A[k] * B[i, k] over a pair of input channels,
    widened to int16 (exact: two products of |x| <= 255, |w| <= 128 fit in int32): one
    vpmaddwd (AVX2) does 8 x 2 multiply-adds, where LLVM's own widening of the same loop
    does 8 x 1 per instruction."""

    @T.prim_func(s_tir=True)
    def impl(
        A: T.Buffer((2,), data_dtype, offset_factor=1),
        B: T.Buffer((8, 2), "int8", offset_factor=1),
        C: T.Buffer((8,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:8], A[0:2], B[0:8, 0:2])
            T.writes(C[0:8])
            # the byte pair broadcast, then widened: vpbroadcastw + vpmovzxbw (or vpmovsxbw)
            pairs = T.reinterpret(T.broadcast(T.reinterpret(A.vload([0], f"{data_dtype}x2"), dtype="uint16"), 8),
                                  dtype=f"{data_dtype}x16")
            C[T.ramp(T.int32(0), 1, 8)] = C.vload([0], dtype="int32x8") + T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.x86.avx2.pmadd.wd"),
                T.cast(pairs, "int16x16"),
                T.cast(B.vload([0, 0], dtype="int8x16"), "int16x16"),
                dtype="int32x8",
            )

    return _channels_desc(8, 2, data_dtype), impl


PMADDWD = {"uint8": "ncc_dot_8x2_u8s8s32_avx2_local", "int8": "ncc_dot_8x2_s8s8s32_avx2_local"}
for _dtype, _name in PMADDWD.items():
    _register_once(_name, *_make_pmaddwd(_dtype))
