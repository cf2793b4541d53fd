"""LPIPS v0.1 with the AlexNet trunk, through the lpips package.

The package's linear calibration layers ship inside it; the AlexNet trunk is torchvision's
``alexnet-owt-7be5be79.pth``, which we resolve through :mod:`bench.weights` (hash checked,
``weights_only=True``) and load into the package's own network, instead of letting
torchvision download it at construction time.
"""

from __future__ import annotations

import warnings

import torch

from bench.weights import ALEXNET, ResolvedWeights, resolve

# lpips splits AlexNet.features into five slices at these indices (lpips/pretrained_networks.py).
_SLICES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 4, 9: 4, 10: 5, 11: 5}


class LpipsAlex:
    def __init__(self, weights: ResolvedWeights | None = None, device: str = "cpu") -> None:
        import lpips

        self.weights = weights or resolve(ALEXNET)
        with warnings.catch_warnings():
            # lpips builds the trunk through torchvision's deprecated `pretrained=` argument.
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            self.model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        trunk = {}
        for key, value in self.weights.load_state_dict().items():
            if not key.startswith("features."):
                continue
            idx, param = key.split(".")[1:]
            trunk[f"slice{_SLICES[int(idx)]}.{idx}.{param}"] = value
        self.model.net.load_state_dict(trunk, strict=True)
        self.device = torch.device(device)
        self.model.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image distances of N x 3 x H x W float images in [0, 1]."""
        d = self.model(x.to(self.device), y.to(self.device), normalize=True)
        return d.flatten().cpu()
