#![no_main]
//! Bodies sent as gzip, whether they are or not.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zen_fuzz::Ingest::get().gzip_body(data));
