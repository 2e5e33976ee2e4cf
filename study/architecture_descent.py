"""NeuralScale's architecture descent (Lee & Lee, CVPR 2020), for any model ncc
can scale.

Each iteration trains the model from scratch at the current widths; after a
warm-up it prunes channels globally by the first-order Taylor score of a gate
per channel ((gate * grad)^2, averaged over the minibatches since the last
pruning), a fixed number every few minibatches, until a fraction of all
channels is gone or a group would lose its last channel. The widths after
every pruning step form the prune record; fitting the power laws to it gives
the iteration's profile, and the next iteration starts from the widths that
profile gives at the original parameter count.

Gates belong to channel groups, not layers, so residual and depthwise
couplings hold while pruning: a gate multiplies the output of every producer
of its group (after the BatchNormalization that follows it, if any). Pruned
channels are masked (their gate held at zero); the model is only rescaled
between iterations.
"""

import os
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import torch

from ncc.compiler.pass_manager import PassManager
from ncc.study.training import TrainOptions, reinitialize, run_epoch
from ncc.study.torch_model import TorchModel
from ncc.passes import ScaleChannels, neuralscale
from ncc.passes.analysis.channel_groups import analyze
from ncc.passes.base import PassContext
from ncc.passes.graph_utils import sole_consumer


@dataclass
class SearchOptions:
    iterations: int = 5
    epochs: int = 10  # at most, per iteration, warm-up included
    warmup_epochs: int = 1
    prune_step: int | None = None  # channels per pruning step; default 1% of all scalable channels
    prune_every: int = 10  # minibatches between pruning steps
    fraction: float = 0.95  # of all scalable channels, when descent stops
    train: TrainOptions = None


def search(model: onnx.ModelProto, data, options: SearchOptions, records_dir: str, progress=print):
    """Run architecture descent on a simplified model; returns the last
    iteration's profile. Iterations whose record and profile exist in
    `records_dir` are taken from there (so a stopped search resumes)."""
    groups = analyze(gs.import_onnx(model))
    ids = [g.id for g in groups.scalable]
    original_params = groups.param_count({})
    widths = {g.id: g.width for g in groups.scalable}
    os.makedirs(records_dir, exist_ok=True)
    profile = None
    for iteration in range(options.iterations):
        record_path = os.path.join(records_dir, f"iteration_{iteration}.csv")
        profile_path = os.path.join(records_dir, f"profile_{iteration}.json")
        if os.path.exists(profile_path) and os.path.exists(record_path):
            profile = neuralscale.load_profile(profile_path)
            progress(f"iteration {iteration + 1}/{options.iterations}: done before, resumed from {profile_path}")
        else:
            rows = descend(resize(model, widths, options.train.seed), data, options, progress, iteration)
            _write_record(record_path, rows)
            profile = neuralscale.fit_profile(np.array(rows), ids, groups.param_count)
            neuralscale.save_profile(profile, profile_path)
            progress(f"iteration {iteration + 1}/{options.iterations}: {len(rows)} record rows, "
                     f"widths {rows[0]} -> {rows[-1]}")
        widths = neuralscale.widths_at(neuralscale.match_profile(profile, ids), original_params)
    return profile


def resize(model: onnx.ModelProto, widths: dict, seed: int) -> onnx.ModelProto:
    return PassManager([ScaleChannels("widths", widths=widths, seed=seed)]).run(model, PassContext(seed=seed))


def descend(model: onnx.ModelProto, data, options: SearchOptions, progress, iteration=0) -> list:
    """Train with gates and prune; the widths after each pruning step."""
    groups = analyze(gs.import_onnx(model))
    module = TorchModel(model, gates=_gate_tensors(gs.import_onnx(model), groups))
    reinitialize(module, options.train.seed + iteration)
    pruner = _Pruner(module, [g.id for g in groups.scalable], options)
    train = options.train
    optimizer = torch.optim.SGD(module.weights(), lr=train.lr, momentum=train.momentum,
                                weight_decay=train.weight_decay)
    for epoch in range(options.epochs):
        hook = pruner.step if epoch >= options.warmup_epochs else None
        loss = run_epoch(module, data, train, optimizer, epoch=epoch + 1000 * iteration, after_step=hook)
        progress(f"  epoch {epoch + 1}/{options.epochs}: loss {loss:.3f}, widths {pruner.rows[-1]}")
        if pruner.done:
            break
    return pruner.rows


def _gate_tensors(graph, groups) -> dict:
    """{tensor to gate: (group id, width)}: each producer's output, or the
    output of the BatchNormalization that reads only it."""
    nodes = {node.name: node for node in graph.nodes}
    gates = {}
    for group in groups.scalable:
        for name in group.producers:
            tensor = nodes[name].outputs[0]
            follower = sole_consumer(graph, tensor)
            if follower is not None and follower.op == "BatchNormalization":
                tensor = follower.outputs[0]
            gates[tensor.name] = (group.id, group.width)
    return gates


class _Pruner:
    def __init__(self, module, ids, options: SearchOptions):
        self.module, self.ids, self.options = module, ids, options
        self.masks = {gid: torch.ones_like(module.gate(gid)) for gid in ids}
        self.total = sum(int(m.numel()) for m in self.masks.values())
        self.step_size = options.prune_step or max(1, self.total // 100)
        self.scores = {gid: torch.zeros_like(m) for gid, m in self.masks.items()}
        self.steps = 0
        self.done = False
        self.rows = [self._widths()]

    def _widths(self) -> list:
        return [int(self.masks[gid].sum()) for gid in self.ids]

    def step(self, module):
        if self.done:
            return
        for gid in self.ids:
            gate = module.gate(gid)
            if gate.grad is not None:
                self.scores[gid] += (gate.detach() * gate.grad.detach()) ** 2
                gate.grad = None  # gates are not optimised, so nothing else clears them
        self.steps += 1
        if self.steps % self.options.prune_every == 0:
            self._prune()

    def _prune(self):
        candidates = []
        for gid in self.ids:
            average = self.scores[gid] / self.options.prune_every
            for channel in torch.nonzero(self.masks[gid]).flatten().tolist():
                candidates.append((float(average[channel]), gid, channel))
            self.scores[gid].zero_()
        candidates.sort(key=lambda c: (c[0], self.ids.index(c[1]), c[2]))
        chosen = candidates[:self.step_size]
        for _, gid, channel in chosen:
            self.masks[gid][channel] = 0
        if any(int(mask.sum()) == 0 for mask in self.masks.values()):
            for _, gid, channel in chosen:  # a group would lose its last channel: stop before that
                self.masks[gid][channel] = 1
            self.done = True
            return
        with torch.no_grad():
            for gid in self.ids:
                self.module.gate(gid).copy_(self.masks[gid])
        self.rows.append(self._widths())
        pruned = 1 - sum(self.rows[-1]) / self.total
        self.done = pruned >= self.options.fraction


def _write_record(path, rows):
    with open(path, "w") as handle:
        handle.writelines(",".join(str(w) for w in row) + "\n" for row in rows)
