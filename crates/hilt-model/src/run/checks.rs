//! Every check a failure can suggest, each written once. A [`Check`] can only be made
//! here, so two wordings of the same advice cannot appear in different places: a category
//! lists its default checks by name ([`super::Category::suggestions`]), a step that knows
//! more puts checks in front of them ([`super::Failure::with_suggestions`]), and a check
//! listed twice is kept once.

use std::fmt;

/// One piece of advice in a failure's `suggestions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Check(&'static str);

impl Check {
    pub fn text(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

macro_rules! checks {
    ($($name:ident = $text:literal;)*) => {
        $(pub const $name: Check = Check($text);)*
        /// Every check, for tests over the whole catalogue.
        pub const ALL: &[Check] = &[$($name,)*];
    };
}

checks! {
    // Flashing and artifacts.
    PROBE_CONNECTED = "Check that the debug probe is connected and the target is powered.";
    NODE_FLASH_SETTINGS = "Check the node's flash settings in bench.yaml.";
    OPEN_FLASH_LOG = "Open flash.log for the tool's own error.";
    INSTALL_TOOL = "Install the tool on this machine or fix PATH.";
    RUN_SELF_TEST = "Run `hilt bench self-test --bench <file>` to find which tools are missing.";
    PASS_ARTIFACT = "Pass --artifact FILE, set `artifact` on the flash step, or set flash.artifact in the bench.";
    ARTIFACT_TYPE = "Use an .elf, .hex or .bin file (.bin needs flash.address).";

    // UART and the device behind it.
    DEVICE_POWERED = "Check that the device is powered and out of reset.";
    UART_WIRING = "Check TX/RX wiring, ground and the baud rate.";
    FIRMWARE_PRINTS_TEXT = "Check that the firmware prints the expected text.";
    OPEN_TRANSPORT_LOG = "Open the transport log to see what the device did print.";
    PORT_FREE = "Check that the port exists and is not used by another program.";
    USB_CABLE = "Check the USB cable and adapter.";
    PORT_PLUGGED_IN = "Check that the device is plugged in and the port path is right (ls -l the path).";
    PORT_PERMISSIONS = "Check permissions (dialout group) and that no other program holds the port.";
    RUN_SELF_TEST_OPEN_HARDWARE = "Run `hilt bench self-test --bench <file> --open-hardware`.";

    // Modbus and CAN.
    MODBUS_SETTINGS = "Check slave id, baud, parity and register address.";
    RS485_WIRING = "Check RS-485 wiring and termination.";
    CAN_TERMINATION = "Check bus termination.";
    CAN_INTERFACE = "Check that the interface is up and the bitrate matches.";
    CAN_FRAME_RULE = "Compare the frames seen in the transport log with the rule (id, id_mask, data, FD flags).";
    CAN_NODE_ON_BUS = "Check that the device is powered, on the bus and at the same bit rate.";

    // I2C and SPI.
    I2C_ADDRESS = "Check the device's I2C address (address straps) and that it is powered; `i2c_scan` lists what answers.";
    I2C_WIRING = "Check SDA/SCL wiring, pull-ups and that no device holds the clock low.";
    I2C_BUS_PRESENT = "Check that the bus exists (`ls /dev/i2c-*`, `modprobe i2c-dev`) and the bus number.";
    SPI_SETTINGS = "Check the SPI mode, word size and clock against the device's datasheet.";
    SPI_DEVICE_PRESENT = "Check that the spidev node exists (`ls /dev/spidev*`) and the bus and chip select numbers.";
    OPEN_TRANSPORT_LOG_BUS = "Open the transport log for every transfer and its answer.";

    // GPIO.
    GPIO_POLARITY = "Check active_high and bias.";
    OPEN_GPIO_LOG = "Open gpio.log.";
    GPIO_CHIP_PATH = "Check the GPIO chip path and line numbers.";
    GPIO_LINE_FREE = "Check that no other process holds the line.";

    // Measurement and power.
    MEASUREMENT_LIMITS = "Compare the reading with the limits and units in the suite.";
    INSTRUMENT_RANGE = "Check the instrument's range and wiring.";
    OPEN_MEASUREMENT_LOG = "Open measurement.log.";
    INSTRUMENT_REACHABLE = "Check the resource settings and that the instrument is reachable.";
    RESOURCE_CONNECTION = "Check the resource's connection settings in bench.yaml.";
    POWER_READBACK = "Configure readback for the controller, or use power_set instead of power_expect.";
    RELAY_CONNECTED = "Check that the relay/controller is connected.";
    POWER_NAMES = "Check the resource and outlet names.";
    OPEN_POWER_LOG = "Open power.log.";

    // Fuzzing and fault injection.
    REPLAY_FUZZ_CASE = "Replay the failing case from the fuzz log with its seed.";
    FUZZ_TRANSPORT = "Check the transport, then replay with the recorded seed.";
    BROWN_OUT_HANDLING = "Check the firmware's brown-out and watchdog handling.";
    FAULT_POLICY = "Check the bench's fault-injection policy and the resource.";
    RESTORE_BY_HAND = "Check the power or GPIO resource by hand before the next run.";

    // External runs.
    OPEN_EXTERNAL_LOG = "Open the external log and parsed report.";
    EXTERNAL_TIMEOUT = "Raise timeout_ms (within the target's max_timeout_ms) or check the external tool.";
    EXTERNAL_RELATIVE_PATHS = "Give report, log and artifact paths relative to the target's output root, without `..` and without symbolic links leading outside it.";
    EXTERNAL_REPORT_WRITTEN = "Check that the external tool ran its tests and wrote the report the step names.";
    EXTERNAL_PROGRAM = "Check the target's argv_prefix: the program must exist on the bench host and be executable.";
    EXTERNAL_COMMAND_LOG = "Open the external command log for the tool's own error output.";
    EXTERNAL_POLICY = "Run `hilt validate` on the bench and suite; the step breaks the bench's safety.external policy.";
    EXTERNAL_WORK_ROOT = "Create the target's work_root on the bench host, or fix `safety.external.targets.<target>.work_root`.";
    EXTERNAL_HEADERS_ENV = "Set the variables named in `http.headers_env` in the runner's environment.";
    LAB_SERVICE_REACHABLE = "Check that the lab service is running and reachable from the bench host (plain HTTP) at the target's base_url.";

    // Remote hosts over SSH.
    SSH_HOP_REACHABLE = "Check that the named host or hop is up, its sshd listens on the configured port, and the previous hop can reach it (`ssh -F ssh_config <hop> true` from the bench host).";
    SSH_CREDENTIALS = "Check the auth_ref of the named host or hop: the key file is its private key and authorized there, the ssh-agent holds the key, or the password variable is set.";
    SSH_KNOWN_HOSTS = "The host key differs from the known_hosts file: verify the host's key out of band before updating known_hosts; never disable the check.";
    SSH_COMMAND_OUTPUT = "Open the step's stdout/stderr artifacts and compare them with the expectation.";
    SSH_TRANSFER = "Check free space and permissions at the destination, then compare the sha256 values in transfer_ledger.jsonl.";
    BUNDLE_CHECKSUM = "Rebuild or re-download the bundle file, or correct the sha256 in the suite's `bundles` if the file is the intended one (sha256sum FILE).";
    BUNDLE_PLATFORM = "Add a candidate built for the host's platform (see the staging decision in run_manifest.json), or give the bundle a `fallback`.";

    // Self-test, identity, locks.
    SELF_TEST_LOCALLY = "Run `hilt bench self-test` locally and read its log.";
    WAIT_FOR_LOCK = "Wait for the other run to finish, or check who holds it (the lock file names the pid and run).";
    STALE_LOCKS = "A lock of a process that has died frees itself; do not delete lock files while a run is active.";
    IDENTITY_ANSWER = "Check that the firmware answers the identity query.";
    IDENTITY_SETTINGS = "Check the self_identification settings.";
    MOUNTED_BOARD = "Check which board is mounted, or update nodes.<node>.dut in bench.yaml.";

    // Configuration and the run as a whole.
    VALIDATE = "Run `hilt validate --bench <bench> --suite <suite>`.";
    CONFIG_NAMES = "Check node, transport, line and resource names.";
    READ_WARNINGS = "Run `hilt validate` and read the warnings.";
    STEP_TIMEOUT = "Check the step's timeout and the device's state.";
    READ_LAST_EVENTS = "Read the last events to see which step was still running.";
    RAISE_MAX_RUN_TIME = "Raise limits.max_run_time_s in agent.yaml (or --max-run-time-s) if the suite really runs this long.";
    RERUN = "Re-run the suite when ready.";
    READ_RAW_ERROR = "Read raw_error and the run's logs.";
}
