//! Unit tests of the firmware state machine, driven by a virtual clock.

use super::*;
use crate::commands::{MAX_FLOOD, flood_line};
use crate::config::Identity;
use hilt_hw::sim_link::{CHANNEL_BUTTON, CHANNEL_LED, CHANNEL_READY, CHANNEL_RESET};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A firmware plus a virtual clock.
struct Bench {
    fw: Firmware,
    now: Duration,
}

impl Bench {
    fn new(config: DutConfig) -> Self {
        Bench {
            fw: Firmware::new(&config),
            now: Duration::ZERO,
        }
    }

    /// Booted with default config, banner consumed.
    fn booted() -> Self {
        let mut b = Bench::new(DutConfig::default());
        b.wait(ms(30));
        b.take();
        b
    }

    fn wait(&mut self, d: Duration) {
        self.now += d;
        self.fw.advance(self.now);
    }

    fn take(&mut self) -> String {
        let mut out = Vec::new();
        self.fw.take_output(self.now, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sends a line and returns everything due immediately.
    fn cmd(&mut self, line: &str) -> String {
        self.fw.feed(self.now, format!("{line}\n").as_bytes());
        self.take()
    }
}

fn banner(cause: &str) -> String {
    format!("HILT-SIM DUT v1.4.2\r\nreset cause: {cause}\r\nready\r\n")
}

#[test]
fn boots_after_boot_ms_with_power_on_banner() {
    let mut b = Bench::new(DutConfig::default());
    assert!(!b.fw.ready());
    assert_eq!(b.fw.next_deadline(), Some(ms(30)));
    b.wait(ms(29));
    assert_eq!(b.take(), "");
    assert!(!b.fw.ready());
    b.wait(ms(1));
    assert_eq!(b.take(), banner("power-on"));
    assert!(b.fw.ready());
    assert_eq!(b.fw.gpio(CHANNEL_READY), Some(true));
    assert_eq!(b.fw.state().boots, 1);
    assert_eq!(b.fw.state().last_reset_cause, Some(ResetCause::PowerOn));
}

#[test]
fn input_while_booting_is_ignored() {
    let mut b = Bench::new(DutConfig::default());
    b.fw.feed(ms(5), b"ping\n");
    b.wait(ms(30));
    assert_eq!(b.take(), banner("power-on"));
    assert_eq!(b.cmd("ping"), "pong\r\n");
}

#[test]
fn starts_unpowered_when_configured() {
    let mut b = Bench::new(DutConfig {
        powered: false,
        ..DutConfig::default()
    });
    b.wait(ms(100));
    assert_eq!(b.take(), "");
    assert_eq!(b.cmd("ping"), "");
    assert_eq!(b.fw.next_deadline(), None);
    b.fw.set_power(b.now, true);
    b.wait(ms(30));
    assert_eq!(b.take(), banner("power-on"));
}

#[test]
fn simple_commands() {
    let mut b = Bench::booted();
    assert_eq!(b.cmd("ping"), "pong\r\n");
    assert_eq!(b.cmd("ping\r"), "pong\r\n");
    assert_eq!(b.cmd("version"), "version 1.4.2\r\n");
    assert_eq!(b.cmd("echo hello  world "), "hello  world \r\n");
    assert_eq!(b.cmd("echo"), "\r\n");
    assert_eq!(b.cmd(""), "");
    assert_eq!(b.cmd("\r"), "");
    assert_eq!(
        b.cmd("frobnicate 3"),
        "error: unknown command 'frobnicate'\r\n"
    );
    assert_eq!(b.cmd("ping 2"), "error: ping takes no arguments\r\n");
}

#[test]
fn arithmetic() {
    let mut b = Bench::booted();
    assert_eq!(b.cmd("add 2 3"), "= 5\r\n");
    assert_eq!(b.cmd("sub 2 5"), "= -3\r\n");
    assert_eq!(b.cmd("mul -4 6"), "= -24\r\n");
    assert_eq!(b.cmd("div 7 2"), "= 3\r\n");
    assert_eq!(b.cmd("div 1 0"), "error: division by zero\r\n");
    assert_eq!(b.cmd("add 9223372036854775807 1"), "error: overflow\r\n");
    assert_eq!(b.cmd("div -9223372036854775808 -1"), "error: overflow\r\n");
    assert_eq!(b.cmd("add x 1"), "error: not an integer: 'x'\r\n");
    assert_eq!(b.cmd("add 1"), "error: usage: add A B\r\n");
}

#[test]
fn led_follows_command_and_gpio() {
    let mut b = Bench::booted();
    assert_eq!(b.cmd("led?"), "led=off\r\n");
    assert_eq!(b.cmd("led on"), "led=on\r\n");
    assert_eq!(b.fw.gpio(CHANNEL_LED), Some(true));
    assert_eq!(b.cmd("led?"), "led=on\r\n");
    assert_eq!(b.cmd("led off"), "led=off\r\n");
    assert_eq!(b.fw.gpio(CHANNEL_LED), Some(false));
    assert_eq!(b.cmd("led blink"), "error: usage: led on|off\r\n");
    b.cmd("led on");
    b.fw.set_power(b.now, false);
    assert_eq!(b.fw.gpio(CHANNEL_LED), Some(false));
}

#[test]
fn registers() {
    let mut b = Bench::booted();
    assert_eq!(b.cmd("reg read 0x10"), "reg[0x10]=0x0000\r\n");
    assert_eq!(b.cmd("reg write 16 0xBEEF"), "ok\r\n");
    assert_eq!(b.cmd("reg read 0x10"), "reg[0x10]=0xBEEF\r\n");
    assert_eq!(b.cmd("reg write 0xFF 65535"), "ok\r\n");
    assert_eq!(b.cmd("reg read 255"), "reg[0xFF]=0xFFFF\r\n");
    assert!(
        b.cmd("reg read 256")
            .starts_with("error: register address 256 out of range")
    );
    assert!(
        b.cmd("reg write 1 65536")
            .starts_with("error: register value 65536 out of range")
    );
    assert!(
        b.cmd("reg read zz")
            .starts_with("error: invalid register address")
    );
    assert!(
        b.cmd("reg write 1 -1")
            .starts_with("error: invalid register value")
    );
    assert!(b.cmd("reg").starts_with("error: usage: reg"));
    // Registers reset at boot.
    b.cmd("reboot");
    b.wait(ms(30));
    b.take();
    assert_eq!(b.cmd("reg read 0x10"), "reg[0x10]=0x0000\r\n");
}

#[test]
fn identity_and_inputs() {
    let mut b = Bench::booted();
    assert_eq!(
        b.cmd("BENCHCI_ID?"),
        "BENCHCI_ID: {\"schema_version\":\"1\",\"hardware_revision\":\"sim-a\",\"serial_number\":\"SIM-0001\"}\r\n"
    );
    assert_eq!(b.cmd("btn?"), "btn=0\r\n");
    b.fw.set_button(b.now, true);
    assert_eq!(b.fw.gpio(CHANNEL_BUTTON), Some(true));
    assert_eq!(b.cmd("btn?"), "btn=1\r\n");
    b.wait(ms(1234));
    assert_eq!(b.cmd("uptime"), "uptime_ms=1234\r\n");

    let mut custom = Bench::new(DutConfig {
        identity: Identity {
            hardware_revision: "rev-c".into(),
            serial_number: "X9".into(),
            asset_id: Some("A1".into()),
            fixture_slot: None,
        },
        ..DutConfig::default()
    });
    custom.wait(ms(30));
    custom.take();
    assert_eq!(
        custom.cmd("BENCHCI_ID?"),
        "BENCHCI_ID: {\"schema_version\":\"1\",\"hardware_revision\":\"rev-c\",\"serial_number\":\"X9\",\"asset_id\":\"A1\"}\r\n"
    );
}

#[test]
fn flood_lines() {
    let mut b = Bench::booted();
    let out = b.cmd("flood 3");
    let expected: String = (0..3).map(|i| format!("{}\r\n", flood_line(i))).collect();
    assert_eq!(out, expected);
    assert_eq!(flood_line(2), "log line 2 lorem ipsum dolor sit amet");
    assert_eq!(b.cmd("flood 0"), "");
    let big = b.cmd("flood 10000");
    assert_eq!(big.lines().count(), 10000);
    assert!(
        b.cmd(&format!("flood {}", MAX_FLOOD + 1))
            .starts_with("error: flood count")
    );
    assert!(b.cmd("flood").starts_with("error: usage: flood"));
}

#[test]
fn hang_until_reset_or_power_cycle() {
    let mut b = Bench::booted();
    assert_eq!(b.cmd("hang"), "");
    assert_eq!(b.cmd("ping"), "");
    assert!(b.fw.state().hung);
    assert!(b.fw.ready(), "a hung firmware keeps READY high");
    b.wait(ms(1000));
    assert_eq!(b.cmd("ping"), "");
    // Reset pin pulse.
    b.fw.set_reset(b.now, true);
    assert_eq!(b.fw.gpio(CHANNEL_RESET), Some(true));
    assert!(!b.fw.ready());
    b.fw.set_reset(b.now, false);
    b.wait(ms(30));
    assert_eq!(b.take(), banner("reset-pin"));
    assert_eq!(b.cmd("ping"), "pong\r\n");
    // Power cycle also clears a hang.
    b.cmd("hang");
    b.fw.set_power(b.now, false);
    b.fw.set_power(b.now, true);
    b.wait(ms(30));
    assert_eq!(b.take(), banner("power-on"));
    assert_eq!(b.cmd("ping"), "pong\r\n");
}

#[test]
fn reboot_and_crash() {
    let mut b = Bench::booted();
    assert_eq!(b.cmd("reboot"), "rebooting\r\n");
    assert!(!b.fw.ready());
    assert_eq!(b.cmd("ping"), "", "no commands while rebooting");
    b.wait(ms(30));
    assert_eq!(b.take(), banner("soft"));
    assert_eq!(b.fw.state().boots, 2);

    assert_eq!(b.cmd("crash"), "HardFault at 0x08001234\r\n");
    assert_eq!(b.cmd("ping"), "");
    b.wait(ms(50));
    assert_eq!(b.take(), "", "watchdog fired, still booting");
    b.wait(ms(30));
    assert_eq!(b.take(), banner("watchdog"));
    assert_eq!(b.fw.state().last_reset_cause, Some(ResetCause::Watchdog));
    assert_eq!(b.fw.state().boots, 3);
}

#[test]
fn power_off_is_silent_and_drops_pending_output() {
    let mut b = Bench::new(DutConfig {
        latency_ms: 10,
        ..DutConfig::default()
    });
    b.wait(ms(30));
    b.take();
    assert_eq!(b.cmd("ping"), "");
    b.fw.set_power(b.now, false);
    b.wait(ms(20));
    assert_eq!(b.take(), "", "reply in flight is lost with power");
    assert!(!b.fw.state().powered);
    assert_eq!(b.fw.gpio(CHANNEL_READY), Some(false));
    assert_eq!(b.cmd("ping"), "");
}

#[test]
fn power_on_while_reset_held_reports_power_on() {
    let mut b = Bench::booted();
    b.fw.set_power(b.now, false);
    b.fw.set_reset(b.now, true);
    b.fw.set_power(b.now, true);
    b.wait(ms(100));
    assert_eq!(b.take(), "", "held in reset");
    b.fw.set_reset(b.now, false);
    b.wait(ms(30));
    assert_eq!(b.take(), banner("power-on"));
}

#[test]
fn latency_delays_replies_in_order() {
    let mut b = Bench::new(DutConfig {
        latency_ms: 10,
        ..DutConfig::default()
    });
    b.wait(ms(30));
    assert_eq!(b.take(), banner("power-on"), "the banner is not a reply");
    assert_eq!(b.cmd("ping"), "");
    assert_eq!(b.fw.next_deadline(), Some(ms(40)));
    b.wait(ms(9));
    assert_eq!(b.take(), "");
    b.wait(ms(1));
    assert_eq!(b.take(), "pong\r\n");
}

#[test]
fn jitter_is_bounded() {
    let mut b = Bench::new(DutConfig {
        latency_ms: 2,
        jitter_ms: 3,
        ..DutConfig::default()
    });
    b.wait(ms(30));
    b.take();
    for _ in 0..50 {
        b.fw.feed(b.now, b"ping\n");
        let due = b.fw.next_deadline().unwrap();
        assert!(due >= b.now + ms(2) && due <= b.now + ms(5), "{due:?}");
        b.now = due;
        assert_eq!(b.take(), "pong\r\n");
    }
}

/// Reply delays of the pty test's configuration (latency 5 ms, jitter 10 ms, seed 99) on
/// the virtual clock: each one within `[latency, latency + jitter]`, nothing sent before it
/// is due, and spread uniformly over the range. The seed makes the sequence fixed, so the
/// bucket counts are the same on every machine and run; the bounds on them are loose
/// enough that they hold for any reasonable seed, which the second seed shows.
#[test]
fn jitter_covers_its_range_uniformly() {
    for seed in [99, 7] {
        let mut b = Bench::new(DutConfig {
            latency_ms: 5,
            jitter_ms: 10,
            seed,
            ..DutConfig::default()
        });
        b.wait(ms(30));
        b.take();
        let n = 2000;
        let mut buckets = [0usize; 10];
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..n {
            let sent = b.now;
            b.fw.feed(sent, b"ping\n");
            let due = b.fw.next_deadline().unwrap();
            let delay = due - sent;
            assert!(delay >= ms(5) && delay <= ms(15), "seed {seed}: {delay:?}");
            b.now = due - Duration::from_micros(1);
            assert_eq!(b.take(), "", "seed {seed}: a reply before it is due");
            b.now = due;
            assert_eq!(b.take(), "pong\r\n");
            lo = lo.min(delay);
            hi = hi.max(delay);
            let i = ((delay - ms(5)).as_micros() / 1000).min(9) as usize;
            buckets[i] += 1;
        }
        // Both ends of the range are reached (within 0.1 ms of 5 and 15 ms).
        assert!(lo < Duration::from_micros(5100), "seed {seed}: min {lo:?}");
        assert!(hi > Duration::from_micros(14900), "seed {seed}: max {hi:?}");
        // Uniform: 200 expected per 1 ms bucket; binomial sd ≈ 13, so 130..270 is > 5 sd.
        for (i, c) in buckets.iter().enumerate() {
            assert!(
                (130..=270).contains(c),
                "seed {seed}: bucket {i} ms has {c} of {n}: {buckets:?}"
            );
        }
    }
}

/// Zero latency and zero jitter: a reply is due at the instant its command arrives, so
/// the DUT never waits on a timer before answering (the pty round trip is measured by
/// `hilt-bench roundtrip`, not asserted).
#[test]
fn zero_latency_reply_is_due_at_once() {
    let mut b = Bench::booted();
    for _ in 0..100 {
        b.fw.feed(b.now, b"ping\n");
        assert_eq!(b.fw.next_deadline(), Some(b.now), "due now, not later");
        assert_eq!(b.take(), "pong\r\n");
        b.wait(Duration::from_micros(1));
    }
}

#[test]
fn several_commands_in_one_read_and_split_lines() {
    let mut b = Bench::booted();
    b.fw.feed(b.now, b"pi");
    assert_eq!(b.take(), "");
    b.fw.feed(b.now, b"ng\nversion\r\nadd 1 1\n");
    assert_eq!(b.take(), "pong\r\nversion 1.4.2\r\n= 2\r\n");
    // A reboot in the middle drops the rest of the batch.
    b.fw.feed(b.now, b"reboot\nping\n");
    assert_eq!(b.take(), "rebooting\r\n");
}

#[test]
fn overlong_line_is_rejected() {
    let mut b = Bench::booted();
    let long = "x".repeat(MAX_LINE + 1);
    assert!(b.cmd(&long).starts_with("error: line too long"));
    assert_eq!(b.cmd("ping"), "pong\r\n");
    let bin = b.cmd("\u{1}\u{2}");
    assert!(bin.starts_with("error: unknown command"), "{bin}");
}

fn noisy_run(seed: u64) -> Vec<u8> {
    let mut b = Bench::new(DutConfig {
        noise: 0.5,
        seed,
        ..DutConfig::default()
    });
    b.wait(ms(30));
    let mut out = Vec::new();
    b.fw.take_output(b.now, &mut out);
    for _ in 0..20 {
        b.fw.feed(b.now, b"version\n");
        let mut reply = Vec::new();
        b.fw.take_output(b.now, &mut reply);
        out.extend_from_slice(&reply);
    }
    out
}

#[test]
fn noise_is_deterministic_per_seed() {
    let a = noisy_run(7);
    assert_eq!(a, noisy_run(7));
    assert_ne!(a, noisy_run(8));
    let clean = banner("power-on") + &"version 1.4.2\r\n".repeat(20);
    let got: Vec<&[u8]> = a.split_inclusive(|&b| b == b'\n').collect();
    let want: Vec<&[u8]> = clean.as_bytes().split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(got.len(), want.len(), "noise never adds or removes lines");
    let mut corrupted = 0;
    for (g, w) in got.iter().zip(&want) {
        assert!(g.ends_with(b"\r\n"));
        if g != w {
            corrupted += 1;
            assert_eq!(g.len(), w.len() + 1, "one garbage byte per noisy line");
        }
    }
    assert!(
        (3..=20).contains(&corrupted),
        "p=0.5 over 23 lines: {corrupted}"
    );
}

#[test]
fn faults() {
    let mut b = Bench::booted();
    b.fw.fault(b.now, Fault::Silent);
    assert_eq!(b.cmd("ping"), "");
    assert!(b.fw.state().silent);
    b.fw.fault(b.now, Fault::Clear);
    assert_eq!(b.cmd("ping"), "pong\r\n");

    b.fw.fault(b.now, Fault::Noise(1.0));
    b.fw.feed(b.now, b"ping\n");
    let mut noisy = Vec::new();
    b.fw.take_output(b.now, &mut noisy);
    assert_eq!(noisy.len(), "pong\r\n".len() + 1);
    b.fw.fault(b.now, Fault::Clear);
    assert_eq!(b.fw.state().noise, 0.0);
    assert_eq!(b.cmd("ping"), "pong\r\n");

    b.fw.fault(b.now, Fault::Hang);
    assert_eq!(b.cmd("ping"), "");
    b.fw.fault(b.now, Fault::Clear);
    assert_eq!(b.cmd("ping"), "pong\r\n");
}

#[test]
fn state_json() {
    let b = Bench::booted();
    let v: serde_json::Value = serde_json::from_str(&b.fw.state().to_json()).unwrap();
    assert_eq!(v["powered"], true);
    assert_eq!(v["booted"], true);
    assert_eq!(v["hung"], false);
    assert_eq!(v["led"], false);
    assert_eq!(v["ready"], true);
    assert_eq!(v["boots"], 1);
    assert_eq!(v["last_reset_cause"], "power-on");
}

#[test]
fn unknown_gpio_channel() {
    let b = Bench::booted();
    assert_eq!(b.fw.gpio(4), None);
}

#[test]
fn planted_bug_long_line_crashes_and_watchdog_reboots() {
    let mut b = Bench::new(DutConfig {
        crash_on_line_over: Some(40),
        ..DutConfig::default()
    });
    b.wait(ms(30));
    b.take();
    // At the limit the line is just a command; one byte more is the bug.
    assert!(b.cmd(&"x".repeat(40)).starts_with("error: unknown command"));
    b.fw.regs[1] = 7;
    let out = b.cmd(&"y".repeat(41));
    assert!(out.contains("HardFault"), "{out}");
    assert!(!b.fw.ready());
    assert_eq!(b.cmd("ping"), "", "a crashed firmware is deaf");
    b.wait(ms(50 + 30));
    assert_eq!(b.take(), banner("watchdog"));
    assert_eq!(b.fw.regs[1], 0, "state is lost over the reboot");
    assert_eq!(b.cmd("ping"), "pong\r\n");
}

#[test]
fn line_noise_before_a_command_makes_the_parser_answer_an_error() {
    let mut b = Bench::booted();
    b.fw.feed(b.now, &[0xAA, 0x55]);
    assert!(b.cmd("ping").starts_with("error: unknown command"));
    assert_eq!(b.cmd("ping"), "pong\r\n");
}
