"""Other generative families, built small to compare with diffusion on the same data (chapter 9).

GANs, VAEs, normalising flows and autoregressive models are *not* kinds of diffusion model; each
module here builds one family with its training function, its sampler and, where the family has
one, its likelihood. Pieces that later chapters reuse (the GAN losses in :mod:`.gan`, the VAE's
reparameterisation and KL term in :mod:`.vae`) are the single copy of those ideas.
"""
