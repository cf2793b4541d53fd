"""AU-GAN (Kwak et al., BMVC 2021) in PyTorch. The model lands in its own issue; this package is
discovered by the translator registry like ``baselines``."""
