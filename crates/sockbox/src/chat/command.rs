//! Chat commands (`/nick`, `/who`, `/me`, `/msg`, `/quit`, `/help`) and
//! nickname rules.

/// Longest nickname accepted.
pub const MAX_NICK: usize = 24;

/// The `/help` text, one line per command.
pub const HELP: &[&str] = &[
    "commands:",
    "  /nick NAME      change your nickname (letters, digits, _ and -; up to 24)",
    "  /who            list who is online",
    "  /me TEXT        say TEXT as an action: * nick TEXT",
    "  /msg NICK TEXT  send TEXT to NICK only",
    "  /quit [REASON]  leave",
    "  /help           this text",
    "  //TEXT          send a line that starts with /",
];

/// What a line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// An ordinary message (for `//text`, the text without the first `/`).
    Say(&'a [u8]),
    /// `/nick NAME`.
    Nick(&'a [u8]),
    /// `/who`.
    Who,
    /// `/me TEXT`.
    Me(&'a [u8]),
    /// `/msg NICK TEXT`.
    Msg {
        /// Recipient nickname.
        to: &'a [u8],
        /// The text.
        text: &'a [u8],
    },
    /// `/quit [REASON]`.
    Quit(&'a [u8]),
    /// `/help`.
    Help,
    /// A known command without its argument: the usage line to show.
    Usage(&'static str),
    /// Anything else starting with `/`.
    Unknown(&'a [u8]),
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// Split at the first run of spaces/tabs: (word, rest).
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    let s = s.trim_ascii_start();
    match s.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&s[..i], s[i..].trim_ascii_start()),
        None => (s, &[]),
    }
}

/// Parse one input line.
pub fn parse(line: &[u8]) -> Command<'_> {
    let Some(rest) = line.strip_prefix(b"/") else {
        return Command::Say(line);
    };
    if rest.starts_with(b"/") {
        return Command::Say(rest);
    }
    let (name, args) = word(rest);
    let lower = name.to_ascii_lowercase();
    match lower.as_slice() {
        b"nick" | b"name" => match trim(args) {
            [] => Command::Usage("usage: /nick NAME"),
            n => Command::Nick(n),
        },
        b"who" | b"names" | b"list" => Command::Who,
        b"me" => match trim(args) {
            [] => Command::Usage("usage: /me TEXT"),
            t => Command::Me(t),
        },
        b"msg" | b"m" | b"tell" => {
            let (to, text) = word(args);
            if to.is_empty() || text.is_empty() {
                Command::Usage("usage: /msg NICK TEXT")
            } else {
                Command::Msg { to, text }
            }
        }
        b"quit" | b"exit" | b"bye" => Command::Quit(trim(args)),
        b"help" | b"?" => Command::Help,
        _ => Command::Unknown(name),
    }
}

/// Why a nickname was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NickError {
    /// Empty or longer than [`MAX_NICK`].
    #[error("a nickname has 1 to {MAX_NICK} characters")]
    Length,
    /// A character outside letters, digits, `_` and `-`, or a digit/`-` first.
    #[error("a nickname starts with a letter or _ and has only letters, digits, _ and -")]
    Chars,
    /// Someone else has it (compared without case).
    #[error("nickname {0} is taken")]
    Taken(String),
}

/// Check a requested nickname; returns it as a string when valid.
pub fn validate_nick(name: &[u8]) -> Result<&str, NickError> {
    if name.is_empty() || name.len() > MAX_NICK {
        return Err(NickError::Length);
    }
    let ok_first = name[0].is_ascii_alphabetic() || name[0] == b'_';
    let ok_rest = name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok_first || !ok_rest {
        return Err(NickError::Chars);
    }
    std::str::from_utf8(name).map_err(|_| NickError::Chars)
}

/// The key under which nicknames are compared for uniqueness.
pub fn nick_key(nick: &str) -> String {
    nick.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse(b"hello"), Command::Say(b"hello"));
        assert_eq!(parse(b"//etc/passwd"), Command::Say(b"/etc/passwd"));
        assert_eq!(parse(b"/nick  bob "), Command::Nick(b"bob"));
        assert_eq!(parse(b"/NICK"), Command::Usage("usage: /nick NAME"));
        assert_eq!(parse(b"/who"), Command::Who);
        assert_eq!(parse(b"/me waves hello"), Command::Me(b"waves hello"));
        assert_eq!(
            parse(b"/msg bob  hi there"),
            Command::Msg {
                to: b"bob",
                text: b"hi there"
            }
        );
        assert_eq!(parse(b"/msg bob"), Command::Usage("usage: /msg NICK TEXT"));
        assert_eq!(parse(b"/quit"), Command::Quit(b""));
        assert_eq!(parse(b"/quit gone fishing"), Command::Quit(b"gone fishing"));
        assert_eq!(parse(b"/help"), Command::Help);
        assert_eq!(parse(b"/frob x"), Command::Unknown(b"frob"));
        assert_eq!(parse(b"/"), Command::Unknown(b""));
    }

    #[test]
    fn nick_rules() {
        assert_eq!(validate_nick(b"bob_2-x"), Ok("bob_2-x"));
        assert_eq!(validate_nick(b"_x"), Ok("_x"));
        assert_eq!(validate_nick(b""), Err(NickError::Length));
        assert_eq!(validate_nick(&[b'a'; 25]), Err(NickError::Length));
        assert_eq!(validate_nick(b"2bob"), Err(NickError::Chars));
        assert_eq!(validate_nick(b"bo b"), Err(NickError::Chars));
        assert_eq!(validate_nick(b"b\x1bb"), Err(NickError::Chars));
        assert_eq!(validate_nick("b\u{e9}".as_bytes()), Err(NickError::Chars));
        assert_eq!(nick_key("BoB"), "bob");
    }
}
