"""The CUT code base (taesungp/contrastive-unpaired-translation) that CUT, FastCUT and MoNCE are built on: its
anti-aliased ResNet generator and PatchGAN (``networks``) and the one-sided contrastive translator whose per-patch
loss a fork may replace (``model``). Registers no method itself."""
