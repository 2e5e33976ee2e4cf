"""Reference execution with ONNX Runtime: seeded inputs and output comparison."""

import numpy as np
import onnx
import onnxruntime as ort

from ncc.core.errors import CompileError

EQUIVALENCE_RTOL = 1e-5  # relative to the largest output magnitude

# ONNX Runtime's C++ logger writes warnings to stderr from every session,
# including those its quantizer and graph-surgeon's folding open; ncc's own
# one-line errors say what went wrong
ort.set_default_logger_severity(3)


def random_inputs(model: onnx.ModelProto, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.input:
        tensor_type = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        shape = [d.dim_value for d in tensor_type.shape.dim]
        if np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[value.name] = rng.integers(0, 2, size=shape).astype(dtype)
    return feeds


def session(model: onnx.ModelProto, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # ORT's own graph optimizations would hide what a pass did to the graph
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own exception types from C++
        raise CompileError(f"ONNX Runtime cannot load the model: {' '.join(str(err).split())}") from None


def run(model: onnx.ModelProto, feeds: dict) -> list:
    return session(model).run(None, feeds)


def max_relative_error(reference: onnx.ModelProto, candidate: onnx.ModelProto, seed: int = 0) -> float:
    """max |a - b| / max |a| over every output (both models take the same inputs)."""
    feeds = random_inputs(reference, seed)
    expected, actual = run(reference, feeds), run(candidate, feeds)
    worst = 0.0
    for a, b in zip(expected, actual):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(a))) if a.size else 0.0, 1e-30)
        worst = max(worst, float(np.max(np.abs(a - b))) / scale if a.size else 0.0)
    return worst


def batched_predictor(model: onnx.ModelProto, threads: int = 0):
    """predict(x[N, ...]) -> outputs[N, ...] for a model exported with a fixed
    batch: samples are run in slices of the model's own batch size."""
    runner = session(model, threads)
    name = runner.get_inputs()[0].name
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value or 1

    def predict(x):
        usable = len(x) - len(x) % batch
        parts = [runner.run(None, {name: x[i:i + batch]})[0] for i in range(0, usable, batch)]
        return np.concatenate(parts) if parts else np.zeros((0,))
    return predict
