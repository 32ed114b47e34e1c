//! A line client that survives server restarts: it sends each line of its
//! standard input to HOST:PORT and prints each line the server sends.
//! When the connection drops it reconnects (1 s, 2 s, 4 s… apart, at most
//! 10 s) and goes on; a line whose write fails is sent again after the
//! reconnect (a line the kernel accepted just before the server vanished
//! is lost, as always with TCP: acknowledge lines in your protocol if that
//! matters). Ends at the end of its input, or on Ctrl-C.
//!
//! `line_client HOST PORT`

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockbox::Shutdown;
use sockbox::net::{Backoff, Connector, LineCodec, Reconnect};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::codec::Framed;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(host), Some(Ok(port))) = (args.next(), args.next().map(|p| p.parse::<u16>())) else {
        eprintln!("usage: line_client HOST PORT");
        return std::process::ExitCode::from(2);
    };
    let stop = Shutdown::new();
    let on_ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_ctrl_c.trigger();
    });
    let connector = Connector::new().timeout(Duration::from_secs(5));
    let mut server = Reconnect::new(connector, host, port)
        .backoff(Backoff::new(Duration::from_secs(1), Duration::from_secs(10)).with_jitter());
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let mut pending: Option<String> = None;
    loop {
        let stream = match server.connect(&stop).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("line_client: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        eprintln!("line_client: connected");
        let mut conn = Framed::new(stream, LineCodec::new(64 * 1024));
        loop {
            if let Some(line) = pending.take()
                && conn.send(line.as_str()).await.is_err()
            {
                pending = Some(line);
                break;
            }
            tokio::select! {
                line = input.next_line() => match line {
                    Ok(Some(l)) => pending = Some(l),
                    _ => return std::process::ExitCode::SUCCESS, // end of input
                },
                got = conn.next() => match got {
                    Some(Ok(l)) => println!("{}", String::from_utf8_lossy(&l.bytes)),
                    _ => break, // the server went away: reconnect
                },
                () = stop.wait() => return std::process::ExitCode::SUCCESS,
            }
        }
        eprintln!("line_client: connection lost, reconnecting");
    }
}
