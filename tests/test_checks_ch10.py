"""Chapter 10 checkers accept the reference and name typical wrong answers of the right shape."""

import pytest
import torch

from diffusion_lite.checks import ExerciseError, ch10


def test_velocity_from_denoiser():
    ch10.check_velocity_from_denoiser(ch10.velocity_from_denoiser_reference)
    ch10.check_velocity_from_denoiser(lambda x0_hat, x_t, t: (x_t - x0_hat) / t[:, None])
    eps_hat = lambda x0, x, t: (x - (1 - t[:, None]) * x0) / t[:, None]  # noqa: E731
    wrong = {
        "σ-view slope": lambda x0_hat, x_t, t: eps_hat(x0_hat, x_t, t),
        "data at t = 1": lambda x0_hat, x_t, t: x0_hat - eps_hat(x0_hat, x_t, t),
        "divided by 1 − t": lambda x0_hat, x_t, t: (x_t - x0_hat) / (1 - t[:, None]),
        "divided by σ": lambda x0_hat, x_t, t: (x_t - x0_hat) * (1 - t[:, None]) / t[:, None],
        "still has to be divided by t": lambda x0_hat, x_t, t: x_t - x0_hat,
    }
    for message, fn in wrong.items():
        with pytest.raises(ExerciseError, match=message):
            ch10.check_velocity_from_denoiser(fn)
    with pytest.raises(ExerciseError, match="constant factor of about -1.1"):  # not in the list
        ch10.check_velocity_from_denoiser(lambda x0_hat, x_t, t: (x0_hat - x_t) / t[:, None] * 1.1)
    with pytest.raises(ExerciseError, match="t\\[:, None\\]"):
        ch10.check_velocity_from_denoiser(lambda x0_hat, x_t, t: (x_t - x0_hat) / t)

    def stub(x0_hat, x_t, t):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch10.check_velocity_from_denoiser(stub)


def test_euler_t_step():
    ch10.check_euler_t_step(ch10.euler_t_step_reference)
    full = lambda x, t: torch.full((x.shape[0],), t, dtype=x.dtype)  # noqa: E731
    wrong = {
        "towards the noise": lambda velocity, x, t, t_next: x + (t - t_next) * velocity(x, full(x, t)),
        "current time t": lambda velocity, x, t, t_next: x + (t_next - t) * velocity(x, full(x, t_next)),
        "full unit step": lambda velocity, x, t, t_next: x - velocity(x, full(x, t)),
        "not in σ": lambda velocity, x, t, t_next: x + (t_next / (1 - t_next) - t / (1 - t))
        * velocity(x, full(x, t)),
    }
    for message, fn in wrong.items():
        with pytest.raises(ExerciseError, match=message):
            ch10.check_euler_t_step(fn)
    with pytest.raises(ExerciseError, match="differs"):  # Heun is not Euler
        def heun(velocity, x, t, t_next):
            x_e = x + (t_next - t) * velocity(x, full(x, t))
            return x + (t_next - t) * (velocity(x, full(x, t)) + velocity(x_e, full(x, t_next))) / 2
        ch10.check_euler_t_step(heun)


def test_straightness():
    ch10.check_straightness(ch10.straightness_reference)

    def make(mean_coords=False, plain_mean=False, no_time=False, displacements=False):
        def straightness(ts, xs):
            dt = ts.diff()
            v = xs.diff(dim=0) if displacements else xs.diff(dim=0) / dt[:, None, None]
            chord = (xs[-1] - xs[0]) / (ts[-1] - ts[0])
            if displacements:
                chord = chord * dt[:, None, None]
            sq = (v - chord).pow(2)
            dev = (sq.mean(-1) if mean_coords else sq.sum(-1)).mean(-1)
            if plain_mean:
                return dev.mean()
            total = (dt.abs() * dev).sum()
            return total if no_time else total / (ts[-1] - ts[0]).abs()
        return straightness

    assert float(make()(torch.linspace(1, 0, 5), torch.randn(5, 2, 2))) >= 0
    ch10.check_straightness(make())
    for message, kwargs in {"averaged them": dict(mean_coords=True),
                            "weight each by": dict(plain_mean=True),
                            "total time": dict(no_time=True),
                            "not displacements": dict(displacements=True)}.items():
        with pytest.raises(ExerciseError, match=message):
            ch10.check_straightness(make(**kwargs))
    with pytest.raises(ExerciseError, match="constant factor|differs"):  # path length, not S
        ch10.check_straightness(lambda ts, xs: xs.diff(dim=0).norm(dim=-1).sum(0).mean())
