"""plotting: style, figure grid, animation (with its static fallback) and the slider widget."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from IPython.display import HTML  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from diffusion_lite import plotting  # noqa: E402

CALLS = []


def draw(ax, t):
    CALLS.append(t)
    x = np.linspace(-3, 3, 50)
    ax.plot(x, np.exp(-x**2 / (2 * (0.1 + t))))
    ax.set_ylim(0, 1.05)


def draw_two(axes, t):
    assert len(axes) == 2
    draw(axes[0], t)
    axes[1].scatter([0, t], [t, 0])


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    yield
    plt.close("all")


def test_use_style_sets_the_course_look():
    with matplotlib.rc_context():
        plotting.use_style()
        assert matplotlib.rcParams["axes.spines.top"] is False
        assert matplotlib.rcParams["animation.html"] == "jshtml"
        colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        assert [c.lower() for c in colors] == [c.lower() for c in plotting.COLORS]


def test_figure_grid_one_panel_per_value():
    fig = plotting.figure_grid(draw, [0.0, 0.5, 1.0, 2.0, 4.0], ncols=3, label="σ")
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 5
    assert [ax.get_title() for ax in visible] == ["σ = 0", "σ = 0.5", "σ = 1", "σ = 2", "σ = 4"]
    assert CALLS == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert not plt.get_fignums()  # closed: shown only when returned to Jupyter


def test_figure_grid_with_several_panels_per_value():
    fig = plotting.figure_grid(draw_two, [1.0, 2.0], panels=2)
    assert len(fig.axes) == 4
    assert fig.axes[0].get_title(loc="left") == "t = 1"


def test_animate_returns_a_jshtml_player_with_every_frame():
    out = plotting.animate(draw, [0.0, 1.0, 2.0], interval=50)
    assert isinstance(out, HTML)
    assert "<script" in out.data and "animation" in out.data.lower()
    assert out.data.count("data:image/png;base64") == 3  # one embedded frame per value
    assert set(CALLS) == {0.0, 1.0, 2.0}
    assert not plt.get_fignums()


def test_animate_multi_panel():
    out = plotting.animate(draw_two, [0.5, 1.0], panels=2, figsize=(6, 3))
    assert out.data.count("data:image/png;base64") == 2


def test_animate_static_fallback(monkeypatch):
    fig = plotting.animate(draw, list(np.linspace(0, 1, 11)), static=True, fallback_frames=3)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["t = 0", "t = 0.5", "t = 1"]
    monkeypatch.setenv("DIFFUSION_LITE_STATIC_ANIMATIONS", "1")
    assert isinstance(plotting.animate(draw, [0.0, 1.0]), Figure)


def test_animate_falls_back_when_rendering_fails(monkeypatch):
    def no_writer(self, *args, **kwargs):
        raise RuntimeError("no movie writer")

    monkeypatch.setattr(plotting.FuncAnimation, "to_jshtml", no_writer)
    with pytest.warns(UserWarning, match="RuntimeError: no movie writer.*figure grid instead"):
        fig = plotting.animate(draw, [0.0, 1.0])
    assert isinstance(fig, Figure) and len(fig.axes) == 2


@pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")  # frame 1 failed
def test_animate_reports_errors_in_draw_itself():
    def broken(ax, t):
        if t > 0:
            raise KeyError("my bug")
        draw(ax, t)

    with pytest.raises(KeyError, match="my bug"):
        plotting.animate(broken, [0.0, 1.0])
    assert not plt.get_fignums()


def test_slider_redraws_on_change():
    import ipywidgets as widgets

    box = plotting.slider(draw, [0.0, 0.5, 1.0], label="t", start=1)
    assert isinstance(box, widgets.VBox)
    control, out = box.children
    assert isinstance(control, widgets.SelectionSlider) and isinstance(out, widgets.Output)
    assert control.value == 1 and CALLS == [0.5]
    assert [label for label, _ in control.options] == ["0", "0.5", "1"]
    words = plotting.slider(lambda ax, v: ax.set_title(v), ["a", "b"], fmt=".2f").children[0]
    assert [label for label, _ in words.options] == ["a", "b"]
    control.value = 2
    assert CALLS == [0.5, 1.0]


@pytest.mark.parametrize("call, error, match", [
    (lambda: plotting.figure_grid("not a function", [1.0]), TypeError, r"draw\(ax, value\)"),
    (lambda: plotting.animate(draw, []), ValueError, "at least one value"),
    (lambda: plotting.slider(draw, [1.0], panels=0), ValueError, "panels must be an int >= 1"),
    (lambda: plotting.slider(draw, [1.0, 2.0], start=2), ValueError, r"start must index values"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_every_sampler_has_its_own_colour():
    from diffusion_lite import samplers
    assert set(plotting.SAMPLER_COLORS) == set(samplers.SAMPLERS)
    assert len(set(plotting.SAMPLER_COLORS.values())) == len(plotting.SAMPLER_COLORS)
    assert plotting.sampler_color("heun") == plotting.SAMPLER_COLORS["heun"]
    with pytest.raises(ValueError, match="choose one of"):
        plotting.sampler_color("heun2")


def test_digit_grid_keeps_tiles_square_with_gaps():
    import torch

    imgs = torch.arange(5 * 64, dtype=torch.float32).reshape(5, 1, 8, 8)
    canvas = plotting.digit_grid(imgs, nrow=3, gap=1)
    assert canvas.shape == (2 * 9 - 1, 3 * 9 - 1)
    assert np.array_equal(canvas[:8, 9:17], imgs[1, 0].numpy())  # tile 1: row 0, column 1
    assert np.array_equal(canvas[9:17, 9:17], imgs[4, 0].numpy())  # tile 4: row 1, column 1
    assert np.isnan(canvas[8]).all() and np.isnan(canvas[:, 8]).all()  # the gaps
    assert np.isnan(canvas[9:, 18:]).all()  # the unused end of the last row
    with pytest.raises(ValueError, match="one channel"):
        plotting.digit_grid(torch.zeros(2, 3, 8, 8))


def test_show_digits_draws_at_true_aspect():
    import torch

    fig, ax = plt.subplots()
    art = plotting.show_digits(ax, torch.zeros(20, 1, 8, 8), nrow=10, title="t")
    assert ax.get_aspect() == 1.0 and art.get_interpolation() == "nearest"
    assert art.get_array().shape == (17, 89) and ax.get_title() == "t"
    assert art.get_cmap().get_bad() is not None
    np.testing.assert_allclose(art.get_cmap().get_bad()[:3],
                               matplotlib.colors.to_rgb(plotting.GAP_COLOR))
