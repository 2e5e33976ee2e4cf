"""ResNet-50, CIFAR form.

Stem Conv3x3 stride 1 (no max pool); Bottleneck blocks [3, 4, 6, 3] with the
stride on the 3x3 conv (torchvision v1.5); a 1x1 conv + BatchNorm shortcut
where the shape changes. Under `width_mult` the stem (64) and each stage's
planes p become scale_width(w, width_mult); a block outputs scaled p * 4.
"""

from torch import nn

from ncc.study.zoo import scale_width

EXPANSION = 4
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (planes, blocks, first stride)
STEM = 64


def _conv_bn(inp: int, out: int, kernel: int, stride: int = 1) -> list:
    return [nn.Conv2d(inp, out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out)]


class Bottleneck(nn.Module):
    def __init__(self, inp: int, planes: int, stride: int):
        super().__init__()
        out = planes * EXPANSION
        self.body = nn.Sequential(*_conv_bn(inp, planes, 1), nn.ReLU(inplace=True),
                                  *_conv_bn(planes, planes, 3, stride), nn.ReLU(inplace=True),
                                  *_conv_bn(planes, out, 1))
        changes_shape = stride != 1 or inp != out
        self.shortcut = nn.Sequential(*_conv_bn(inp, out, 1, stride)) if changes_shape else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


def resnet50(classes: int, input_size: int, width_mult: float = 1.0) -> nn.Sequential:
    del input_size  # global average pooling makes the network size-agnostic
    width = scale_width(STEM, width_mult)
    layers = [*_conv_bn(3, width, 3), nn.ReLU(inplace=True)]
    for planes, blocks, stride in STAGES:
        planes = scale_width(planes, width_mult)
        for i in range(blocks):
            layers.append(Bottleneck(width, planes, stride if i == 0 else 1))
            width = planes * EXPANSION
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, classes))
