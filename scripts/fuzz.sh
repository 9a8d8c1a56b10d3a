#!/usr/bin/env bash
# Runs the fuzz targets of crates/peal-fuzz (cargo-fuzz, libFuzzer, nightly)
# one after another, each for SECONDS (default 600), one job each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (no TARGET: every target)
#
# Installs the nightly toolchain and cargo-fuzz when missing (`make test`
# stays on stable). Each target starts from its corpus
# (crates/peal-fuzz/corpus/<target>/, kept between runs, git-ignored), the
# committed seeds/<target>/ and regressions/<target>/, and the dictionary
# dicts/<target>.dict when there is one. A crash, failed assertion, timeout
# or out-of-memory leaves its input under crates/peal-fuzz/artifacts/<target>/;
# the script names it and exits non-zero. The log of each run is
# crates/peal-fuzz/artifacts/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export LC_ALL=C

SECONDS_EACH=${1:-600}
shift || true
if ! [[ $SECONDS_EACH =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi
FUZZ_DIR=crates/peal-fuzz
# Every target is safe Rust over safe Rust: a panic or failed assertion is
# the finding, so no sanitizer (several times the executions per second).
# Debug assertions and overflow checks are on (cargo-fuzz's default).
BUILD_FLAGS=(--fuzz-dir "$FUZZ_DIR" --sanitizer none --codegen-units 16)

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$FUZZ_DIR")
fi

failed=()
for t in "${targets[@]}"; do
    corpus="$FUZZ_DIR/corpus/$t"
    artifacts="$FUZZ_DIR/artifacts/$t"
    log="$FUZZ_DIR/artifacts/$t.log"
    mkdir -p "$corpus" "$artifacts"
    dirs=("$corpus")
    for extra in seeds regressions; do
        if [[ -d $FUZZ_DIR/$extra/$t ]]; then
            dirs+=("$FUZZ_DIR/$extra/$t")
        fi
    done
    args=(-max_total_time="$SECONDS_EACH" -timeout=60 -print_final_stats=1)
    if [[ -f $FUZZ_DIR/dicts/$t.dict ]]; then
        args+=(-dict="$FUZZ_DIR/dicts/$t.dict")
    fi
    before=$(ls -A "$artifacts")
    echo "== $t: ${SECONDS_EACH}s (log: $log)"
    status=0
    cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$t" "${dirs[@]}" -- "${args[@]}" \
        >"$log" 2>&1 || status=$?
    grep -aE '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
    new=$(comm -13 <(echo "$before") <(ls -A "$artifacts") | sed "s|^|$artifacts/|")
    if [[ $status -ne 0 || -n $new ]]; then
        echo "!! $t failed (exit $status); last lines of $log:"
        tail -n 30 "$log"
        if [[ -n $new ]]; then
            echo "!! input(s) that fail it:"
            echo "$new"
            echo "   replay: cargo +nightly fuzz run ${BUILD_FLAGS[*]} $t <input>"
            echo "   minimise: cargo +nightly fuzz tmin ${BUILD_FLAGS[*]} $t <input>"
        fi
        failed+=("$t")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzing found failures in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing: no failures in ${targets[*]}"
