//! A UDP discovery responder: answers every "WHO" datagram, sent to this
//! host or to a broadcast address, with "I am NAME", from the address the
//! question was sent to. Other datagrams are ignored.
//!
//! `discovery [PORT] [NAME]` — then ask with
//! `sockbox udp send broadcast PORT WHO --wait 2s` (inside your own network).

use sockbox::daemon::Daemon;
use sockbox::net::{
    Answer, Bind, Datagram, DatagramCtx, DatagramHandler, ServerOptions, UdpServer,
};

struct Responder {
    answer: Vec<u8>,
}

impl DatagramHandler for Responder {
    fn datagram<'a>(&'a self, dg: &Datagram<'a>, _ctx: &DatagramCtx) -> Answer<'a> {
        if dg.payload.trim_ascii() == b"WHO" {
            println!("{} asked (sent to {})", dg.peer, dg.here());
            Answer::Reply(&self.answer)
        } else {
            Answer::Nothing
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(Ok(port)) = args.next().map(|p| p.parse::<u16>()).or(Some(Ok(9999))) else {
        eprintln!("usage: discovery [PORT] [NAME]");
        return std::process::ExitCode::from(2);
    };
    let name = args.next().unwrap_or_else(|| "sockbox".into());
    Daemon::new().run(|mut ctx| async move {
        let responder = Responder {
            answer: format!("I am {name}").into_bytes(),
        };
        let opts = ServerOptions {
            stats: ctx.stats.clone(),
            ..ServerOptions::default()
        };
        // `[::]` hears IPv4 and IPv6, broadcasts included.
        let server = UdpServer::bind(&Bind::new(([0u16; 8], port).into()), responder, opts)?;
        ctx.ready()?;
        println!("answering WHO on udp {}", server.local_addr());
        let report = server.run(ctx.shutdown.clone()).await?;
        println!("{} datagrams", report.accepted);
        Ok(0)
    })
}
