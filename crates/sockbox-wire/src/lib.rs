//! Pure codecs for sockbox: no I/O, no async, no allocation on the parse path
//! (except [`line`](mod@line), a stream framer that owns its reassembly buffer).
//!
//! Every protocol follows the same shape (after smoltcp's `wire` module):
//!
//! * a zero-copy view `Packet<T: AsRef<[u8]>>` with `new_unchecked`,
//!   `new_checked` and `check_len`; getters live in `impl<T: AsRef<[u8]>>`
//!   and setters in `impl<T: AsRef<[u8]> + AsMut<[u8]>>`;
//! * a plain `Repr` value with `parse(&Packet)`, `buffer_len()` and
//!   `emit(&mut Packet)`;
//! * a small typed error enum.
//!
//! # Panics
//!
//! Once a view has been built with `new_checked` (or `check_len` returned
//! `Ok`), no accessor panics. `new_unchecked` views may panic on short
//! buffers; that is the only way to make an accessor panic.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod crlf;
pub mod hex;
pub mod hexdump;
pub mod icmp;
pub mod line;
pub mod mac;
pub mod magic;
pub mod pack;
pub mod proxy;
