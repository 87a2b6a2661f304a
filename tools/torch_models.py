"""PyTorch definitions of oodkit's networks, written from the reference code bases oodkit follows,
with the same state-dict names (so `model.load_state_dict(oodkit_state)` is strict):

  resnet18, resnet34, resnet50   kuangliu/pytorch-cifar ResNet (projection shortcuts, stride in the
                                 3x3 conv of a Bottleneck), 3x3 stem for 32x32 inputs
  resnet20/32/44/56              CIFAR ResNet with option-A (zero-padded, subsampled) shortcuts
  wrn40_2                        xternalz/WideResNet-pytorch (pre-activation blocks; the projection
                                 shortcut reads the pre-activated input), dropout as given
  densenet100                    DenseNet3 of the ODIN / Energy code (DenseNet-BC, growth 12,
                                 compression 0.5, bottleneck layers)
  decoder                        the heatmap decoder (DCGAN generator: fc, then `main` =
                                 [ConvT, BN, ReLU] * m, ConvT 1x1, Tanh), see build_decoder

These are independent of oodkit's C++ (nothing is generated from it); tools/torch_reference.py
(GPU checks and speed) and tools/make_model_fixtures.py (the CPU fixtures of
tests/test_model_fixtures.cpp) use them. Importing this module needs PyTorch.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):  # kuangliu ResNet-18/34 block
    expansion = 1

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):  # kuangliu ResNet-50 block
    expansion = 4

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != 4 * planes:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, 4 * planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(4 * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNetKuangliu(nn.Module):
    def __init__(self, block, blocks, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inp = 64
        for s, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
            layers = []
            for b in range(n):
                stride = 2 if (s > 0 and b == 0) else 1
                layers.append(block(inp, planes, stride))
                inp = planes * block.expansion
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # = avg_pool2d(out, 4) for 32x32 inputs
        return self.linear(out)


class BlockA(nn.Module):  # CIFAR ResNet block with the option-A (parameter-free) shortcut
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.inp, self.planes = stride, inp, planes

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.stride != 1 or self.inp != self.planes:
            before = (self.planes - self.inp) // 2
            after = self.planes - self.inp - before
            sc = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, before, after))
        return F.relu(out + sc)


class ResNetCifar(nn.Module):
    def __init__(self, depth, num_classes):
        super().__init__()
        assert (depth - 2) % 6 == 0, depth
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        inp = 16
        for s, planes in enumerate((16, 32, 64)):
            layers = []
            for b in range(n):
                stride = 2 if (s > 0 and b == 0) else 1
                layers.append(BlockA(inp, planes, stride))
                inp = planes
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


class WideBlock(nn.Module):  # xternalz BasicBlock
    def __init__(self, inp, out, stride, drop_rate):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.equal = inp == out
        self.convShortcut = None if self.equal else nn.Conv2d(inp, out, 1, stride, 0, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        h = F.relu(self.bn2(self.conv1(o)))
        if self.drop_rate > 0:
            h = F.dropout(h, p=self.drop_rate, training=self.training)
        h = self.conv2(h)
        return h + (x if self.equal else self.convShortcut(o))


class Group(nn.Module):  # xternalz NetworkBlock / DenseNet3 DenseBlock: a Sequential named `layer`
    def __init__(self, layers):
        super().__init__()
        self.layer = nn.Sequential(*layers)

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth, k, num_classes, drop_rate):
        super().__init__()
        n = (depth - 4) // 6
        ch = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        for g in range(3):
            layers = [WideBlock(ch[g] if i == 0 else ch[g + 1], ch[g + 1], (1 if g == 0 else 2) if i == 0 else 1,
                                drop_rate) for i in range(n)]
            setattr(self, f"block{g + 1}", Group(layers))
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.fc = nn.Linear(ch[3], num_classes)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn1(out))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


class DenseLayer(nn.Module):  # DenseNet3 BottleneckBlock
    def __init__(self, inp, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv1 = nn.Conv2d(inp, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class Transition(nn.Module):  # DenseNet3 TransitionBlock
    def __init__(self, inp, out):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv1 = nn.Conv2d(inp, out, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)


class DenseNet3(nn.Module):
    def __init__(self, depth, num_classes, growth=12, reduction=0.5):
        super().__init__()
        n = (depth - 4) // 6  # bottleneck: (depth - 4) / 3 layers per block, halved
        c = 2 * growth
        self.conv1 = nn.Conv2d(3, c, 3, 1, 1, bias=False)
        for b in range(3):
            setattr(self, f"block{b + 1}", Group([DenseLayer(c + i * growth, growth) for i in range(n)]))
            c += n * growth
            if b < 2:
                out = int(math.floor(c * reduction))
                setattr(self, f"trans{b + 1}", Transition(c, out))
                c = out
        self.bn1 = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        out = self.trans1(self.block1(self.conv1(x)))
        out = self.trans2(self.block2(out))
        out = F.relu(self.bn1(self.block3(out)))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


class Decoder(nn.Module):
    """Heatmap decoder: concat(z [N, D], onehot [N, K]) -> fc -> [N, C0, 1, 1] -> ConvT(k4 s1 p0) +
    BN + ReLU, then ConvT(k4 s2 p1) + BN + ReLU per further stage, ConvT 1x1 -> 3, tanh."""

    def __init__(self, feature_dim, num_classes, fc_channels, channels):
        super().__init__()
        self.fc_channels = fc_channels
        self.fc = nn.Linear(feature_dim + num_classes, fc_channels)
        layers, inp = [], fc_channels
        for i, c in enumerate(channels):
            layers += [nn.ConvTranspose2d(inp, c, 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU(True)]
            inp = c
        layers += [nn.ConvTranspose2d(inp, 3, 1, 1, 0, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z, onehot):
        h = self.fc(torch.cat([z, onehot], 1))
        return self.main(h.view(h.size(0), self.fc_channels, 1, 1))


def decoder_channels(arch, num_classes, width=1.0):
    """(C0, [c0..c3]) of the 32x32 decoder preset for a classifier `arch` (oodkit's
    DecoderConfig::for_classifier), the ConvT channel counts scaled by `width` as oodkit's
    scale_decoder_width (max(1, round half away from zero of c * width)); C0 is not scaled."""
    if arch.startswith("wrn"):
        c0, ch = 128, [256, 128, 64, 32]
    else:
        c0, ch = (100 if num_classes <= 10 else 512), [512, 256, 128, 64]
    return c0, [max(1, int(math.floor(c * width + 0.5))) for c in ch]


def build_model(arch, num_classes=10, drop_rate=0.3):
    if arch == "resnet18":
        return ResNetKuangliu(BasicBlock, (2, 2, 2, 2), num_classes)
    if arch == "resnet34":
        return ResNetKuangliu(BasicBlock, (3, 4, 6, 3), num_classes)
    if arch == "resnet50":
        return ResNetKuangliu(Bottleneck, (3, 4, 6, 3), num_classes)
    if arch == "wrn40_2":
        return WideResNet(40, 2, num_classes, drop_rate)
    if arch == "densenet100":
        return DenseNet3(100, num_classes)
    if arch.startswith("resnet") and arch[6:].isdigit() and (int(arch[6:]) - 2) % 6 == 0:
        return ResNetCifar(int(arch[6:]), num_classes)
    raise SystemExit(f"torch_models.py: unknown architecture '{arch}' "
                     "(resnet18/34/50, resnet20/32/44/56, wrn40_2, densenet100)")
