//! The hosts `sockbox wake` wakes: MAC addresses and names on the command
//! line, hosts files and `hosts.toml`. A target or hosts-file line that is
//! not a host is reported and skipped; the others are still woken.

use sockbox::wol::{
    self,
    hosts::{self, Host},
};

use super::{SendArgs, lib_err};
use crate::exit::{self, usage};

/// The hosts to wake, and the targets (or hosts-file lines) that are not a
/// host, each as the error to show.
pub(super) struct Targets {
    pub(super) hosts: Vec<Host>,
    pub(super) bad: Vec<anyhow::Error>,
}

/// A target that is neither a MAC address nor a known host, as shown.
fn target_err(t: &str, e: wol::Error) -> anyhow::Error {
    // `--wait 2m` (no '='): clap gave the time to the targets.
    if matches!(e, wol::Error::UnknownHost { .. }) && crate::input::duration(t).is_ok() {
        usage(format!(
            "{t:?} is not a MAC address or host name; if it is the time for --wait, write \
             --wait={t}"
        ))
    } else {
        lib_err(e)
    }
}

/// Resolve the targets from the command line and the hosts files. A bad
/// target or hosts-file line is kept aside, not fatal: the others are
/// still woken (as wakeonlan does).
pub(super) fn hosts_to_wake(a: &SendArgs) -> anyhow::Result<Targets> {
    let mut searched = Vec::new();
    let mut bad = Vec::new();
    let file_hosts = match &a.file {
        Some(f) => {
            searched.push(f.display().to_string());
            let parsed = hosts::read_hosts_file(f).map_err(lib_err)?;
            bad.extend(parsed.bad.into_iter().map(lib_err));
            parsed.hosts
        }
        None => Vec::new(),
    };
    if a.targets.is_empty() {
        return match &a.file {
            Some(f) if file_hosts.is_empty() && bad.is_empty() => {
                Err(usage(format!("hosts file {} lists no hosts", f.display())))
            }
            Some(_) => Ok(Targets {
                hosts: file_hosts,
                bad,
            }),
            None => Err(usage(
                "give at least one MAC address or host name to wake (or -f FILE); \
                 `sockbox wake --help` shows examples",
            )),
        };
    }
    let mut known = file_hosts;
    let config = a.hosts.clone().or_else(hosts::default_config_path);
    if let Some(c) = &config {
        match hosts::read_hosts_toml(c, a.hosts.is_some()) {
            Ok(h) => {
                known.extend(h);
                searched.push(if c.exists() {
                    c.display().to_string()
                } else {
                    format!("{} (no such file)", c.display())
                });
            }
            // The default file being unreadable only matters for names.
            Err(wol::Error::HostsRead { source, .. }) if a.hosts.is_none() => {
                searched.push(format!("{} (unreadable: {source})", c.display()));
            }
            Err(e) => return Err(lib_err(e)),
        }
    }
    let searched = if searched.is_empty() {
        "no hosts file given".to_owned()
    } else {
        format!("looked in {}", searched.join(" and "))
    };
    let mut hosts = Vec::new();
    for t in &a.targets {
        match hosts::resolve_target(t, &known, &searched) {
            Ok(h) => hosts.push(h),
            // `--wait 2m` (no '='): clap gave the time to the targets. A
            // mistake in the command, not a bad target: nothing is sent.
            Err(e @ wol::Error::UnknownHost { .. })
                if a.wait.is_some() && crate::input::duration(t).is_ok() =>
            {
                return Err(target_err(t, e));
            }
            Err(e) => bad.push(target_err(t, e)),
        }
    }
    Ok(Targets { hosts, bad })
}

/// Show the bad targets: with nothing left to wake they are the command's
/// error (exit 2); otherwise each is a warning and the others are sent.
pub(super) fn report_bad(hosts: &[Host], mut bad: Vec<anyhow::Error>) -> anyhow::Result<bool> {
    if hosts.is_empty() {
        if bad.len() == 1
            && let Some(e) = bad.pop()
        {
            return Err(e);
        }
        for e in &bad {
            crate::output::errln!("sockbox: {}", exit::render(e));
        }
        return Err(usage(format!(
            "nothing to wake: none of the {} targets is valid (errors above)",
            bad.len()
        )));
    }
    for e in &bad {
        crate::output::errln!("sockbox: warning: {} (skipped)", exit::render(e));
    }
    Ok(!bad.is_empty())
}
