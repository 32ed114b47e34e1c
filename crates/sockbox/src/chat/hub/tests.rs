//! Unit tests of the room.
#![allow(clippy::unwrap_used, clippy::format_collect)]

use super::*;
use crate::chat::outbox::Take;

fn member(id: u64, limit: usize) -> Arc<Member> {
    Arc::new(Member::new(
        id,
        format!("peer{id}"),
        Limits::hard(limit),
        &Drain::new(),
    ))
}

fn text(m: &Member) -> String {
    use bytes::Buf;
    match m.outbox.take() {
        Take::Data(mut b) => {
            let mut v = vec![0; b.remaining()];
            b.copy_to_slice(&mut v);
            m.outbox.sent(v.len());
            String::from_utf8(v).unwrap()
        }
        _ => String::new(),
    }
}

#[test]
fn names_and_collisions() {
    let hub = Hub::new();
    let (a, b) = (member(1, 4096), member(2, 4096));
    assert_eq!(hub.join(a, None, |_, _| None).unwrap(), ("user1".into(), 1));
    assert_eq!(hub.join(b, None, |_, _| None).unwrap(), ("user2".into(), 2));
    assert_eq!(hub.rename(1, "user1", b"Alice").unwrap(), "Alice");
    assert_eq!(
        hub.rename(2, "user2", b"alice"),
        Err(NickError::Taken("Alice".into()))
    );
    assert_eq!(hub.rename(2, "user2", b"bad nick"), Err(NickError::Chars));
    // Changing the case of one's own nick is fine.
    assert_eq!(hub.rename(1, "Alice", b"ALICE").unwrap(), "ALICE");
    assert_eq!(hub.who(), vec!["ALICE", "user2"]);
    assert_eq!(hub.find(b"alice").unwrap().0.id, 1);
    // A new client does not get a userN someone took as a nick.
    hub.rename(2, "user2", b"user3").unwrap();
    assert_eq!(
        hub.join(member(3, 4096), None, |_, _| None).unwrap().0,
        "user4"
    );
    assert_eq!(hub.leave(1, "ALICE"), Some(2));
    assert!(hub.find(b"alice").is_none());
    assert_eq!(hub.leave(1, "ALICE"), None);
}

/// Regression: the operator's `--nick` was taken as given, so `bad nick`
/// or an escape sequence showed up raw in everyone's `<nick> text`.
#[test]
fn invalid_wanted_nick_is_replaced_by_user_n() {
    let hub = Hub::new();
    let (nick, _) = hub
        .join(member(1, 4096), Some("bad nick\x1b[2J"), |_, _| None)
        .unwrap();
    assert_eq!(nick, "user1");
    let (nick, _) = hub.join(member(2, 4096), Some("op"), |_, _| None).unwrap();
    assert_eq!(nick, "op");
    assert_eq!(hub.who(), vec!["op", "user1"]);
}

#[test]
fn a_closing_room_refuses_joins_and_says_goodbye_after_the_backlog() {
    let hub = Hub::new();
    let (a, b) = (member(1, 600), member(2, 4096));
    b.crlf.store(true, Ordering::Relaxed);
    hub.join(a.clone(), None, |_, _| None).unwrap();
    hub.join(b.clone(), None, |_, _| None).unwrap();
    // a's queue is nearly full: the goodbye still goes after it.
    assert_eq!(hub.broadcast(Some(2), &Bytes::from(vec![b'q'; 500])), 1);
    hub.close_all(Some("*** bye"));
    assert!(a.stop_reading.is_cancelled());
    assert_eq!(a.outbox.closed(), Some(Close::Flush));
    assert!(text(&a).ends_with("qq*** bye\n"));
    assert_eq!(text(&b), "*** bye\r\n");
    assert_eq!(
        hub.join(member(3, 4096), None, |_, _| None),
        Err(JoinError::Closing)
    );
}

#[test]
fn private_messages_reach_one_member_in_its_line_ends() {
    let hub = Hub::new();
    let (a, b) = (member(1, 4096), member(2, 4096));
    b.crlf.store(true, Ordering::Relaxed);
    hub.join(a.clone(), Some("ann"), |_, _| None).unwrap();
    hub.join(b.clone(), Some("Bob"), |_, _| None).unwrap();
    let msg = Bytes::from_static(b"*ann* hi\n");
    assert_eq!(hub.private(b"bob", &msg), Ok("Bob".into()));
    assert_eq!(text(&b), "*ann* hi\r\n");
    assert_eq!(text(&a), "");
    assert_eq!(hub.private(b"carl", &msg), Err(PrivateError::NoSuchNick));
    b.outbox.close(Close::Flush);
    assert_eq!(
        hub.private(b"Bob", &msg),
        Err(PrivateError::Leaving("Bob".into()))
    );
}

#[test]
fn broadcast_skips_sender_translates_crlf_and_kicks_slow() {
    let hub = Hub::new();
    let (a, b, slow) = (member(1, 4096), member(2, 4096), member(3, 600));
    b.crlf.store(true, Ordering::Relaxed);
    hub.join(a.clone(), None, |_, _| None).unwrap();
    hub.join(b.clone(), None, |_, _| None).unwrap();
    hub.join(slow.clone(), None, |_, _| None).unwrap();
    let msg = Bytes::from_static(b"<user1> hi\n<user1> there\n");
    assert_eq!(hub.broadcast(Some(1), &msg), 2);
    assert_eq!(text(&a), "");
    assert_eq!(text(&b), "<user1> hi\r\n<user1> there\r\n");
    let big = Bytes::from(vec![b'z'; 700]);
    hub.broadcast(Some(1), &big);
    assert!(slow.stop_reading.is_cancelled());
    assert!(matches!(slow.outbox.closed(), Some(Close::Kick(r)) if r.contains("too slow")));
    assert_eq!(text(&b).len(), 700);
}

#[test]
fn announcements_are_batched_skip_their_subject_and_precede_messages() {
    let hub = Hub::new();
    let (a, b) = (member(1, 4096), member(2, 4096));
    hub.join(a.clone(), None, |_, _| None).unwrap();
    hub.join(b.clone(), None, |_, _| None).unwrap();
    hub.announce(AnnounceKind::Join, Some(2), "*** user2 joined");
    hub.announce(AnnounceKind::Nick, Some(1), "*** user1 is now known as x");
    assert_eq!(text(&a), "", "nothing sent before the flush");
    hub.broadcast(Some(2), &Bytes::from_static(b"<user2> hi\n"));
    assert_eq!(text(&a), "*** user2 joined\n<user2> hi\n");
    assert_eq!(text(&b), "*** user1 is now known as x\n");
    hub.flush_announcements();
    assert_eq!(text(&a), "");
    // A later joiner does not get what was announced before it came.
    hub.announce(AnnounceKind::Leave, None, "*** before c");
    let c = member(3, 4096);
    hub.join(c.clone(), None, |_, _| None).unwrap();
    hub.announce(AnnounceKind::Join, Some(3), "*** c joined");
    hub.flush_announcements();
    assert_eq!(text(&c), "");
    assert_eq!(text(&a), "*** before c\n*** c joined\n");
}

#[tokio::test(start_paused = true)]
async fn announcement_storms_are_summed_up() {
    let hub = Hub::new();
    let a = member(1, 1 << 20);
    hub.join(a.clone(), None, |_, _| None).unwrap();
    for i in 0..50 {
        hub.announce(AnnounceKind::Join, None, &format!("*** u{i} joined"));
    }
    for i in 0..3 {
        hub.announce(AnnounceKind::Leave, None, &format!("*** v{i} left"));
    }
    hub.flush_announcements();
    let got = text(&a);
    let lines: Vec<&str> = got.lines().collect();
    // Ten joins, the three leaves (not a storm of leaves), the rest summed.
    assert_eq!(lines.len(), ANNOUNCE_MAX + 4, "{got}");
    assert_eq!(lines[0], "*** u0 joined");
    assert_eq!(lines[ANNOUNCE_MAX], "*** v0 left");
    assert_eq!(lines[ANNOUNCE_MAX + 3], "*** 40 more joined (1 online)");
    for i in 0..15 {
        hub.announce(AnnounceKind::Leave, None, &format!("*** w{i} left"));
    }
    hub.flush_announcements();
    assert!(text(&a).ends_with("*** w9 left\n*** 5 more left (1 online)\n"));
}

/// Regression: leaves 100 ms apart were summed up ("3 more left") when a
/// flush came late, so 3 of 225 leave notices never reached anyone. A storm
/// is now judged by when the announcements were made.
#[tokio::test(start_paused = true)]
async fn announcements_made_apart_all_arrive_even_when_the_flush_is_late() {
    let hub = Hub::new();
    let a = member(1, 1 << 20);
    hub.join(a.clone(), None, |_, _| None).unwrap();
    for i in 0..25 {
        hub.announce(AnnounceKind::Leave, None, &format!("*** u{i} left"));
        tokio::time::advance(ANNOUNCE_EVERY).await;
    }
    // One flush for all 25 (the ticker was held up for 2.5 s).
    hub.flush_announcements();
    let got = text(&a);
    let want: String = (0..25).map(|i| format!("*** u{i} left\n")).collect();
    assert_eq!(got, want);
    // Two storms of joins in two windows, with a leave among the first:
    // ten joins of each window one by one, the leave too, the rest summed.
    for w in 0..2 {
        for i in 0..12 {
            hub.announce(AnnounceKind::Join, None, &format!("*** w{w}j{i} joined"));
            if w == 0 && i == 11 {
                hub.announce(AnnounceKind::Leave, None, "*** x left");
            }
        }
        tokio::time::advance(ANNOUNCE_EVERY).await;
    }
    hub.flush_announcements();
    let got = text(&a);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2 * ANNOUNCE_MAX + 2, "{got}");
    assert_eq!(lines[ANNOUNCE_MAX - 1], "*** w0j9 joined");
    assert_eq!(lines[ANNOUNCE_MAX], "*** x left");
    assert_eq!(lines[ANNOUNCE_MAX + 1], "*** w1j0 joined");
    assert_eq!(lines[2 * ANNOUNCE_MAX + 1], "*** 4 more joined (1 online)");
}

#[test]
fn crlf_translation() {
    assert_eq!(&to_crlf(b"a\nb\n")[..], b"a\r\nb\r\n");
    assert_eq!(&to_crlf(b"no newline")[..], b"no newline");
}
