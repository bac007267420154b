"""Small networks for the demos: an MLP for 2D data, a small CNN and a small ResNet for images."""
from __future__ import annotations

from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def mlp(in_features: int = 2, hidden: tuple[int, ...] = (64, 64), n_classes: int = 2,
        activation: str = "tanh") -> nn.Sequential:
    """A plain multilayer perceptron: Linear → activation, repeated, then a Linear head."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden sizes must be >= 1, got {hidden}")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def small_cnn(in_channels: int = 3, n_classes: int = 10, width: int = 32) -> nn.Sequential:
    """Three conv-BN-ReLU stages with pooling; ≈ 0.14 M parameters at width 32."""
    w = width
    return nn.Sequential(
        *_conv_bn(in_channels, w), *_conv_bn(w, w), nn.MaxPool2d(2),
        *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),
        *_conv_bn(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4 * w, n_classes),
    )


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


def small_resnet(in_channels: int = 3, n_classes: int = 10, width: int = 32) -> nn.Sequential:
    """A ResNet with three stages of one basic block each; ≈ 0.31 M parameters at width 32, 0.69 M at 48."""
    w = width
    return nn.Sequential(
        *_conv_bn(in_channels, w),
        _Block(w, w, 1), _Block(w, 2 * w, 2), _Block(2 * w, 4 * w, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, n_classes),
    )


# The image networks by short name, as the image page and the CLI offer them.
IMAGE_MODELS = {"cnn": small_cnn, "resnet": small_resnet}
IMAGE_MODEL_NAMES = {"cnn": "Small CNN", "resnet": "Small ResNet"}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
