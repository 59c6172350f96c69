#!/usr/bin/env bash
# Fetch the JavaScript the course site needs, so that the built site works without the internet.
#
#   MathJax 3 (typesets the formulas), require.js and @jupyter-widgets/html-manager (render the
#   embedded widgets) come from the npm registry, through npm itself, into book/_static/vendor/.
#   That folder is ignored by git: the assets are fetched at build time, never committed.
#   book/_ext/offline_assets.py then points the site at these local copies; without them the site
#   loads the same files from CDNs (and so needs the internet to show formulas and widgets).
#
# Idempotent: when the pinned versions are already in place, a second run does nothing.
# Never fails the build: without npm, or without a registry, it says so and falls back to the CDNs.
# Usage: bash scripts/fetch_web_assets.sh   (make book runs it through the web-assets target)
set -euo pipefail
cd "$(dirname "$0")/.."

MATHJAX=3.2.2
REQUIREJS=2.3.8
HTML_MANAGER=1.0.15   # the html-manager 1.x line is the one that matches ipywidgets 8
DEST=book/_static/vendor
STAMP="$DEST/.complete-mathjax-$MATHJAX-requirejs-$REQUIREJS-html-manager-$HTML_MANAGER"

if [ -f "$STAMP" ]; then
    echo "web assets: MathJax $MATHJAX, require.js $REQUIREJS and html-manager $HTML_MANAGER" \
         "already in $DEST; nothing to do."
    exit 0
fi

fallback() {
    echo "web assets: $1" >&2
    echo "web assets: FALLING BACK TO CDNs - the site will load MathJax and the widget" \
         "JavaScript from cdn.jsdelivr.net / cdnjs.cloudflare.com, so formulas and widgets need" \
         "the internet. For an offline site install Node.js (npm) and run make book again." >&2
    exit 0
}

command -v npm >/dev/null 2>&1 || fallback "npm not found."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "web assets: fetching mathjax@$MATHJAX requirejs@$REQUIREJS" \
     "@jupyter-widgets/html-manager@$HTML_MANAGER from the npm registry ..."
# npm pack downloads the published tarballs and checks them against the registry's integrity hash.
if ! (cd "$tmp" && npm pack --silent --loglevel=error \
        "mathjax@$MATHJAX" "requirejs@$REQUIREJS" "@jupyter-widgets/html-manager@$HTML_MANAGER" \
        >/dev/null); then
    fallback "npm could not fetch the packages (no network or no registry?)."
fi

stage="$tmp/vendor"
mkdir -p "$stage/mathjax" "$stage/requirejs" "$stage/html-manager"
# MathJax: only the browser bundles (es5/, about 24 MB) and the licence.
tar xzf "$tmp/mathjax-$MATHJAX.tgz" -C "$stage/mathjax" --strip-components=1 \
    package/es5 package/LICENSE
tar xzf "$tmp/requirejs-$REQUIREJS.tgz" -C "$stage/requirejs" --strip-components=1 \
    package/require.js package/package.json
# html-manager: the self-contained AMD bundle (controls and fonts included), no source maps;
# package.json carries its licence (BSD-3-Clause).
tar xzf "$tmp/jupyter-widgets-html-manager-$HTML_MANAGER.tgz" -C "$stage/html-manager" \
    --strip-components=1 --exclude='*.map' package/dist package/package.json

for f in mathjax/es5/tex-mml-chtml.js requirejs/require.js html-manager/dist/embed-amd.js; do
    [ -s "$stage/$f" ] || fallback "the downloaded packages lack $f."
done

# Replace the folder in one step, so an interrupted run never leaves a half-filled vendor folder.
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST"
mv "$stage" "$DEST"
touch "$STAMP"
echo "web assets: done ($(du -sh "$DEST" | cut -f1) in $DEST); the site will serve them itself."
