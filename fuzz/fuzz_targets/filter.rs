#![no_main]
//! The filter expression language: compiled and evaluated.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zen_fuzz::filter(data));
