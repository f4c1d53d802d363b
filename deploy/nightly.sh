#!/usr/bin/env bash
# quarry nightly: import what is new in the dump folder(s) into the warehouse, log it, and exit with
# quarry import's code so a scheduler (systemd, cron) can alert.
#
#   deploy/nightly.sh [--quiet]
#
# --quiet prints only errors (cron mails whatever a job prints); the log file always gets everything.
#
# Settings come from the environment, after sourcing $QUARRY_ENV_FILE (default
# /etc/default/quarry-nightly) when it exists (KEY=value lines, as systemd's EnvironmentFile):
#   QUARRY_WAREHOUSE      warehouse folder (required)
#   QUARRY_DUMPS          dump folders or files, space separated (required)
#   QUARRY_PIPELINE       pipeline file (default: the alphanode pipeline built into quarry)
#   QUARRY_BIN            quarry binary (default: quarry on PATH, else target/release or target/debug here)
#   QUARRY_LOG            log file, appended to (default: $QUARRY_WAREHOUSE/_quarry/nightly.log)
#   QUARRY_WAIT           yes (default): wait as long as another run holds the lock (runs hold it
#                         only to recover and to commit); no: give up after QUARRY_LOCK_WAIT
#                         seconds (default 1800) with exit 3
#   QUARRY_REPORT_HTML    optional: write `quarry report` there after each run that finished
#   QUARRY_REPORT_JSON    optional: passed as --report-json when quarry import supports it
#   QUARRY_MAX_REJECT_RATIO optional: passed as --max-reject-ratio when quarry import supports it
#
# Exit codes (those of quarry import; the script's own problems map onto the same meanings):
#   0 ok · 1 I/O error, nothing committed · 2 configuration error · 3 warehouse locked by another run
#   4 finished, but some input file was unreadable to its end (see rejects, reason unreadable_file)
#   5 finished, but more pages were rejected than QUARRY_MAX_REJECT_RATIO allows
#   any other code is passed through from quarry import unchanged.
set -uo pipefail

quiet=no
for arg in "$@"; do
    case "$arg" in
        --quiet | -q) quiet=yes ;;
        -h | --help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "nightly.sh: unknown argument: $arg (usage: nightly.sh [--quiet])" >&2; exit 2 ;;
    esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
env_file="${QUARRY_ENV_FILE:-/etc/default/quarry-nightly}"
if [[ -f "$env_file" ]]; then
    set -a
    # shellcheck disable=SC1090
    source "$env_file" || { echo "nightly.sh: error: cannot read $env_file" >&2; exit 2; }
    set +a
fi

config_error() { echo "nightly.sh: error: $*" >&2; exit 2; }
[[ -n "${QUARRY_WAREHOUSE:-}" ]] || config_error "QUARRY_WAREHOUSE is not set (the warehouse folder)"
[[ -n "${QUARRY_DUMPS:-}" ]] || config_error "QUARRY_DUMPS is not set (dump folders or files)"
pipeline="${QUARRY_PIPELINE:-}"
[[ -z "$pipeline" || -f "$pipeline" ]] || config_error "pipeline file not found: $pipeline (set QUARRY_PIPELINE, or leave it unset for the built-in alphanode pipeline)"

bin="${QUARRY_BIN:-}"
if [[ -z "$bin" ]]; then
    if command -v quarry >/dev/null 2>&1; then
        bin="$(command -v quarry)"
    elif [[ -x "$repo/target/release/quarry" ]]; then
        bin="$repo/target/release/quarry"
    elif [[ -x "$repo/target/debug/quarry" ]]; then
        bin="$repo/target/debug/quarry"
    fi
fi
[[ -n "$bin" && -x "$bin" ]] || config_error "quarry binary not found (set QUARRY_BIN or build with cargo build --release)"

log="${QUARRY_LOG:-$QUARRY_WAREHOUSE/_quarry/nightly.log}"
if ! mkdir -p "$(dirname "$log")" 2>/dev/null || ! touch "$log" 2>/dev/null; then
    echo "nightly.sh: error: $log: cannot write the log file" >&2
    exit 1
fi

read -r -a dumps <<<"$QUARRY_DUMPS"
cmd=("$bin" import --output "$QUARRY_WAREHOUSE")
[[ -z "$pipeline" ]] || cmd+=(--pipeline "$pipeline")
[[ "${QUARRY_WAIT:-yes}" == no ]] || cmd+=(--wait)
help="$("$bin" import --help 2>/dev/null || true)"
if [[ -n "${QUARRY_REPORT_JSON:-}" && "$help" == *--report-json* ]]; then
    cmd+=(--report-json "$QUARRY_REPORT_JSON")
fi
if [[ -n "${QUARRY_MAX_REJECT_RATIO:-}" && "$help" == *--max-reject-ratio* ]]; then
    cmd+=(--max-reject-ratio "$QUARRY_MAX_REJECT_RATIO")
fi
cmd+=("${dumps[@]}")

stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

echo "=== $(stamp) nightly start: ${cmd[*]}" >>"$log"
# quarry's stderr (summary, periodic progress lines, errors) streams into the log as it comes.
"${cmd[@]}" 2>&1 >/dev/null </dev/null | tee -a "$log" >"$out"
rc=${PIPESTATUS[0]}

if [[ -n "${QUARRY_REPORT_HTML:-}" && ( $rc == 0 || $rc == 4 || $rc == 5 ) ]]; then
    # pipefail: the pipeline fails when quarry report does.
    if ! "$bin" report "$QUARRY_WAREHOUSE" --html "$QUARRY_REPORT_HTML" 2>&1 >/dev/null </dev/null | tee -a "$log" >>"$out"; then
        echo "nightly.sh: error: the HTML report could not be written to $QUARRY_REPORT_HTML" | tee -a "$log" >>"$out"
        [[ $rc != 0 ]] || rc=1
    fi
fi

case $rc in
    0) what="ok" ;;
    1) what="I/O error: nothing was committed" ;;
    2) what="configuration error" ;;
    3) what="locked: another run got in the way (lock not free in time, lease lapsed, or the same files imported meanwhile); nothing of this run counts, run it again" ;;
    4) what="finished, but some input files were unreadable to their end" ;;
    5) what="finished, but the share of rejected pages exceeds QUARRY_MAX_REJECT_RATIO" ;;
    *) what="quarry import exited $rc" ;;
esac
echo "=== $(stamp) nightly end: exit $rc ($what)" >>"$log"

if [[ $quiet == yes ]]; then
    # Only errors: quarry --quiet would print these lines too.
    grep -E '(^|: )error:' "$out" >&2 || true
    [[ $rc == 0 ]] || echo "nightly.sh: exit $rc ($what); log: $log" >&2
else
    cat "$out" >&2
    echo "nightly.sh: exit $rc ($what); log: $log" >&2
fi
exit "$rc"
