//! Interface state: up, MTU, speed, carrier and the identity node_exporter puts in
//! `node_network_info`.
//!
//! [`crate::host::HostReader`] reads it from `/sys/class/net/<device>` when the set of
//! interfaces in `/proc/net/dev` changes. Otherwise, every [`REFRESH`], it asks the kernel for
//! the state of all interfaces at once over rtnetlink ([`dump_links`]) — one request in place
//! of eight sysfs files per interface — and reads sysfs again only for the speed and duplex
//! (ethtool's, not in rtnetlink) of an interface whose operational state or carrier-change
//! count moved. A link going down or an MTU change shows within [`REFRESH`].

use std::path::Path;
use std::time::Duration;

use rustix::fd::OwnedFd;

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
    /// Times the carrier went up or down: when it moved, speed and duplex may have too.
    pub carrier_changes: Option<u64>,
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

/// The directory of `device` under `sys_root`, opened; `None` when it is gone.
fn link_dir(sys_root: &Path, device: &str) -> Option<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let dir = sys_root.join("class/net").join(device);
    rustix::fs::open(
        &dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// One sysfs attribute of the interface `dir`, its newline trimmed: one open, one read (an
/// attribute is at most a page, and a read of a page returns it whole), one close.
fn attribute(dir: &OwnedFd, file: &str) -> Option<String> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(dir, file, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut page = [0u8; 4096];
    let n = rustix::io::read(&fd, &mut page).ok()?;
    let text = std::str::from_utf8(&page[..n]).ok()?;
    Some(text.trim_end_matches('\n').to_owned())
}

fn number(text: Option<String>) -> Option<u64> {
    text?.trim().parse().ok()
}

/// Reads the state of `device` under `sys_root` (normally `/sys`). Files that are missing or
/// unreadable leave their part empty.
pub fn read_link(sys_root: &Path, device: &str) -> Link {
    let mut link = Link {
        device: device.to_owned(),
        ..Link::default()
    };
    let Some(dir) = link_dir(sys_root, device) else {
        return link;
    };
    let text = |file: &str| attribute(&dir, file);
    link.operstate = text("operstate").unwrap_or_default();
    link.mtu = number(text("mtu"));
    link.carrier = number(text("carrier"));
    link.carrier_changes = number(text("carrier_changes"));
    link.address = text("address").unwrap_or_default();
    link.broadcast = text("broadcast").unwrap_or_default();
    link.ifalias = text("ifalias").unwrap_or_default();
    read_speed_and_duplex(&dir, &mut link);
    link
}

/// The ethtool part of `link`, which rtnetlink does not carry, from its sysfs directory.
fn read_speed_and_duplex(dir: &OwnedFd, link: &mut Link) {
    link.speed_bytes = attribute(dir, "speed").and_then(|t| parse_speed(&t));
    link.duplex = attribute(dir, "duplex").unwrap_or_default();
}

/// `old`'s interfaces with the state in `now` (from [`dump_links`]). Speed and duplex are
/// kept where the operational state and the carrier-change count are as before, and read
/// from sysfs under `sys_root` otherwise; an interface missing from `now` is read from sysfs
/// whole.
pub fn refresh(old: &[Link], now: Vec<Link>, sys_root: &Path) -> Vec<Link> {
    let mut now: std::collections::HashMap<String, Link> =
        now.into_iter().map(|l| (l.device.clone(), l)).collect();
    old.iter()
        .map(|was| {
            let Some(mut link) = now.remove(&was.device) else {
                return read_link(sys_root, &was.device);
            };
            if link.operstate == was.operstate && link.carrier_changes == was.carrier_changes {
                link.speed_bytes = was.speed_bytes;
                link.duplex.clone_from(&was.duplex);
            } else if let Some(dir) = link_dir(sys_root, &link.device) {
                read_speed_and_duplex(&dir, &mut link);
            }
            link
        })
        .collect()
}

const NLMSG_HEADER: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// `struct ifinfomsg`: family, type, index, flags, change.
const IFINFOMSG: usize = 16;
const IFF_UP: u32 = 0x1;
const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_IFALIAS: u16 = 20;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
/// Leaves the counters out of the answer: `/proc/net/dev` has them every second already.
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
/// Attribute type bits that are flags, not the type.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// `IF_OPER_*`, as sysfs writes them.
const OPERSTATES: [&str; 7] = [
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Netlink pads every message and attribute to 4 bytes.
fn aligned(len: usize) -> usize {
    (len + 3) & !3
}

/// A NUL-terminated string attribute.
fn c_string(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// A hardware address as sysfs writes it: `52:54:00:12:34:56`.
fn hardware_address(v: &[u8]) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for (i, b) in v.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The request for every interface's state, without counters.
fn dump_request() -> [u8; NLMSG_HEADER + IFINFOMSG + 8] {
    let mut req = [0u8; NLMSG_HEADER + IFINFOMSG + 8];
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // The ifinfomsg stays zero: any family, any interface.
    let attr = NLMSG_HEADER + IFINFOMSG;
    req[attr..attr + 2].copy_from_slice(&8u16.to_ne_bytes());
    req[attr + 2..attr + 4].copy_from_slice(&IFLA_EXT_MASK.to_ne_bytes());
    req[attr + 4..attr + 8].copy_from_slice(&RTEXT_FILTER_SKIP_STATS.to_ne_bytes());
    req
}

/// Parses one datagram of the kernel's answer to [`dump_request`], appending its interfaces
/// to `out`; `Ok(true)` once the end of the dump is in it. A malformed datagram is an error
/// that says what is wrong and at which byte.
pub fn parse_dump(datagram: &[u8], out: &mut Vec<Link>) -> Result<bool, String> {
    let mut at = 0;
    while at < datagram.len() {
        let rest = &datagram[at..];
        let (Some(len), Some(kind)) = (u32_at(rest, 0), u16_at(rest, 4)) else {
            return Err(format!("a message header cut short at byte {at}"));
        };
        let len = len as usize;
        if len < NLMSG_HEADER || len > rest.len() {
            return Err(format!(
                "a message of {len} bytes at byte {at}, with {} left",
                rest.len()
            ));
        }
        let body = &rest[NLMSG_HEADER..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = u32_at(body, 0).map_or(0, |c| c as i32);
                return Err(format!(
                    "the kernel answered: {}",
                    std::io::Error::from_raw_os_error(-code)
                ));
            }
            RTM_NEWLINK => out.push(
                parse_link(body)
                    .ok_or_else(|| format!("an interface message at byte {at} is malformed"))?,
            ),
            _ => {}
        }
        at += aligned(len);
    }
    Ok(false)
}

/// One `RTM_NEWLINK` message's body.
fn parse_link(body: &[u8]) -> Option<Link> {
    let flags = u32_at(body, 8)?;
    let mut link = Link::default();
    let mut carrier = None;
    let mut attrs = body.get(IFINFOMSG..)?;
    while attrs.len() >= 4 {
        let len = usize::from(u16_at(attrs, 0)?);
        let kind = u16_at(attrs, 2)? & NLA_TYPE_MASK;
        let value = attrs.get(4..len)?;
        match kind {
            IFLA_IFNAME => link.device = c_string(value),
            IFLA_ADDRESS => link.address = hardware_address(value),
            IFLA_BROADCAST => link.broadcast = hardware_address(value),
            IFLA_MTU => link.mtu = u32_at(value, 0).map(u64::from),
            IFLA_OPERSTATE => {
                let state = value.first().and_then(|&s| OPERSTATES.get(usize::from(s)));
                link.operstate = state.unwrap_or(&OPERSTATES[0]).to_string();
            }
            IFLA_IFALIAS => link.ifalias = c_string(value),
            IFLA_CARRIER => carrier = value.first().map(|&c| u64::from(c)),
            IFLA_CARRIER_CHANGES => link.carrier_changes = u32_at(value, 0).map(u64::from),
            _ => {}
        }
        attrs = attrs.get(aligned(len).min(attrs.len())..)?;
    }
    // sysfs refuses `carrier` for an interface that is not up; node_exporter then shows none.
    link.carrier = carrier.filter(|_| flags & IFF_UP != 0);
    (!link.device.is_empty()).then_some(link)
}

/// Every interface of the daemon's network namespace and its state (no speed or duplex), in
/// one rtnetlink dump.
pub fn dump_links() -> std::io::Result<Vec<Link>> {
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None,
    )?;
    // The kernel answers at once; this only bounds a surprise.
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Recv,
        Some(Duration::from_secs(1)),
    )?;
    rustix::net::send(&fd, &dump_request(), SendFlags::empty())?;
    let mut datagram = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    loop {
        let (n, whole) = rustix::net::recv(&fd, &mut datagram[..], RecvFlags::TRUNC)?;
        let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        if whole > n {
            return Err(bad(format!("a datagram of {whole} bytes, over {n}")));
        }
        if n == 0 {
            return Err(bad("the dump ended without its end".into()));
        }
        if parse_dump(&datagram[..n], &mut out).map_err(bad)? {
            return Ok(out);
        }
    }
}
