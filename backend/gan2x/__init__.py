"""GAN2X backend: inverse rendering of a pretrained image GAN into a relightable asset."""
__version__ = "0.1.0"
