#![no_main]
//! The ingest handler: any source, query, content type and body, gzip or not.
libfuzzer_sys::fuzz_target!(
    |request: zen_fuzz::IngestRequest| zen_fuzz::Ingest::get().request(&request)
);
