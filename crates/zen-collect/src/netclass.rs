//! Interface state from `/sys/class/net/<device>`: up, MTU, speed, carrier and the identity
//! node_exporter puts in `node_network_info`.
//!
//! These change rarely, so [`crate::host::HostReader`] reads them only when the set of
//! interfaces in `/proc/net/dev` changes, and otherwise every [`REFRESH`] (a link going down or
//! an MTU change shows within that time).

use std::path::Path;
use std::time::Duration;

/// How often the state of an unchanged set of interfaces is read again.
pub const REFRESH: Duration = Duration::from_secs(30);

/// One interface's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    pub device: String,
    /// `operstate`, as the kernel writes it (`up`, `down`, `unknown`, …).
    pub operstate: String,
    pub mtu: Option<u64>,
    /// Bytes per second; `None` where the driver reports none (virtual devices write `-1` or
    /// fail the read; node_exporter 1.5 shows `-125000` for the former, we show nothing).
    pub speed_bytes: Option<u64>,
    /// 1 when the link has carrier; `None` when the interface is down (the read fails).
    pub carrier: Option<u64>,
    pub address: String,
    pub broadcast: String,
    pub duplex: String,
    pub ifalias: String,
}

impl Link {
    /// node_exporter's `node_network_up`: only `up` counts (`lo` is `unknown`, so 0).
    pub fn up(&self) -> bool {
        self.operstate == "up"
    }
}

/// Parses a `speed` file (megabits per second) into bytes per second; negative is none.
pub fn parse_speed(text: &str) -> Option<u64> {
    let mbits: i64 = text.trim().parse().ok()?;
    u64::try_from(mbits).ok().map(|m| m * 125_000)
}

/// Reads the state of `device` under `sys_root` (normally `/sys`). Files that are missing or
/// unreadable leave their part empty.
pub fn read_link(sys_root: &Path, device: &str) -> Link {
    let dir = sys_root.join("class/net").join(device);
    let text = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .map(|t| t.trim_end_matches('\n').to_owned())
            .ok()
    };
    let number = |file: &str| text(file).and_then(|t| t.trim().parse::<u64>().ok());
    Link {
        device: device.to_owned(),
        operstate: text("operstate").unwrap_or_default(),
        mtu: number("mtu"),
        speed_bytes: text("speed").and_then(|t| parse_speed(&t)),
        carrier: number("carrier"),
        address: text("address").unwrap_or_default(),
        broadcast: text("broadcast").unwrap_or_default(),
        duplex: text("duplex").unwrap_or_default(),
        ifalias: text("ifalias").unwrap_or_default(),
    }
}
