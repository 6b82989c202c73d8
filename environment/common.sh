# Shared by ./lowbit and environment/setup.sh: where things are, and the JDK we run on.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${LOWBIT_DATA:-$ROOT/data}"
VENV="$ROOT/.venv"
JAR="$ROOT/lib/target/lowbit.jar"

die() { echo "lowbit: $*" >&2; exit 1; }

# Major version of a JDK home, read from its release file; empty when it is not a JDK.
jdk_major() {
    local home="$1" v
    [ -x "$home/bin/java" ] && [ -x "$home/bin/javac" ] || return 0
    v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$home/release" 2>/dev/null)
    echo "$v"
}

# JAVA_HOME when it is a JDK >= 21, else the newest JDK >= 21 under /usr/lib/jvm.
find_jdk() {
    local best="" best_v=0 v home
    if [ -n "${JAVA_HOME:-}" ]; then
        v=$(jdk_major "$JAVA_HOME")
        if [ -n "$v" ] && [ "$v" -ge 21 ]; then echo "$JAVA_HOME"; return 0; fi
        echo "lowbit: JAVA_HOME=$JAVA_HOME is not a JDK >= 21 (found '${v:-none}'); looking under /usr/lib/jvm" >&2
    fi
    for home in /usr/lib/jvm/*/; do
        home="${home%/}"
        [ -L "$home" ] && continue
        v=$(jdk_major "$home")
        if [ -n "$v" ] && [ "$v" -ge 21 ] && [ "$v" -gt "$best_v" ]; then best="$home"; best_v="$v"; fi
    done
    [ -n "$best" ] || die "no JDK >= 21 found (JAVA_HOME unset or too old, nothing suitable under /usr/lib/jvm).
Install one, e.g. 'apt-get install openjdk-21-jdk' or Temurin 25, and/or set JAVA_HOME."
    echo "$best"
}

JAVA_FLAGS=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC)
# java less the JVM's incubator-module line (environment/quiet/bin/java); it execs java
JAVA="$ROOT/environment/quiet/bin/java"

use_jdk() {
    JAVA_HOME="$(find_jdk)"
    export JAVA_HOME
    export PATH="$JAVA_HOME/bin:$PATH"
    # JDK 24+ warns at the first sun.misc.Unsafe memory access (Maven's guava, classgraph under tablesaw); the option
    # that allows it quietly does not exist before 24.
    if [ "$(jdk_major "$JAVA_HOME")" -ge 24 ]; then
        case " ${MAVEN_OPTS:-} " in *" --sun-misc-unsafe-memory-access="*) ;;
            *) export MAVEN_OPTS="--sun-misc-unsafe-memory-access=allow${MAVEN_OPTS:+ $MAVEN_OPTS}" ;; esac
        case " ${JAVA_FLAGS[*]} " in *" --sun-misc-unsafe-memory-access="*) ;;
            *) JAVA_FLAGS+=(--sun-misc-unsafe-memory-access=allow) ;; esac
    fi
}
