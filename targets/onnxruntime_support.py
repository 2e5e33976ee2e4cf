"""Which ONNX nodes ONNX Runtime's CPU provider runs: those it has kernels
for, and ONNX function ops (HardSwish, ...), which it inlines into their
function body when a session opens."""

import functools

import onnx
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from ncc.core.errors import CompileError
from ncc.targets.base import listing


@functools.cache
def _cpu_kernels() -> dict:
    kernels = {}
    for kernel in ort_state.get_all_opkernel_def():
        if kernel.provider == "CPUExecutionProvider":
            domain = "" if kernel.domain == "ai.onnx" else kernel.domain
            kernels.setdefault((domain, kernel.op_name), []).append(kernel.version_range)
    return kernels


def _is_function(op_type: str, version: int, domain: str) -> bool:
    try:
        schema = onnx.defs.get_schema(op_type, version, domain)
    except onnx.defs.SchemaError:
        return False
    return schema.has_function or schema.has_context_dependent_function


def unsupported_nodes(model: onnx.ModelProto) -> list[str]:
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    missing = []
    for index, node in enumerate(model.graph.node):
        domain = "" if node.domain == "ai.onnx" else node.domain
        ranges = _cpu_kernels().get((domain, node.op_type), [])
        version = opsets.get(domain, 0)
        if not any(low <= version for low, _high in ranges) and not _is_function(node.op_type, version, domain):
            missing.append(f"{node.op_type} (node '{node.name or f'#{index}'}'{', domain ' + domain if domain else ''})")
    return missing


def check_cpu_support(model: onnx.ModelProto, target_name: str):
    missing = unsupported_nodes(model)
    if missing:
        raise CompileError(f"target {target_name} cannot run {listing(missing)}")
