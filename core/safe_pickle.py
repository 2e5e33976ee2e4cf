"""Reading pickles without running them: the one allow-list unpickler of ncc.

`loads(data)` returns dicts, lists, tuples, str/bytes/numbers and numeric numpy
arrays and scalars; anything else a pickle names raises `Rejected`.
"""

import io
import math
import pickle

import numpy as np


# --- reading pickles without running them -----------------------------------------------
#
# pickle.load calls whatever callables a file names, so a pickle from elsewhere can
# run any code. This unpickler resolves only the names numpy's own array and scalar
# pickles use (numpy 1 and 2 spellings), and resolves them to stand-ins rather than
# to numpy: numpy's __setstate__ trusts its input (a crafted dtype state can mark
# float64 as holding object pointers), so the stand-ins check every field, keep only
# numeric dtypes, and build arrays with np.frombuffer.

class Rejected(Exception):
    """The pickle asks for something this reader does not build."""


class _Dtype:
    """numpy.dtype(spec, align, copy), then BUILD with numpy's dtype state."""

    def __init__(self, spec, align=False, copy=False):
        try:
            self.dtype = np.dtype(spec) if isinstance(spec, str) else None
        except (TypeError, ValueError):
            self.dtype = None
        if self.dtype is None or self.dtype.kind not in "biufc":
            raise Rejected(f"dtype {spec!r} (only numeric dtypes are read)")

    def __setstate__(self, state):
        # (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata]);
        # the last three are numpy's to derive, so they are ignored rather than trusted.
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")
                and state[2:5] == (None, None, None)):
            raise Rejected("a dtype state numpy does not write for numeric dtypes")
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _Value:
    """An array or scalar numpy would build, held until the whole pickle is read
    so that no BUILD opcode ever reaches numpy's own __setstate__."""

    def __init__(self, value=None):
        self.value = value

    def __setstate__(self, state):
        # ndarray state: (version, shape, dtype, is_fortran, raw data)
        if self.value is not None or not (isinstance(state, tuple) and len(state) == 5):
            raise Rejected("an array state numpy does not write")
        _, shape, dtype, fortran, raw = state
        self.value = _array(raw, dtype, shape, "F" if fortran else "C")


_NDARRAY = object()  # what `numpy.ndarray` resolves to: an argument of _reconstruct, never called


def _array(raw, dtype, shape, order) -> np.ndarray:
    if isinstance(raw, str):
        raw = raw.encode("latin1")  # Python 2 pickles, read with encoding="latin1"
    if not isinstance(dtype, _Dtype) or not isinstance(raw, (bytes, bytearray)) or order not in ("C", "F") \
            or not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)):
        raise Rejected("an array whose fields numpy does not write")
    if len(raw) != math.prod(shape) * dtype.dtype.itemsize:
        raise Rejected("an array whose data does not match its shape")
    return np.frombuffer(bytes(raw), dtype=dtype.dtype).reshape(shape, order=order).copy()


def _reconstruct(subtype, shape, typecode):
    if subtype is not _NDARRAY:
        raise Rejected("an array of a type other than numpy.ndarray")
    return _Value()


def _scalar(dtype, raw):
    return _Value(_array(raw, dtype, (), "C")[()])


def _frombuffer(buffer, dtype, shape, order):  # pickle protocol 5
    return _Value(_array(buffer, dtype, shape, order))


def _latin1_encode(text, encoding):  # how pickle protocols < 3 spell bytes
    if not isinstance(text, str) or encoding != "latin1":
        raise Rejected("_codecs.encode other than of text to latin1")
    return text.encode("latin1")


_ALLOWED = {
    **{(module, "_reconstruct"): _reconstruct for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_frombuffer"): _frombuffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise Rejected(f"{module}.{name}") from None


def _materialize(obj):
    """Replace every stand-in with the value it holds."""
    if isinstance(obj, _Value):
        if obj.value is None:
            raise Rejected("an array without data")
        return obj.value
    if isinstance(obj, _Dtype):
        return obj.dtype
    if isinstance(obj, dict):
        return {key: _materialize(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(item) for item in obj)
    return obj


def loads(data: bytes, encoding: str = "latin1"):
    """Unpickle `data` through the allow-list; raises Rejected for a disallowed
    name and any other exception for a malformed pickle."""
    return _materialize(_RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load())
