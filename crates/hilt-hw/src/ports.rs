//! Serial ports of this machine, from sysfs (no libudev): each tty that has a device behind
//! it, with the USB vendor/product/serial of the adapter when it is on USB, and its stable
//! `/dev/serial/by-id` name when udev made one.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Port {
    /// `/dev/ttyUSB0`.
    pub path: String,
    /// `/dev/serial/by-id/usb-…` pointing at it, when there is one.
    pub by_id: Option<String>,
    /// The kernel driver (`ftdi_sio`, `cdc_acm`, `cp210x`, `serial8250`, …).
    pub driver: Option<String>,
    pub usb: Option<UsbInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsbInfo {
    /// Four hex digits, as `lsusb` shows them.
    pub vendor_id: String,
    pub product_id: String,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
}

/// The serial ports under `sys` (`/sys` on a real machine) and `dev` (`/dev`). Legacy
/// 8250 UARTs without hardware behind them (`ttyS*` that every PC lists) are left out.
pub fn list(sys: &Path, dev: &Path) -> Vec<Port> {
    let by_id = by_id_links(&dev.join("serial/by-id"));
    let Ok(rd) = std::fs::read_dir(sys.join("class/tty")) else {
        return Vec::new();
    };
    let mut out: Vec<Port> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let device = std::fs::canonicalize(e.path().join("device")).ok()?;
            let driver = std::fs::read_link(device.join("driver"))
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()));
            let usb = usb_info(&device);
            if usb.is_none() && name.starts_with("ttyS") && !has_real_uart(&e.path()) {
                return None;
            }
            let path = dev.join(&name).display().to_string();
            Some(Port {
                by_id: by_id
                    .iter()
                    .find(|(_, target)| target.file_name() == Some(name.as_ref()))
                    .map(|(link, _)| link.display().to_string()),
                path,
                driver,
                usb,
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// A `ttyS*` with a UART behind it reports a non-zero `type` (0 = `PORT_UNKNOWN`).
fn has_real_uart(tty: &Path) -> bool {
    std::fs::read_to_string(tty.join("type"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .is_some_and(|t| t != 0)
}

/// The USB device above a tty's device directory (the first ancestor with `idVendor`).
fn usb_info(device: &Path) -> Option<UsbInfo> {
    let read = |d: &Path, f: &str| {
        std::fs::read_to_string(d.join(f))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    device
        .ancestors()
        .take(6)
        .find(|d| d.join("idVendor").is_file())
        .map(|d| UsbInfo {
            vendor_id: read(d, "idVendor").unwrap_or_default(),
            product_id: read(d, "idProduct").unwrap_or_default(),
            serial: read(d, "serial"),
            manufacturer: read(d, "manufacturer"),
            product: read(d, "product"),
        })
}

fn by_id_links(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let target = std::fs::canonicalize(e.path()).ok()?;
                    Some((e.path(), target))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs and /dev as the kernel lays them out for an FTDI adapter, a CDC-ACM board
    /// and two legacy UARTs (one with hardware, one without).
    #[test]
    fn usb_adapters_and_real_uarts_are_listed_with_their_ids() {
        let t = tempfile::tempdir().unwrap();
        let (sys, dev) = (t.path().join("sys"), t.path().join("dev"));
        let usb = sys.join("devices/pci0000:00/usb1/1-2");
        let iface = usb.join("1-2:1.0/ttyUSB0");
        std::fs::create_dir_all(&iface).unwrap();
        for (f, v) in [
            ("idVendor", "0403\n"),
            ("idProduct", "6001\n"),
            ("serial", "A50285BI\n"),
            ("manufacturer", "FTDI\n"),
            ("product", "FT232R USB UART\n"),
        ] {
            std::fs::write(usb.join(f), v).unwrap();
        }
        let drivers = sys.join("bus/usb-serial/drivers/ftdi_sio");
        std::fs::create_dir_all(&drivers).unwrap();
        symlink(&drivers, iface.join("driver")).unwrap();
        let acm = sys.join("devices/pci0000:00/usb1/1-3/1-3:1.0");
        std::fs::create_dir_all(&acm).unwrap();
        std::fs::write(sys.join("devices/pci0000:00/usb1/1-3/idVendor"), "0483").unwrap();
        std::fs::write(sys.join("devices/pci0000:00/usb1/1-3/idProduct"), "374b").unwrap();
        let uart = sys.join("devices/platform/serial8250");
        std::fs::create_dir_all(&uart).unwrap();
        let class = sys.join("class/tty");
        for (name, device, ty) in [
            ("ttyUSB0", iface.clone(), None),
            ("ttyACM0", acm.clone(), None),
            ("ttyS0", uart.clone(), Some("4")),
            ("ttyS1", uart.clone(), Some("0")),
        ] {
            std::fs::create_dir_all(class.join(name)).unwrap();
            symlink(&device, class.join(name).join("device")).unwrap();
            if let Some(ty) = ty {
                std::fs::write(class.join(name).join("type"), ty).unwrap();
            }
        }
        // A virtual console: no device behind it.
        std::fs::create_dir_all(class.join("tty1")).unwrap();
        std::fs::create_dir_all(dev.join("serial/by-id")).unwrap();
        std::fs::write(dev.join("ttyUSB0"), "").unwrap();
        symlink(
            "../../ttyUSB0",
            dev.join("serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"),
        )
        .unwrap();

        let ports = list(&sys, &dev);
        let paths: Vec<&str> = ports.iter().map(|p| p.path.as_str()).collect();
        let d = |n: &str| dev.join(n).display().to_string();
        assert_eq!(paths, [d("ttyACM0"), d("ttyS0"), d("ttyUSB0")]);
        let ftdi = &ports[2];
        assert_eq!(ftdi.driver.as_deref(), Some("ftdi_sio"));
        let u = ftdi.usb.as_ref().unwrap();
        assert_eq!(
            (u.vendor_id.as_str(), u.product_id.as_str()),
            ("0403", "6001")
        );
        assert_eq!(u.serial.as_deref(), Some("A50285BI"));
        assert!(
            ftdi.by_id
                .as_deref()
                .unwrap()
                .ends_with("usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0")
        );
        assert_eq!(ports[0].usb.as_ref().unwrap().product_id, "374b");
        assert!(ports[1].usb.is_none());
    }
}
