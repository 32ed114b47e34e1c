//! Fuzz the internet checksum: the fast one-shot sum equals a byte-at-a-time
//! reference, any split of the input accumulated incrementally gives the
//! same sum, and an emitted checksum always verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::checksum::{self, Checksum};

fn reference(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        sum += (u32::from(pair[0]) << 8) | pair.get(1).map_or(0, |&b| u32::from(b));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fuzz_target!(|data: &[u8]| {
    let one_shot = checksum::data(data);
    assert_eq!(one_shot, reference(data));
    // Split points taken from the first bytes of the input.
    let mut c = Checksum::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let step = usize::from(data[i % data.len()] % 7) + 1;
        let (a, b) = rest.split_at(step.min(rest.len()));
        c.add(a);
        rest = b;
        i += 1;
    }
    assert_eq!(c.sum(), one_shot);
    if data.len() >= 2 {
        let mut buf = data.to_vec();
        buf[0] = 0;
        buf[1] = 0;
        let sum = checksum::checksum(&buf);
        buf[..2].copy_from_slice(&sum.to_be_bytes());
        assert!(checksum::verify(&buf));
    }
});
