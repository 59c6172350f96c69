"""Figures for the course: one style, and one drawing contract for three views.

Every view takes the same drawing function ``draw(ax, value)`` that draws one state of the story
(the particles at time t, the data at noise level σ) into a matplotlib Axes:

- :func:`slider` — an ipywidgets slider that redraws as you move it (JupyterLab);
- :func:`animate` — the same frames as an HTML animation (``to_jshtml``), which also plays on the
  static website, with a figure-grid fallback;
- :func:`figure_grid` — a few values side by side, for print and for a quick look.

Images: :func:`show_digits` tiles a batch of small grey images (the digits) into one Axes at
their true aspect (square pixels) with a coloured gap between tiles; :func:`digit_grid` is the
canvas it draws.

With ``panels=k > 1`` ``draw`` receives an array of k Axes (e.g. a 1D histogram next to a 2D cloud).

Notation: ``value`` a point on the scrubbed axis (a time t or a noise level σ); ``values`` the
sequence of them; ``ax`` a matplotlib Axes (or an array of ``panels`` Axes).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

from .utils import check_int

__all__ = ["COLORS", "use_style", "figure_grid", "animate", "slider", "digit_grid", "show_digits",
           "GAP_COLOR"]

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

Draw = Callable[[Any, Any], None]

# The gap between image tiles: a light blue-grey, visible against the digits' white background.
GAP_COLOR = "#b8c7d6"


class _DrawFailed(Exception):
    """Wraps an error raised inside the caller's ``draw`` so it is re-raised, not hidden."""

# The course look; applied by use_style().
STYLE = {
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.prop_cycle": mpl.cycler(color=COLORS),
    "lines.linewidth": 1.8,
    "legend.frameon": False,
    "image.cmap": "viridis",
    "animation.html": "jshtml",  # a bare FuncAnimation as a cell's result also becomes jshtml
    "animation.embed_limit": 30.0,  # MB
}


def use_style() -> None:
    """Apply the course figure style (sizes, colour-blind-safe colours, light grid) globally."""
    mpl.rcParams.update(STYLE)


def _value(value: Any, fmt: str) -> str:
    try:
        return format(value, fmt)
    except (TypeError, ValueError):  # e.g. a string value with a numeric fmt
        return str(value)


def _format(label: str, value: Any, fmt: str) -> str:
    return f"{label} = {_value(value, fmt)}"


def _check_draw(draw: Draw, values: Sequence, panels: int) -> list:
    if not callable(draw):
        raise TypeError(f"draw must be a function draw(ax, value), got {type(draw).__name__}")
    values = list(values)
    if not values:
        raise ValueError("values is empty: give at least one value to draw")
    check_int(panels, "panels", minimum=1)
    return values


def figure_grid(draw: Draw, values: Sequence, *, ncols: int = 4, panels: int = 1,
                panel_size: tuple[float, float] = (3.0, 2.6), label: str = "t", fmt: str = ".3g",
                sharex: bool = True, sharey: bool = True) -> Figure:
    """One panel per value, ``draw(ax, value)`` into each, titled ``"{label} = {value}"``.

    With ``panels > 1`` each value gets a row of ``panels`` Axes and ``ncols`` is ignored.
    Returns the Figure (displayed by Jupyter when it is a cell's last expression).
    """
    values = _check_draw(draw, values, panels)
    if panels > 1:
        nrows, ncols = len(values), panels
    else:
        ncols = max(1, min(ncols, len(values)))
        nrows = -(-len(values) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
                             sharex=sharex, sharey=sharey, squeeze=False)  # axes: (nrows, ncols)
    for i, value in enumerate(values):
        if panels > 1:
            draw(axes[i], value)
            axes[i, 0].set_title(_format(label, value, fmt), loc="left")
        else:
            ax = axes.flat[i]
            draw(ax, value)
            ax.set_title(_format(label, value, fmt))
    for ax in axes.flat[len(values) * (panels if panels > 1 else 1):]:
        ax.set_visible(False)  # unused cells of the last row
    plt.close(fig)  # the caller decides when to show it; avoids a duplicate inline image
    return fig


def _new_axes(panels: int, figsize: tuple[float, float] | None):
    fig, axes = plt.subplots(1, panels, figsize=figsize, squeeze=False)  # axes: (1, panels)
    return fig, (axes[0, 0] if panels == 1 else axes[0])


def _clear(ax) -> None:
    for a in np.atleast_1d(ax):
        a.clear()


def animate(draw: Draw, values: Sequence, *, panels: int = 1,
            figsize: tuple[float, float] | None = None, interval: int = 100, label: str = "t",
            fmt: str = ".3g", static: bool | None = None, fallback_frames: int = 4):
    """Animate ``draw(ax, value)`` over ``values``; returns ``IPython.display.HTML`` (``to_jshtml``).

    Each frame clears the Axes and calls ``draw`` again, so ``draw`` should fix its own axis
    limits for a steady picture. The JavaScript player works on the static website and offline.
    Static fallback: with ``static=True``, with the environment variable
    ``DIFFUSION_LITE_STATIC_ANIMATIONS=1`` (e.g. for a PDF build), or if the animation cannot be
    rendered, returns a :func:`figure_grid` of ``fallback_frames`` evenly spaced values instead.
    """
    values = _check_draw(draw, values, panels)
    if static is None:
        static = os.environ.get("DIFFUSION_LITE_STATIC_ANIMATIONS", "0") not in ("", "0")
    if not static:
        from IPython.display import HTML

        fig, ax = _new_axes(panels, figsize)

        def frame(i: int):
            _clear(ax)
            try:
                draw(ax, values[i])
            except Exception as exc:  # the caller's own bug: report it, do not hide it
                raise _DrawFailed from exc
            fig.suptitle(_format(label, values[i], fmt))
            return []

        try:
            anim = FuncAnimation(fig, frame, frames=len(values), interval=interval, blit=False)
            html = anim.to_jshtml(default_mode="once")
        except _DrawFailed as exc:
            raise exc.__cause__  # noqa: B904 - the original error and traceback
        except Exception as exc:  # the rendering machinery failed (writer, backend): fall back
            warnings.warn(f"animation failed ({type(exc).__name__}: {exc}); showing a figure "
                          "grid instead", stacklevel=2)
            static = True
        finally:
            plt.close(fig)
    if static:
        idx = np.unique(np.linspace(0, len(values) - 1, max(1, fallback_frames)).round().astype(int))
        return figure_grid(draw, [values[i] for i in idx], panels=panels, label=label, fmt=fmt,
                           ncols=len(idx))
    return HTML(html)


def slider(draw: Draw, values: Sequence, *, panels: int = 1,
           figsize: tuple[float, float] | None = None, label: str = "t", fmt: str = ".3g",
           start: int = 0):
    """An ipywidgets slider over ``values`` that redraws ``draw(ax, value)`` below it.

    Returns an ``ipywidgets.VBox`` (slider + output); display it as a cell's last expression.
    In JupyterLab it reruns ``draw`` on every release of the slider; on the static website there
    is no Python behind it, so pair it with :func:`animate` or :func:`figure_grid`.
    """
    values = _check_draw(draw, values, panels)
    if not 0 <= start < len(values):
        raise ValueError(f"start must index values (0..{len(values) - 1}), got {start}")
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError as exc:  # pragma: no cover - ipywidgets is a pinned dependency
        raise ImportError("slider needs ipywidgets: pip install ipywidgets; "
                          "or use animate(...) / figure_grid(...) instead") from exc

    options = [(_value(v, fmt), i) for i, v in enumerate(values)]  # (shown text, index)
    control = widgets.SelectionSlider(options=options, value=start, description=label,
                                      continuous_update=False,
                                      layout=widgets.Layout(width="60%"))
    out = widgets.Output()

    def redraw(index: int) -> None:
        with out:
            out.clear_output(wait=True)
            fig, ax = _new_axes(panels, figsize)
            draw(ax, values[index])
            display(fig)
            plt.close(fig)

    control.observe(lambda change: redraw(change["new"]), names="value")
    redraw(start)
    return widgets.VBox([control, out])


# One colour per sampler, the same in every figure of the course (keys: ``samplers.SAMPLERS``).
SAMPLER_COLORS = {"ddpm": COLORS[3], "ddim": COLORS[4], "euler": COLORS[0], "heun": COLORS[1],
                  "dpmpp_2m": COLORS[2], "pc": COLORS[5]}
__all__ += ["SAMPLER_COLORS", "sampler_color"]


def sampler_color(name: str) -> str:
    """The course's colour for sampler ``name`` (a key of ``samplers.SAMPLERS``)."""
    if name not in SAMPLER_COLORS:
        raise ValueError(f"no colour for sampler {name!r}; choose one of {sorted(SAMPLER_COLORS)}")
    return SAMPLER_COLORS[name]


def digit_grid(images: Any, nrow: int = 10, gap: int = 1) -> np.ndarray:
    """Tile ``(N, 1, H, W)`` or ``(N, H, W)`` images into one canvas, ``nrow`` tiles per row.

    The canvas is ``(rows·(H + gap) − gap, nrow·(W + gap) − gap)``; gaps (and the unused end of
    the last row) are NaN, so they can be drawn in their own colour.
    """
    imgs = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images, dtype=float)
    if imgs.ndim == 4:
        if imgs.shape[1] != 1:
            raise ValueError(f"expected one channel (N, 1, H, W), got shape {imgs.shape}")
        imgs = imgs[:, 0]
    if imgs.ndim != 3 or len(imgs) == 0:
        raise ValueError(f"images must be a non-empty batch (N, 1, H, W) or (N, H, W), got shape "
                         f"{imgs.shape}")
    check_int(nrow, "nrow", minimum=1)
    check_int(gap, "gap", minimum=0)
    n, h, w = imgs.shape
    rows = -(-n // nrow)
    canvas = np.full((rows * (h + gap) - gap, nrow * (w + gap) - gap), np.nan)
    for k, im in enumerate(imgs):
        r, c = divmod(k, nrow)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = im
    return canvas


def show_digits(ax, images: Any, nrow: int = 10, title: str | None = None, gap: int = 1,
                vmin: float = -1.0, vmax: float = 1.0):
    """Draw images in [vmin, vmax] (digits: [−1, 1], ink dark) as a grid in ``ax``.

    Square pixels (``aspect="equal"``, no interpolation) and a :data:`GAP_COLOR` gap between tiles,
    so the digits keep their true shape in the notebook and on the website. Returns the AxesImage.
    """
    canvas = digit_grid(images, nrow=nrow, gap=gap)
    cmap = plt.get_cmap("gray_r").with_extremes(bad=GAP_COLOR)
    art = ax.imshow(np.clip(canvas, vmin, vmax), cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal",
                    interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return art
