"""The ResNet trunk every method's network is cut from: backbone layouts, global poolings, ImageNet weights.

:func:`build_trunk` slices one torchvision ResNet into ``stem`` (conv1, bn1, relu, maxpool, layer1), ``layer2``,
``layer3`` and ``layer4`` with the configured last stride (1 = the reference's: 384×192 input ⇒ 24×12 layer4 map),
its 3×3 convolutions :class:`rlqlib.methods.conv_grad.SmallMapConv2d` (plain convolutions but for the weight
gradient on small maps in CPU bf16 training);
RLQ/CAL (:mod:`rlqlib.methods.rlq.model`) copies pieces into branches, FIRe² (:mod:`rlqlib.methods.fire2.model`)
chains them. Initial weights are loaded into the whole ResNet before it is sliced, so every copy made of a piece
starts from them: ImageNet's (``pretrained``; nothing is downloaded, torchvision's file is read from the torch hub
cache) or a given trunk state (``trunk``: the trunk of another run, e.g. the shared pretraining run of
``ModelConfig.init="synthcc"``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from rlqlib.methods.conv_grad import use_small_map_convs
from rlqlib.methods.tv import import_torchvision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneSpec:
    """A torchvision ResNet layout.

    Attributes:
        block: ``"basic"`` (BasicBlock) or ``"bottleneck"``.
        layers: blocks per stage.
        width: channel multiplier of every stage (1.0 = torchvision's 64-128-256-512 planes).
        weights: torchvision weights enum holding the ImageNet weights (IMAGENET1K_V1), None if there are none.
    """

    block: str
    layers: tuple[int, int, int, int]
    width: float = 1.0
    weights: str | None = None


BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec("bottleneck", (3, 4, 6, 3), 1.0, "ResNet50_Weights"),  # the paper's
    "resnet34": BackboneSpec("basic", (3, 4, 6, 3), 1.0, "ResNet34_Weights"),
    "resnet18": BackboneSpec("basic", (2, 2, 2, 2), 1.0, "ResNet18_Weights"),
    # CPU presets, from scratch: ResNet-18 at half width (32-64-128-256 ch, 2.8 M trunk parameters) ...
    "resnet_tiny": BackboneSpec("basic", (2, 2, 2, 2), 0.5),
    # ... and one block per stage at quarter width (16-32-64-128 ch, 0.31 M) for smoke runs.
    "resnet_micro": BackboneSpec("basic", (1, 1, 1, 1), 0.25),
}


def _pool_maxavg(x: Tensor) -> Tensor:
    return torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)  # (B, 2C), max first


def _pool_avg(x: Tensor) -> Tensor:
    return x.mean(dim=(2, 3))  # (B, C)


def _pool_max(x: Tensor) -> Tensor:
    return x.amax(dim=(2, 3))  # (B, C)


# name -> (function (B, C, H, W) -> (B, m·C), feature multiplier m)
POOLINGS: dict[str, tuple] = {"maxavg": (_pool_maxavg, 2), "avg": (_pool_avg, 1), "max": (_pool_max, 1)}


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw the random initialisation of the modules built inside from ``seed``; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def layer4_channels(backbone: str) -> int:
    """Output channels of the backbone's layer4 (2048 for ResNet-50), without building it."""
    spec = BACKBONES[backbone]
    return max(1, round(512 * spec.width)) * (4 if spec.block == "bottleneck" else 1)


def _resnet_class(width: float) -> type:
    """torchvision's ResNet, with every stage's channel count scaled by ``width`` when it is not 1."""
    tv = import_torchvision()
    if width == 1.0:
        return tv.models.ResNet

    class ScaledResNet(tv.models.ResNet):
        def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # noqa: D401 (torchvision hook)
            if planes == 64:  # the first stage: also narrow the stem (ResNet.__init__ built it 64 wide)
                self.inplanes = max(1, round(64 * width))
                self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
                self.bn1 = self._norm_layer(self.inplanes)
            return super()._make_layer(block, max(1, round(planes * width)), blocks, stride, dilate)

    return ScaledResNet


def imagenet_weights_path(backbone: str) -> tuple[Path, str]:
    """Where the ImageNet weights of ``backbone`` must lie in the torch hub cache, and their download URL."""
    tv = import_torchvision()
    spec = BACKBONES[backbone]
    if spec.weights is None:
        raise ValueError(f"backbone {backbone!r} has no ImageNet weights")
    url = getattr(tv.models, spec.weights).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def _load_imagenet(net: nn.Module, backbone: str) -> None:
    path, url = imagenet_weights_path(backbone)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {backbone} not found at {path} (nothing is downloaded). Download {url} "
            f"on a machine with internet and copy it to exactly that path (the torch hub cache, "
            f"$TORCH_HOME/hub/checkpoints/), or build the model with pretrained=False."
        )
    log.info("loading ImageNet weights for %s from %s", backbone, path)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _load_trunk(net: nn.Module, trunk: Mapping[str, Tensor]) -> None:
    """Load a trunk state (torchvision ResNet keys ``conv1``, ``bn1``, ``layer1``…``layer4``, no ``fc``) into
    ``net``."""
    missing, unexpected = net.load_state_dict(dict(trunk), strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(f"the trunk state does not fit this ResNet: missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]} (another backbone?)")


def _set_last_stride(layer4: nn.Sequential, stride: int) -> None:
    block = layer4[0]
    for conv in (block.conv1, block.conv2):  # Bottleneck strides conv2, BasicBlock conv1
        if conv.stride != (1, 1):
            conv.stride = (stride, stride)
    block.downsample[0].stride = (stride, stride)


def build_trunk(backbone: str, pretrained: bool = False, last_stride: int = 1,
                trunk: Mapping[str, Tensor] | None = None) -> tuple[nn.ModuleDict, int]:
    """One torchvision ResNet sliced into ``stem`` (conv1, bn1, relu, maxpool, layer1), ``layer2``, ``layer3``,
    ``layer4``; ``fc`` and ``avgpool`` are dropped.

    Args:
        pretrained: start from torchvision's ImageNet weights.
        trunk: start from this trunk state instead (torchvision keys without ``fc``, e.g.
            :func:`rlqlib.methods.rlq.model.trunk_state`); it supersedes ``pretrained``.

    Returns:
        the pieces, and the channel count of layer4's output.
    """
    spec = BACKBONES[backbone]
    tv = import_torchvision()
    block = {"basic": tv.models.resnet.BasicBlock, "bottleneck": tv.models.resnet.Bottleneck}[spec.block]
    net = _resnet_class(spec.width)(block, list(spec.layers))
    if trunk is not None:
        _load_trunk(net, trunk)
    elif pretrained:
        _load_imagenet(net, backbone)
    _set_last_stride(net.layer4, last_stride)
    use_small_map_convs(net)  # CPU bf16 training: a faster weight gradient on small maps (layer4 at 128×64)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
    pieces = nn.ModuleDict({"stem": stem, "layer2": net.layer2, "layer3": net.layer3, "layer4": net.layer4})
    return pieces, net.inplanes  # layer4's output channels
