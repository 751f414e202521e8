#![no_main]
//! The split into documents (NDJSON, concatenated values, lists), any format.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zen_fuzz::documents(data));
