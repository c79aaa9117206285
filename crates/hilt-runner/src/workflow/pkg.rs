//! Install lines for missing tools, from the package manager a machine has: this one
//! (found on PATH) or a remote host (found by the stage phase's probe).

/// Package managers in the order they are looked for; the probe script and
/// [`detect_local`] use the same list.
pub const MANAGERS: &[&str] = &["apt-get", "dnf", "yum", "apk", "pacman", "zypper", "brew"];

/// The first package manager on this machine's PATH.
pub fn detect_local() -> Option<&'static str> {
    MANAGERS
        .iter()
        .copied()
        .find(|m| hilt_hw::process::which(m).is_some())
}

/// The command installing `package` with `manager` (`None` for a manager hilt does not know).
pub fn install_command(manager: &str, package: &str) -> Option<String> {
    let line = match manager {
        "apt-get" => format!("sudo apt-get install -y {package}"),
        "dnf" => format!("sudo dnf install -y {package}"),
        "yum" => format!("sudo yum install -y {package}"),
        "apk" => format!("sudo apk add {package}"),
        "pacman" => format!("sudo pacman -S --noconfirm {package}"),
        "zypper" => format!("sudo zypper install -y {package}"),
        "brew" => format!("brew install {package}"),
        _ => return None,
    };
    Some(line)
}

/// The package holding a tool hilt runs locally, where its name differs from the tool's.
pub fn local_package(tool: &str) -> &str {
    match tool {
        "ssh" | "scp" => "openssh-client",
        "st-flash" => "stlink-tools",
        "qemu-system-arm" => "qemu-system-arm",
        "arm-none-eabi-gcc" => "gcc-arm-none-eabi",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_lines_follow_the_manager() {
        assert_eq!(
            install_command("apt-get", "openocd").as_deref(),
            Some("sudo apt-get install -y openocd")
        );
        assert_eq!(
            install_command("apk", "curl").as_deref(),
            Some("sudo apk add curl")
        );
        assert_eq!(install_command("nix", "curl"), None);
        assert_eq!(local_package("ssh"), "openssh-client");
    }
}
