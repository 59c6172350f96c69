"""Chapter 14: signals — random functions with GP noise, time series, and sound.

| module | concept |
|---|---|
| :mod:`.gp` | kernels, GP draws, GP noise and whitening, the exact denoiser for GP data |
| :mod:`.functions` | cached function models (white vs GP noise), covariance vs a noise floor |
| :mod:`.series` | seasonal series, masks, CRPS, interval coverage, the seasonal naive baseline |
| :mod:`.imputation` | the CSDI-style conditional model: training batches, imputation/forecast |
| :mod:`.sound` | synthesised notes, the pitch estimator, spectral distance, spectrograms |
| :mod:`.waveform` | the DiffWave-style waveform model of notes |
| :mod:`.audio` | WAV in/out and offline embedded players |
| :mod:`.common` | the seeded SignalNet denoiser and training call the three models share |
"""
