#!/usr/bin/env bash
# The launcher with real signals (run by ./lowbit test, after the build): SIGTERM and timeout on ./lowbit must
# stop the job's JVM, because ./lowbit execs java instead of leaving it behind as an orphan; no jar copy may be
# left in TMPDIR; and the next start of a killed `ppl --journal` must say that it resumes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
work=$(mktemp -d)
launcher_pid=""
tag="lowbit-launcher-test-$$"
# JVMs that carry this test's tag: none may outlive the launcher it started.
tagged_jvms() { pgrep -f -- "-Dlowbit.launchertest=$tag" || true; }
cleanup() {
    # only what this test started, by id, should a check have failed: its launcher and JVMs carrying its tag
    [ -n "$launcher_pid" ] && kill -KILL "$launcher_pid" 2>/dev/null
    for pid in $(tagged_jvms); do kill -KILL "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/tmp"
fail() { echo "launcher test FAILED: $*" >&2; [ -f "$work/out" ] && sed 's/^/    /' "$work/out" >&2; exit 1; }

no_survivor() {
    for _ in $(seq 50); do [ -z "$(tagged_jvms)" ] && return 0; sleep 0.1; done
    fail "$1: java still running after ./lowbit ended: pid $(tagged_jvms)"
}

# Minutes of work: perplexity of the default model on the whole test set, journaled.
job=(ppl --model default --seqlen 2048 --journal "$work/journal.jsonl")
export TMPDIR="$work/tmp" LOWBIT_JAVA_OPTS="-Dlowbit.launchertest=$tag"

# 1. SIGTERM: the launcher's pid must become the job's JVM (exec), and die of the signal.
./lowbit "${job[@]}" >"$work/out" 2>&1 &
launcher_pid=$!
for _ in $(seq 600); do
    grep -qa lowbit.cli.Main "/proc/$launcher_pid/cmdline" 2>/dev/null && break
    kill -0 "$launcher_pid" 2>/dev/null || break
    sleep 0.1
done
grep -qa lowbit.cli.Main "/proc/$launcher_pid/cmdline" 2>/dev/null \
    || fail "SIGTERM: ./lowbit (pid $launcher_pid) did not exec java within 60 s"
sleep 3
kill -TERM "$launcher_pid"
rc=0; wait "$launcher_pid" || rc=$?
launcher_pid=""
[ "$rc" = 143 ] || fail "SIGTERM: ./lowbit exited with $rc, expected 143 (killed by SIGTERM)"
no_survivor SIGTERM
[ -f "$work/journal.jsonl.running" ] || fail "SIGTERM: ppl --journal left no run marker for the next start to find"

# 2. timeout, on the same journal: the start must say that the previous run was killed and is resumed.
rc=0; timeout 20 ./lowbit "${job[@]}" >"$work/out" 2>&1 || rc=$?
[ "$rc" = 124 ] || fail "timeout: ./lowbit exited with $rc, expected 124 (stopped by timeout)"
no_survivor timeout
grep -q "^lowbit: the previous ppl --journal .* did not finish: it was killed .*this run resumes it" "$work/out" \
    || fail "timeout: the start after a killed run did not say that it resumes"

# 3. Nothing left in TMPDIR (the launcher once copied the jar there and lost the copy on every signal).
leftover=$(ls -A "$work/tmp")
[ -z "$leftover" ] || fail "files left in TMPDIR: $leftover"
echo "launcher: SIGTERM and timeout stop the JVM, nothing left in TMPDIR, a killed run is reported on restart: ok" >&2
