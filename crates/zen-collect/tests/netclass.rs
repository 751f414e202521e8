//! Interface state from rtnetlink against sysfs on this machine, the refresh that keeps speed
//! and duplex, and damaged rtnetlink answers.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::path::Path;

use proptest::prelude::*;
use zen_collect::netclass::{Link, dump_links, parse_dump, read_link, refresh};

fn fixture_sys() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sys")
}

#[test]
fn the_rtnetlink_dump_agrees_with_sysfs_for_every_interface_here() {
    let dumped = dump_links().unwrap();
    let mut names: Vec<String> = dumped.iter().map(|l| l.device.clone()).collect();
    let mut in_sysfs: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    in_sysfs.sort();
    assert_eq!(names, in_sysfs);
    for link in &dumped {
        let sysfs = read_link(Path::new("/sys"), &link.device);
        let expected = Link {
            // ethtool's, which rtnetlink does not carry.
            speed_bytes: None,
            duplex: String::new(),
            ..sysfs
        };
        assert_eq!(link, &expected, "{}", link.device);
    }
    assert!(
        dumped
            .iter()
            .any(|l| l.device == "lo" && l.mtu == Some(65536))
    );
}

#[test]
fn a_refresh_keeps_speed_and_duplex_unless_the_link_moved() {
    let sys = fixture_sys();
    let mut eth0 = read_link(&sys, "eth0");
    assert_eq!(eth0.carrier_changes, Some(4));
    // A value sysfs does not hold: kept only if sysfs is not read again.
    eth0.speed_bytes = Some(1);
    let old = vec![eth0.clone(), read_link(&sys, "dummy0")];

    let same = Link {
        mtu: Some(9000),
        speed_bytes: None,
        duplex: String::new(),
        ..eth0.clone()
    };
    let links = refresh(&old, vec![same.clone()], &sys);
    assert_eq!(links[0].mtu, Some(9000), "the dump's state is taken");
    assert_eq!(
        (links[0].speed_bytes, links[0].duplex.as_str()),
        (Some(1), "full"),
        "unchanged carrier: speed and duplex kept, sysfs not read"
    );
    assert_eq!(
        links[1],
        read_link(&sys, "dummy0"),
        "missing from the dump: read from sysfs whole"
    );

    let bounced = Link {
        carrier_changes: Some(6),
        ..same
    };
    let links = refresh(&old, vec![bounced], &sys);
    assert_eq!(
        (links[0].speed_bytes, links[0].duplex.as_str()),
        (Some(1_250_000_000), "full"),
        "the carrier moved: speed and duplex read again"
    );
}

/// One netlink message of `kind` with `body`, padded.
fn message(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(((16 + body.len()) as u32).to_ne_bytes());
    m.extend(kind.to_ne_bytes());
    m.extend(2u16.to_ne_bytes()); // NLM_F_MULTI
    m.extend(1u32.to_ne_bytes());
    m.extend(0u32.to_ne_bytes());
    m.extend(body);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend(((4 + value.len()) as u16).to_ne_bytes());
    a.extend(kind.to_ne_bytes());
    a.extend(value);
    while a.len() % 4 != 0 {
        a.push(0);
    }
    a
}

/// An `RTM_NEWLINK` for `eth1`, `flags` in its header.
fn new_link(flags: u32) -> Vec<u8> {
    let mut body = vec![0u8; 8];
    body.extend(flags.to_ne_bytes());
    body.extend(0u32.to_ne_bytes());
    body.extend(attribute(3, b"eth1\0"));
    body.extend(attribute(4, &1500u32.to_ne_bytes()));
    body.extend(attribute(1, &[0x52, 0x54, 0, 0xab, 0xcd, 0xef]));
    body.extend(attribute(16, &[6]));
    body.extend(attribute(33, &[1]));
    body.extend(attribute(35, &7u32.to_ne_bytes()));
    body.extend(attribute(20, b"uplink\0"));
    // Nested and unknown attributes are passed over.
    body.extend(attribute(0x8000 | 18, &[1, 2, 3, 4]));
    message(16, &body)
}

#[test]
fn an_rtnetlink_answer_is_parsed_to_the_end_of_the_dump() {
    let mut datagram = new_link(0x1);
    let mut out = Vec::new();
    assert_eq!(parse_dump(&datagram, &mut out), Ok(false), "no end yet");
    datagram.extend(message(3, &0i32.to_ne_bytes()));
    out.clear();
    assert_eq!(parse_dump(&datagram, &mut out), Ok(true));
    assert_eq!(
        out,
        [Link {
            device: "eth1".into(),
            operstate: "up".into(),
            mtu: Some(1500),
            carrier: Some(1),
            carrier_changes: Some(7),
            address: "52:54:00:ab:cd:ef".into(),
            ifalias: "uplink".into(),
            ..Link::default()
        }]
    );
    // Not up: no carrier, as sysfs refuses to read it.
    out.clear();
    parse_dump(&new_link(0), &mut out).unwrap();
    assert_eq!(out[0].carrier, None);
}

#[test]
fn a_damaged_rtnetlink_answer_is_an_error_that_says_where() {
    let good = new_link(1);
    let mut out = Vec::new();
    let err = parse_dump(&good[..4], &mut out).unwrap_err();
    assert!(err.contains("cut short at byte 0"), "{err}");
    let err = parse_dump(&good[..10], &mut out).unwrap_err();
    assert!(
        err.contains(&format!("{} bytes at byte 0, with 10 left", good.len())),
        "{err}"
    );
    let mut two = good.clone();
    two.extend(&good[..good.len() - 8]);
    let err = parse_dump(&two, &mut out).unwrap_err();
    assert!(err.contains(&format!("at byte {}", good.len())), "{err}");
    let mut bad_attr = good.clone();
    // The name attribute's length now runs past the message.
    bad_attr[32..34].copy_from_slice(&900u16.to_ne_bytes());
    let err = parse_dump(&bad_attr, &mut out).unwrap_err();
    assert!(err.contains("malformed"), "{err}");
    let refused = message(2, &(-1i32).to_ne_bytes());
    let err = parse_dump(&refused, &mut out).unwrap_err();
    assert!(err.contains("Operation not permitted"), "{err}");
}

proptest! {
    #[test]
    fn no_answer_makes_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_dump(&bytes, &mut Vec::new());
    }

    #[test]
    fn a_damaged_interface_message_never_panics(cut in 0usize..140, byte in any::<u8>(), at in 0usize..140) {
        let mut m = new_link(1);
        if at < m.len() {
            m[at] = byte;
        }
        m.truncate(cut.min(m.len()));
        let _ = parse_dump(&m, &mut Vec::new());
    }
}
