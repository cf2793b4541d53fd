"""AU-GAN's configuration: one dataclass, with the official code's defaults and three presets.

Defaults follow the official training (main.py, README): ngf 64, ndf 64 split over n_d = 2
discriminators, n_scale 2, LSGAN, lambda_L1 10, lambda_conf 1, pool 50, Adam 2e-4 / beta1 0.5,
20 epochs with linear decay from epoch 10, load 286 -> random crop 256 on a 1:2 aspect, batch 8.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.learned import Schedule

# Fields that change the networks' shapes: a checkpoint made with other values cannot load.
ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_d", "n_scale", "use_tnet", "use_uncertainty")
UNCERTAINTY_FORMS = ("official", "paper")


@dataclass(frozen=True)
class AUGANConfig(Schedule):
    ARCHITECTURE_FIELDS = ARCHITECTURE_FIELDS
    LEGACY_FIELDS = ("amp_bf16",)  # written before training precision became the engine's --precision

    ngf: int = 64
    ndf: int = 64  # split evenly over the n_d discriminators (official: df_dim = ndf // n_d)
    n_d: int = 2
    n_scale: int = 2
    use_tnet: bool = True
    use_afm: bool = True
    use_uncertainty: bool = True
    # 'official': AUGAN.py's conf_criterion, mean(exp(-s) * 5 * |a - a'| + s / 2) (what the released
    # training ran). 'paper': the Laplacian negative log-likelihood, loss_utils.conf_criterion_lp,
    # mean(|a - a'| * 2 / s + log(2 s)), defined in the code but unused.
    uncertainty_form: str = "official"
    lambda_l1: float = 10.0
    lambda_conf: float = 1.0
    noise_std: float = 0.02  # Gaussian noise on the reconstruction decoder's features
    pool_size: int = 50
    beta1: float = 0.5
    epochs: int = 20
    epoch_decay: int = 10  # constant lr before this epoch, then linear decay to 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.uncertainty_form not in UNCERTAINTY_FORMS:
            raise ValueError(f"uncertainty_form must be one of {UNCERTAINTY_FORMS}, got {self.uncertainty_form!r}")
        if self.ndf % self.n_d:
            raise ValueError(f"ndf ({self.ndf}) must be divisible by n_d ({self.n_d})")
        if self.fine_size % 4:
            raise ValueError(f"fine_size ({self.fine_size}) must be a multiple of 4 (two stride-2 stages)")

    @property
    def df_dim(self) -> int:
        return self.ndf // self.n_d


PRESETS: dict[str, AUGANConfig] = {
    # The official loader stretches each training image to 0..255 before its anti-aliased resize (scipy.misc.imresize
    # on a float image); the small presets keep images as they are.
    "paper": AUGANConfig(stretch_input=True),
    # Small widths, native-resolution 64x128 crops: the synthetic suite trains in minutes on 2 cores.
    "quick": AUGANConfig(ngf=16, ndf=16, batch_size=4, load_size=None, fine_size=64, epochs=6, epoch_decay=3,
                         max_steps=500, checkpoint_every=100, log_every=10),
    "smoke": AUGANConfig(ngf=8, ndf=8, batch_size=2, load_size=None, fine_size=32, epochs=1, epoch_decay=1,
                         max_steps=12, checkpoint_every=4, log_every=2, pool_size=4),
}

ABLATIONS: dict[str, dict] = {
    "augan": {},
    "augan-no-tnet": {"use_tnet": False},
    "augan-no-afm": {"use_afm": False},
    "augan-no-uncertainty": {"use_uncertainty": False},
}


def preset_config(preset: str, variant: str = "augan", **overrides) -> AUGANConfig:
    return replace(PRESETS[preset], **ABLATIONS[variant], **overrides)
