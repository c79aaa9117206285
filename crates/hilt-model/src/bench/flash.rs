//! How a node is flashed and reset.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Flash {
    #[serde(flatten)]
    pub backend: FlashBackend,
    /// Default firmware path for `flash` steps.
    #[serde(default)]
    pub artifact: Option<String>,
    /// Load address such as `"0x08000000"`; required for `.bin` artifacts.
    #[serde(default, deserialize_with = "crate::de::opt_string_or_int")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum FlashBackend {
    Openocd {
        interface_cfg: String,
        target_cfg: String,
        #[serde(default)]
        extra_args: Vec<String>,
        #[serde(default)]
        adapter_speed_khz: Option<u32>,
        #[serde(default, deserialize_with = "crate::de::opt_string_or_int")]
        probe_serial: Option<String>,
        #[serde(default)]
        probe_serial_cmd: Option<String>,
    },
    Cubeprog {
        #[serde(default = "default_swd")]
        port: String,
        #[serde(default, deserialize_with = "crate::de::opt_string_or_int")]
        serial: Option<String>,
    },
    Jlink {
        device: String,
        #[serde(default = "default_swd")]
        interface: String,
        #[serde(default = "defaults::u32_::<4000>")]
        speed_khz: u32,
        #[serde(default, deserialize_with = "crate::de::opt_string_or_int")]
        serial: Option<String>,
    },
    Esptool {
        port: String,
        #[serde(default = "defaults::u32_::<921600>")]
        baud: u32,
        #[serde(default)]
        chip: Option<String>,
        #[serde(default)]
        extra_args: Vec<String>,
    },
    /// hilt extension: flash an emulated board (a `qemu` resource) by restarting its
    /// emulator with the artifact (an ELF).
    Qemu {
        /// The `qemu` resource that emulates this node.
        board: String,
    },
}

impl FlashBackend {
    pub fn name(&self) -> &'static str {
        match self {
            FlashBackend::Openocd { .. } => "openocd",
            FlashBackend::Cubeprog { .. } => "cubeprog",
            FlashBackend::Jlink { .. } => "jlink",
            FlashBackend::Esptool { .. } => "esptool",
            FlashBackend::Qemu { .. } => "qemu",
        }
    }

    /// The executable the backend runs.
    pub fn tool(&self) -> &'static str {
        tool_for(self.name())
    }
}

/// The executable for a flash backend or reset method name.
pub fn tool_for(name: &str) -> &'static str {
    match name {
        "openocd" => "openocd",
        "cubeprog" => "STM32_Programmer_CLI",
        "jlink" => "JLinkExe",
        "esptool" => "esptool.py",
        "qemu" => "qemu-system-arm",
        _ => "",
    }
}

fn default_swd() -> String {
    "SWD".to_string()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Reset {
    #[serde(default)]
    pub method: ResetMethod,
    /// hilt extension for `method: gpio`: the output line that holds the DUT in reset.
    #[serde(default)]
    pub line: Option<String>,
    /// hilt extension for `method: gpio`: how long the line is asserted.
    #[serde(default)]
    pub pulse_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetMethod {
    Openocd,
    Cubeprog,
    Jlink,
    Esptool,
    /// hilt extension: pulse a GPIO output line of the node (`line`, `pulse_ms`).
    Gpio,
    /// hilt extension: reset an emulated board (the flash block's `board`) through its
    /// QEMU monitor (`system_reset`).
    Qemu,
    #[default]
    None,
}

impl ResetMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetMethod::Openocd => "openocd",
            ResetMethod::Cubeprog => "cubeprog",
            ResetMethod::Jlink => "jlink",
            ResetMethod::Esptool => "esptool",
            ResetMethod::Gpio => "gpio",
            ResetMethod::Qemu => "qemu",
            ResetMethod::None => "none",
        }
    }
}
