"""Serve MathJax and the widget JavaScript from the site itself when they have been fetched.

``scripts/fetch_web_assets.sh`` (run by ``make book``) puts MathJax 3, require.js and
``@jupyter-widgets/html-manager`` from the npm registry into ``book/_static/vendor/``. When all
three are there, this extension copies them into the site's ``_static/`` and points Sphinx
(``mathjax_path``) and MyST-NB (``nb_ipywidgets_js``) at the local copies, so formulas and embedded
widgets work with no network. When they are missing, the CDN defaults stay and the build says so.

Matplotlib's ``to_jshtml`` animations also carry a ``<link>`` to Font Awesome 4 on a CDN for their
play/pause icons; the theme already ships Font Awesome (which draws those ``fa fa-*`` icons), so
that link is dropped from notebook outputs and the animation controls work offline too.
Messages are logged at INFO level: the book builds with ``-W`` (warnings are errors), and a site
that uses CDNs is a valid, if online-only, site.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parents[1] / "_static"
VENDOR = STATIC / "vendor"

# Paths inside the site's _static/ folder (Sphinx resolves relative script paths against it).
MATHJAX = "vendor/mathjax/es5/tex-mml-chtml.js"
REQUIRE = "vendor/requirejs/require.js"
WIDGETS = "vendor/html-manager/dist/embed-amd.js"
# matplotlib.animation's HTML writer: <link rel="stylesheet" href="https://maxcdn.../font-awesome...">
CDN_FONT_AWESOME = re.compile(
    r"<link\b[^>]*href=[\"']https?://[^\"']*font-awesome[^\"']*[\"'][^>]*>\s*")


def vendored_files() -> dict[str, Path]:
    """The local files this extension needs, keyed by their path under ``_static/``."""
    return {rel: STATIC / rel for rel in (MATHJAX, REQUIRE, WIDGETS)}


def use_local_assets(app: Sphinx, config: Config) -> None:
    """On ``config-inited``: switch to the vendored assets if all of them are present."""
    missing = [rel for rel, path in vendored_files().items() if not path.is_file()]
    if missing:
        logger.info(
            "offline assets: %s not found under book/_static/; the site will load MathJax and "
            "the widget JavaScript from CDNs (needs the internet). Run "
            "`bash scripts/fetch_web_assets.sh` (needs npm) for a site that works offline.",
            ", ".join(missing),
        )
        return
    static = str(STATIC)
    if static not in config.html_static_path:
        config.html_static_path = [*config.html_static_path, static]
    config.mathjax_path = MATHJAX
    # Same keys/values shape as MyST-NB's default: {script path: {attribute: value}}. No
    # data-jupyter-widgets-cdn attribute: the built-in controls need no further download.
    config.nb_ipywidgets_js = {REQUIRE: {}, WIDGETS: {}}
    logger.info("offline assets: serving MathJax and the widget JavaScript from _static/vendor/.")


def drop_cdn_font_awesome(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """On ``doctree-resolved``: remove CDN Font Awesome links from raw HTML notebook outputs."""
    for node in doctree.findall(nodes.raw):
        if "html" in node.get("format", "").split() and "font-awesome" in node.astext():
            node[0] = nodes.Text(CDN_FONT_AWESOME.sub("", node.astext()))


def setup(app: Sphinx) -> dict[str, Any]:
    # Run after MyST-NB has registered nb_ipywidgets_js, before its builder-inited hook reads it.
    app.connect("config-inited", use_local_assets, priority=900)
    app.connect("doctree-resolved", drop_cdn_font_awesome)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
