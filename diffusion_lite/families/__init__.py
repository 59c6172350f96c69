"""Other generative families, built small to compare with diffusion on the same data (chapter 9).

GANs, VAEs, normalising flows and autoregressive models are *not* kinds of diffusion model; each
module here builds one family with its training function, its sampler and, where the family has
one, its likelihood. Pieces that later chapters reuse (the GAN losses in :mod:`.gan`, the VAE's
reparameterisation and KL term in :mod:`.vae`) are the single copy of those ideas.

| module | what it holds |
|---|---|
| ``gan`` | losses, MLP generator/discriminator, one alternating step, ``train_gan`` |
| ``vae`` | reparameterisation, KL, Gaussian encoder/decoder, ELBO and IWAE bound, ``train_vae`` |
| ``flow`` | affine coupling layers, RealNVP, exact log-density, ``train_flow`` |
| ``autoregressive`` | mixture-density conditionals (2D), MADE over grey levels (digits), ``train_ar`` |
| ``common`` | the two data sets, dequantisation, the shared training loop, seed intervals |
| ``zoo`` | the chapter's configurations, cached training, one ``Model`` interface per family |
| ``evaluate`` | one table row per model and seed with chapter 8's metrics, summaries over seeds |
"""
