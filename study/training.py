"""Training and evaluating an ONNX CNN with PyTorch (CPU or CUDA).

SGD with momentum and a cosine learning-rate schedule, with the usual CIFAR
augmentation (random 4-pixel-padded crops and horizontal flips), from the
model's own weights or re-initialised. The model is trained as
ncc.study.torch_model runs it and written back to ONNX.
"""

import math
from dataclasses import dataclass

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from ncc.core.errors import UsageError
from ncc.study.torch_model import TorchModel


@dataclass
class TrainOptions:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True
    reinit: bool = False
    seed: int = 0
    device: str = "cpu"


def device_of(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here")
    return torch.device(name)


def train(model: onnx.ModelProto, data, options: TrainOptions, progress=None, gates=None) -> TorchModel:
    """Train and return the torch module (call .write_back(model) for ONNX)."""
    if data.y is None:
        raise UsageError(f"{data.summary()}: training needs labels")
    torch.manual_seed(options.seed)
    module = TorchModel(model, gates=gates).to(device_of(options.device))
    if options.reinit:
        reinitialize(module, options.seed)
    optimizer = torch.optim.SGD(module.weights(), lr=options.lr, momentum=options.momentum,
                                weight_decay=options.weight_decay)
    steps = options.epochs * steps_per_epoch(data, options.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    for epoch in range(options.epochs):
        loss = run_epoch(module, data, options, optimizer, schedule, epoch)
        if progress:
            progress(epoch + 1, options.epochs, loss)
    return module.eval()


def steps_per_epoch(data, batch_size) -> int:
    return max(1, len(data.x) // batch_size)


def run_epoch(module, data, options, optimizer, schedule=None, epoch=0, after_step=None) -> float:
    """One pass over shuffled minibatches; `after_step(module)` runs after each
    optimizer step (architecture descent prunes there). Returns the mean loss."""
    module.train()
    rng = np.random.default_rng([options.seed, epoch])
    order = rng.permutation(len(data.x))
    device = next(module.parameters()).device
    losses = []
    for step in range(steps_per_epoch(data, options.batch_size)):
        index = order[step * options.batch_size:(step + 1) * options.batch_size]
        x = torch.from_numpy(augment(data.x[index], rng) if options.augment else data.x[index]).to(device)
        y = torch.from_numpy(data.y[index]).long().to(device)
        loss = F.cross_entropy(module(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        losses.append(loss.item())
        if after_step is not None:
            after_step(module)
    return float(np.mean(losses))


def augment(x: np.ndarray, rng) -> np.ndarray:
    """Random crops of the 4-pixel zero-padded images and horizontal flips."""
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    dy, dx = rng.integers(0, 9, size=n), rng.integers(0, 9, size=n)
    out = np.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, :, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


def reinitialize(module: TorchModel, seed: int = 0):
    """Kaiming-normal weights, zero biases, BatchNorm at identity, as torch's
    CIFAR training scripts initialise."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.dim() > 1:
                fan_in = parameter[0].numel()
                parameter.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
            else:
                parameter.zero_()
        for node in module.graph.node:
            if node.op_type == "BatchNormalization":
                for name, value in zip(node.input[1:5], (1.0, 0.0, 0.0, 1.0)):
                    getattr(module, module.names[name]).fill_(value)


def evaluate(predict, data, batch_size=256) -> dict:
    """Top-1 and top-5 accuracy of `predict(x) -> logits` on labelled data."""
    if data.y is None:
        raise UsageError(f"{data.summary()}: evaluation needs labels")
    top1 = top5 = 0
    for start in range(0, len(data.x), batch_size):
        logits = predict(data.x[start:start + batch_size])
        ranked = np.argsort(-logits, axis=1)[:, :5]
        labels = data.y[start:start + batch_size]
        top1 += int((ranked[:, 0] == labels).sum())
        top5 += int((ranked == labels[:, None]).any(axis=1).sum())
    return {"samples": len(data.x), "top1": top1 / len(data.x), "top5": top5 / len(data.x)}


def torch_predictor(module: TorchModel):
    device = next(module.parameters()).device

    def predict(x):
        module.eval()
        with torch.no_grad():
            return module(torch.from_numpy(x).to(device)).cpu().numpy()
    return predict
