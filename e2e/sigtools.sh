#!/usr/bin/env bash
# The new-format signing tools the tests sign with: the real `notation` (Notary Project) and
# `cosign` (Sigstore) programs, plus `oras` and `crane` for looking at what they wrote.
#
#   e2e/sigtools.sh fetch    download (or reuse) them and print their versions
#   e2e/sigtools.sh env      print `export TRUSTGATE_NOTATION=... TRUSTGATE_COSIGN=...` lines
#
# They are Debian sid packages (static Go programs depending only on libc), fetched through a
# PRIVATE apt configuration (the system's sources and dpkg state are never touched), unpacked
# with `dpkg-deb -x`, and kept in ${TRUSTGATE_SIGTOOLS_CACHE:-$HOME/.cache/trustgate-sigtools}
# (outside the work tree) with a stamp of the versions. TRUSTGATE_DEBIAN_MIRROR overrides the
# mirror; TRUSTGATE_SIGTOOLS_REFRESH=1 fetches again.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${TRUSTGATE_SIGTOOLS_CACHE:-${HOME:?}/.cache/trustgate-sigtools}
[[ $CACHE == /* ]] || CACHE=$PWD/$CACHE
CACHE=${CACHE%/}
MIRROR=${TRUSTGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# package -> program inside it
PACKAGES=(notation cosign oras crane)
# Oldest versions whose behaviour the tests rely on (what docs/signature-formats.md describes).
MIN_NOTATION=1.3
MIN_COSIGN=3.0

log() { printf '[sigtools] %s\n' "$*" >&2; }
die() { printf '[sigtools] ERROR: %s\n' "$*" >&2; exit 1; }

apt_priv() { # apt-get|apt-cache args...
  local tool=$1
  shift
  "$tool" -o Dir::Etc::SourceList="$APTDIR/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
    -o Dir::State::Lists="$APTDIR/lists" -o Dir::Cache="$APTDIR/cache" \
    -o Dir::State::status=/var/lib/dpkg/status -o APT::Sandbox::User="$(id -un)" \
    -o Acquire::Languages=none -o Debug::NoLocking=1 "$@"
}

cache_ok() {
  local p
  [[ -f $CACHE/stamp ]] || return 1
  for p in "${PACKAGES[@]}"; do
    [[ -x $CACHE/bin/$p ]] || return 1
  done
}

version_at_least() { # have want -> true if have >= want (dotted numbers)
  [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]
}

cmd_fetch() {
  case $CACHE/ in "$REPO"/*) die "the cache ($CACHE) must be outside the repository work tree" ;; esac
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if [[ ${TRUSTGATE_SIGTOOLS_REFRESH:-} != 1 ]] && cache_ok; then
    log "cached: $(tr '\n' ' ' <"$CACHE/stamp")"
    return 0
  fi
  local c
  for c in apt-get dpkg-deb flock; do
    command -v "$c" >/dev/null 2>&1 || die "missing: $c"
  done
  [[ -r $KEYRING ]] || die "$KEYRING missing (package debian-archive-keyring)"
  local work=$CACHE/fetch.tmp
  rm -rf "$work"
  mkdir -p "$work"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  APTDIR=$work/apt
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$work/debs" "$work/root"
  echo "deb [signed-by=$KEYRING] $MIRROR sid main" >"$APTDIR/sources.list"
  log "apt-get update (private config: sid from $MIRROR)"
  apt_priv apt-get update -qq >"$work/apt-update.log" 2>&1 || {
    tail -n 20 "$work/apt-update.log" >&2
    die "apt-get update of the private sid config failed"
  }
  (cd "$work/debs" && apt_priv apt-get download -qq "${PACKAGES[@]}" >"$work/download.log" 2>&1) || {
    tail -n 20 "$work/download.log" >&2
    die "apt-get download ${PACKAGES[*]} from sid failed"
  }
  local deb p v stamp=""
  mkdir -p "$CACHE/bin.new"
  for p in "${PACKAGES[@]}"; do
    deb=$(ls "$work/debs/${p}_"*.deb 2>/dev/null | head -n1)
    [[ -n $deb ]] || die "no $p package downloaded"
    v=$(dpkg-deb -f "$deb" Version)
    dpkg-deb -x "$deb" "$work/root"
    [[ -x $work/root/usr/bin/$p ]] || die "$p package has no usr/bin/$p"
    install -m 0755 "$work/root/usr/bin/$p" "$CACHE/bin.new/$p"
    stamp+="$p=$v"$'\n'
  done
  version_at_least "$(sed -n 's/^notation=//p' <<<"$stamp")" "$MIN_NOTATION" ||
    die "notation in sid is older than $MIN_NOTATION"
  version_at_least "$(sed -n 's/^cosign=//p' <<<"$stamp")" "$MIN_COSIGN" ||
    die "cosign in sid is older than $MIN_COSIGN"
  rm -rf "$CACHE/bin"
  mv "$CACHE/bin.new" "$CACHE/bin"
  printf '%s' "$stamp" >"$CACHE/stamp"
  log "fetched: $(tr '\n' ' ' <"$CACHE/stamp")"
}

cmd_env() {
  cache_ok || die "tools not fetched; run: $0 fetch"
  printf 'export TRUSTGATE_NOTATION=%q\n' "$CACHE/bin/notation"
  printf 'export TRUSTGATE_COSIGN=%q\n' "$CACHE/bin/cosign"
  printf 'export TRUSTGATE_ORAS=%q\n' "$CACHE/bin/oras"
  printf 'export TRUSTGATE_CRANE=%q\n' "$CACHE/bin/crane"
}

case ${1:-} in
  fetch) cmd_fetch ;;
  env) cmd_env ;;
  *) die "usage: $0 fetch|env" ;;
esac
