"""What MUNIT and UNIT share, as the authors' maintained code base (NVlabs/MUNIT, whose trainers hold both) does:
its ``networks.py`` (encoders, decoders, the multi-scale discriminator, AdaIN) and the two-autoencoder GAN
training both methods run (``training.TwoAutoencoderGAN``). No method registers here."""
