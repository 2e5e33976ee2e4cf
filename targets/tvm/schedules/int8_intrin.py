"""Tensor intrinsics of the int8 rules: TVM's VNNI 16x4 dot product with the
accumulator in a local (register) buffer. The LLVM that TVM 0.27 links declares
llvm.x86.avx512.vpdpbusd.512 as (<16 x i32>, <64 x i8>, <64 x i8>), which TVM's
own dot_16x4_vnni (int32x16 operands) no longer matches."""

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

VNNI_LOCAL = "ncc_dot_16x4_u8s8s32_vnni_local"
VNNI8_LOCAL = "ncc_dot_8x4_u8s8s32_vnni_local"


@T.prim_func(s_tir=True)
def _desc(
    A: T.Buffer((4,), "uint8", offset_factor=1),
    B: T.Buffer((16, 4), "int8", offset_factor=1),
    C: T.Buffer((16,), "int32", offset_factor=1, scope="local"),
) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:4], B[0:16, 0:4])
        T.writes(C[0:16])
        for i in T.serial(0, 16):
            for k in T.serial(0, 4):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")


@T.prim_func(s_tir=True)
def _impl(
    A: T.Buffer((4,), "uint8", offset_factor=1),
    B: T.Buffer((16, 4), "int8", offset_factor=1),
    C: T.Buffer((16,), "int32", offset_factor=1, scope="local"),
) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:4], B[0:16, 0:4])
        T.writes(C[0:16])
        A_u8x4 = A.vload([0], "uint8x4")
        A_i32 = T.reinterpret(A_u8x4, dtype="int32")
        B_i8x64 = B.vload([0, 0], dtype="int8x64")
        C_i32x16 = C.vload([0], dtype="int32x16")
        C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"),
            C_i32x16,
            T.reinterpret(T.broadcast(A_i32, 16), dtype="uint8x64"),
            B_i8x64,
            dtype="int32x16",
        )


@T.prim_func(s_tir=True)
def _desc8(
    A: T.Buffer((4,), "uint8", offset_factor=1),
    B: T.Buffer((8, 4), "int8", offset_factor=1),
    C: T.Buffer((8,), "int32", offset_factor=1, scope="local"),
) -> None:
    with T.sblock("root"):
        T.reads(C[0:8], A[0:4], B[0:8, 0:4])
        T.writes(C[0:8])
        for i in T.serial(0, 8):
            for k in T.serial(0, 4):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")


@T.prim_func(s_tir=True)
def _impl8(
    A: T.Buffer((4,), "uint8", offset_factor=1),
    B: T.Buffer((8, 4), "int8", offset_factor=1),
    C: T.Buffer((8,), "int32", offset_factor=1, scope="local"),
) -> None:
    with T.sblock("root"):
        T.reads(C[0:8], A[0:4], B[0:8, 0:4])
        T.writes(C[0:8])
        A_u8x4 = A.vload([0], "uint8x4")
        A_i32 = T.reinterpret(A_u8x4, dtype="int32")
        B_i8x32 = B.vload([0, 0], dtype="int8x32")
        C_i32x8 = C.vload([0], dtype="int32x8")
        C[T.ramp(T.int32(0), 1, 8)] = T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.256"),
            C_i32x8,
            T.reinterpret(T.broadcast(A_i32, 8), dtype="uint8x32"),
            B_i8x32,
            dtype="int32x8",
        )


def _register():
    for name, desc, impl in ((VNNI_LOCAL, _desc, _impl), (VNNI8_LOCAL, _desc8, _impl8)):
        try:
            TensorIntrin.get(name)
        except Exception:  # pylint: disable=broad-except
            TensorIntrin.register(name, desc, impl)


_register()


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
    try:
        TensorIntrin.get(_name)
    except Exception:  # pylint: disable=broad-except
        TensorIntrin.register(_name, *_make_xvec(_lanes))
