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
pub use parse::json_name;
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
    /// Option statements whose value is a message literal (see [`AggregateOption`]).
    pub aggregate_options: Vec<AggregateOption>,
}

/// `option name = { … };`: buf's source info spans such an option over `name = { … }`,
/// except when the option is an element of a repeated field (then over the statement).
/// Which one applies is known only once the option is resolved, so both spans are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateOption {
    /// `google.protobuf.FileOptions`, `…MessageOptions`, …
    pub options_message: &'static str,
    /// Path of the options field (`[8]`, `[4, 0, 7]`, …).
    pub options_path: Vec<i32>,
    pub name_value_span: Vec<i32>,
    pub statement_span: Vec<i32>,
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

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str =
        include_str!("../../../proto-examples/editions/acme/inventory/v1/inventory.proto");

    #[test]
    fn parses_an_editions_file_with_its_extras() {
        let f = parse("c.proto", "edition = \"2024\";\nimport option \"o.proto\";\nexport message A { local enum E { E_ZERO = 0; } reserved foo, bar; map<string, int32> by_id = 1; }\n").unwrap();
        assert_eq!(f.edition(), Some(Edition::E2024));
        assert_eq!(f.option_dependency, ["o.proto"]);
        assert_eq!(
            f.visibility,
            [
                (vec![4, 0], Visibility::Export),
                (vec![4, 0, 4, 0], Visibility::Local)
            ]
        );
        let m = &f.proto.message_type[0];
        assert_eq!(m.reserved_name, ["foo", "bar"]);
        assert_eq!(m.nested_type[0].name(), "ByIdEntry");
        assert_eq!(m.field[0].json_name(), "byId");
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse(
            "a.proto",
            "edition = \"2023\";\nmessage M {\n  optional int32 a = 1;\n}\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (3, 3));
        assert!(
            e.message.contains("not allowed in editions"),
            "{}",
            e.message
        );
        let e = parse(
            "a.proto",
            "edition = \"2023\";\nmessage M {\n  int32 a = 1\n}\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (4, 1));
        assert!(e.message.contains("expected ';'"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut src = String::from("edition = \"2023\";\n");
        for i in 0..5000 {
            src.push_str(&format!("message M{i} {{ "));
        }
        let e = parse("deep.proto", &src).unwrap_err();
        assert!(e.message.contains("nest"), "{}", e.message);
    }

    /// Mutated real files (bytes flipped, cut, repeated) never panic; a bounded run with a
    /// fixed seed.
    #[test]
    fn mutated_inputs_never_panic() {
        let mut seed: u64 = 0x5eed_1234_abcd_0001;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let base = EXAMPLE.as_bytes();
        for _ in 0..3000 {
            let mut b = base.to_vec();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % b.len().max(1);
                match next() % 4 {
                    0 => b[i] = (next() % 128) as u8,
                    1 => b.truncate(i),
                    2 => {
                        let j = (i + (next() as usize % 64)).min(b.len());
                        let chunk = b[i..j].to_vec();
                        b.splice(i..i, chunk);
                    }
                    _ => {
                        b.remove(i.min(b.len().saturating_sub(1)).min(b.len()));
                    }
                }
                if b.is_empty() {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&b);
            let _ = parse("m.proto", &text);
        }
    }
}
