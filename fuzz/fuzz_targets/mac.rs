//! Fuzz the MAC parser: never panics; anything it accepts prints in a form
//! that parses back to the same address; errors quote (a prefix of) the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::mac::MacAddr;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match s.parse::<MacAddr>() {
        Ok(m) => {
            let shown = m.to_string();
            assert_eq!(shown.len(), 17);
            assert_eq!(shown.parse::<MacAddr>(), Ok(m));
            // Accepted input is hex digits and one kind of separator only.
            assert!(s.chars().all(|c| c.is_ascii_hexdigit() || ":-.".contains(c)));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("invalid MAC address"));
            let quoted: String = s.chars().take(8).collect();
            assert!(e.input.starts_with(&quoted));
        }
    }
});
