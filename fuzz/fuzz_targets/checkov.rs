#![no_main]
//! The checkov reader, and its one-pass read against the split into documents.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zen_fuzz::format(zen_model::Format::Checkov, data));
