//! `cargo xtask loadgen`: realistic mixed traffic against a zen-watcher on this machine.
//!
//! Each connection is a thread with a keep-alive HTTP client. Requests carry `--batch` events:
//! mostly Falco alerts (NDJSON; a single object at `--batch 1`, as `http_output` sends), every
//! 20th an audit `EventList`, every 50th a Trivy report. 40 % of alerts repeat a recent finding
//! and 30 % are noise (Debug priority in `kube-system`). Bounded by `--count` events and
//! `--duration`; paced to `--rate` events/s or flat out; loopback only.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LoadgenArgs {
    /// The daemon's base URL; must be on this machine.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// Events per request: 1, 100, 1000 …
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: usize,
    /// Target events per second in all; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// Events to send in all.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) count: u64,
    /// Seconds to run at most.
    #[arg(long, default_value_t = 30)]
    pub(crate) duration: u64,
    /// `commit` to wait for every request's events to be stored.
    #[arg(long)]
    pub(crate) ack: Option<String>,
    /// Bearer token, if the daemon wants one.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The traffic's random streams: runs with different seeds send different findings.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) requests: u64,
    pub(crate) events_sent: u64,
    pub(crate) events_accepted: u64,
    pub(crate) requests_rejected: u64,
    pub(crate) requests_failed: u64,
    pub(crate) seconds: f64,
    pub(crate) events_per_second: f64,
    pub(crate) latency_ms: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

/// Refuses anything but a loopback target.
fn loopback(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("{url}: only http:// URLs"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let local = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !local {
        bail!("{url}: the load generator only targets this machine (loopback)");
    }
    Ok(())
}

/// Payloads of one connection, from its own random stream.
struct Mix {
    x: u64,
    recent: Vec<u64>,
}

impl Mix {
    fn next(&mut self) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x
    }

    fn alert(&mut self) -> String {
        let roll = self.next() % 100;
        let id = if roll < 40 && !self.recent.is_empty() {
            let slot = self.next() as usize % self.recent.len();
            self.recent[slot]
        } else {
            let id = self.next();
            if self.recent.len() < 1000 {
                self.recent.push(id);
            } else {
                let slot = id as usize % 1000;
                self.recent[slot] = id;
            }
            id
        };
        let (priority, ns) = if id % 10 < 3 {
            ("Debug", "kube-system")
        } else {
            (
                ["Critical", "Error", "Warning", "Notice"][(id % 4) as usize],
                "shop",
            )
        };
        format!(
            r#"{{"hostname":"worker-{h}","output":"Shell spawned in a container (container={id:x})","priority":"{priority}","rule":"Terminal shell in container","source":"syscall","tags":["container","shell"],"time":"2026-02-11T09:01:02.123456789Z","output_fields":{{"container.id":"{id:012x}","evt.time":1770800462123456789,"k8s.ns.name":"{ns}","k8s.pod.name":"pod-{id:x}","proc.cmdline":"bash -i","proc.name":"bash","user.name":"root"}}}}"#,
            h = id % 7
        )
    }

    /// One request: its path, content type and body.
    fn request(&mut self, k: u64, batch: usize) -> (&'static str, Vec<u8>) {
        if k % 20 == 19 {
            let items: Vec<String> = (0..batch)
                .map(|i| {
                    let user = ["alice", "bob", "carol", "system:anonymous"][(self.next() % 4) as usize];
                    let (uri, sub) = if i % 3 == 0 { ("/healthz", "") } else { ("/api/v1/namespaces/shop/pods/web/exec", "exec") };
                    format!(
                        r#"{{"level":"Metadata","auditID":"{:x}","stage":"ResponseComplete","requestURI":"{uri}","verb":"create","user":{{"username":"{user}","groups":["system:authenticated"]}},"objectRef":{{"resource":"pods","namespace":"shop","name":"web","apiVersion":"v1","subresource":"{sub}"}},"responseStatus":{{"code":101}},"stageTimestamp":"2026-02-11T09:01:02.000001Z"}}"#,
                        self.next()
                    )
                })
                .collect();
            let body = format!(
                r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
                items.join(",")
            );
            return ("/api/v1/ingest/audit", body.into_bytes());
        }
        if k % 50 == 49 {
            let vulns: Vec<String> = (0..batch)
                .map(|i| {
                    format!(
                        r#"{{"vulnerabilityID":"CVE-2026-{:05}","resource":"pkg{i}","installedVersion":"1.0.{i}","fixedVersion":"","severity":"{}","title":"t"}}"#,
                        self.next() % 2000,
                        ["CRITICAL", "HIGH", "MEDIUM", "LOW"][i % 4]
                    )
                })
                .collect();
            let body = format!(
                r#"{{"kind":"VulnerabilityReport","metadata":{{"name":"r","namespace":"shop","labels":{{"trivy-operator.resource.kind":"Deployment","trivy-operator.resource.name":"web{}"}}}},"report":{{"updateTimestamp":"2026-02-11T09:00:00Z","vulnerabilities":[{}]}}}}"#,
                self.next() % 50,
                vulns.join(",")
            );
            return ("/api/v1/ingest/trivy", body.into_bytes());
        }
        let lines: Vec<String> = (0..batch).map(|_| self.alert()).collect();
        ("/api/v1/ingest/falco", lines.join("\n").into_bytes())
    }
}

pub(crate) fn run(args: &LoadgenArgs) -> Result<Report> {
    loopback(&args.url)?;
    let connections = args.connections.max(1);
    let batch = args.batch.max(1);
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let per_connection_rate = args.rate as f64 / connections as f64;
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let args = args.clone();
            let sent = sent.clone();
            std::thread::spawn(move || {
                connection(c as u64, &args, batch, per_connection_rate, deadline, &sent)
            })
        })
        .collect();
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut totals = (0u64, 0u64, 0u64, 0u64, 0u64);
    for t in threads {
        let (h, requests, events, accepted, rejected, failed) = t
            .join()
            .map_err(|_| anyhow::anyhow!("a connection thread panicked"))??;
        hist.add(&h).map_err(|e| anyhow::anyhow!("{e}"))?;
        totals.0 += requests;
        totals.1 += events;
        totals.2 += accepted;
        totals.3 += rejected;
        totals.4 += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(Report {
        requests: totals.0,
        events_sent: totals.1,
        events_accepted: totals.2,
        requests_rejected: totals.3,
        requests_failed: totals.4,
        seconds,
        events_per_second: totals.2 as f64 / seconds,
        latency_ms: Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            max: hist.max() as f64 / 1000.0,
        },
    })
}

type Tally = (Histogram<u64>, u64, u64, u64, u64, u64);

fn connection(
    c: u64,
    args: &LoadgenArgs,
    batch: usize,
    rate: f64,
    deadline: Instant,
    sent: &AtomicU64,
) -> Result<Tally> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut mix = Mix {
        x: 0x9E37_79B9_7F4A_7C15
            ^ (c + 1).wrapping_mul(0x2545_F491_4F6C_DD1D)
            ^ args.seed.wrapping_mul(0xD6E8_FEB8_6659_FD93),
        recent: Vec::new(),
    };
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut requests, mut events, mut accepted, mut rejected, mut failed) = (0, 0, 0, 0, 0);
    let started = Instant::now();
    let ack = args
        .ack
        .as_deref()
        .map(|a| format!("?ack={a}"))
        .unwrap_or_default();
    for k in 0.. {
        if Instant::now() >= deadline
            || sent.fetch_add(batch as u64, Ordering::Relaxed) >= args.count
        {
            break;
        }
        if rate > 0.0 {
            let due = started + Duration::from_secs_f64(events as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let (path, body) = mix.request(k, batch);
        let content_type = if path.ends_with("falco") {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        let mut req = agent
            .post(format!("{}{path}{ack}", args.url))
            .header("Content-Type", content_type);
        if let Some(t) = &args.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let t0 = Instant::now();
        let result = req.send(&body[..]);
        let micros = t0.elapsed().as_micros().max(1) as u64;
        requests += 1;
        events += batch as u64;
        match result {
            Ok(mut res) => {
                let status = res.status().as_u16();
                let text = res.body_mut().read_to_string().unwrap_or_default();
                match status {
                    200 | 202 => {
                        hist.record(micros.min(60_000_000)).ok();
                        let n: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                        accepted += n["accepted"].as_u64().unwrap_or(0);
                    }
                    429 | 503 => rejected += 1,
                    _ => failed += 1,
                }
            }
            Err(_) => failed += 1,
        }
    }
    Ok((hist, requests, events, accepted, rejected, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(loopback("http://127.0.0.1:8080").is_ok());
        assert!(loopback("http://localhost:8080/").is_ok());
        assert!(loopback("http://[::1]:8080").is_ok());
        assert!(loopback("http://10.0.0.1:8080").is_err());
        assert!(loopback("http://example.com").is_err());
        assert!(loopback("https://127.0.0.1").is_err());
    }

    #[test]
    fn the_mix_repeats_and_varies() {
        let mut m = Mix {
            x: 42,
            recent: Vec::new(),
        };
        let paths: Vec<&str> = (0..1000).map(|k| m.request(k, 2).0).collect();
        // Every 20th is audit; every 50th is Trivy unless it is also an audit one.
        assert_eq!(paths.iter().filter(|p| p.ends_with("audit")).count(), 50);
        assert_eq!(paths.iter().filter(|p| p.ends_with("trivy")).count(), 10);
        let alerts: Vec<String> = (0..1000).map(|_| m.alert()).collect();
        let distinct: std::collections::HashSet<&String> = alerts.iter().collect();
        assert!(
            distinct.len() < 900 && distinct.len() > 400,
            "{}",
            distinct.len()
        );
    }
}
