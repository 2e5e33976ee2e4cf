"""Fuzzing ncc with bad input, in-process through the real CLI (NccGroup).

Each case asserts: a documented exit code other than 70 (internal error), one
`ncc: error:` line on stderr and no traceback, and no file written outside the
case's own folder; each runs within fuzz_helpers.bounded (time and memory).
1100 cases in all.
"""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_helpers import FUZZ, CaseOverrun, bounded, check_outcome, invoke, tree

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


def _check(result):
    check_outcome(result.exit_code, result.stderr, result.output)


@pytest.fixture(scope="module")
def model_bytes(zoo_onnx):
    with open(zoo_onnx("vgg11"), "rb") as f:
        return f.read()


@FUZZ(600)
@given(data=st.data())
def test_mutated_models(tmp_path_factory, model_bytes, data):
    folder = tmp_path_factory.mktemp("case")
    raw = bytearray(model_bytes)
    how = data.draw(st.sampled_from(["truncate", "flip", "both"]))
    if how in ("truncate", "both"):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    if how in ("flip", "both") and raw:
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
    path = folder / "m.onnx"
    path.write_bytes(bytes(raw))
    before = tree(folder)
    _check(invoke("inspect", path))
    assert tree(folder) == before


@FUZZ(300)
@given(spec=st.one_of(st.text(max_size=20),
                      st.builds("{}:{}".format, st.sampled_from(["uniform", "neuralscale", "x", ""]),
                                st.one_of(st.floats(allow_nan=True), st.text(max_size=8)))))
def test_malformed_scale(tmp_path_factory, zoo_onnx, spec):
    folder = tmp_path_factory.mktemp("case")
    result = invoke("compile", zoo_onnx("vgg11"), "-o", folder / "b", "--target", "onnxruntime", "--scale", spec)
    _check(result)
    if result.exit_code:
        assert not (folder / "b").exists() and tree(folder) == []


@FUZZ(200)
@given(spec=st.one_of(st.text(max_size=24),
                      st.builds("input={}".format, st.lists(st.integers(-2, 2**40).map(str), max_size=6)
                                .map(",".join))))
def test_malformed_input_shape(zoo_onnx, spec):
    _check(invoke("inspect", zoo_onnx("vgg11"), "--input-shape", spec))


def test_regression_checker_message_not_utf8(tmp_path, model_bytes):
    """Finding 1: a bit flip in a name made onnx.checker raise UnicodeDecodeError (exit 70)."""
    raw = bytearray(model_bytes)
    raw[45] ^= 1 << 6
    path = tmp_path / "m.onnx"
    path.write_bytes(bytes(raw))
    result = invoke("inspect", path)
    _check(result)
    assert result.exit_code == 1 and "not valid UTF-8" in result.stderr


def test_a_case_is_bounded_in_time_and_memory():
    with pytest.raises(CaseOverrun):
        with bounded(seconds=0.2):
            time.sleep(5)
    with pytest.raises(MemoryError):
        with bounded(memory=64 << 20):
            bytearray(512 << 20)
    bytearray(512 << 20)  # the limit is lifted again
