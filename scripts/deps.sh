#!/usr/bin/env bash
# Installs the system packages the test suite needs on a fresh Debian
# machine. Idempotent: packages already present are not reinstalled.
set -euo pipefail
pkgs=(make git util-linux procps protobuf-compiler iproute2 gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
command -v go >/dev/null || { echo "deps: Go is required (see README)"; exit 1; }
