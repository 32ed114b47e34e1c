//! The PHP notes' `socket_select()` chat server on the sockbox framework:
//! every line a client sends goes to every client as "PEER wrote: LINE".
//! It daemonizes, writes a pid file and drops to `nobody` when asked, and
//! on SIGTERM tells everyone it is closing and drains within 5 s.
//!
//! `chat_server [PORT] [--daemon] [--pid-file FILE] [--user NAME]`

use std::time::Duration;

use futures_util::StreamExt;
use sockbox::daemon::Daemon;
use sockbox::net::{Bind, Connection, Handler, LineCodec, ServerOptions, TcpServer};
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;
use tokio_util::codec::FramedRead;

/// Every connection subscribes to one bounded channel of lines.
struct Chat(broadcast::Sender<String>);

impl Handler for Chat {
    async fn serve(&self, conn: Connection) {
        let (reader, mut writer) = conn.stream.into_split();
        let mut lines = FramedRead::new(reader, LineCodec::new(2048));
        let mut room = self.0.subscribe();
        let stop = conn.drain.soft().clone();
        loop {
            tokio::select! {
                line = lines.next() => match line {
                    Some(Ok(l)) => {
                        let text = String::from_utf8_lossy(&l.bytes);
                        let _ = self.0.send(format!("{} wrote: {text}\n", conn.peer));
                    }
                    _ => break, // the client left
                },
                said = room.recv() => match said {
                    Ok(text) if writer.write_all(text.as_bytes()).await.is_ok() => {}
                    _ => break, // too slow to keep up (lagged), or gone
                },
                () = stop.wait() => {
                    let _ = writer.write_all(b"*** server closing\n").await;
                    break;
                }
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut port, mut daemon) = (8888u16, Daemon::new().grace(Duration::from_secs(5)));
    while let Some(arg) = args.next() {
        daemon = match arg.as_str() {
            "--daemon" => daemon.detach(true),
            "--pid-file" => daemon.pid_file(args.next().unwrap_or_default()),
            "--user" => daemon.user(args.next().unwrap_or_default()),
            p => {
                let Ok(n) = p.parse() else {
                    eprintln!(
                        "usage: chat_server [PORT] [--daemon] [--pid-file FILE] [--user NAME]"
                    );
                    return std::process::ExitCode::from(2);
                };
                port = n;
                daemon
            }
        };
    }
    daemon.run(|mut ctx| async move {
        let opts = ServerOptions {
            stats: ctx.stats.clone(),
            grace: ctx.grace,
            ..ServerOptions::default()
        };
        let bind = Bind::new(([0, 0, 0, 0], port).into());
        let server = TcpServer::bind(&bind, Chat(broadcast::channel(1024).0), opts)?;
        ctx.ready()?; // bound as root: now drop privileges and report ready
        println!("chat on {}", server.local_addr());
        server.run(ctx.shutdown.clone()).await;
        Ok(0)
    })
}
