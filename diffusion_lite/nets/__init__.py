"""Networks of the later chapters (the transformer denoiser, autoencoders, 1D convolutions).

The 2D MLP (:mod:`diffusion_lite.models`), the U-Net (:mod:`diffusion_lite.unet`) and the digit
classifier (:mod:`diffusion_lite.classifier`) predate this folder and stay where they are.
"""
