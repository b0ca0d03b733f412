#!/usr/bin/env bash
# Builds the browser side of Orchard into target/site: the hydrate wasm (size-tuned
# wasm-release profile), its JS glue from wasm-bindgen, wasm-opt from npm's binaryen,
# the stylesheet and public assets, each precompressed (br, gz) for the static server.
#
# The same steps cargo-leptos runs, without its downloads: every tool comes from a
# package registry (see the Makefile's `tools` target).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${WASM_PROFILE:-wasm-release}
target_dir=${CARGO_TARGET_DIR:-target}
site=target/site
pkg=$site/pkg
wasm_opt=tools/node_modules/.bin/wasm-opt

cargo build --locked -p frontend --lib --target wasm32-unknown-unknown --profile "$profile"

rm -rf "$pkg.tmp"
mkdir -p "$pkg.tmp"
wasm-bindgen --target web --no-typescript --out-dir "$pkg.tmp" --out-name orchard \
  "$target_dir/wasm32-unknown-unknown/$profile/frontend.wasm"
if [ "$profile" != "dev" ]; then
  "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$pkg.tmp/orchard_bg.wasm" -o "$pkg.tmp/orchard_bg.wasm"
fi
cp style/orchard.css "$pkg.tmp/orchard.css"

mkdir -p "$site"
cp -R public/. "$site/"
rm -rf "$pkg"
mv "$pkg.tmp" "$pkg"
node scripts/precompress.mjs "$pkg"
echo "site built in $site: $(du -h "$pkg/orchard_bg.wasm" | cut -f1) wasm, $(du -h "$pkg/orchard_bg.wasm.br" | cut -f1) brotli"
