//! The sweep progress bar on stderr: one line, erased at once whenever a
//! result line is about to be printed to the same terminal, redrawn at most
//! [`REDRAW_EVERY`] and erased for good before the summaries.
//!
//! Drawn by hand rather than with indicatif: a sweep prints result lines
//! while the bar is up, and indicatif's `suspend` redraws the bar after every
//! call (once per line), where this bar is erased now and redrawn later, at a
//! bounded rate.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// The shortest gap between two draws of the bar.
pub const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Erase the current terminal line and go back to its start.
pub const ERASE: &str = "\r\x1b[2K";

/// Width of the bar part when the terminal has room for it.
const BAR_WIDTH: usize = 40;

/// A one-line progress bar over `total` targets.
#[derive(Debug)]
pub struct Bar {
    total: u64,
    done: u64,
    /// The bar is on the screen (the cursor is on its line).
    shown: bool,
    /// `done` when the bar was last drawn.
    drawn_done: Option<u64>,
    last_draw: Option<Instant>,
}

impl Bar {
    /// A bar when stderr is a terminal that understands cursor movement.
    pub fn for_stderr(total: u64) -> Option<Self> {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        (io::stderr().is_terminal() && !dumb).then(|| Self::new(total))
    }

    fn new(total: u64) -> Self {
        Self {
            total,
            done: 0,
            shown: false,
            drawn_done: None,
            last_draw: None,
        }
    }

    /// One more target is done (drawn at the next [`Bar::tick`]).
    pub fn inc(&mut self) {
        self.done = self.done.saturating_add(1).min(self.total);
    }

    /// Erase the bar now, if it is on the screen, so a line can be printed.
    pub fn erase(&mut self) {
        if self.shown {
            self.shown = false;
            write_stderr(ERASE);
        }
    }

    /// Draw the bar if it is out of date or erased, and the last draw was
    /// at least [`REDRAW_EVERY`] ago.
    pub fn tick(&mut self) {
        let now = Instant::now();
        if self.shown && self.drawn_done == Some(self.done) {
            return;
        }
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < REDRAW_EVERY)
        {
            return;
        }
        let cols = console::Term::stderr()
            .size_checked()
            .map_or(80, |(_, c)| usize::from(c));
        let mut s = String::from(ERASE);
        s.push_str(&self.render(cols));
        write_stderr(&s);
        self.shown = true;
        self.drawn_done = Some(self.done);
        self.last_draw = Some(now);
    }

    /// The bar's text, at most `cols - 1` columns wide (the last column is
    /// left free so the terminal never wraps the line).
    fn render(&self, cols: usize) -> String {
        let text = format!("{}/{} targets done", self.done, self.total);
        let room = cols.saturating_sub(1);
        // "[" bar "] " text
        let bar = BAR_WIDTH.min(room.saturating_sub(text.len() + 3));
        if bar < 10 {
            return text.chars().take(room).collect();
        }
        let filled = self
            .done
            .saturating_mul(bar as u64)
            .checked_div(self.total)
            .map_or(bar, |f| usize::try_from(f).unwrap_or(bar).min(bar));
        format!(
            "[{}{}] {text}",
            "#".repeat(filled),
            "-".repeat(bar - filled)
        )
    }
}

impl Drop for Bar {
    /// Never leave a bar behind, however the run ends.
    fn drop(&mut self) {
        self.erase();
    }
}

/// Best effort: a closed stderr only costs the bar.
fn write_stderr(s: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_within_the_terminal_width() {
        let mut b = Bar::new(256);
        for _ in 0..64 {
            b.inc();
        }
        let s = b.render(80);
        assert_eq!(
            s,
            format!("[{}{}] 64/256 targets done", "#".repeat(10), "-".repeat(30))
        );
        assert!(s.len() < 80);
        // Narrow: the bar shrinks, then only the text is left, cut to fit.
        assert!(b.render(40).len() < 40);
        assert_eq!(b.render(30), "64/256 targets done");
        assert_eq!(b.render(8), "64/256 ");
        assert_eq!(b.render(0), "");
    }

    #[test]
    fn counts_stop_at_the_total() {
        let mut b = Bar::new(2);
        for _ in 0..5 {
            b.inc();
        }
        assert!(b.render(80).ends_with("] 2/2 targets done"));
        assert!(b.render(80).starts_with(&format!("[{}]", "#".repeat(40))));
    }
}
