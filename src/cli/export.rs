//! `auditwatch export`: the events of a time range as JSON Lines, oldest
//! first, read in ascending slices; an output file that already holds part
//! of the range is continued where it ends.

use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};

use super::watch::Failure;
use crate::config::RuleConfig;
use crate::source::{self, Source};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config file (default: ./auditwatch.yaml); only `source` is read.
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Events at or after WHEN (RFC 3339, Unix seconds, or a duration back from now like 7d).
    #[arg(long, value_name = "WHEN")]
    pub since: String,
    /// Events before WHEN (default: now).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Write to FILE instead of standard output; an existing FILE is continued.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: &Args) -> u8 {
    super::run_async("auditwatch export", export(args))
}

/// Loads the source of a config for a command that reads a range.
pub(super) fn source_of(config: Option<&Path>) -> Result<Source, Failure> {
    let path = super::config_path(config).map_err(Failure::usage)?;
    let config = RuleConfig::load_with(&path, true).map_err(Failure::usage)?;
    let source = config.source.ok_or_else(|| {
        Failure::usage(format!(
            "{}: the config has no `source`: add `source.openai` with the admin key",
            path.display()
        ))
    })?;
    Source::new(&source).map_err(Failure::usage)
}

/// `since` and `until` of a range as Unix seconds.
pub(super) fn range(since: &str, until: Option<&str>) -> Result<(i64, i64), Failure> {
    let now = crate::time::now();
    let since = crate::time::parse_when(since, now).map_err(Failure::usage)?;
    let until = match until {
        Some(u) => crate::time::parse_when(u, now).map_err(Failure::usage)?,
        None => now + 1,
    };
    if until <= since {
        return Err(Failure::usage("--until must come after --since"));
    }
    Ok((since, until))
}

async fn export(args: &Args) -> Result<(), Failure> {
    let source = source_of(args.config.as_deref())?;
    let (mut since, until) = range(&args.since, args.until.as_deref())?;
    let mut known = std::collections::HashSet::new();
    let mut out: Box<dyn Write> = match &args.output {
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        Some(path) => {
            let (file, resume) = open_output(path)
                .map_err(|e| Failure::usage(format!("{}: cannot write: {e}", path.display())))?;
            if let Some(Resume { last, ids }) = resume
                && last >= since
            {
                tracing::info!(
                    from = %crate::event::format_time(last),
                    "continuing the export where the file ends"
                );
                since = last;
                known = ids;
            }
            Box::new(std::io::BufWriter::new(file))
        }
    };
    let mut written = 0u64;
    let started = std::time::Instant::now();
    source::read_range(&source, since, until, |window, events| {
        for e in events.iter().filter(|e| !known.contains(&e.id)) {
            out.write_all(e.json.as_bytes())?;
            out.write_all(b"\n")?;
            written += 1;
        }
        out.flush()?;
        tracing::info!(
            up_to = %crate::event::format_time(window.until.unwrap_or(until)),
            events = written,
            elapsed_s = started.elapsed().as_secs(),
            "exported"
        );
        Ok(())
    })
    .await
    .map_err(|e| match e {
        source::RangeError::Source(s) if s.is_fatal() => Failure::failed(s),
        other => Failure::failed(other),
    })?;
    eprintln!("auditwatch export: {written} events");
    Ok(())
}

/// Where an existing export ends: its last second and the ids written for it.
struct Resume {
    last: i64,
    ids: std::collections::HashSet<String>,
}

/// Opens an output file for appending. When it already holds events, a
/// line cut short by an interrupted export is removed, and the last
/// second's time and the ids of that second are returned, so that the
/// export resumes there without repeating them.
fn open_output(path: &Path) -> std::io::Result<(std::fs::File, Option<Resume>)> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    let mut last: Option<(i64, std::collections::HashSet<String>)> = None;
    let mut complete = 0u64;
    let mut reader = BufReader::new(&file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        complete += n as u64;
        if let Ok(ev) = crate::event::Event::parse(line.trim()) {
            let at = ev.effective_at();
            match &mut last {
                Some((t, ids)) if *t == at => {
                    ids.insert(ev.id().to_owned());
                }
                Some((t, _)) if *t > at => {}
                _ => last = Some((at, [ev.id().to_owned()].into())),
            }
        }
    }
    drop(reader);
    file.set_len(complete)?;
    file.seek(std::io::SeekFrom::End(0))?;
    Ok((file, last.map(|(last, ids)| Resume { last, ids })))
}
