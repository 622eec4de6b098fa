#!/usr/bin/env bash
# Fresh Debian 12 machine with Node 20 and npm → everything OmniWeb builds and tests with.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Chromium (headless browser tests, and its SwiftShader Vulkan driver gives
# WebGPU to Node's Dawn), the Vulkan loader Dawn links, emscripten for the wasm kernels,
# clang/lld/llvm 16 for their relaxed-SIMD build (emscripten's clang 14 lacks it), and
# espeak-ng (real speech for the voice-activity tests).
apt_pkgs=(chromium libvulkan1 emscripten clang-16 lld-16 llvm-16 espeak-ng)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

want_pnpm=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]; then
  npm install -g "pnpm@$want_pnpm" >/dev/null
fi
if [ "${CI:-}" = "true" ]; then pnpm install --frozen-lockfile; else pnpm install; fi
node scripts/build-kernels.mjs
