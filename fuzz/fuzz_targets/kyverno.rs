#![no_main]
//! The kyverno reader, and its one-pass read against the split into documents.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zen_fuzz::format(zen_model::Format::Kyverno, data));
