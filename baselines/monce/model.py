"""MoNCE as a Translator: CUT's networks and training step (``baselines.cut_codebase``) with the PatchNCE term replaced by the
modulated contrastive loss (``baselines.monce.loss``), as the authors' ``CUT_MoNCE/models/cut_model.py`` does in
``calculate_MoNCE_loss``: per NCE layer, the same shared patch positions and MLP projections, then MoNCE instead
of PatchNCE, averaged over layers, times lambda_NCE; the identity term (CUT mode) uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from baselines.cut_codebase.model import CUT, CUTConfig, QUICK, SMOKE
from baselines.monce.loss import modulated_nce

COST_TYPES = ("hard", "easy")


@dataclass(frozen=True)
class MoNCEConfig(CUTConfig):
    # CUT_MoNCE/options/train_options.py defaults; their train_horse2zebra.sh uses eps 0.1, train_cityscapes.sh
    # batch 12: the option defaults are the method's defaults.
    cost_type: str = "hard"  # "hard": weight by similarity; "easy": by 1 - similarity
    eps: float = 1.0  # entropic regularisation of the transport problem
    neg_term_weight: float = 1.0
    ot_iters: int = 50  # Sinkhorn iterations (MoNCELoss passes max_iter=50)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cost_type not in COST_TYPES:
            raise ValueError(f"cost_type must be one of {', '.join(COST_TYPES)}, got {self.cost_type!r}")
        if self.eps <= 0:
            raise ValueError(f"eps must be positive, got {self.eps}")


PRESETS = {"paper": MoNCEConfig(), "quick": MoNCEConfig(**QUICK), "smoke": MoNCEConfig(**SMOKE)}


class MoNCE(CUT):
    METHOD, KIND = "monce", "a MoNCE"
    PRESETS = PRESETS

    def __init__(self, preset: str = "quick", device: str = "cpu", config: MoNCEConfig | None = None) -> None:
        super().__init__(preset, device, variant="monce", config=config or PRESETS[preset])

    def patch_loss(self, q: torch.Tensor, k: torch.Tensor, batch_size: int) -> torch.Tensor:
        c = self.config
        return modulated_nce(q, k, batch_size, c.nce_t, num_patches=c.num_patches, eps=c.eps, cost_type=c.cost_type,
                             neg_term_weight=c.neg_term_weight, iters=c.ot_iters)
