#!/usr/bin/env bash
# Builds hilt's QEMU firmware (board lm3s6965evb) in two versions:
#   firmware/build.sh OUT_DIR   ->  OUT_DIR/hilt-fw-v1.elf, OUT_DIR/hilt-fw-v2.elf
# Needs Debian's gcc-arm-none-eabi (no C library is linked). CC overrides the compiler.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: firmware/build.sh OUT_DIR}"
cc="${CC_ARM:-arm-none-eabi-gcc}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "firmware: $cc not found; install it with:" >&2
  echo "  sudo apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi" >&2
  exit 127
fi
mkdir -p "$out"
for v in 1.0.0 2.0.0; do
  elf="$out/hilt-fw-v${v%%.*}.elf"
  "$cc" -mcpu=cortex-m3 -mthumb -Os -g -std=c11 -Wall -Wextra -Werror \
    -ffreestanding -nostdlib -fno-common -ffunction-sections -fdata-sections \
    -DFW_VERSION="\"$v\"" -T "$here/link.ld" -Wl,--gc-sections \
    -o "$elf.tmp" "$here/startup.c" "$here/main.c" -lgcc
  mv "$elf.tmp" "$elf"
  echo "$elf"
done
