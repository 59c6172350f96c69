"""diffusion-lite: the small package behind the diffusion-lite course.

Import modules by concept, e.g. ``from diffusion_lite import physics, schedules``.
One contract ties models and samplers together: ``denoiser(x, sigma) -> x0_hat``.
"""

__version__ = "0.1.0"
