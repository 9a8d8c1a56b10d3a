#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peal_fuzz::proto::request_bodies(data));
