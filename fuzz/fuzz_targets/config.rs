#![no_main]
//! The configuration loader, on a file.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zen_fuzz::config(data));
