"""The official history pool (utils.ImagePool): it stores whole batches of (fake A, fake B).

Until it holds ``max_size`` batches it returns the new pair. Afterwards, with probability 1/2 it
returns a stored fake A and a stored fake B (from two independently drawn slots) and puts the new
ones in their place; otherwise it returns the new pair.
"""

from __future__ import annotations

import torch


class HistoryPool:
    def __init__(self, max_size: int = 50, seed: int = 0) -> None:
        self.max_size = max_size
        self.fake_a: list[torch.Tensor] = []
        self.fake_b: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, fake_a: torch.Tensor, fake_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.max_size <= 0:
            return fake_a, fake_b
        if len(self.fake_a) < self.max_size:
            self.fake_a.append(fake_a.detach().clone())
            self.fake_b.append(fake_b.detach().clone())
            return fake_a, fake_b
        if torch.rand((), generator=self.generator) > 0.5:
            i = int(torch.randint(self.max_size, (), generator=self.generator))
            old_a, self.fake_a[i] = self.fake_a[i], fake_a.detach().clone()
            j = int(torch.randint(self.max_size, (), generator=self.generator))
            old_b, self.fake_b[j] = self.fake_b[j], fake_b.detach().clone()
            return old_a, old_b
        return fake_a, fake_b

    def state_dict(self) -> dict:
        return {"fake_a": [t.cpu() for t in self.fake_a], "fake_b": [t.cpu() for t in self.fake_b],
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.fake_a = [t.to(device) for t in state["fake_a"]]
        self.fake_b = [t.to(device) for t in state["fake_b"]]
        self.generator.set_state(state["generator"])
