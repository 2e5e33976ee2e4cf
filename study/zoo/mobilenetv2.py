"""MobileNetV2, CIFAR form (as in kuangliu/pytorch-cifar).

Differences from the ImageNet network: the stem conv has stride 1 and the
second stage (t=6, c=24) has stride 1, so a 32x32 input is downsampled 8x.
Blocks follow torchvision: no expand conv when t == 1, residual add only when
stride is 1 and the widths match, ReLU6 everywhere (exported as Clip).

Under `width_mult` every width w of the table, the stem (32) and the head
(1280) becomes scale_width(w, width_mult); a block's expanded width is
round(scaled input width * t), as in the original.
"""

from torch import nn

from ncc.study.zoo import scale_width

# (expansion t, output width c, repeats n, first stride s)
STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM, HEAD = 32, 1280


def _conv_bn(inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1,
             relu6: bool = True) -> list:
    layers = [nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(out)]
    return layers + [nn.ReLU6(inplace=True)] if relu6 else layers


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expansion: int):
        super().__init__()
        hidden = round(inp * expansion)
        expand = _conv_bn(inp, hidden, 1) if expansion != 1 else []
        self.body = nn.Sequential(*expand,
                                  *_conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  *_conv_bn(hidden, out, 1, relu6=False))
        self.residual = stride == 1 and inp == out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def mobilenetv2(classes: int, input_size: int, width_mult: float = 1.0) -> nn.Sequential:
    del input_size  # global average pooling makes the network size-agnostic
    width = scale_width(STEM, width_mult)
    layers = _conv_bn(3, width, 3)
    for expansion, channels, repeats, stride in STAGES:
        out = scale_width(channels, width_mult)
        for i in range(repeats):
            layers.append(InvertedResidual(width, out, stride if i == 0 else 1, expansion))
            width = out
    head = scale_width(HEAD, width_mult)
    return nn.Sequential(*layers, *_conv_bn(width, head, 1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(head, classes))
