"""Small CIFAR-10 CNNs in the shapes public model libraries give these families,
exported by torch.onnx at opset 17 as a user would export them.

Widths are small so compiles stay quick; what matters is the graph each
family leaves after export: shape subgraphs (Shape/Gather/Concat into a
Reshape or ConstantOfShape), channel splits and shuffles, SE blocks,
grouped convolutions, hard activations, long 1x1 shortcuts, a shifted-pixel
shortcut (spatial Slice and Pad), and an LSTM-cell attention whose weights
several units share.
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


# --- WRN -------------------------------------------------------------------------

class WideBlock(nn.Module):
    """The reference WRN block: pre-activation, dropout between the convolutions
    (a no-op in eval), a 1x1 shortcut from the activated input when widths differ."""

    def __init__(self, cin, cout, stride, dropout=0.3):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = F.dropout(F.relu(self.bn2(self.conv1(out))), p=self.dropout, training=self.training)
        return self.conv2(out) + shortcut


class WideResNet(nn.Module):
    """WRN-16-4: three groups of two blocks, widths 16k/32k/64k."""

    def __init__(self, depth=16, k=4):
        super().__init__()
        blocks, cin = [], 16
        for group, width in enumerate((16 * k, 32 * k, 64 * k)):
            for i in range((depth - 4) // 6):
                blocks.append(WideBlock(cin, width, 2 if group and not i else 1))
                cin = width
        self.stem, self.blocks = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.head = Head(cin)

    def forward(self, x):
        return self.head(F.relu(self.bn(self.blocks(self.stem(x)))))


# --- RoR -------------------------------------------------------------------------

class RoRUnit(nn.Module):
    def __init__(self, cin, cout, last_activate):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout), conv_bn(cout, cout, act=None))
        self.shortcut = conv_bn(cin, cout, 1, act=None) if cin != cout else nn.Identity()
        self.last_activate = last_activate

    def forward(self, x):
        out = self.body(x) + self.shortcut(x)
        return F.relu(out) if self.last_activate else out


class RoRStage(nn.Module):
    """Residual units inside a 1x1-convolution shortcut spanning the stage (pytorchcv's RoR-3)."""

    def __init__(self, cin, widths, downsample):
        super().__init__()
        self.shortcut = conv_bn(cin, widths[-1], 1, act=None)
        units = []
        for i, width in enumerate(widths):
            units.append(RoRUnit(cin, width, last_activate=i != len(widths) - 1))
            cin = width
        self.units = nn.Sequential(*units)
        self.pool = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)) if downsample else nn.Identity()

    def forward(self, x):
        return self.pool(self.units(x) + self.shortcut(x))


class RoR(nn.Module):
    """RoR-3-20: a third, root-level shortcut (1x1 convolution, stride 4) across all stages."""

    def __init__(self, widths=((16, 16), (32, 32), (64, 64))):
        super().__init__()
        self.stem = conv_bn(3, 16)
        self.shortcut = conv_bn(16, widths[-1][-1], 1, 4, act=None)
        stages, cin = [], 16
        for i, stage in enumerate(widths):
            stages.append(RoRStage(cin, stage, downsample=i != len(widths) - 1))
            cin = stage[-1]
        self.stages = nn.Sequential(*stages)
        self.head = Head(cin)

    def forward(self, x):
        x = self.stem(x)
        return self.head(F.relu(self.stages(x) + self.shortcut(x)))


# --- NIN -------------------------------------------------------------------------

def mlpconv(cin, cout, kernel):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, 1, kernel // 2), nn.ReLU())


class NIN(nn.Module):
    """Network in Network as pytorchcv's CIFAR model, at a quarter of its width: mlpconv
    stacks (a 5x5 or 3x3 convolution then 1x1s), pooling and dropout between them, and a
    classifier that is a 1x1 convolution to the classes, averaged over the 8x8 map."""

    def __init__(self, widths=((48, 40, 24), (48, 48, 48), (48, 48)), first_kernels=(5, 5, 3), classes=10):
        super().__init__()
        layers, cin = [], 3
        for i, (stage, kernel) in enumerate(zip(widths, first_kernels)):
            if i:
                layers += [nn.MaxPool2d(3, 2, 1) if i == 1 else nn.AvgPool2d(3, 2, 1), nn.Dropout(0.5)]
            for j, width in enumerate(stage):
                layers.append(mlpconv(cin, width, kernel if j == 0 else 1))
                cin = width
        self.features = nn.Sequential(*layers, mlpconv(cin, classes, 1), nn.AvgPool2d(8, 1))

    def forward(self, x):
        x = self.features(x)
        return x.view(x.size(0), -1)


# --- Shake-Shake -----------------------------------------------------------------

class ShakeShakeShortcut(nn.Module):
    """pytorchcv's downsampling shortcut: two strided 1x1 paths, the second shifted by one
    pixel (a spatial Slice and Pad), concatenated and batch-normalised."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.pool = nn.AvgPool2d(1, stride)
        self.conv1 = nn.Conv2d(cin, cout // 2, 1, bias=False)
        self.conv2 = nn.Conv2d(cin, cout // 2, 1, bias=False)
        self.pad = nn.ZeroPad2d((1, 0, 1, 0))
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        shifted = self.pool(self.pad(x[:, :, :-1, :-1]))
        return self.bn(torch.cat((self.conv1(self.pool(x)), self.conv2(shifted)), 1))


class ShakeShakeUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(conv_bn(cin, cout, stride=stride), conv_bn(cout, cout, act=None))
                                      for _ in range(2))
        self.shortcut = ShakeShakeShortcut(cin, cout, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        # training draws alpha per sample; evaluation mixes the branches 0.5/0.5
        alpha = torch.rand(x.size(0), 1, 1, 1) if self.training else 0.5
        mixed = alpha * self.branches[0](x) + (1 - alpha) * self.branches[1](x)
        return F.relu(mixed + self.shortcut(x))


class ShakeShakeResNet(nn.Module):
    """Shake-Shake-ResNet-14-2x16d: two residual branches per unit, two units a stage."""

    def __init__(self, widths=(16, 32, 64), units=2):
        super().__init__()
        layers, cin = [conv_bn(3, 16)], 16
        for i, width in enumerate(widths):
            for j in range(units):
                layers.append(ShakeShakeUnit(cin, width, 2 if i and not j else 1))
                cin = width
        self.features = nn.Sequential(*layers)
        self.head = Head(cin)

    def forward(self, x):
        return self.head(self.features(x))


# --- DIA-ResNet ------------------------------------------------------------------

class DIALSTMCell(nn.Module):
    """pytorchcv's one-layer DIA-LSTM cell: gates from the pooled features and the previous
    hidden state through small MLPs, the hidden state a sigmoid (not tanh) of the cell.
    (pytorchcv's dropout feeds only a second layer's input, so one layer has none.)"""

    def __init__(self, channels):
        super().__init__()

        def amp():
            return nn.Sequential(nn.Linear(channels, channels // 4), nn.ReLU(), nn.Linear(channels // 4, 4 * channels))

        self.x_amp, self.h_amp = amp(), amp()

    def forward(self, x, h, c):
        gates = self.x_amp(x) + self.h_amp(h[0])
        i_gate, f_gate, c_gate, o_gate = gates.chunk(4, dim=1)
        cy = torch.sigmoid(f_gate) * c[0] + torch.sigmoid(i_gate) * torch.tanh(c_gate)
        hy = torch.sigmoid(o_gate) * torch.sigmoid(cy)
        return torch.stack([hy], 0), torch.stack([cy], 0)


class DIAAttention(nn.Module):
    """One module shared by every unit of a stage, its (h, c) state passed from unit to unit."""

    def __init__(self, channels):
        super().__init__()
        self.lstm = DIALSTMCell(channels)

    def forward(self, x, hc=None):
        w = F.adaptive_avg_pool2d(x, 1)
        w = w.view(w.size(0), -1)
        if hc is None:
            h = c = torch.zeros_like(w).unsqueeze(dim=0)
        else:
            h, c = hc
        h, c = self.lstm(w, h, c)
        return x * h[-1].unsqueeze(dim=2).unsqueeze(dim=3), (h, c)


class DIAUnit(nn.Module):
    def __init__(self, cin, cout, stride, attention):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, stride=stride), conv_bn(cout, cout, act=None))
        self.shortcut = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()
        self.attention = attention

    def forward(self, x, hc):
        out, hc = self.attention(self.body(x), hc)
        return F.relu(out + self.shortcut(x)), hc


class DIAResNet(nn.Module):
    """DIA-ResNet-14 for CIFAR: three stages of two units, one attention module per stage."""

    def __init__(self, widths=(16, 32, 64), units=2):
        super().__init__()
        self.stem, cin, self.stages = conv_bn(3, 16), 16, nn.ModuleList()
        for i, width in enumerate(widths):
            attention = DIAAttention(width)
            stage = nn.ModuleList()
            for j in range(units):
                stage.append(DIAUnit(cin, width, 2 if i and not j else 1, attention))
                cin = width
            self.stages.append(stage)
        self.head = Head(cin)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            hc = None
            for unit in stage:
                x, hc = unit(x, hc)
        return self.head(x)


FAMILIES = {"preact-resnet": PreActResNet, "se-resnet": SEResNet, "densenet": DenseNet, "resnext": ResNeXt,
            "pyramidnet": PyramidNet, "shufflenetv2": ShuffleNetV2, "mobilenetv3": MobileNetV3,
            "ghostnet": GhostNet, "wrn": WideResNet, "ror": RoR, "nin": NIN, "shake-shake": ShakeShakeResNet,
            "dia-resnet": DIAResNet}


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
