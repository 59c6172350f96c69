"""Text with discrete diffusion (chapter 15): a checkable toy language, masked diffusion, an AR baseline.

| module | concept |
|---|---|
| :mod:`~diffusion_lite.text.language` | the toy grammar: sampling, exact p(s) and entropy, validator, tokenizer, splits |
| :mod:`~diffusion_lite.text.masked` | absorbing-state (masked) diffusion: forward masking, the bound as a weighted masked cross-entropy, the k-step sampler |
| :mod:`~diffusion_lite.text.autoregressive` | the left-to-right baseline: exact log-likelihood, sampling |
| :mod:`~diffusion_lite.text.measures` | validity, bits per token, diversity, novelty, infilling, with intervals over seeds |
| :mod:`~diffusion_lite.text.zoo` | the cached models of the chapter (one entry per seed) |

The network of both models is :class:`diffusion_lite.nets.token_transformer.TokenTransformer`.
"""
