"""What the pytorch-CycleGAN-and-pix2pix code base gives the code bases that copy it (CUT, Santa, ToDayGAN, UNSB):
the residual block, instance norm, Xavier initialisation, the LSGAN loss and the image pool, shared by
``baselines.cyclegan``, ``baselines.cut_codebase``, ``baselines.santa``, ``baselines.todaygan`` and
``baselines.unsb`` (module indices as in the official ``networks.py``, so the authors' state dicts load unchanged)."""

from __future__ import annotations

import random
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


def lsgan(pred: torch.Tensor, target: float) -> torch.Tensor:
    """The code base's ``GANLoss('lsgan')``: the mean squared distance of the discriminator's map to the label."""
    return F.mse_loss(pred, torch.full_like(pred, target))


def xavier_init(module: nn.Module, gain: float, embeddings: bool = False) -> None:
    """The code base's ``init_net(init_type='xavier')``: every conv and linear weight Xavier-normal, every bias 0
    (biases a module set itself included); Santa's copy also draws its embedding tables (``embeddings``)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            nn.init.zeros_(m.bias)
        elif embeddings and isinstance(m, nn.Embedding):
            nn.init.xavier_normal_(m.weight, gain=gain)


def instance_norm(channels: int) -> nn.Module:
    """The official ``norm='instance'``: no affine parameters, no running statistics."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: Callable[[int], nn.Module] = instance_norm,
                 act: Callable[[], nn.Module] = lambda: nn.ReLU(True)) -> None:
        super().__init__()
        # Indices as in the official block without dropout: pad 0, conv 1, norm 2, relu 3, pad 4, conv 5, norm 6.
        # ``norm``: the code base's norm_layer argument (Santa passes its AdaIN); ``act``: ToDayGAN's PReLU.
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(dim), act(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ImagePool:
    """The official per-image history buffer: after it fills, each image is swapped for a stored one w.p. 1/2."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.images = size, []
        self.rng = random.Random(seed)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return images
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif self.rng.random() > 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"images": [t.cpu() for t in self.images], "rng": repr(self.rng.getstate())}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        import ast

        self.images = [t.to(device) for t in state["images"]]
        self.rng.setstate(ast.literal_eval(state["rng"]))
