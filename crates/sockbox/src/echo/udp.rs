//! The UDP side: every datagram goes back to its sender, from the address
//! it was sent to.

use crate::net::{Answer, Datagram, DatagramCtx, DatagramHandler};

/// Answers each datagram with itself.
#[derive(Debug)]
pub(super) struct EchoUdp;

impl DatagramHandler for EchoUdp {
    fn datagram<'a>(&'a self, dg: &Datagram<'a>, _ctx: &DatagramCtx) -> Answer<'a> {
        Answer::Reply(dg.payload)
    }

    fn answered(&self, to: std::net::SocketAddr, result: &std::io::Result<usize>) {
        if let Err(e) = result {
            tracing::debug!(peer = %to, error = %e, "udp echo not sent");
        }
    }
}
