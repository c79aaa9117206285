//! `hilt demo --qemu`: the firmware in `firmware/` (embedded here, so an installed binary
//! can build it anywhere), its bench and suite, and the checks for the emulator and the
//! cross compiler.

use std::path::{Path, PathBuf};

pub const BENCH: &str = include_str!("qemu_bench.yaml");
pub const SUITE: &str = include_str!("qemu_suite.yaml");

/// The firmware sources, by file name.
pub const FIRMWARE: &[(&str, &str)] = &[
    ("main.c", include_str!("../../../../firmware/main.c")),
    ("startup.c", include_str!("../../../../firmware/startup.c")),
    ("board.h", include_str!("../../../../firmware/board.h")),
    ("link.ld", include_str!("../../../../firmware/link.ld")),
    ("build.sh", include_str!("../../../../firmware/build.sh")),
];

/// The emulator and the cross compiler, with the line that installs each.
pub const TOOLS: &[(&str, &str)] = &[
    (
        "qemu-system-arm",
        "sudo apt-get install -y --no-install-recommends qemu-system-arm",
    ),
    (
        "arm-none-eabi-gcc",
        "sudo apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi",
    ),
];

/// The two firmware images `firmware/build.sh` writes into `dir`.
pub fn images(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("hilt-fw-v1.elf"), dir.join("hilt-fw-v2.elf"))
}

pub fn bench(v1: &Path) -> String {
    BENCH.replace("{{V1}}", &v1.display().to_string())
}

pub fn suite(v2: &Path) -> String {
    SUITE.replace("{{V2}}", &v2.display().to_string())
}
