//! For any events and any configuration of order and batching, the processor's books balance:
//! every event is kept (and leaves in a batch), filtered or a duplicate — exactly one of them.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::time::{Duration, Instant};

use proptest::prelude::*;
use zen_model::{Context, Format, Normalizer};
use zen_pipeline::{BatchSettings, Output, PipelineConfig, ProcessingOrder};

fn alert(id: u8, ns: u8, priority: u8) -> String {
    let priority = ["Critical", "Warning", "Notice", "Debug"][priority as usize % 4];
    format!(
        r#"{{"rule":"r{id}","priority":"{priority}","output_fields":{{"k8s.ns.name":"ns{ns}","container.id":"c{id}"}}}}"#
    )
}

proptest! {
    #[test]
    fn every_event_is_kept_filtered_or_a_duplicate(
        alerts in prop::collection::vec((0u8..30, 0u8..4, 0u8..4, 0u16..300), 1..300),
        order in prop::sample::select(vec![ProcessingOrder::FilterFirst, ProcessingOrder::DedupFirst, ProcessingOrder::Auto]),
        batching in any::<bool>(),
        chunk in 1usize..50,
    ) {
        let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().unwrap());
        let normalizer = Normalizer::default();
        let mut config = PipelineConfig {
            order,
            batch: BatchSettings { enabled: batching, ..BatchSettings::default() },
            ..PipelineConfig::default()
        };
        config.filter.global.exclude_namespaces = vec!["ns0".to_owned()];
        config.filter.global.min_severity = Some(zen_model::Severity::Low);
        let mut processor = zen_pipeline::processor(&config);
        let t0 = Instant::now();
        let (mut now, mut kept, mut total) = (t0, 0usize, 0usize);
        let mut out = Vec::new();
        let events: Vec<_> = alerts
            .iter()
            .map(|(id, ns, p, gap)| (normalizer.normalize(Format::Falco, alert(*id, *ns, *p).as_bytes(), &ctx).unwrap().events.remove(0), *gap))
            .collect();
        for group in events.chunks(chunk) {
            now += Duration::from_millis(u64::from(group[0].1));
            total += group.len();
            processor.process(now, group.iter().map(|(e, _)| e.clone()).collect(), now, &mut out);
            processor.poll(now, &mut out);
        }
        processor.drain(now, &mut out);
        for o in out {
            match o {
                Output::Batch(b) => kept += b.items.len(),
                Output::Rejected { .. } => prop_assert!(false, "no configuration can fail here"),
                Output::Duplicates { .. } => prop_assert!(false, "no submitter waits here"),
            }
        }
        let duplicates: u64 = processor.take_duplicates(now, &mut Vec::new()).iter().map(|u| u.duplicates).sum();
        let c = processor.counts();
        prop_assert_eq!(c.received, total as u64);
        prop_assert_eq!(c.received, kept as u64 + c.filtered + c.deduplicated, "{:?}", c);
        prop_assert_eq!(duplicates, c.deduplicated, "every duplicate is handed over as a count");
        if order == ProcessingOrder::FilterFirst {
            // Filtering first sees every event: it drops exactly those in ns0 or at debug level.
            let filtered = alerts.iter().filter(|(_, ns, p, _)| *ns == 0 || *p == 3).count();
            prop_assert_eq!(c.filtered, filtered as u64);
        }
    }
}
