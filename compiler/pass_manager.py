"""Runs a list of passes over a graph-surgeon graph and checks what they promise.

After every pass the graph is exported, checked by the ONNX checker and shape
inference (shapes are re-inferred here, never by the passes), and, in verify
mode, a pass that declares `preserves_semantics` must reproduce the outputs
it was given on seeded random input.
"""

import os
import time
from dataclasses import dataclass, field

import onnx
import onnx_graphsurgeon as gs

from ncc.compiler import loader
from ncc.core import numerics
from ncc.core.errors import CompileError
from ncc.passes import PASSES
from ncc.passes.base import Pass, PassContext


@dataclass
class PassRecord:
    name: str
    options: dict
    changed: bool
    stats: dict
    time_s: float
    verified: dict | None = None  # {"max_rel_error": ..., "tolerance": ...} in verify mode
    dump: str | None = None

    def to_dict(self, timing=True) -> dict:
        record = {"name": self.name, "options": self.options, "changed": self.changed,
                  "stats": self.stats}
        if self.verified is not None:
            record["verified"] = self.verified
        if self.dump is not None:
            record["dump"] = self.dump
        if timing:
            record["time_s"] = round(self.time_s, 6)
        return record


@dataclass
class PassManager:
    passes: list[Pass]
    verify: bool = False
    dump_after: tuple = ()  # pass names, or "all"
    dump_dir: str | None = None
    tolerance: float = numerics.EQUIVALENCE_RTOL
    records: list[PassRecord] = field(default_factory=list)

    def run(self, model: onnx.ModelProto, ctx: PassContext) -> onnx.ModelProto:
        self._check_dump_names()
        graph = gs.import_onnx(model)
        for index, pass_ in enumerate(self.passes):
            before = model
            start = time.perf_counter()
            try:
                result = pass_.run(graph, ctx)
            except CompileError as err:
                raise CompileError(f"pass '{pass_.name}'{self._after(index)}: {err}") from None
            graph = result.graph
            model = self._export_and_check(graph, pass_, index)
            record = PassRecord(pass_.name, pass_.options, result.changed, result.stats,
                                time.perf_counter() - start)
            if self.verify and pass_.preserves_semantics and result.changed:
                record.verified = self._verify(before, model, pass_, index, ctx.seed)
            if self._wants_dump(pass_.name):
                record.dump = self._dump(model, index, pass_.name)
            self.records.append(record)
        return model

    def _export_and_check(self, graph, pass_, index) -> onnx.ModelProto:
        graph.toposort()
        try:
            model = gs.export_onnx(graph)
            del model.graph.value_info[:]  # shapes a pass changed are re-inferred, not trusted
            loader.check_model(model)
            model = loader.infer_shapes(model)
        except CompileError as err:
            raise CompileError(f"pass '{pass_.name}'{self._after(index)} left an invalid graph: {err}") from None
        _refresh_shapes(graph, model)
        return model

    def _verify(self, before, after, pass_, index, seed) -> dict:
        error = numerics.max_relative_error(before, after, seed=seed)
        if error > self.tolerance:
            raise CompileError(f"pass '{pass_.name}'{self._after(index)} changed the model's outputs: "
                               f"relative error {error:.3g} > {self.tolerance:g} (--verify)")
        return {"max_rel_error": float(f"{error:.3g}"), "tolerance": self.tolerance}

    def _after(self, index) -> str:
        ran = [p.name for p in self.passes[:index]]
        return f" (after {', '.join(ran)})" if ran else " (first pass)"

    def _check_dump_names(self):
        names = set(self.dump_after) - {"all"}
        unregistered = sorted(names - set(PASSES))
        if unregistered:
            raise CompileError(f"--dump-after names no pass ncc has: {', '.join(unregistered)} "
                               f"(passes: {', '.join(sorted(PASSES))})")
        unknown = sorted(names - {p.name for p in self.passes})
        if unknown:
            raise CompileError(f"--dump-after names no pass of this pipeline: {', '.join(unknown)} "
                               f"(passes: {', '.join(p.name for p in self.passes)})")

    def _wants_dump(self, name) -> bool:
        return self.dump_dir is not None and ("all" in self.dump_after or name in self.dump_after)

    def _dump(self, model, index, name) -> str:
        os.makedirs(self.dump_dir, exist_ok=True)
        path = os.path.join(self.dump_dir, f"{index:02d}-{name}.onnx")
        onnx.save(model, path)
        return path


def _refresh_shapes(graph: gs.Graph, model: onnx.ModelProto):
    """Give the graph the shapes that inference found on the exported model."""
    infos = {v.name: v for v in list(model.graph.value_info) + list(model.graph.output)}
    for tensor in graph.tensors().values():
        info = infos.get(tensor.name)
        if isinstance(tensor, gs.Variable) and info is not None and info.type.HasField("tensor_type"):
            tensor_type = info.type.tensor_type
            tensor.dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
            tensor.shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                            for d in tensor_type.shape.dim]
