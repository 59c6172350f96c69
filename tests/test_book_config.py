"""The book's configuration: launch buttons from one repository URL, and an offline-capable site.

The last test builds a one-chapter book (the fixture notebook, executed) with the network blocked
and reads the HTML: launch links, local MathJax/widget scripts, no stylesheet or script from a CDN.
"""

import importlib.util
import json
import pathlib
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "book" / "_config.yml").read_text())
URL = CONFIG["repository"]["url"]
BRANCH = CONFIG["repository"]["branch"]
ORG, NAME = urlparse(URL).path.strip("/").split("/")[:2]

_spec = importlib.util.spec_from_file_location("offline_assets",
                                               REPO / "book" / "_ext" / "offline_assets.py")
offline_assets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(offline_assets)


def test_repository_url_is_the_one_setting():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL), "Binder/Colab need GitHub"
    assert BRANCH
    assert CONFIG["repository"].get("path_to_book", "") == "", (
        "the book is built from the repository root, so page paths are already repository paths")
    buttons = CONFIG["launch_buttons"]
    assert buttons["binderhub_url"] and buttons["colab_url"]
    for key, value in buttons.items():
        assert ORG not in str(value) and NAME not in str(value), (
            f"launch_buttons.{key} repeats the repository; it must come from repository.url")


def test_jupyter_book_passes_the_url_to_the_theme():
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(user_yaml=REPO / "book" / "_config.yml",
                                 cli_config={"latex_individualpages": False}, sourcedir=REPO)
    theme = config["html_theme_options"]
    assert theme["repository_url"] == URL and theme["repository_branch"] == BRANCH
    for key, value in CONFIG["launch_buttons"].items():
        assert theme["launch_buttons"][key] == value
    assert "offline_assets" in config["extensions"]


def test_no_other_file_names_another_repository():
    """Links to the repository, Binder or Colab elsewhere must agree with repository.url."""
    files = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "book").glob("*.md"))]
    patterns = [r"github\.com/([\w.-]+)/([\w.-]+)", r"mybinder\.org/v2/gh/([\w.-]+)/([\w.-]+)",
                r"colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)"]
    for path in files:
        text = path.read_text()
        for pattern in patterns:
            for org, name in re.findall(pattern, text):
                if org in ("jupyter-book", "executablebooks", "jupyterhub", "jupyter-widgets"):
                    continue  # links to tools' documentation, not to this course
                assert (org, name.removesuffix(".git")) == (ORG, NAME), (
                    f"{path.name} links to {org}/{name}; the repository is {ORG}/{NAME} "
                    "(book/_config.yml repository.url)")


def test_readme_marks_as_available_only_chapters_that_exist():
    rows = re.findall(r"^\| (\d+) \| .* \| (.*) \|$", (REPO / "README.md").read_text(), re.M)
    numbers = [int(n) for n, _ in rows]
    assert numbers[:8] == list(range(1, 9)), "README lists chapters 1-8 in order"
    assert numbers == sorted(set(numbers)), "later chapters follow in order, each once"
    for number, status in rows:
        exists = any((REPO / "notebooks").glob(f"{int(number):02d}_*.ipynb"))
        if "available" in status:
            assert exists, f"README says chapter {number} is available, but notebooks/ lacks it"


def _fake_config():
    return SimpleNamespace(html_static_path=[], mathjax_path="https://cdn.example/mathjax.js",
                           nb_ipywidgets_js={"https://cdn.example/require.js": {}})


def test_extension_uses_vendored_assets_when_present(tmp_path, monkeypatch):
    monkeypatch.setattr(offline_assets, "STATIC", tmp_path)
    for rel in (offline_assets.MATHJAX, offline_assets.REQUIRE, offline_assets.WIDGETS):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("// test")
    config = _fake_config()
    offline_assets.use_local_assets(None, config)
    assert config.html_static_path == [str(tmp_path)]
    assert config.mathjax_path == "vendor/mathjax/es5/tex-mml-chtml.js"
    assert list(config.nb_ipywidgets_js) == ["vendor/requirejs/require.js",
                                             "vendor/html-manager/dist/embed-amd.js"]


def test_extension_keeps_cdns_when_an_asset_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(offline_assets, "STATIC", tmp_path)
    (tmp_path / offline_assets.MATHJAX).parent.mkdir(parents=True)
    (tmp_path / offline_assets.MATHJAX).write_text("// only MathJax")
    config = _fake_config()
    offline_assets.use_local_assets(None, config)
    assert config.__dict__ == _fake_config().__dict__


def test_font_awesome_cdn_link_is_dropped_from_animation_html():
    html = ('<link rel="stylesheet"\nhref="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/css/'
            'font-awesome.min.css">\n<script>var x;</script><i class="fa fa-play"></i>')
    out = offline_assets.CDN_FONT_AWESOME.sub("", html)
    assert "maxcdn" not in out and out.startswith("<script>") and "fa-play" in out


# ----------------------------------------------------------------------------- a real build

def _external_loads(html: str) -> list[str]:
    """URLs the browser would fetch from elsewhere: script src, stylesheet/link href, img src."""
    loads = re.findall(r"<script\b[^>]*\bsrc=[\"'](https?:[^\"']+)", html)
    loads += re.findall(r"<link\b[^>]*\bhref=[\"'](https?:[^\"']+)", html)
    loads += re.findall(r"<img\b[^>]*\bsrc=[\"'](https?:[^\"']+)", html)
    return loads


@pytest.fixture(scope="module")
def built_fixture_book(tmp_path_factory):
    """Build the fixture chapter with the course's config, vendored assets faked, network off."""
    root = tmp_path_factory.mktemp("book")
    (root / "notebooks").mkdir()
    shutil.copy(REPO / "tests" / "fixtures" / "00_fixture.ipynb", root / "notebooks")
    shutil.copytree(REPO / "book", root / "book",
                    ignore=shutil.ignore_patterns("_static", "_build", "__pycache__"))
    for rel in (offline_assets.MATHJAX, offline_assets.REQUIRE, offline_assets.WIDGETS):
        path = root / "book" / "_static" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("// stand-in for the file scripts/fetch_web_assets.sh fetches\n")
    toc = {"format": "jb-book", "root": "notebooks/00_fixture",
           "chapters": [{"file": "book/bibliography"}]}
    (root / "book" / "_toc.yml").write_text(yaml.safe_dump(toc))
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", ".", "--config", "book/_config.yml",
                           "--toc", "book/_toc.yml", "-W", "-n", "--keep-going"],
                          cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "_build" / "html", proc.stdout + proc.stderr


def test_built_page_has_launch_links_from_the_repository_url(built_fixture_book):
    html = (built_fixture_book[0] / "notebooks" / "00_fixture.html").read_text()
    binder = CONFIG["launch_buttons"]["binderhub_url"].rstrip("/")
    colab = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    assert (f"{binder}/v2/gh/{ORG}/{NAME}/{BRANCH}?urlpath=lab/tree/notebooks/00_fixture.ipynb"
            in html)
    assert f"{colab}/github/{ORG}/{NAME}/blob/{BRANCH}/notebooks/00_fixture.ipynb" in html


def test_built_page_loads_nothing_from_a_cdn(built_fixture_book):
    site, log = built_fixture_book
    html = (site / "notebooks" / "00_fixture.html").read_text()
    assert "offline assets: serving MathJax and the widget JavaScript from _static/vendor/" in log
    assert 'src="../_static/vendor/mathjax/es5/tex-mml-chtml.js' in html
    assert 'src="../_static/vendor/requirejs/require.js' in html
    assert 'src="../_static/vendor/html-manager/dist/embed-amd.js' in html
    assert (site / "_static" / "vendor" / "html-manager" / "dist" / "embed-amd.js").exists()
    assert "application/vnd.jupyter.widget-state+json" in html, "the slider's state is embedded"
    assert "anim" in html and "fa-play" in html, "the to_jshtml animation is on the page"
    assert _external_loads(html) == [], "the page fetches from the network"
    state = json.loads(re.search(r'widget-state\+json">(.*?)</script>', html, re.S)[1])
    assert any(m["model_name"] == "IntSliderModel" for m in state["state"].values())


# ----------------------------------------------------------------------------- the asset fetcher

def _fetcher_in(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "fetch_web_assets.sh", tmp_path / "scripts")
    return ["bash", str(tmp_path / "scripts" / "fetch_web_assets.sh")]


def test_fetcher_without_npm_falls_back_to_cdns_and_says_so(tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "dirname", "mktemp", "rm", "mkdir", "tar", "mv", "touch", "du", "cut"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    proc = subprocess.run(_fetcher_in(tmp_path), capture_output=True, text=True,
                          env={"PATH": str(tools)}, timeout=60)
    assert proc.returncode == 0, "a missing npm must not fail the build"
    assert "npm not found" in proc.stderr and "FALLING BACK TO CDNs" in proc.stderr
    assert not (tmp_path / "book" / "_static" / "vendor").exists()


def test_fetcher_second_run_does_nothing(tmp_path):
    cmd = _fetcher_in(tmp_path)
    script = (tmp_path / "scripts" / "fetch_web_assets.sh").read_text()
    versions = {k: re.search(rf"^{k}=(\S+)", script, re.M)[1]
                for k in ("MATHJAX", "REQUIREJS", "HTML_MANAGER")}
    vendor = tmp_path / "book" / "_static" / "vendor"
    vendor.mkdir(parents=True)
    (vendor / (f".complete-mathjax-{versions['MATHJAX']}-requirejs-{versions['REQUIREJS']}"
               f"-html-manager-{versions['HTML_MANAGER']}")).touch()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
                          timeout=60)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout
    assert len(list(vendor.iterdir())) == 1, "nothing fetched: only the stamp is there"
