"""make_nearbyint_vectorizable: an int8 requantize (round half to even, clip,
narrow to uint8) in a vectorized loop is emitted as vector code, on x86 and
on the Cortex-A72, and still rounds half to even."""

import numpy as np
import pytest
import tvm
from ncc.targets.tvm.cortex_a72 import A72
from ncc.targets.tvm.vector_rounding import make_nearbyint_vectorizable
from tvm import s_tir, te, tirx
from tvm_kernels import host_target

ROWS, COLS = 16, 16


def requantize_kernel():
    """C[i, j] = uint8(clip(nearbyint(A[i, j] * 0.5), 0, 255)), the columns vectorized."""
    a = te.placeholder((ROWS, COLS), "float32", name="A")

    def quantize(i, j):
        value = tirx.nearbyint(a[i, j] * tirx.const(0.5, "float32"))
        return tirx.Cast("uint8", tirx.max(tirx.min(value, tirx.const(255.0, "float32")), tirx.const(0.0, "float32")))

    c = te.compute((ROWS, COLS), quantize, name="C")
    sch = s_tir.Schedule(te.create_prim_func([a, c]).with_attr("global_symbol", "main"))
    _rows, cols = sch.get_loops(sch.get_sblock("C"))
    sch.vectorize(cols)
    return sch.mod


@pytest.mark.parametrize("target", [host_target(), tvm.target.Target(A72.spec)], ids=["host", "cortex-a72"])
def test_requantize_loop_is_vector_code(target):
    make_nearbyint_vectorizable()
    assert tvm.ir.Op.get("tirx.nearbyint").get_attr("TVectorizable")
    ir = tvm.compile(requantize_kernel(), target).mod.inspect_source("ll")
    assert "@llvm.nearbyint.v" in ir
    # whole rows stored as vectors, not gathered down the columns and stored byte by byte
    assert "llvm.masked.gather" not in ir
    assert any(f"store <{lanes} x i8>" in ir for lanes in (4, 8, 16, 32, 64))


def test_vectorized_requantize_rounds_half_to_even():
    make_nearbyint_vectorizable()
    lib = tvm.compile(requantize_kernel(), host_target())
    values = np.arange(ROWS * COLS, dtype=np.float32).reshape(ROWS, COLS) - 8.0  # odd ones are halves after * 0.5
    out = tvm.runtime.tensor(np.zeros((ROWS, COLS), np.uint8))
    lib["main"](tvm.runtime.tensor(values), out)
    np.testing.assert_array_equal(out.numpy(), np.clip(np.rint(values * 0.5), 0, 255).astype(np.uint8))
