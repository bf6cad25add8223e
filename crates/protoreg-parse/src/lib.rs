//! A `.proto` parser for proto2, proto3 and editions 2023 and 2024.
//!
//! [`parse`] turns one file's text into an *unlinked* `FileDescriptorProto` — type names as
//! written, options as `uninterpreted_option`s, source info with protoc's paths and spans
//! (as buf reports them: 0-based lines, columns in characters with tab stops of 4) — the
//! same contract as `protox_parse::parse`, so the result links with protox/prost-reflect.
//! What prost-types cannot carry (the edition, `import option` dependencies, edition 2024
//! `export`/`local` visibility) comes back beside the descriptor in [`ParsedFile`] and is
//! written back by [`ParsedFile::extra_fields`]'s consumers when a descriptor is encoded.

mod lex;
mod parse;
pub mod tag;

use prost_types::FileDescriptorProto;

/// `google.protobuf.Edition` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Edition {
    E2023,
    E2024,
}

impl Edition {
    /// The `google.protobuf.Edition` enum number (`EDITION_2023` = 1000).
    pub fn number(self) -> i32 {
        match self {
            Edition::E2023 => 1000,
            Edition::E2024 => 1001,
        }
    }
}

/// How a file declares itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Proto2,
    Proto3,
    Editions(Edition),
}

/// `google.protobuf.SymbolVisibility` (edition 2024's `export`/`local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Local,
    Export,
}

impl Visibility {
    pub fn number(self) -> i32 {
        match self {
            Visibility::Local => 1,
            Visibility::Export => 2,
        }
    }
}

/// One parsed file: the unlinked descriptor and what prost-types has no field for.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// `syntax` is `"editions"` for editions files; `edition` lives in [`ParsedFile::syntax`].
    pub proto: FileDescriptorProto,
    pub syntax: Syntax,
    /// Paths (`[4, i]`, `[4, i, 4, j]`, …) of messages and enums declared `export`/`local`.
    pub visibility: Vec<(Vec<i32>, Visibility)>,
    /// `import option "…";` paths (`FileDescriptorProto.option_dependency`).
    pub option_dependency: Vec<String>,
}

impl ParsedFile {
    pub fn edition(&self) -> Option<Edition> {
        match self.syntax {
            Syntax::Editions(e) => Some(e),
            _ => None,
        }
    }
}

/// A syntax error: where (byte offset and length in the source) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    pub message: String,
    pub offset: usize,
    pub len: usize,
    /// 1-based line and column (characters) of `offset`.
    pub line: usize,
    pub column: usize,
}

impl ParseError {
    pub(crate) fn new(src: &str, offset: usize, len: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(src.len());
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError {
            message: message.into(),
            offset,
            len,
            line,
            column,
        }
    }
}

/// Parses one file. `name` becomes the descriptor's `name`.
pub fn parse(name: &str, source: &str) -> Result<ParsedFile, ParseError> {
    parse::parse_file(name, source)
}
