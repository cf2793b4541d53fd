"""EnlightenGAN as a pretrained translator: the authors' released low-light model (``200_net_G_A.pth``, trained on
their own unpaired low/normal-light collection), applied to adverse images as their ``predict.py`` does. Nothing is
trained here: N2D3's EnlightenGAN row (BDD100K FID 103.5) is this kind of use, and the training recipe (a global and
a patch RaGAN discriminator, a VGG self-feature-preserving loss on the authors' converted VGG-16) is not ported.

Their test protocol: the image at its own size, in [-1, 1] (``resize_or_crop no``), its attention map from the same
tensor, the generator in eval mode (BatchNorm running statistics), the output mapped back by ``(y + 1) / 2`` and
clipped. Their released model was trained and run with PyTorch 0.3.1 (their requirement.txt), whose bilinear
upsampling aligned corners; today's PyTorch does not unless asked, so ``align_corners`` is true by default (the
computation their weights were trained for) and false reproduces their code run on PyTorch >= 0.4.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from baselines.enlightengan.networks import EnlightenGenerator, attention_map
from bench.learned import META_CONFIG, META_METHOD, CheckpointMismatch, decode_text, encode_text
from bench.translator import MethodUnavailable, TrainBudget, UnpairedData
from bench.weights import WeightsFile, WeightsMissing, file_sha256, offline, resolve

PUBLISHED = WeightsFile(
    key="enlightengan-g", filename="200_net_G_A.pth",
    url="https://drive.google.com/uc?export=download&id=1AkV-n2MdyfuZTFvcon8Z4leyVb0i7x63",
    sha256_prefix="",  # the authors publish no checksum: the file's sha256 is recorded with every number
    used_by="enlightengan (the authors' released generator, README 'pretrained model')", optional=True)


@dataclass(frozen=True)
class EnlightenGANConfig:
    align_corners: bool = True  # PyTorch 0.3.1's bilinear upsampling, as the released weights were trained


class EnlightenGAN:
    """The ``enlightengan`` method: the authors' generator, no training."""

    name = "enlightengan"
    learned = False

    def __init__(self, preset: str = "quick", device: str = "cpu", config: EnlightenGANConfig | None = None) -> None:
        self.config = config or EnlightenGANConfig()
        self.device = torch.device(device)
        self.g = EnlightenGenerator(self.config.align_corners).to(self.device).eval()
        self.checkpoint_sha256 = ""  # "": no published file loaded yet

    def fit(self, data: UnpairedData, budget: TrainBudget, out_dir: Path) -> None:
        """Nothing to train: find the published generator (downloaded unless offline) and load it."""
        try:
            path = resolve(PUBLISHED, download=not offline()).path
        except WeightsMissing as exc:
            raise MethodUnavailable(exc.one_line) from None
        from bench.checkpoints import CheckpointError, load_tensor_dict

        try:
            state = load_tensor_dict(path)
        except CheckpointError as exc:  # e.g. the HTML page Google Drive serves instead of a file
            raise MethodUnavailable(f"{path} is not a readable checkpoint ({exc}); delete it and download "
                                    f"{PUBLISHED.url} by hand") from None
        self.load_state_dict(state, source=path)
        self.checkpoint_sha256 = file_sha256(path)

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        if not self.checkpoint_sha256:
            raise CheckpointMismatch("enlightengan has no weights loaded: run it through bench run (the published "
                                     "model) or bench translate --checkpoint 200_net_G_A.pth")
        with torch.no_grad():
            x = images.to(self.device) * 2 - 1
            y, _ = self.g(x, attention_map(x))
        return ((y + 1) / 2).clamp(0, 1).float()

    # ---------------------------------------------------------------- weights
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The generator's weights, with the settings and the published file's hash they came from."""
        meta = {**asdict(self.config), "checkpoint_sha256": self.checkpoint_sha256}
        return {**{f"g.{k}": v for k, v in self.g.state_dict().items()},
                META_METHOD: encode_text(self.name), META_CONFIG: encode_text(json.dumps(meta))}

    def load_state_dict(self, state: dict[str, torch.Tensor], source: Path | str = "the checkpoint") -> None:
        """A cell's checkpoint (``g.`` keys and metadata) or the authors' file (their key names; PyTorch 0.3 files
        lack BatchNorm's batch counter, which inference does not read)."""
        if META_METHOD in state:
            maker = decode_text(state[META_METHOD])
            if maker != self.name:
                raise CheckpointMismatch(f"not an EnlightenGAN checkpoint: it was written by method {maker!r}; use "
                                         f"--method {maker}")
            meta = json.loads(decode_text(state[META_CONFIG]))
            self.checkpoint_sha256 = meta.pop("checkpoint_sha256", "") or "unknown"
            self.config = replace(self.config, **meta)
            self.g.align_corners = self.config.align_corners
            weights = {k[2:]: v for k, v in state.items() if k.startswith("g.")}
        else:
            weights = dict(state)
            self.checkpoint_sha256 = self.checkpoint_sha256 or "unknown"
        own = self.g.state_dict()
        for key in own:
            if key.endswith("num_batches_tracked"):
                weights.setdefault(key, own[key])
        missing = sorted(set(own) - set(weights))
        unexpected = sorted(set(weights) - set(own))
        wrong = sorted(k for k in set(own) & set(weights) if tuple(weights[k].shape) != tuple(own[k].shape))
        if missing or unexpected or wrong:
            parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                     f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                     f"{len(wrong)} of another shape (e.g. {wrong[0]})" if wrong else ""]
            raise CheckpointMismatch(f"{source} is not the EnlightenGAN generator (the authors' 200_net_G_A.pth): "
                                     f"{'; '.join(p for p in parts if p)} weights")
        self.g.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
        self.g.eval()
