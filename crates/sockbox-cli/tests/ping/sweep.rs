//! Sweeps big enough to be sent from several threads, each on its own
//! socket: datagram sockets (each receives its own replies) and raw
//! sockets (only the first receives; the extra ones are send-only).

use std::time::Duration;

use super::{json_lines, of_type};
use crate::util::netns::Netns;
use crate::util::require_root;

#[test]
fn sweeps_over_several_sockets_count_every_reply_once() {
    if !require_root("sweeps_over_several_sockets_count_every_reply_once") {
        return;
    }
    // A namespace of its own: a raw socket sees every echo reply on its
    // loopback, and other tests ping the host's loopback at the same time
    // (those would count as foreign here).
    let ns = Netns::new("sw");
    ns.sh("sysctl -qw net.ipv4.ping_group_range='0 2147483647'");
    for socket in ["dgram", "raw"] {
        let out = assert_cmd::Command::from_std(ns.sockbox())
            .args(["ping", "-g", "127.0.4.0/22", "-i", "0", "-r", "0", "--json"])
            .args(["--socket", socket])
            .timeout(Duration::from_secs(30))
            .assert()
            .success();
        let v = json_lines(&out.get_output().stdout);
        let totals = of_type(&v, "totals");
        assert_eq!(totals.len(), 1, "{socket}");
        let t = totals[0];
        assert_eq!(t["socket_v4"], socket);
        assert_eq!(t["targets"], 1022, "{socket}: {t}");
        assert_eq!(t["alive"], 1022, "{socket}: {t}");
        assert_eq!(t["sent"], 1022, "{socket}: {t}");
        assert_eq!(t["received"], 1022, "{socket}: {t}");
        // Each reply matched once, whichever socket it came in on.
        for c in ["duplicates", "foreign", "late", "malformed"] {
            assert_eq!(t["counters"][c], 0, "{socket}: {c} in {t}");
        }
        let replies = of_type(&v, "reply");
        assert_eq!(replies.len(), 1022, "{socket}");
        assert!(
            replies
                .iter()
                .all(|r| r["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0)),
            "{socket}: a reply without a round-trip time"
        );
    }
}
