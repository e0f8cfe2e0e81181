#!/usr/bin/env bash
# Vendors plotly.js's "basic" bundle (scatter, bar, pie; 1.2 MB instead of the full 4.8 MB) from the npm
# registry into insights/static/vendor/, with a gzip copy that WhiteNoise serves to browsers that accept it.
# The files are committed: running the project needs neither npm nor a CDN. Run this only to upgrade:
#   scripts/vendor_plotly.sh 4.1.1
set -euo pipefail
version="${1:-4.1.1}"
package="plotly.js-basic-dist-min"
dest="$(cd "$(dirname "$0")/.." && pwd)/insights/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "$package@$version" >/dev/null  # npm checks the tarball against the registry's integrity
tar xzf "$package-$version.tgz"
mkdir -p "$dest"
rm -f "$dest"/plotly-basic-*.min.js "$dest"/plotly-basic-*.min.js.gz
cp package/plotly-basic.min.js "$dest/plotly-basic-$version.min.js"
cp package/LICENSE "$dest/plotly-LICENSE.txt"
gzip -9 -n -k "$dest/plotly-basic-$version.min.js"
echo "$dest/plotly-basic-$version.min.js ($(stat -c %s "$dest/plotly-basic-$version.min.js") bytes," \
     "gzip $(stat -c %s "$dest/plotly-basic-$version.min.js.gz"))"
echo "Now set PLOTLY_JS in insights/templatetags/charts.py to vendor/plotly-basic-$version.min.js"
