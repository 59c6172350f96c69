"""Chapter 11's cached models: a 2D teacher and its few-step students, one cache entry per seed.

Everything is trained on ``mixtures.ring()`` (8 modes, radius 2, std 0.15) and cached with
:func:`pretrained.register`, so the notebook and the benchmark load instead of training:

| name | what | sampled with | NFE |
|---|---|---|---|
| ``few_step_teacher`` | chapter 5's default run (``training.default_2d``) | any chapter-6 sampler | any |
| ``few_step_pd`` | progressive-distillation students, 8/4/2/1 steps | ``samplers.sample_ddim`` | steps |
| ``few_step_cm`` | a consistency model: distilled from the teacher, from the oracle, or trained alone | ``consistency.sample_consistency`` | steps |
| ``few_step_ddgan`` | a denoising-diffusion GAN generator for T steps | ``ddgan.sample_ddgan`` | T |

:func:`sample_student` draws from any of them with exactly the stated NFE.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from . import consistency, ddgan, distillation, mixtures, pretrained, samplers, schedules, training
from .denoisers import Denoiser
from .models import MLP

__all__ = ["ring", "sigma_data", "TeacherConfig", "PDConfig", "CMConfig", "DDGANModelConfig",
           "teacher_denoiser", "pd_students", "sample_student", "cm_ladder", "solver_samples",
           "evaluate", "distance_and_floor", "Scores", "interval", "train_cpu_seconds", "SIGMA_MAX", "STUDENTS"]

SIGMA_MAX = 20.0        # every student starts sampling from σ_max · z
CM_SIGMA_MIN = 0.002    # σ_min of the consistency models
STUDENTS = ("pd", "cd", "cd_oracle", "ct", "ddgan")


def ring() -> mixtures.GaussianMixture:
    """The chapter's data: chapter 5's ring of 8 Gaussians."""
    return mixtures.ring()


def sigma_data() -> float:
    m = ring()
    return (m.total_variance / m.dim) ** 0.5


def _ring_data(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    return ring().sample(n, generator=generator)


def _fingerprint() -> str:
    m = ring()
    blob = torch.cat([m.weights, m.means.flatten(), m.variances.flatten()]).numpy().tobytes()
    return "ring:" + hashlib.sha256(blob).hexdigest()


def _mlp(seed: int) -> MLP:
    return training.default_2d(sigma_data(), seed=seed)[0]


# ----------------------------------------------------------------------------- the teacher
@dataclass(frozen=True)
class TeacherConfig:
    seed: int = 0          # seeds initialisation and training
    steps: int = 2000      # chapter 5's default run
    batch_size: int = 512


def _train_teacher(cfg: TeacherConfig) -> tuple[nn.Module, dict]:
    net, tc = training.default_2d(sigma_data(), seed=cfg.seed, steps=cfg.steps,
                                  batch_size=cfg.batch_size, progress=False)
    state = training.train(net, _ring_data, tc)
    return state.ema.net, {}


def teacher_denoiser(seed: int = 0) -> Denoiser:
    """The cached teacher of ``seed`` as the contract D(x, σ) (EDM preconditioning)."""
    net = pretrained.pretrained("few_step_teacher", TeacherConfig(seed=seed), verbose=False)
    return Denoiser(net, "edm", sigma_data()).requires_grad_(False).eval()


# ----------------------------------------------------------------------------- progressive distillation
@dataclass(frozen=True)
class PDConfig:
    seed: int = 0
    distill: distillation.DistillConfig = field(default_factory=lambda: distillation.DistillConfig(
        base_steps=16, final_steps=1, steps_per_halving=250, lr=1e-3, sigma_min=0.02,
        sigma_max=SIGMA_MAX, progress=False))

    def halvings(self) -> list[int]:
        n, out = self.distill.base_steps // 2, []
        while n >= self.distill.final_steps:
            out.append(n)
            n //= 2
        return out


def _build_pd(cfg: PDConfig) -> nn.Module:
    return nn.ModuleDict({str(n): _mlp(cfg.seed) for n in cfg.halvings()})


def _train_pd(cfg: PDConfig) -> tuple[nn.Module, dict]:
    teacher = teacher_denoiser(cfg.seed)
    dc = dataclasses.replace(cfg.distill, seed=cfg.seed)
    students = distillation.progressive_distillation(teacher, _ring_data, dc)
    return nn.ModuleDict({str(n): s.net for n, s in students.items()}), {}


def pd_students(seed: int = 0) -> dict[int, Denoiser]:
    """{steps: student denoiser} of the cached progressive distillation of ``seed``."""
    nets = pretrained.pretrained("few_step_pd", PDConfig(seed=seed), verbose=False)
    return {int(n): Denoiser(net, "edm", sigma_data()).requires_grad_(False) for n, net in nets.items()}


# ----------------------------------------------------------------------------- consistency models
def _default_cm() -> consistency.ConsistencyConfig:
    return consistency.ConsistencyConfig(steps=800, batch_size=256, lr=1e-3, n_scales=18, mu=0.95,
                                         sigma_min=CM_SIGMA_MIN, sigma_max=SIGMA_MAX,
                                         sigma_data=sigma_data(), progress=False)


@dataclass(frozen=True)
class CMConfig:
    seed: int = 0
    teacher: str = "learned"  # "learned" (distil the cached teacher), "oracle" (the exact D), "none" (CT)
    train: consistency.ConsistencyConfig = field(default_factory=_default_cm)

    def __post_init__(self) -> None:
        if self.teacher not in ("learned", "oracle", "none"):
            raise ValueError(f"unknown teacher {self.teacher!r}; choose 'learned', 'oracle' or 'none'")


def _build_cm(cfg: CMConfig) -> nn.Module:
    return consistency.ConsistencyFunction(_mlp(cfg.seed), cfg.train.sigma_data, cfg.train.sigma_min)


def _train_cm(cfg: CMConfig) -> tuple[nn.Module, dict]:
    tc = dataclasses.replace(cfg.train, seed=cfg.seed)
    teacher = {"learned": lambda: teacher_denoiser(cfg.seed), "oracle": ring,
               "none": lambda: None}[cfg.teacher]()
    # Distilling a learned teacher starts from its weights ({cite}`song2023consistency`); the
    # others start from a fresh network.
    net = copy.deepcopy(teacher.net).requires_grad_(True) if cfg.teacher == "learned" else _mlp(cfg.seed)
    f, hist = consistency.train_consistency(net, _ring_data, tc, teacher=teacher)
    return f, {}


# ----------------------------------------------------------------------------- denoising-diffusion GAN
def _default_ddgan() -> ddgan.DDGANConfig:
    return ddgan.DDGANConfig(n_steps=4, steps=800, r1_gamma=0.0, sigma_max=SIGMA_MAX,
                             sigma_data=sigma_data(), progress=False)


@dataclass(frozen=True)
class DDGANModelConfig:
    seed: int = 0
    n_steps: int = 4
    train: ddgan.DDGANConfig = field(default_factory=_default_ddgan)


def _ddgan_config(cfg: DDGANModelConfig) -> ddgan.DDGANConfig:
    return dataclasses.replace(cfg.train, seed=cfg.seed, n_steps=cfg.n_steps)


def _build_ddgan(cfg: DDGANModelConfig) -> nn.Module:
    c = _ddgan_config(cfg)
    return ddgan.DDGANGenerator(2, c.latent_dim, c.hidden, c.depth, c.sigma_data)


def _train_ddgan(cfg: DDGANModelConfig) -> tuple[nn.Module, dict]:
    G, _ = ddgan.train_ddgan(_ring_data, _ddgan_config(cfg))
    return G, {}


for _name, _entry in {
    "few_step_teacher": pretrained.Entry(TeacherConfig(), lambda c: _mlp(c.seed), _train_teacher, _fingerprint),
    "few_step_pd": pretrained.Entry(PDConfig(), _build_pd, _train_pd, _fingerprint),
    "few_step_cm": pretrained.Entry(CMConfig(), _build_cm, _train_cm, _fingerprint),
    "few_step_ddgan": pretrained.Entry(DDGANModelConfig(), _build_ddgan, _train_ddgan, _fingerprint),
}.items():
    pretrained.register(_name, _entry)

# Every (name, config) chapter 11 loads, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [m for seed in (0, 1, 2) for m in (
    ("few_step_teacher", TeacherConfig(seed=seed)), ("few_step_pd", PDConfig(seed=seed)),
    *(("few_step_cm", CMConfig(seed=seed, teacher=t)) for t in ("learned", "oracle", "none")),
    *(("few_step_ddgan", DDGANModelConfig(seed=seed, n_steps=k)) for k in (2, 4)))]


# ----------------------------------------------------------------------------- sampling any student
def sample_student(kind: str, nfe: int, n: int, *, seed: int = 0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """n samples from the cached student ``kind`` (one of :data:`STUDENTS`) at exactly ``nfe`` NFE.

    ``"pd"``: the progressive-distillation student with ``nfe`` steps (DDIM on its ladder);
    ``"cd"``, ``"cd_oracle"``, ``"ct"``: multistep consistency sampling on ``nfe`` levels;
    ``"ddgan"``: the generator trained for T = ``nfe`` steps.
    """
    x = SIGMA_MAX * torch.randn(n, 2, generator=generator)   # (n, 2) at σ_max
    if kind == "pd":
        students = pd_students(seed)
        if nfe not in students:
            raise ValueError(f"no distilled student with {nfe} steps; choose one of {sorted(students)}")
        ladder = distillation.student_ladder(PDConfig().distill.base_ladder(), nfe)
        return samplers.sample_ddim(students[nfe], x, ladder, generator=generator)
    if kind in ("cd", "cd_oracle", "ct"):
        teacher = {"cd": "learned", "cd_oracle": "oracle", "ct": "none"}[kind]
        f = pretrained.pretrained("few_step_cm", CMConfig(seed=seed, teacher=teacher), verbose=False)
        return consistency.sample_consistency(f, x, cm_ladder(nfe), generator=generator,
                                              sigma_min=f.sigma_min)
    if kind == "ddgan":
        G = pretrained.pretrained("few_step_ddgan", DDGANModelConfig(seed=seed, n_steps=nfe),
                                  verbose=False)
        return ddgan.sample_ddgan(G, x, _ddgan_config(DDGANModelConfig(n_steps=nfe)).ladder(),
                                  generator=generator)
    raise ValueError(f"unknown student {kind!r}; choose one of {STUDENTS}")


def cm_ladder(nfe: int, sigma_min: float = 0.05) -> torch.Tensor:
    """The consistency sampler's levels for ``nfe`` evaluations: σ_max, then EDM-spaced to σ_min."""
    if nfe < 1:
        raise ValueError(f"nfe must be >= 1, got {nfe}")
    if nfe == 1:
        return torch.tensor([SIGMA_MAX, 0.0], dtype=torch.float64)
    return schedules.karras_sigmas(nfe, sigma_min, SIGMA_MAX)


# ----------------------------------------------------------------------------- the comparison table
SOLVERS = (("euler", "EDM ladder"), ("dpmpp_2m", "EDM ladder"), ("heun", "EDM ladder"),
           ("euler", "ring ladder"), ("dpmpp_2m", "ring ladder"), ("heun", "ring ladder"))
LADDERS = {"EDM ladder": (0.002, 80.0), "ring ladder": (0.02, SIGMA_MAX)}


def solver_samples(solver: str, ladder: str, nfe: int, n: int, *, seed: int = 0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """n samples of the cached teacher with a chapter-6 sampler spending at most ``nfe`` NFE."""
    steps = samplers.steps_for_nfe(solver, nfe)
    sigma_min, sigma_max = LADDERS[ladder]
    x = sigma_max * torch.randn(n, 2, generator=generator)
    return samplers.sample(solver, teacher_denoiser(seed), x,
                           schedules.karras_sigmas(steps, sigma_min, sigma_max), generator=generator)


@dataclass
class Scores:
    """Per (method, NFE): one SW/floor ratio and one count of covered modes per seed."""
    floor: float                                   # SW between two independent real sets (mean)
    ratio: dict = field(default_factory=dict)      # (method, nfe) -> [SW / floor per seed]
    covered: dict = field(default_factory=dict)    # (method, nfe) -> [modes covered per seed]
    off_mode: dict = field(default_factory=dict)   # (method, nfe) -> [share of off-mode samples]
    best_solver: dict = field(default_factory=dict)  # nfe -> "solver, ladder" chosen for the table


def distance_and_floor(n: int = 4000) -> tuple[Callable[..., float], float]:
    """(sliced Wasserstein-2 over 64 fixed directions, its noise floor for sets of size n).

    The floor is the mean distance between 10 pairs of independent real sets of size n (chapter 8)
    {cite}`bonneel2015`; both are seeded, so every caller measures with the same ruler.
    """
    from .metrics import random_projections, sliced_wasserstein

    mix = ring()
    g = torch.Generator().manual_seed(1234)
    proj = random_projections(2, 64, generator=g)
    sw = lambda a, b: sliced_wasserstein(a, b, projections=proj)
    floor = sum(sw(mix.sample(n, generator=g), mix.sample(n, generator=g)) for _ in range(10)) / 10
    return sw, floor


def evaluate(seeds=(0, 1, 2), nfes=(1, 2, 4), *, n: int = 4000, teacher_nfe: int = 35,
             students=STUDENTS) -> Scores:
    """SW/floor and modes covered for every student and NFE, the teacher at ``teacher_nfe`` (Heun),
    and the best chapter-6 solver at each NFE; every number once per seed (model seed = sample seed).

    Sliced Wasserstein-2 over 64 fixed directions ({cite}`bonneel2015`); the floor is the mean SW
    of 10 pairs of independent real sets of size n; modes by :func:`mode_coverage.mode_coverage`.
    """
    from .mode_coverage import mode_coverage

    mix = ring()
    sw, floor = distance_and_floor(n)
    out = Scores(floor)

    def add(method, nfe, seed, x, real):
        out.ratio.setdefault((method, nfe), []).append(sw(real, x) / floor)
        cov = mode_coverage(mix, x)
        out.covered.setdefault((method, nfe), []).append(cov.covered)
        out.off_mode.setdefault((method, nfe), []).append(cov.off_mode_rate)

    solver_ratio = {}
    for seed in seeds:
        real = mix.sample(n, generator=torch.Generator().manual_seed(10_000 + seed))
        gen = lambda: torch.Generator().manual_seed(20_000 + seed)
        add("teacher", teacher_nfe, seed, solver_samples("heun", "ring ladder", teacher_nfe, n,
                                                         seed=seed, generator=gen()), real)
        for nfe in nfes:
            for solver, ladder in SOLVERS:
                x = solver_samples(solver, ladder, nfe, n, seed=seed, generator=gen())
                solver_ratio.setdefault((nfe, solver, ladder), []).append((sw(real, x) / floor, x, real))
            for kind in students:
                if kind == "ddgan" and nfe == 1:
                    continue  # a one-step DDGAN is an ordinary conditional GAN (chapter 9)
                add(kind, nfe, seed, sample_student(kind, nfe, n, seed=seed, generator=gen()), real)
    for nfe in nfes:  # the solver with the best mean ratio over seeds represents chapter 6
        (_, solver, ladder) = min((k for k in solver_ratio if k[0] == nfe),
                                  key=lambda k: sum(r for r, _, _ in solver_ratio[k]))
        out.best_solver[nfe] = f"{solver}, {ladder}"
        for seed, (_, x, real) in zip(seeds, solver_ratio[(nfe, solver, ladder)]):
            add("best solver", nfe, seed, x, real)
    return out


def interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the Student-t interval over seeds)."""
    from scipy.stats import t

    v = torch.tensor(values, dtype=torch.float64)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    half = float(t.ppf((1 + level) / 2, len(v) - 1) * v.std() / len(v) ** 0.5)
    return float(v.mean()), half


def train_cpu_seconds(kind: str, seed: int = 0, nfe: int = 4) -> float:
    """Cold training CPU-seconds of a cached model (0 for a model trained before timing existed)."""
    if kind == "teacher":
        name, cfg = "few_step_teacher", TeacherConfig(seed=seed)
    elif kind == "pd":
        name, cfg = "few_step_pd", PDConfig(seed=seed)
    elif kind in ("cd", "cd_oracle", "ct"):
        teacher = {"cd": "learned", "cd_oracle": "oracle", "ct": "none"}[kind]
        name, cfg = "few_step_cm", CMConfig(seed=seed, teacher=teacher)
    elif kind == "ddgan":
        name, cfg = "few_step_ddgan", DDGANModelConfig(seed=seed, n_steps=nfe)
    else:
        raise ValueError(f"unknown model {kind!r}; choose 'teacher' or one of {STUDENTS}")
    return float(pretrained.pretrained(name, cfg, verbose=False).pretrained_info["train_cpu_s"])
