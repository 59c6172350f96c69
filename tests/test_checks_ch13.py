"""Chapter 13 checkers accept the reference and name typical wrong answers of the right shape."""

import pytest
import torch

from diffusion_lite.checks import ExerciseError, ch13

inv = torch.linalg.inv


def _gauss_ok(mu, Sigma, A, y, noise_std):  # the gain (Kalman) form: a different correct route
    S = A @ Sigma @ A.T + noise_std**2 * torch.eye(A.shape[0], dtype=A.dtype)
    K = Sigma @ A.T @ inv(S)
    return mu + K @ (y - A @ mu), Sigma - K @ A @ Sigma


def test_gaussian_posterior_accepts_correct_answers():
    ch13.check_gaussian_posterior(ch13.gaussian_posterior_reference)
    ch13.check_gaussian_posterior(_gauss_ok)


def _slip(kind):
    def wrong(mu, Sigma, A, y, noise_std):
        S, s = Sigma, noise_std
        if kind == "precision":
            return ch13.gaussian_posterior_reference(mu, S, A, y, s)[0], inv(S) + A.T @ A / s**2
        if kind == "transpose":
            C = inv(inv(S) + A @ A.T / s**2)
            return C @ (inv(S) @ mu + A @ y / s**2), C
        if kind == "add_cov":
            C = inv(S + A.T @ A / s**2)
            return C @ (S @ mu + A.T @ y / s**2), C
        if kind == "mean_sigma":
            C = inv(inv(S) + A.T @ A / s**2)
            return C @ (S @ mu + A.T @ y / s**2), C
        if kind == "std":
            C = inv(inv(S) + A.T @ A / s)
            return C @ (inv(S) @ mu + A.T @ y / s), C
        return mu, S  # the prior, ignoring y
    return wrong


@pytest.mark.parametrize("wrong, diagnosis", [
    (_slip("precision"), "precision"), (_slip("transpose"), "AᵀA"),
    (_slip("add_cov"), "precisions add"), (_slip("mean_sigma"), "Σ⁻¹μ"),
    (_slip("std"), "squared"), (_slip("prior"), "complete the square"),
])
def test_gaussian_posterior_names_the_slip(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch13.check_gaussian_posterior(wrong)


def test_gaussian_posterior_shape_and_stub():
    with pytest.raises(ExerciseError, match="pair"):
        ch13.check_gaussian_posterior(lambda mu, Sigma, A, y, noise_std: mu)

    def stub(mu, Sigma, A, y, noise_std):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch13.check_gaussian_posterior(stub)


def _dps_variant(sign=1.0, jacobian=True, sigma2=True, transpose=False):
    def dps(denoiser, x, sigma, A, y, noise_std):
        Aop = A.T if transpose else A
        xg = x.clone().requires_grad_(True)
        x0 = denoiser(xg, sigma)
        if jacobian:
            ll = -0.5 * ((y - x0 @ Aop.T) ** 2).sum() / noise_std**2
            (g,) = torch.autograd.grad(ll, xg)
        else:
            g = (y - x0 @ Aop.T) @ Aop / noise_std**2
        return (x0 + sign * (sigma**2 if sigma2 else 1.0) * g).detach()
    return dps


def test_dps_accepts_reference():
    ch13.check_dps_denoise(ch13.dps_denoise_reference)
    ch13.check_dps_denoise(_dps_variant())


@pytest.mark.parametrize("wrong, diagnosis", [
    (_dps_variant(sign=-1.0), "subtracted"),
    (_dps_variant(jacobian=False), "through the denoiser"),
    (_dps_variant(sigma2=False), "D \\+ σ² g"),
    (_dps_variant(transpose=True), "applied Aᵀ"),
    (lambda denoiser, x, sigma, A, y, noise_std: denoiser(x, sigma), "unguided"),
    (_dps_variant(sign=0.5), "differs"),
])
def test_dps_names_the_slip(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch13.check_dps_denoise(wrong)


def test_dps_shape():
    with pytest.raises(ExerciseError, match="shape"):
        ch13.check_dps_denoise(lambda denoiser, x, sigma, A, y, noise_std: x[:, :1])
