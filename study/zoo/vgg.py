"""VGG-11 (configuration A) with BatchNorm, CIFAR form.

Conv3x3 (with bias) + BatchNorm + ReLU, 2x2 max pools, then one Linear layer
over the flattened 512 x (H/32) x (W/32) features. Under `width_mult` every
conv width w becomes scale_width(w, width_mult); the Linear input follows.
"""

from torch import nn

from ncc.study.zoo import scale_width

CFG_A = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11(classes: int, input_size: int, width_mult: float = 1.0) -> nn.Sequential:
    layers, channels = [], 3
    for item in CFG_A:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        width = scale_width(item, width_mult)
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True)]
        channels = width
    side = input_size // 32
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * side * side, classes))
