"""Small CIFAR-10 CNNs in the shapes public model libraries give these families,
exported by torch.onnx at opset 17 as a user would export them.

Widths are small so compiles stay quick; what matters is the graph each
family leaves after export: shape subgraphs (Shape/Gather/Concat into a
Reshape or ConstantOfShape), channel splits and shuffles, SE blocks,
grouped convolutions and hard activations.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

OPSET = 17
INPUT = (1, 3, 32, 32)


def conv_bn(cin, cout, kernel=3, stride=1, groups=1, act=nn.ReLU):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class Head(nn.Module):
    def __init__(self, channels, classes=10):
        super().__init__()
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        # the x.size(0) reshape of public libraries: a Shape-Gather-Concat into Reshape
        return self.fc(F.adaptive_avg_pool2d(x, 1).view(x.size(0), -1))


# --- pre-activation ResNet -------------------------------------------------------

class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        return self.conv2(F.relu(self.bn2(out))) + shortcut


class PreActResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.blocks = nn.Sequential(PreActBlock(16, 16, 1), PreActBlock(16, 32, 2), PreActBlock(32, 32, 1))
        self.bn = nn.BatchNorm2d(32)
        self.head = Head(32)

    def forward(self, x):
        return self.head(F.relu(self.bn(self.blocks(self.stem(x)))))


# --- SE-ResNet -------------------------------------------------------------------

class SqueezeExcite(nn.Module):
    """GlobalAveragePool-Conv-Relu-Conv-gate-Mul; the gate Sigmoid, or a hard sigmoid."""

    def __init__(self, channels, reduction=4, gate=nn.Sigmoid):
        super().__init__()
        self.reduce = nn.Conv2d(channels, max(1, channels // reduction), 1)
        self.expand = nn.Conv2d(max(1, channels // reduction), channels, 1)
        self.gate = gate()

    def forward(self, x):
        w = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.expand(F.relu(self.reduce(w))))


class SEBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, stride=stride), conv_bn(cout, cout, act=None))
        self.se = SqueezeExcite(cout)
        self.shortcut = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.se(self.body(x)) + self.shortcut(x))


class SEResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 16), SEBlock(16, 16, 1), SEBlock(16, 32, 2))
        self.head = Head(32)

    def forward(self, x):
        return self.head(self.features(x))


# --- DenseNet --------------------------------------------------------------------

class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(2 * growth), nn.Conv2d(2 * growth, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        out = self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        return torch.cat([x, out], 1)


class DenseNet(nn.Module):
    def __init__(self, growth=8):
        super().__init__()
        layers, width = [nn.Conv2d(3, 16, 3, 1, 1, bias=False)], 16
        for block in range(2):
            for _ in range(3):
                layers.append(DenseLayer(width, growth))
                width += growth
            if block == 0:
                layers += [nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, width // 2, 1, bias=False),
                           nn.AvgPool2d(2)]
                width //= 2
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(width), nn.ReLU())
        self.head = Head(width)

    def forward(self, x):
        return self.head(self.features(x))


# --- ResNeXt ---------------------------------------------------------------------

class ResNeXtBlock(nn.Module):
    def __init__(self, cin, cout, stride, cardinality=32, group_width=2):
        super().__init__()
        inner = cardinality * group_width
        self.body = nn.Sequential(conv_bn(cin, inner, 1), conv_bn(inner, inner, 3, stride, groups=cardinality),
                                  conv_bn(inner, cout, 1, act=None))
        self.shortcut = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class ResNeXt(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 32), ResNeXtBlock(32, 64, 1), ResNeXtBlock(64, 64, 2))
        self.head = Head(64)

    def forward(self, x):
        return self.head(self.features(x))


# --- PyramidNet ------------------------------------------------------------------

class PyramidBlock(nn.Module):
    """Pre-activation block whose widening shortcut is the input padded with
    zero channels sized from x.size(), as public PyramidNets do: by F.pad
    where it also pools, by concatenating torch.zeros elsewhere."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.pool = nn.AvgPool2d(2) if stride == 2 else None

    def forward(self, x):
        out = self.bn3(self.conv2(F.relu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = self.pool(x) if self.pool is not None else x
        batch, residual_channels, height, width = out.size()
        shortcut_channels = shortcut.size(1)
        if residual_channels != shortcut_channels and self.pool is not None:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, residual_channels - shortcut_channels))
        elif residual_channels != shortcut_channels:
            padding = torch.zeros(batch, residual_channels - shortcut_channels, height, width)
            shortcut = torch.cat((shortcut, padding), 1)
        return out + shortcut


class PyramidNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, act=None)
        self.blocks = nn.Sequential(PyramidBlock(16, 20, 1), PyramidBlock(20, 24, 2), PyramidBlock(24, 28, 1))
        self.bn = nn.BatchNorm2d(28)
        self.head = Head(28)

    def forward(self, x):
        return self.head(F.relu(self.bn(self.blocks(self.stem(x)))))


# --- ShuffleNetV2 ----------------------------------------------------------------

def channel_shuffle(x, groups):
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    return torch.transpose(x, 1, 2).contiguous().view(batch, -1, height, width)


class ShuffleBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride, branch = stride, cout // 2
        if stride == 2:
            self.left = nn.Sequential(conv_bn(cin, cin, 3, 2, groups=cin, act=None), conv_bn(cin, branch, 1))
        right_in = cin if stride == 2 else branch
        self.right = nn.Sequential(conv_bn(right_in, branch, 1), conv_bn(branch, branch, 3, stride, groups=branch,
                                                                         act=None), conv_bn(branch, branch, 1))

    def forward(self, x):
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
            out = torch.cat((left, self.right(right)), 1)
        else:
            out = torch.cat((self.left(x), self.right(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 16), ShuffleBlock(16, 32, 2), ShuffleBlock(32, 32, 1),
                                      ShuffleBlock(32, 32, 1), conv_bn(32, 64, 1))
        self.head = Head(64)

    def forward(self, x):
        return self.head(self.features(x))


# --- MobileNetV3 -----------------------------------------------------------------

class InvertedResidualV3(nn.Module):
    def __init__(self, cin, expand, cout, stride, act, se):
        super().__init__()
        layers = [conv_bn(cin, expand, 1, act=act), conv_bn(expand, expand, 3, stride, groups=expand, act=act)]
        if se:
            layers.append(SqueezeExcite(expand, gate=nn.Hardsigmoid))
        self.body = nn.Sequential(*layers, conv_bn(expand, cout, 1, act=None))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV3(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 16, act=nn.Hardswish),
                                      InvertedResidualV3(16, 32, 16, 1, nn.ReLU, se=True),
                                      InvertedResidualV3(16, 48, 24, 2, nn.Hardswish, se=False),
                                      InvertedResidualV3(24, 64, 24, 1, nn.Hardswish, se=True),
                                      conv_bn(24, 64, 1, act=nn.Hardswish))
        self.head = Head(64)

    def forward(self, x):
        return self.head(self.features(x))


# --- GhostNet --------------------------------------------------------------------

class ClipHardSigmoid(nn.Module):
    """GhostNet's hard sigmoid as some libraries write it: clamp(x / 6 + 0.5, 0, 1)."""

    def forward(self, x):
        return torch.clamp(x / 6 + 0.5, 0.0, 1.0)


class GhostModule(nn.Module):
    """A primary convolution and a cheap depthwise one, concatenated and cut to `cout`."""

    def __init__(self, cin, cout, relu=True):
        super().__init__()
        self.cout, primary = cout, (cout + 1) // 2
        act = nn.ReLU if relu else None
        self.primary = conv_bn(cin, primary, 1, act=act)
        self.cheap = conv_bn(primary, primary, 3, groups=primary, act=act)

    def forward(self, x):
        x1 = self.primary(x)
        return torch.cat([x1, self.cheap(x1)], dim=1)[:, :self.cout, :, :]


class GhostBottleneck(nn.Module):
    def __init__(self, cin, hidden, cout, stride):
        super().__init__()
        layers = [GhostModule(cin, hidden)]
        if stride == 2:
            layers.append(conv_bn(hidden, hidden, 3, 2, groups=hidden, act=None))
        layers += [SqueezeExcite(hidden, gate=ClipHardSigmoid), GhostModule(hidden, cout, relu=False)]
        self.body = nn.Sequential(*layers)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin, act=None),
                                       conv_bn(cin, cout, 1, act=None)))

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class GhostNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 16), GhostBottleneck(16, 32, 16, 1), GhostBottleneck(16, 48, 24, 2),
                                      GhostBottleneck(24, 48, 24, 1), conv_bn(24, 64, 1))
        self.head = Head(64)

    def forward(self, x):
        return self.head(self.features(x))


FAMILIES = {"preact-resnet": PreActResNet, "se-resnet": SEResNet, "densenet": DenseNet, "resnext": ResNeXt,
            "pyramidnet": PyramidNet, "shufflenetv2": ShuffleNetV2, "mobilenetv3": MobileNetV3,
            "ghostnet": GhostNet}


def randomize_batchnorm(module, generator):
    """Trained-looking BatchNorm statistics, so folding them is not trivially exact."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):
                n = layer.num_features
                layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                layer.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                layer.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                layer.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def export(name, path, seed=0):
    """Build family `name` (seeded) and export it as model libraries' export
    scripts do: torch.onnx's defaults at opset 17, batch dimension dynamic."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = FAMILIES[name]().eval()
    randomize_batchnorm(module, torch.Generator().manual_seed(seed + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(INPUT),), str(path), opset_version=OPSET, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return module
