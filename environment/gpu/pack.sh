#!/usr/bin/env bash
# Packs what environment/gpu/check.sh needs on a GPU machine that has python3 with torch and transformers but no Java
# and no network, into .gpu/ (git-ignored; the device tool carries it: carry [".gpu"]):
#   jre.tar.xz          a jlink'd Java runtime (java.base, jdk.incubator.vector and the modules our jars use), stripped
#   lib/                lowbit.jar (with the PTX of kernels/*.cu) and the runtime jars the GPU checks load; the JCuda
#                       natives without the PTX compiler (we hand PTX to the driver), Tablesaw and its 40 MB of
#                       dependencies left out (results tables and charts are not part of the checks)
#   junit-console.jar   JUnit's console launcher, matching the project's JUnit
#   tests.tar.xz        the test classes and test resources (a directory, as the tests read resources as files)
#   data.tar.xz         stories260K, the OPT-125m tokenizer, WikiText-2's test text and the C4 slice
#   MANIFEST            the commit and what is inside
# The tool sends the working tree and the carried paths, 64 MiB together: this prints both sizes and fails above it.
# Run it here (it builds first); then `environment/gpu/check.sh --cpu-selftest` runs the packed runtime on the CPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
cd "$ROOT"
use_jdk
PACK="$ROOT/.gpu"
LIMIT_MIB=64
mkdir -p "$PACK"

echo "== building the kernels and the jar (environment/build_kernels.sh, mvn package)" >&2
"$ROOT/environment/build_kernels.sh"
mvn -B -o -q -DskipTests package >&2 || mvn -B -q -DskipTests package >&2

# The modules jdeps finds in the jars we pack, plus jdk.zipfs, which JUnit's class-path scan opens by name (jdeps
# cannot see that); java.desktop is left out on purpose: only commons-math3's and icu4j's unused corners reach it,
# and it alone would add 12 MB.
MODULES="java.base,jdk.incubator.vector,java.logging,java.management,jdk.management,java.net.http,java.sql,java.xml,jdk.unsupported,jdk.zipfs"
if [ ! -f "$PACK/jre.tar.xz" ] || [ "$(cat "$PACK/jre.modules" 2>/dev/null)" != "$JAVA_HOME $MODULES" ]; then
    echo "== jlink: a Java runtime of $MODULES (a few minutes: xz on 2 cores)" >&2
    tmp=$(mktemp -d)
    # zip-0: the modules image stays uncompressed so that xz, which compresses the whole tarball, does better (15 MB
    # instead of 24 MB with jlink's own zip-9)
    jlink --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --compress zip-0 --output "$tmp/jre" 2>/dev/null
    strip --strip-unneeded "$tmp/jre/lib/server/libjvm.so" 2>/dev/null || true
    tar -C "$tmp" -cf - jre | xz -6 -T0 > "$PACK/jre.tar.xz.tmp"
    mv "$PACK/jre.tar.xz.tmp" "$PACK/jre.tar.xz"
    echo "$JAVA_HOME $MODULES" > "$PACK/jre.modules"
    rm -rf "$tmp"
fi

echo "== jars" >&2
rm -rf "$PACK/lib"
mkdir -p "$PACK/lib"
cp "$ROOT/lib/target/lowbit.jar" "$PACK/lib/"
# What only Tablesaw needs (results tables) and plotly.js (charts): not on the GPU checks' path. tablesaw-core itself
# stays: picocli's reflection over the commands resolves the Table type in their method signatures.
LEAVE_OUT='^(fastutil|icu4j|RoaringBitmap|univocity-parsers|classgraph|plotly\.js-dist|guava|failureaccess|listenablefuture|jsr305|checker-qual|error_prone_annotations|j2objc-annotations)-'
for jar in "$ROOT"/lib/target/deps/*.jar; do
    name=$(basename "$jar")
    if [[ "$name" =~ $LEAVE_OUT ]]; then continue; fi
    if [[ "$name" == *-natives-* ]]; then
        # JCuda's natives jars carry every binding's library; the PTX compiler's (24 MB) is never loaded: the driver
        # compiles our PTX itself
        tmp=$(mktemp -d)
        (cd "$tmp" && unzip -q "$jar" && rm -f lib/libJNvPTXCompiler-* && zip -q -r -9 "$PACK/lib/$name" .)
        rm -rf "$tmp"
    else
        cp "$jar" "$PACK/lib/"
    fi
done

junit_version=$(sed -n 's:.*<junit.version>5\.\([0-9.]*\)</junit.version>.*:1.\1:p' "$ROOT/pom.xml")
[ -n "$junit_version" ] || die "pack: no <junit.version> in pom.xml"
console="$HOME/.m2/repository/org/junit/platform/junit-platform-console-standalone/$junit_version/junit-platform-console-standalone-$junit_version.jar"
if [ ! -f "$console" ]; then
    echo "== fetching JUnit's console launcher $junit_version from Maven Central" >&2
    mvn -B -q dependency:get -Dartifact="org.junit.platform:junit-platform-console-standalone:$junit_version" >&2 \
        || die "pack: could not fetch junit-platform-console-standalone $junit_version (Maven Central unreachable?)"
fi
cp "$console" "$PACK/junit-console.jar"

echo "== test classes and resources" >&2
tar -C "$ROOT/lib/target" -cf - test-classes | xz -6 -T0 > "$PACK/tests.tar.xz"

echo "== data" >&2
data=()
for f in models/stories260K/stories260K.bin models/stories260K/tok512.bin models/stories260K/tok512.model \
         models/opt-125m-tokenizer/vocab.json models/opt-125m-tokenizer/merges.txt models/opt-125m-tokenizer/tokenizer_config.json \
         models/opt-125m-tokenizer/special_tokens_map.json models/opt-125m-tokenizer/config.json \
         wikitext-2-raw/wiki.test.raw c4/c4_en_train00000_first1000.jsonl; do
    [ -f "$DATA_DIR/$f" ] || die "pack: $DATA_DIR/$f is missing (./lowbit setup fills data/)"
    data+=("$f")
done
# -h: data/ holds links into ../shared; the files themselves travel
tar -C "$DATA_DIR" -chf - "${data[@]}" | xz -6 -T0 > "$PACK/data.tar.xz"

commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$([ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo " (uncommitted changes)" || true)
{
    echo "commit $commit$dirty"
    echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) with $("$JAVA_HOME/bin/java" -version 2>&1 | head -1)"
    echo "modules $MODULES"
    (cd "$PACK" && find . -type f ! -name MANIFEST ! -name jre.modules -printf '%P %s\n' | sort)
} > "$PACK/MANIFEST"

pack_kib=$(du -sk "$PACK" | cut -f1)
tree_kib=$( (git -C "$ROOT" ls-files -z --cached --others --exclude-standard | (cd "$ROOT" && du -ck --files0-from=- 2>/dev/null) | tail -1 | cut -f1) || echo 0)
total_mib=$(( (pack_kib + tree_kib) / 1024 ))
printf 'lowbit: packed %s: %d MiB (+ %d MiB of working tree = %d MiB of the %d MiB the device tool carries)\n' \
    ".gpu" $((pack_kib / 1024)) $((tree_kib / 1024)) "$total_mib" "$LIMIT_MIB" >&2
[ "$total_mib" -lt "$LIMIT_MIB" ] || die "pack: .gpu and the working tree are $total_mib MiB, over the device tool's $LIMIT_MIB MiB"
