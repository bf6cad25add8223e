//! Editions support on top of protox, which parses only `syntax = "proto2"|"proto3"`.
//!
//! A file that starts with `edition = "2023";` is compiled as proto2 text with the statement
//! rewritten in place (same length where the spacing allows, so every line and column of the
//! source info stays true); its descriptor is then marked `syntax = "editions"` with the
//! edition number, as protoc writes it. `features.*` options compile unchanged because they
//! are ordinary fields of `google.protobuf.*Options`. The checker resolves features itself.
//! `google/protobuf/{cpp,java}_features.proto`, which protox does not bundle, are served here
//! with the fields the breaking rules read.

use prost_types::FileDescriptorProto;

/// `EDITION_2023` and `EDITION_2024` of `google.protobuf.Edition`.
pub const EDITION_2023: i32 = 1000;
pub const EDITION_2024: i32 = 1001;

/// Where the shim inserted text: 0-based line, 0-based column (in the original), length.
pub(crate) type Insertion = (usize, usize, usize);

/// Rewrites a leading `edition = "YYYY";` statement and gives label-less fields an
/// `optional` label (proto2 needs one); returns the text to compile, the edition when the
/// file is an editions file, and the insertions to undo in the source info.
pub(crate) fn shim(text: &str) -> (String, Option<i32>, Vec<Insertion>) {
    let Some((start, end, edition)) = find_edition(text) else {
        return (text.to_string(), None, Vec::new());
    };
    let len = end - start;
    let mut replacement = String::from("syntax=\"proto2\";");
    if len > replacement.len() {
        replacement = String::from("syntax =\"proto2\";");
    }
    while replacement.len() < len {
        replacement.push(' ');
    }
    let mut text1 = String::with_capacity(text.len() + 2);
    text1.push_str(&text[..start]);
    text1.push_str(&replacement);
    text1.push_str(&text[end..]);
    let offsets = labelless_fields(&text1);
    let mut out = String::with_capacity(text1.len() + offsets.len() * 9);
    let mut insertions = Vec::new();
    let mut last = 0;
    for off in offsets {
        out.push_str(&text1[last..off]);
        out.push_str(LABEL);
        let (line, col) = crate::diagnostic::line_col(&text1, off);
        insertions.push((line - 1, col - 1, LABEL.len()));
        last = off;
    }
    out.push_str(&text1[last..]);
    (out, Some(edition), insertions)
}

const LABEL: &str = "optional ";

/// Byte offsets of field statements without a label inside `message` and `extend` bodies.
fn labelless_fields(text: &str) -> Vec<usize> {
    #[derive(PartialEq, Clone, Copy)]
    enum Block {
        Message,
        Extend,
        Other,
    }
    const NOT_FIELDS: &[&str] = &[
        "optional",
        "repeated",
        "required",
        "message",
        "enum",
        "oneof",
        "extensions",
        "reserved",
        "extend",
        "option",
        "map",
        "group",
    ];
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut stack: Vec<Block> = Vec::new();
    let mut first: Option<(usize, &str)> = None; // first token of the current statement
    let mut brackets = 0usize;
    let mut i = 0;
    while i < b.len() {
        i = skip_trivia(b, i);
        if i >= b.len() {
            break;
        }
        let c = b[i];
        let (tok_start, tok) = if c == b'"' || c == b'\'' {
            let mut j = i + 1;
            while j < b.len() && b[j] != c {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            let s = i;
            i = (j + 1).min(b.len());
            (s, &text[s..i])
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            (s, &text[s..i])
        } else {
            i += 1;
            (i - 1, &text[i - 1..i])
        };
        match tok {
            "[" => brackets += 1,
            "]" => brackets = brackets.saturating_sub(1),
            "{" => {
                let kind = match (brackets, first.map(|f| f.1)) {
                    (0, Some("message")) => Block::Message,
                    (0, Some("extend")) => Block::Extend,
                    _ => Block::Other,
                };
                stack.push(kind);
                first = None;
                continue;
            }
            "}" => {
                stack.pop();
                first = None;
                continue;
            }
            ";" if brackets == 0 => {
                first = None;
                continue;
            }
            _ => {}
        }
        if first.is_none() && brackets == 0 {
            first = Some((tok_start, tok));
            let in_body = matches!(stack.last(), Some(Block::Message) | Some(Block::Extend));
            let ident = tok.as_bytes()[0].is_ascii_alphabetic()
                || tok.starts_with('.')
                || tok.starts_with('_');
            if in_body && ident && !NOT_FIELDS.contains(&tok) {
                out.push(tok_start);
            }
        }
    }
    out
}

/// Undoes the shim's insertions in a compiled file's source info, so spans point into the
/// original text, and drops the locations of the inserted labels.
pub(crate) fn fix_source_info(proto: &mut FileDescriptorProto, insertions: &[Insertion]) {
    let Some(info) = proto.source_code_info.as_mut() else {
        return;
    };
    if insertions.is_empty() {
        return;
    }
    let adjust = |line: i32, col: i32| -> i32 {
        // Compiled start of each insertion on this line, then undo them from the last.
        let mut on_line = Vec::new();
        let mut shift = 0i32;
        for &(l, c, n) in insertions.iter().filter(|(l, _, _)| *l as i32 == line) {
            let _ = l;
            on_line.push((c as i32 + shift, n as i32));
            shift += n as i32;
        }
        let mut col = col;
        for &(start, n) in on_line.iter().rev() {
            if col >= start + n {
                col -= n;
            } else if col >= start {
                col = start;
            }
        }
        col
    };
    info.location.retain(|loc| {
        let s = &loc.span;
        !(s.len() == 3
            && loc.path.last() == Some(&4)
            && insertions
                .iter()
                .any(|&(l, _, n)| s[0] == l as i32 && s[2] - s[1] == n as i32 - 1))
    });
    for loc in &mut info.location {
        let s = &mut loc.span;
        match s.len() {
            3 => {
                let (l, sc, ec) = (s[0], s[1], s[2]);
                s[1] = adjust(l, sc);
                s[2] = adjust(l, ec);
            }
            4 => {
                let (sl, sc, el, ec) = (s[0], s[1], s[2], s[3]);
                s[1] = adjust(sl, sc);
                s[3] = adjust(el, ec);
            }
            _ => {}
        }
    }
}

/// Finds the byte span of `edition = "..." ;` when it is the first statement of the file.
fn find_edition(text: &str) -> Option<(usize, usize, i32)> {
    let b = text.as_bytes();
    let mut i = skip_trivia(b, 0);
    if !text[i..].starts_with("edition") {
        return None;
    }
    let start = i;
    i += "edition".len();
    i = skip_trivia(b, i);
    if b.get(i) != Some(&b'=') {
        return None;
    }
    i = skip_trivia(b, i + 1);
    let quote = *b.get(i)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let close = text[i + 1..].find(quote as char)? + i + 1;
    let value = &text[i + 1..close];
    i = skip_trivia(b, close + 1);
    if b.get(i) != Some(&b';') {
        return None;
    }
    let edition = match value {
        "2023" => EDITION_2023,
        "2024" => EDITION_2024,
        _ => return None, // leave it to protox to report
    };
    Some((start, i + 1, edition))
}

fn skip_trivia(b: &[u8], mut i: usize) -> usize {
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i = (i + 2).min(b.len());
        } else {
            return i;
        }
    }
}

/// Marks a descriptor compiled through the shim as the editions file it is.
/// (prost-types has no `edition` field: the edition is kept on the `ImageFile` and added
/// back when the image is encoded.)
pub(crate) fn mark(proto: &mut FileDescriptorProto) {
    proto.syntax = Some("editions".to_string());
}

/// The feature-extension files protox does not bundle.
pub(crate) fn bundled(name: &str) -> Option<&'static str> {
    match name {
        "google/protobuf/cpp_features.proto" => Some(CPP_FEATURES),
        "google/protobuf/java_features.proto" => Some(JAVA_FEATURES),
        _ => None,
    }
}

const CPP_FEATURES: &str = r#"syntax = "proto2";
package pb;
import "google/protobuf/descriptor.proto";
option java_package = "com.google.protobuf";
option java_outer_classname = "CppFeaturesOuterClass";
extend google.protobuf.FeatureSet {
  optional CppFeatures cpp = 1000;
}
message CppFeatures {
  optional bool legacy_closed_enum = 1;
  enum StringType {
    STRING_TYPE_UNKNOWN = 0;
    VIEW = 1;
    CORD = 2;
    STRING = 3;
  }
  optional StringType string_type = 2;
  optional bool enable_lazy_initialization = 3;
}
"#;

const JAVA_FEATURES: &str = r#"syntax = "proto2";
package pb;
import "google/protobuf/descriptor.proto";
option java_package = "com.google.protobuf";
option java_outer_classname = "JavaFeaturesProto";
extend google.protobuf.FeatureSet {
  optional JavaFeatures java = 1001;
}
message JavaFeatures {
  optional bool legacy_closed_enum = 1;
  enum Utf8Validation {
    UTF8_VALIDATION_UNKNOWN = 0;
    DEFAULT = 1;
    VERIFY = 2;
  }
  optional Utf8Validation utf8_validation = 2;
  optional bool large_enum = 3;
  optional bool use_old_outer_classname_default = 4;
  optional bool nest_in_file_class = 5;
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_keeps_length_and_lines() {
        let src = "// c\nedition = \"2023\";\npackage a;\n";
        let (out, ed, ins) = shim(src);
        assert_eq!(ed, Some(EDITION_2023));
        assert!(ins.is_empty());
        assert_eq!(out.len(), src.len());
        assert!(out.contains("syntax =\"proto2\";"));
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn shim_ignores_syntax_files() {
        let src = "syntax = \"proto3\";\n";
        assert_eq!(shim(src), (src.to_string(), None, vec![]));
    }

    #[test]
    fn shim_labels_fields_in_messages_only() {
        let src = "edition = \"2023\";\nmessage A {\n  string s = 1 [features.utf8_validation = NONE];\n  repeated int32 r = 2;\n  oneof o { int32 x = 3; }\n  map<string, A> m = 4;\n  message B { .A a = 1; }\n}\nenum E { X = 0; }\n";
        let (out, _, ins) = shim(src);
        assert!(out.contains("  optional string s = 1"), "{out}");
        assert!(out.contains("{ optional .A a = 1; }"), "{out}");
        assert!(out.contains("oneof o { int32 x = 3; }"), "{out}");
        assert!(out.contains("enum E { X = 0; }"), "{out}");
        assert_eq!(ins.len(), 2);
    }
}
