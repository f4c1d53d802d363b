#!/usr/bin/env bash
# Runs the extractor fuzz target for SECONDS (default 300) on one core, seeded from samples/.
# Findings land in fuzz/artifacts/extract/; the corpus grows in fuzz/corpus/extract/.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 unlocks them on the stable toolchain.
set -euo pipefail
SECONDS_TO_RUN=${1:-300}
cd "$(dirname "$0")"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi
mkdir -p corpus/extract
# Seeds: every sample (compressed ones decompressed: the target reads text) and the findings kept
# as regression inputs.
for f in ../samples/*.txt ../samples/generated/*.txt regressions/*; do
    if [ -f "$f" ]; then cp -f "$f" "corpus/extract/seed-$(basename "$f")"; fi
done
for f in ../samples/generated/*.txt.gz; do
    if [ -f "$f" ]; then gzip -dc "$f" > "corpus/extract/seed-$(basename "$f" .gz)"; fi
done
for f in ../samples/generated/*.txt.zst; do
    if [ -f "$f" ]; then zstd -dcq "$f" > "corpus/extract/seed-$(basename "$f" .zst)"; fi
done
export RUSTC_BOOTSTRAP=1
# A panic's backtrace symbolization (debug info of polars included) costs more memory than the
# RSS limit leaves; libFuzzer prints its own stack trace anyway.
export RUST_BACKTRACE=0
# One libFuzzer process (no -jobs/-workers): one core, and its statistics on stderr.
exec cargo fuzz run --sanitizer "${FUZZ_SANITIZER:-address}" extract corpus/extract -- \
    -max_total_time="$SECONDS_TO_RUN" -max_len="${FUZZ_MAX_LEN:-16384}" -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 -dict=extract.dict
