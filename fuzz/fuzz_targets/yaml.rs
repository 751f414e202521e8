#![no_main]
//! YAML payloads, converted to JSON and read, any format.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zen_fuzz::yaml(data));
