"""Random-initialised weight files of the right architectures, for tests and offline timing only.

Numbers computed with these are NOT the metrics: the results label them ``SUBSTITUTE`` because
their hashes differ from the published files. Convolutions are re-initialised Kaiming-normal
(fan_in, ReLU gain): with PyTorch's default init Inception's 2048-d features have std ~5e-8,
every FID comes out ~0, and a test comparing FIDs would check nothing.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch

from bench.weights import ALEXNET, CLEANFID_INCEPTION, DINOV2_VITL14, INCEPTION_V3


def kaiming_reinit(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            std = (2.0 / m.weight[0].numel()) ** 0.5
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * std)
                if m.bias is not None:
                    m.bias.zero_()


class _CleanFidInception(torch.nn.Module):
    """What clean-fid's ``InceptionV3W`` calls on NVIDIA's TorchScript file: ``layers`` (299 x 299 input scaled to
    [-1, 1] -> N x 2048 x 1 x 1) and ``forward(x, return_features)`` on 0..255 input of any size."""

    def __init__(self, layers: torch.nn.Module) -> None:
        super().__init__()
        self.layers = layers
        # NVIDIA publishes no hash of the real file, so this one says what it is (CleanFidExtractor reads it).
        self.substitute = True

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return torch.flatten(self.layers((x - 128) / 128), 1)


def make_substitute_weights(folder: Path) -> Path:
    """Write substitute Inception-v3 (torch-fidelity layout and clean-fid's TorchScript), AlexNet and DINOv2 files
    under their published names.

    The DINOv2 file is a small ViT (width 128, 2 blocks) in the official key layout: a random ViT-L/14
    would be 1.2 GB, and the loader reads the sizes off the state dict anyway.
    """
    from bench.metrics.dinov2 import DinoV2

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchvision.models import alexnet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, **k: None), \
            mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", lambda *a, **k: {}):
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    kaiming_reinit(net, 0)
    torch.save(net.state_dict(), folder / INCEPTION_V3.filename)
    from bench.metrics.fid_kid import _BLOCKS

    trunk = torch.nn.Sequential(*(getattr(net, name) for name in _BLOCKS)).eval()
    with torch.no_grad():
        traced = torch.jit.trace(trunk, torch.zeros(1, 3, 299, 299))
    torch.jit.save(torch.jit.script(_CleanFidInception(traced)), str(folder / CLEANFID_INCEPTION.filename))
    alex = alexnet(weights=None)
    kaiming_reinit(alex, 1)
    torch.save(alex.state_dict(), folder / ALEXNET.filename)
    torch.manual_seed(2)
    vit = DinoV2(dim=128, depth=2)
    for p in (vit.cls_token, vit.pos_embed):
        torch.nn.init.normal_(p, std=0.02)
    torch.save(vit.state_dict(), folder / DINOV2_VITL14.filename)
    return folder
