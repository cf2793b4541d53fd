"""The ForkGAN family in TF-exact PyTorch, shared by ``baselines.forkgan`` and ``augan`` (AU-GAN was built on
ForkGAN's code): 'SAME'-padded bias-free convolutions and learned instance norm (``layers``), the family's
generator with AU-GAN's optional T-net and confidence head and ForkGAN's multi-scale discriminator
(``networks``), the LSGAN and L1 terms (``losses``), and the batch history pool (``pool``). No method registers
here."""
