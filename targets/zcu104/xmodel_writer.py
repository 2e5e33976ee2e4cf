"""Writing an XirGraph as an .xmodel: XIR's protobuf serialization
(serial_v2.Graph, schema in xir_graph.proto), which libxir's
Graph::deserialize reads. Written from Python with the protobuf runtime, so a
bundle needs no Vitis AI library on the compiling machine.

Every tensor is float32 (XIR DataType FLOAT, 32 bits), as in the quantizer's
output; the root subgraph lists every op, as libxir writes a graph that has
not been partitioned yet.
"""

import numpy as np

from ncc.targets.zcu104 import xir_graph_pb2 as pb
from ncc.targets.zcu104.xir_lowering import XirGraph

XIR_FLOAT = 4  # xir::DataType::Type {INT, UINT, XINT, XUINT, FLOAT, UNKNOWN}


def _attr_value(value) -> pb.AttrValue:
    attr = pb.AttrValue()
    if isinstance(value, bool):
        attr.bool_value = value
    elif isinstance(value, (int, np.integer)):
        attr.int32_value = int(value)
    elif isinstance(value, float):
        attr.float_value = value
    elif isinstance(value, str):
        attr.string_value = value
    elif isinstance(value, bytes):
        attr.bytes_value.value = value
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value):
        attr.int32_vec_value.value.extend(int(v) for v in value)
    elif isinstance(value, (list, tuple)):
        attr.float_vec_value.value.extend(float(v) for v in value)
    else:
        raise TypeError(f"no XIR attribute type for {type(value).__name__}")
    return attr


def to_proto(graph: XirGraph) -> pb.Graph:
    proto = pb.Graph(graph_name=graph.name)
    for op in graph.ops:
        node = proto.op_node.add(op_name=op.name, op_type=op.type)
        for key, value in op.attrs.items():
            node.op_attr[key].CopyFrom(_attr_value(value))
        for arg, names in op.inputs.items():
            node.args.add(arg_name=arg, arg_ops=names)
        node.output_tensor.tensor_name = op.name
        node.output_tensor.tensor_dim.extend(int(d) for d in op.shape)
        node.output_tensor.data_type = XIR_FLOAT
        node.output_tensor.tensor_bit_width = 32
    proto.subg_root.subgraph_name = "root"
    proto.subg_root.op_name.extend(op.name for op in graph.ops)
    return proto


def serialize(graph: XirGraph) -> bytes:
    """The .xmodel bytes; deterministic (map entries in key order)."""
    return to_proto(graph).SerializeToString(deterministic=True)


def read_xmodel(data: bytes) -> pb.Graph:
    proto = pb.Graph()
    proto.ParseFromString(data)
    return proto
