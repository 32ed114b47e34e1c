//! `sockbox broker [ADDR] PORT`: raw fan-out, bytes from one client go to
//! every other client unchanged (like `ncat --broker`), with the same limits
//! as `sockbox chat`.

use sockbox::chat::Mode;

use crate::cmd::chat::{ListenArgs, ServerArgs, Setup};
use crate::cmd::serve::{DaemonArgs, serve_with};

const AFTER_HELP: &str = "\
Every byte a client sends is passed, unchanged and in order, to every other client; \
nothing is added, framed or escaped. A client may fall more than --queue-limit behind \
for up to --max-lag; one that stays behind longer, or reaches --queue-ceiling, is \
disconnected instead of slowing the others. --rate counts bytes per second here. \
--max-clients counts network clients only (--stdin takes part on top). On SIGINT/SIGTERM \
reading stops, queued bytes are flushed for up to --grace and each connection is closed \
cleanly (FIN); nothing is added to the stream.

Examples:
  sockbox broker 7001
  sockbox broker 127.0.0.1 7001 --max-clients 100 --queue-limit 4MiB
  sockbox broker 7001 --stdin                # this terminal is one of the clients
  sockbox broker 7001 --cluster nats://10.0.0.5:4222 --room raw   # bytes cross servers too

Exit codes: 0 stopped by a signal; 2 usage or input error; 3 cannot listen.";

/// Arguments of `sockbox broker`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP, override_usage = "sockbox broker [OPTIONS] [ADDR] PORT")]
pub struct Args {
    /// Address and port, or just the port.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Take part from this terminal: stdin is sent to all, what others send is printed.
    #[arg(long, conflicts_with = "daemon")]
    pub stdin: bool,
    /// Limits, access and logging.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Daemon options.
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// Run `sockbox broker`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    let setup = Setup::new(&a.listen, &a.server, Mode::Broker, 1)?;
    let stdin = a.stdin.then(|| "stdin".to_owned());
    serve_with(&a.daemon, tracing::Level::INFO, move |ctx| {
        setup.serve(ctx, stdin)
    })
}
