//! Compile diagnostics: `path:line:col: message`, with the source kept for pretty rendering.

use std::fmt;
use std::sync::Arc;

/// One compile error at a place in a file (line and column are 1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// Byte span in the source, when known (for the caret).
    pub span: Option<(usize, usize)>,
    #[doc(hidden)]
    pub source: Option<Arc<str>>,
}

impl Diagnostic {
    pub fn at_offset(
        path: &str,
        source: Option<Arc<str>>,
        offset: Option<(usize, usize)>,
        message: String,
    ) -> Self {
        let (line, column) = match (&source, offset) {
            (Some(src), Some((o, _))) => line_col(src, o),
            _ => (0, 0),
        };
        Diagnostic {
            path: path.to_string(),
            line,
            column,
            message,
            span: offset,
            source,
        }
    }

    /// Renders the diagnostic with its source line and a caret (miette's graphical handler).
    pub fn render_pretty(&self, color: bool) -> String {
        use miette::{
            GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource,
        };
        let mut d = MietteDiagnostic::new(format!("{}: {}", self.location(), self.message));
        if let (Some(src), Some((o, len))) = (&self.source, self.span) {
            d = d.with_label(LabeledSpan::at(
                o..o + len.max(1).min(src.len().saturating_sub(o).max(1)),
                "here",
            ));
            let report = miette::Report::new(d)
                .with_source_code(NamedSource::new(self.path.clone(), src.to_string()));
            let theme = if color {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            let mut out = String::new();
            if GraphicalReportHandler::new_themed(theme)
                .with_wrap_lines(false)
                .render_report(&mut out, report.as_ref())
                .is_ok()
            {
                return out;
            }
        }
        format!("{self}\n")
    }

    fn location(&self) -> String {
        if self.line == 0 {
            self.path.clone()
        } else {
            format!("{}:{}:{}", self.path, self.line, self.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

/// All diagnostics of one compile run, sorted and deduplicated.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..floor_char_boundary(src, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
