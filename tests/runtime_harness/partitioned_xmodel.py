"""A zcu104 bundle's graph cut into the child subgraphs a compiled xmodel
has, for the VART harness's tests where vai_c_xir (Vitis AI docker only)
cannot run: the USER input, and the DPU and CPU groups ncc's placement
predicts (dpu_partition.groups), each with the device and runner attributes
vai_c_xir writes, and the tensors of fix ops (the quantized ones passed
between subgraphs) as xint8. Its DPU subgraphs hold no DPU instructions, so
only VART's dummy runner runs it."""

import pathlib

import onnx
from ncc.targets.zcu104 import dpu_partition
from ncc.targets.zcu104.target import COMPILED_NAME, XMODEL
from ncc.targets.zcu104.xir_lowering import lower
from ncc.targets.zcu104.xmodel_writer import serialize, to_proto

XIR_XINT = 2  # xir::DataType::Type {INT, UINT, XINT, XUINT, FLOAT, UNKNOWN}
RUNNERS = {"DPU": {"run": "libvart-dpu-runner.so", "ref": "libvart-cpu-runner.so", "sim": "libvart-sim-runner.so"},
           "CPU": {mode: "libvart-cpu-runner.so" for mode in ("run", "ref", "sim")}}


def write(bundle: pathlib.Path, path: pathlib.Path) -> list[str]:
    """Write the partitioned xmodel of `bundle` to `path`; its subgraphs' devices, in the order of their first ops."""
    graph = lower(onnx.load(bundle / "model.onnx"), COMPILED_NAME)
    assert serialize(graph) == (bundle / XMODEL).read_bytes(), "model.onnx no longer lowers to the bundle's xmodel"
    cut = dpu_partition.groups(graph, dpu_partition.partition(graph))
    groups = [device for device, _names in cut]  # index -> device
    member = {name: index for index, (_device, names) in enumerate(cut) for name in names}
    for op in graph.ops:
        if op.type == "data":
            member[op.name] = len(groups)
            groups.append("USER")
    ops, consumers = graph.by_name(), graph.consumers()
    for op in graph.ops:  # a fix goes with the op it quantizes (a const's, with what reads the const)
        source = op.inputs.get("input", [None])[0]
        if op.type == "fix" and source in member and ops[source].type != "const":
            member[op.name] = member[source]
    for op in reversed(graph.ops):  # consts and their fixes go with their first reader
        if op.name not in member:
            member[op.name] = next(member[c.name] for c in consumers[op.name] if c.name in member)
    proto = to_proto(graph)
    for node in proto.op_node:
        if node.op_type == "fix":
            node.output_tensor.data_type, node.output_tensor.tensor_bit_width = XIR_XINT, 8
    members = {index: [op.name for op in graph.ops if member[op.name] == index] for index in range(len(groups))}
    position = {op.name: i for i, op in enumerate(graph.ops)}
    head = {index: next(n for n in names if ops[n].type not in ("const", "fix")) for index, names in members.items()}
    order = sorted(members, key=lambda index: position[head[index]])
    for index in order:
        child = proto.subg_root.subg_child.add(subgraph_name=f"subgraph_{head[index]}", op_name=members[index])
        child.subg_attr["device"].string_value = groups[index]
        for mode, library in RUNNERS.get(groups[index], {}).items():
            child.subg_attr["runner"].map_string_2_string_value.value[mode] = library
    path.write_bytes(proto.SerializeToString(deterministic=True))
    return [groups[index] for index in order]
