//! Seeded case generators. Every case has its own 32-bit seed derived from the campaign
//! seed and its index, so a case can be regenerated alone and two campaigns with the same
//! seed send the same inputs. The generator is hilt's own (SplitMix64): the same seed gives
//! other concrete inputs than BenchCI's generator (COMPATIBILITY.md).

use hilt_model::suite::{FuzzCan, FuzzModbus, FuzzUart};

/// SplitMix64: small, fast, and fully determined by its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The seed of case `index` of a campaign seeded with `campaign` (0..2^32-1, like it).
pub fn case_seed(campaign: u64, index: u64) -> u64 {
    Rng::new(campaign ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(17)).next_u64()
        & 0xFFFF_FFFF
}

/// A campaign seed for a step that names none (recorded so the run can be repeated).
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Rng::new(t ^ (u64::from(std::process::id()) << 32)).next_u64() & 0xFFFF_FFFF
}

/// Characters of ascii mode when the step names no alphabet.
pub const DEFAULT_ALPHABET: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_ :./";
/// Share of ascii cases taken from the dictionary (when it has words).
const DICTIONARY_SHARE: f64 = 0.35;

/// One UART payload, the suffix included (ascii mode only).
pub fn uart_case(f: &FuzzUart, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let len = rng.range(f.min_length, f.max_length) as usize;
    if f.mode == "hex" {
        return (0..len).map(|_| rng.next_u64() as u8).collect();
    }
    let mut out = Vec::with_capacity(len + f.suffix.len());
    if !f.dictionary.is_empty() && rng.chance(DICTIONARY_SHARE) {
        let i = rng.range(0, f.dictionary.len() as u64 - 1) as usize;
        out.extend_from_slice(f.dictionary[i].as_bytes());
    } else {
        let alphabet: Vec<char> = f
            .alphabet
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or(DEFAULT_ALPHABET)
            .chars()
            .collect();
        let mut utf8 = [0u8; 4];
        for _ in 0..len {
            let c = alphabet[rng.range(0, alphabet.len() as u64 - 1) as usize];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    out.extend_from_slice(f.suffix.as_bytes());
    out
}

/// The four operations `fuzz_modbus` may draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModbusOp {
    ReadHoldingRegisters,
    WriteSingleRegister,
    ReadCoils,
    WriteSingleCoil,
}

impl ModbusOp {
    pub fn parse(s: &str) -> Option<ModbusOp> {
        Some(match s {
            "read_holding_registers" => ModbusOp::ReadHoldingRegisters,
            "write_single_register" => ModbusOp::WriteSingleRegister,
            "read_coils" => ModbusOp::ReadCoils,
            "write_single_coil" => ModbusOp::WriteSingleCoil,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ModbusOp::ReadHoldingRegisters => "read_holding_registers",
            ModbusOp::WriteSingleRegister => "write_single_register",
            ModbusOp::ReadCoils => "read_coils",
            ModbusOp::WriteSingleCoil => "write_single_coil",
        }
    }
}

/// One Modbus request: `count` for reads, `value` for writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModbusCase {
    pub op: ModbusOp,
    pub address: u16,
    pub count: Option<u16>,
    pub value: Option<u16>,
}

pub fn modbus_case(f: &FuzzModbus, ops: &[ModbusOp], seed: u64) -> ModbusCase {
    let mut rng = Rng::new(seed);
    let op = ops[rng.range(0, ops.len().max(1) as u64 - 1) as usize];
    let address = rng.range(f.address_min.into(), f.address_max.min(0xFFFF).into()) as u16;
    let (count, value) = match op {
        ModbusOp::ReadHoldingRegisters | ModbusOp::ReadCoils => (
            Some(rng.range(f.count_min.into(), f.count_max.into()) as u16),
            None,
        ),
        ModbusOp::WriteSingleRegister => (
            None,
            Some(rng.range(f.value_min.into(), f.value_max.min(0xFFFF).into()) as u16),
        ),
        ModbusOp::WriteSingleCoil => (None, Some(rng.range(0, 1) as u16)),
    };
    ModbusCase {
        op,
        address,
        count,
        value,
    }
}

/// Data lengths a CAN FD frame can have.
const FD_LENGTHS: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64];

pub fn can_case(f: &FuzzCan, seed: u64) -> super::can::CanFrame {
    let mut rng = Rng::new(seed);
    let id = rng.range(f.id_min.into(), f.id_max.into()) as u32;
    let mut len = rng.range(f.min_data_length.into(), f.max_data_length.into()) as usize;
    if f.fd {
        // Round up to a length FD can carry (the largest allowed one if none fits).
        len = FD_LENGTHS
            .iter()
            .copied()
            .find(|&l| l >= len && l <= f.max_data_length as usize)
            .unwrap_or(len);
    }
    super::can::CanFrame {
        id,
        extended: f.extended,
        fd: f.fd,
        bitrate_switch: f.fd && f.bitrate_switch,
        error_state_indicator: f.fd && f.error_state_indicator,
        data: (0..len).map(|_| rng.next_u64() as u8).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uart(yaml: &str) -> FuzzUart {
        serde_json::from_value(serde_json::from_str::<serde_json::Value>(yaml).expect("json"))
            .expect("fuzz_uart")
    }

    #[test]
    fn same_seed_same_cases_other_seed_other_cases() {
        let f = uart(r#"{"node": "d", "transport": "c", "suffix": "\n"}"#);
        let run =
            |seed| -> Vec<Vec<u8>> { (0..50).map(|i| uart_case(&f, case_seed(seed, i))).collect() };
        assert_eq!(run(1234), run(1234));
        assert_ne!(run(1234), run(1235));
        for p in run(7) {
            assert_eq!(p.last(), Some(&b'\n'));
            let body = &p[..p.len() - 1];
            assert!((1..=32).contains(&body.len()), "{body:?}");
            assert!(body.iter().all(|b| DEFAULT_ALPHABET.as_bytes().contains(b)));
        }
        // Case seeds stay 32-bit and differ per index.
        let seeds: std::collections::BTreeSet<u64> = (0..1000).map(|i| case_seed(99, i)).collect();
        assert_eq!(seeds.len(), 1000);
        assert!(seeds.iter().all(|s| *s <= u32::MAX as u64));
    }

    #[test]
    fn hex_mode_lengths_dictionary_and_alphabet() {
        let f = uart(
            r#"{"node": "d", "transport": "c", "mode": "hex", "min_length": 3, "max_length": 5, "suffix": "!"}"#,
        );
        for i in 0..200 {
            let p = uart_case(&f, case_seed(1, i));
            assert!((3..=5).contains(&p.len()), "hex mode has no suffix: {p:?}");
        }
        let f = uart(
            r#"{"node": "d", "transport": "c", "alphabet": "é", "dictionary": ["reboot"], "min_length": 2, "max_length": 2}"#,
        );
        let cases: Vec<Vec<u8>> = (0..400).map(|i| uart_case(&f, case_seed(5, i))).collect();
        let words = cases.iter().filter(|c| c.as_slice() == b"reboot").count();
        assert!(
            (100..180).contains(&words),
            "about 35 % from the dictionary: {words}"
        );
        assert!(
            cases
                .iter()
                .filter(|c| c.as_slice() != b"reboot")
                .all(|c| c.as_slice() == "éé".as_bytes())
        );
    }

    #[test]
    fn modbus_and_can_stay_in_their_ranges() {
        let f: FuzzModbus = serde_json::from_value(serde_json::json!({
            "node": "d", "transport": "m", "address_min": 10, "address_max": 12,
            "count_min": 2, "count_max": 3, "value_min": 100, "value_max": 101,
            "operations": ["read_holding_registers", "write_single_register", "write_single_coil"]}))
        .unwrap();
        let ops: Vec<ModbusOp> = f
            .operations
            .iter()
            .filter_map(|o| ModbusOp::parse(o))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..300 {
            let c = modbus_case(&f, &ops, case_seed(3, i));
            seen.insert(c.op.name());
            assert!((10..=12).contains(&c.address));
            match c.op {
                ModbusOp::ReadHoldingRegisters => assert!(matches!(c.count, Some(2 | 3))),
                ModbusOp::WriteSingleRegister => assert!(matches!(c.value, Some(100 | 101))),
                ModbusOp::WriteSingleCoil => assert!(matches!(c.value, Some(0 | 1))),
                ModbusOp::ReadCoils => panic!("not in the operations"),
            }
        }
        assert_eq!(seen.len(), 3);
        let f: FuzzCan = serde_json::from_value(serde_json::json!({
            "node": "d", "transport": "b", "id_min": 256, "id_max": 300, "fd": true,
            "min_data_length": 9, "max_data_length": 20, "bitrate_switch": true}))
        .unwrap();
        for i in 0..200 {
            let fr = can_case(&f, case_seed(8, i));
            assert!((256..=300).contains(&fr.id));
            assert!([12, 16, 20].contains(&fr.data.len()), "{}", fr.data.len());
            assert!(fr.fd && fr.bitrate_switch && !fr.error_state_indicator);
        }
    }
}
