//! Tables for a person at a terminal: columns padded by display width,
//! rows cut with `…` to fit the terminal instead of wrapping, and cells
//! painted (severity colours) when colour is on.

use std::io::{self, Write};

use clap::ValueEnum;
use console::Style;

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to paint output going to stdout.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stdout())
            }
        }
    }
}

/// The width rows must fit in: the terminal's, or `COLUMNS` when set;
/// `None` (no limit) on a pipe without `COLUMNS`.
pub fn width() -> Option<usize> {
    if let Some(cols) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(cols);
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| cols as usize)
}

/// The style of a cell, from its column index and text.
pub type Paint<'a> = &'a dyn Fn(usize, &str) -> Option<Style>;

/// The colour of a severity.
pub fn severity_style(severity: &str) -> Style {
    match severity {
        "critical" => Style::new().red().bold(),
        "high" => Style::new().red(),
        "medium" => Style::new().yellow(),
        "low" => Style::new().cyan(),
        _ => Style::new().dim(),
    }
}

/// Writes `head` and `rows`, each row within `width` columns: the last
/// column is cut first, then the widest others, never below a few
/// characters. `paint` gives a cell's style (column index, text).
pub fn write<const N: usize>(
    out: &mut dyn Write,
    head: [&str; N],
    rows: &[[String; N]],
    width: Option<usize>,
    paint: Option<Paint<'_>>,
) -> io::Result<()> {
    let measure = |s: &str| console::measure_text_width(s);
    let mut widths = head.map(measure);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(measure(cell));
        }
    }
    if let Some(limit) = width {
        let gaps = 2 * (N - 1);
        let total = |w: &[usize; N]| w.iter().sum::<usize>() + gaps;
        const MIN: usize = 8;
        while total(&widths) > limit {
            // The last column first, then the widest one that can give.
            let i = if widths[N - 1] > MIN {
                N - 1
            } else {
                match (0..N - 1)
                    .filter(|&i| widths[i] > MIN)
                    .max_by_key(|&i| widths[i])
                {
                    Some(i) => i,
                    None => break,
                }
            };
            let over = total(&widths) - limit;
            widths[i] = widths[i].saturating_sub(over).max(MIN);
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; N], header: bool| -> io::Result<()> {
        for (i, cell) in cells.iter().enumerate() {
            let cut = console::truncate_str(cell, widths[i], "\u{2026}");
            let text = if i + 1 == N {
                cut.into_owned()
            } else {
                let pad = widths[i].saturating_sub(measure(&cut));
                format!("{cut}{}", " ".repeat(pad))
            };
            let styled = match (paint, header) {
                (_, true) => text,
                (Some(p), false) => match p(i, cell) {
                    Some(style) => style.apply_to(text).force_styling(true).to_string(),
                    None => text,
                },
                (None, false) => text,
            };
            if i + 1 == N {
                writeln!(out, "{styled}")?;
            } else {
                write!(out, "{styled}  ")?;
            }
        }
        Ok(())
    };
    line(out, head, true)?;
    for row in rows {
        line(out, std::array::from_fn(|i| row[i].as_str()), false)?;
    }
    Ok(())
}

/// `1 event`, `2 events`.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cut_to_the_width_and_never_wrap() {
        let rows = [[
            "2026-12-02T10:00:00Z".to_owned(),
            "critical".to_owned(),
            "openai.some.rule".to_owned(),
            "x".repeat(300),
        ]];
        let mut out = Vec::new();
        write(
            &mut out,
            ["TIME", "SEVERITY", "RULE", "SUMMARY"],
            &rows,
            Some(100),
            None,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(console::measure_text_width(line) <= 100, "{line}");
        }
        assert!(text.contains('\u{2026}'));
        assert_eq!(text.lines().count(), 2);
        assert_eq!(plural(1u64, "event", "events"), "1 event");
        assert_eq!(plural(2u64, "event", "events"), "2 events");
    }
}
