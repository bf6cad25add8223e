//! Recursive-descent parsing straight into descriptors with source info.
//!
//! Names are left as written (`type_name`, `extendee`, `input_type` unresolved) and options
//! as `uninterpreted_option`s, as protoc's parser leaves them: linking (name resolution and
//! option interpretation) is the linker's job.

use prost_types::source_code_info::Location;
use prost_types::uninterpreted_option::NamePart;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, EnumValueOptions,
    ExtensionRangeOptions, FieldDescriptorProto, FieldOptions, FileDescriptorProto, FileOptions,
    MessageOptions, MethodDescriptorProto, MethodOptions, OneofDescriptorProto,
    ServiceDescriptorProto, SourceCodeInfo, UninterpretedOption, descriptor_proto,
    enum_descriptor_proto,
    field_descriptor_proto::{Label, Type},
};

use crate::lex::{Pos, Tok, Token, tokenize};
use crate::tag;
use crate::{AggregateOption, Edition, ParseError, ParsedFile, Syntax, Visibility};

/// Largest field number (2^29 - 1).
const MAX_FIELD_NUMBER: i32 = 536_870_911;
/// How deeply messages may nest before the file is refused (protoc allows 100 levels of
/// recursion in its parser).
const MAX_DEPTH: usize = 100;

pub(crate) fn parse_file(name: &str, src: &str) -> Result<ParsedFile, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        src,
        toks,
        i: 0,
        locs: Vec::new(),
        syntax: Syntax::Proto2,
        visibility: Vec::new(),
        option_dependency: Vec::new(),
        depth: 0,
        aggregate_options: Vec::new(),
        trail: None,
    };
    let mut file = FileDescriptorProto {
        name: Some(name.to_string()),
        ..Default::default()
    };
    p.file(&mut file)?;
    let n = p.toks.len();
    let (start, end) = if n > 1 {
        (p.toks[0].start, p.toks[n - 2].end)
    } else {
        (Pos::default(), Pos::default())
    };
    let mut locs = vec![Location {
        path: vec![],
        span: span(start, end),
        ..Default::default()
    }];
    locs.append(&mut p.locs);
    file.source_code_info = Some(SourceCodeInfo { location: locs });
    Ok(ParsedFile {
        proto: file,
        syntax: p.syntax,
        visibility: p.visibility,
        option_dependency: p.option_dependency,
        aggregate_options: p.aggregate_options,
    })
}

fn span(start: Pos, end: Pos) -> Vec<i32> {
    if start.line == end.line {
        vec![start.line, start.col, end.col]
    } else {
        vec![start.line, start.col, end.line, end.col]
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    locs: Vec<Location>,
    syntax: Syntax,
    visibility: Vec<(Vec<i32>, Visibility)>,
    option_dependency: Vec<String>,
    depth: usize,
    aggregate_options: Vec<AggregateOption>,
    /// For the next [`Parser::loc_c`]: the token whose trailing comment a body-declaring
    /// element takes (its `{`), as buf attributes them.
    trail: Option<usize>,
}

type R<T> = Result<T, ParseError>;

/// An option as written: `name = value`, with where it was.
struct OptionStmt {
    name: Vec<NamePart>,
    /// The option name as written (for the pseudo-options `default` and `json_name`).
    simple: Option<String>,
    value: Value,
    start: Pos,
    end: Pos,
    /// First and last token of the option (`name = value`).
    value_tok: usize,
}

enum Value {
    Ident(String),
    Int(u64),
    NegInt(i64),
    Double(f64),
    Str(Vec<u8>),
    Aggregate(String),
}

/// Where a field is declared.
#[derive(Clone, Copy, PartialEq)]
enum FieldCtx {
    Message,
    Oneof,
    Extend,
}

impl<'a> Parser<'a> {
    // ---- tokens ----

    /// The text of token `i` as written.
    fn text(&self, i: usize) -> &'a str {
        let t = &self.toks[i.min(self.toks.len() - 1)];
        &self.src[t.offset..t.offset + t.len]
    }
    fn tok(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }
    fn peek_tok(&self, n: usize) -> &Token {
        &self.toks[(self.i + n).min(self.toks.len() - 1)]
    }
    fn prev_end(&self) -> Pos {
        self.toks[self.i.saturating_sub(1)].end
    }
    fn is_sym(&self, c: char) -> bool {
        self.tok().tok == Tok::Sym(c)
    }
    fn is_ident(&self, word: &str) -> bool {
        matches!(&self.tok().tok, Tok::Ident(s) if s == word)
    }
    fn bump(&mut self) -> usize {
        let i = self.i;
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        i
    }
    fn err_here(&self, message: impl Into<String>) -> ParseError {
        let t = self.tok();
        ParseError::new(self.src, t.offset, t.len.max(1), message)
    }
    fn err_at(&self, tok: usize, message: impl Into<String>) -> ParseError {
        let t = &self.toks[tok];
        ParseError::new(self.src, t.offset, t.len.max(1), message)
    }
    fn describe(&self) -> String {
        match &self.tok().tok {
            Tok::Eof => "end of file".into(),
            Tok::Ident(s) => format!("\"{s}\""),
            Tok::Sym(c) => format!("'{c}'"),
            _ => self.text(self.i).to_string(),
        }
    }
    fn expect_sym(&mut self, c: char) -> R<usize> {
        if self.is_sym(c) {
            Ok(self.bump())
        } else {
            Err(self.err_here(format!("expected '{c}', found {}", self.describe())))
        }
    }
    fn expect_word(&mut self, word: &str) -> R<usize> {
        if self.is_ident(word) {
            Ok(self.bump())
        } else {
            Err(self.err_here(format!("expected \"{word}\", found {}", self.describe())))
        }
    }
    fn ident(&mut self, what: &str) -> R<(String, usize)> {
        match &self.tok().tok {
            Tok::Ident(s) => {
                let s = s.clone();
                Ok((s, self.bump()))
            }
            _ => Err(self.err_here(format!("expected {what}, found {}", self.describe()))),
        }
    }
    /// `a.b.c` (optionally with a leading dot): the text and the first/last token.
    fn type_name(&mut self, what: &str) -> R<(String, usize, usize)> {
        let first = self.i;
        let mut out = String::new();
        if self.is_sym('.') {
            self.bump();
            out.push('.');
        }
        let (s, mut last) = self.ident(what)?;
        out.push_str(&s);
        while self.is_sym('.') {
            self.bump();
            let (s, l) = self.ident(what)?;
            out.push('.');
            out.push_str(&s);
            last = l;
        }
        Ok((out, first, last))
    }
    fn string(&mut self, what: &str) -> R<(Vec<u8>, usize)> {
        let Tok::Str(first) = &self.tok().tok else {
            return Err(self.err_here(format!("expected {what}, found {}", self.describe())));
        };
        let mut out = first.clone();
        let mut last = self.bump();
        while let Tok::Str(more) = &self.tok().tok {
            out.extend_from_slice(more);
            last = self.bump();
        }
        Ok((out, last))
    }
    fn utf8(&self, bytes: Vec<u8>, tok: usize, what: &str) -> R<String> {
        String::from_utf8(bytes).map_err(|_| self.err_at(tok, format!("{what} is not valid UTF-8")))
    }
    fn int(&mut self, what: &str) -> R<(i64, usize)> {
        let neg = self.is_sym('-');
        let first = self.i;
        if neg {
            self.bump();
        }
        match self.tok().tok {
            Tok::Int(Some(v)) if v <= i64::MAX as u64 + neg as u64 => {
                self.bump();
                let v = if neg {
                    (v as i128).wrapping_neg() as i64
                } else {
                    v as i64
                };
                Ok((v, first))
            }
            Tok::Int(_) => Err(self.err_here(format!("{what} is out of range"))),
            _ => Err(self.err_here(format!("expected {what}, found {}", self.describe()))),
        }
    }

    // ---- locations ----

    fn loc(&mut self, path: &[i32], start: Pos, end: Pos) {
        self.locs.push(Location {
            path: path.to_vec(),
            span: span(start, end),
            ..Default::default()
        });
    }
    /// A location spanning tokens `first..=last`, carrying the comments around them: the
    /// leading ones of `first`, the trailing one of `last` (of the opening brace for bodies,
    /// see [`Parser::trail`]).
    fn loc_c(&mut self, path: &[i32], first: usize, start: Pos, last: usize) {
        let (f, l) = (&self.toks[first], &self.toks[last]);
        let trailing = match self.trail.take() {
            Some(t) => self.toks[t].trailing.clone(),
            None => l.trailing.clone(),
        };
        self.locs.push(Location {
            path: path.to_vec(),
            span: span(start, l.end),
            leading_comments: f.leading.clone(),
            trailing_comments: trailing,
            leading_detached_comments: f.detached.clone(),
        });
    }
    fn loc_tok(&mut self, path: &[i32], tok: usize) {
        let (s, e) = (self.toks[tok].start, self.toks[tok].end);
        self.loc(path, s, e);
    }
    fn loc_toks(&mut self, path: &[i32], first: usize, last: usize) {
        let (s, e) = (self.toks[first].start, self.toks[last].end);
        self.loc(path, s, e);
    }

    // ---- file ----

    fn file(&mut self, file: &mut FileDescriptorProto) -> R<()> {
        if self.is_ident("syntax") || self.is_ident("edition") {
            let first = self.i;
            let is_edition = self.is_ident("edition");
            self.bump();
            self.expect_sym('=')?;
            let (value, vt) = self.string(if is_edition { "an edition" } else { "a syntax" })?;
            let value = String::from_utf8_lossy(&value).into_owned();
            let last = self.expect_sym(';')?;
            self.syntax = match (is_edition, value.as_str()) {
                (false, "proto2") => Syntax::Proto2,
                (false, "proto3") => Syntax::Proto3,
                (false, "editions") => {
                    return Err(self.err_at(vt, "use `edition = \"2023\";` to declare an edition"));
                }
                (false, other) => {
                    return Err(self.err_at(
                        vt,
                        format!("unknown syntax {other:?}; expected \"proto2\" or \"proto3\""),
                    ));
                }
                (true, "2023") => Syntax::Editions(Edition::E2023),
                (true, "2024") => Syntax::Editions(Edition::E2024),
                (true, other) => {
                    return Err(self.err_at(
                        vt,
                        format!(
                            "edition {other:?} is not supported; expected \"2023\" or \"2024\""
                        ),
                    ));
                }
            };
            // proto2 is the default: protoc and buf leave `syntax` unset for it.
            file.syntax = match self.syntax {
                Syntax::Proto2 => None,
                Syntax::Proto3 => Some("proto3".into()),
                Syntax::Editions(_) => Some("editions".into()),
            };
            let start = self.toks[first].start;
            self.loc_c(&[tag::FILE_SYNTAX], first, start, last);
        }
        let mut saw_package = false;
        loop {
            let first = self.i;
            match &self.tok().tok {
                Tok::Eof => return Ok(()),
                Tok::Sym(';') => {
                    self.bump();
                }
                Tok::Ident(w) => match w.as_str() {
                    "import" => self.import(file)?,
                    "package" => {
                        if saw_package {
                            return Err(self.err_here("a file may declare only one package"));
                        }
                        saw_package = true;
                        self.bump();
                        let (name, _, _) = self.type_name("a package name")?;
                        if name.starts_with('.') {
                            return Err(self.err_at(
                                first + 1,
                                "package names are not qualified with a leading '.'",
                            ));
                        }
                        let last = self.expect_sym(';')?;
                        file.package = Some(name);
                        let start = self.toks[first].start;
                        self.loc_c(&[tag::FILE_PACKAGE], first, start, last);
                    }
                    "option" => {
                        let opts = file.options.get_or_insert_with(FileOptions::default);
                        let mut uo = std::mem::take(&mut opts.uninterpreted_option);
                        self.option_statement(
                            &[tag::FILE_OPTIONS],
                            "google.protobuf.FileOptions",
                            &mut uo,
                        )?;
                        file.options
                            .get_or_insert_with(FileOptions::default)
                            .uninterpreted_option = uo;
                    }
                    "message" | "export" | "local" if self.decl_kind() == Some("message") => {
                        let idx = file.message_type.len() as i32;
                        let m = self.message(&[tag::FILE_MESSAGE, idx])?;
                        file.message_type.push(m);
                    }
                    "enum" | "export" | "local" if self.decl_kind() == Some("enum") => {
                        let idx = file.enum_type.len() as i32;
                        let e = self.enumeration(&[tag::FILE_ENUM, idx])?;
                        file.enum_type.push(e);
                    }
                    "service" => {
                        let idx = file.service.len() as i32;
                        let s = self.service(&[tag::FILE_SERVICE, idx])?;
                        file.service.push(s);
                    }
                    "extend" => {
                        self.extend(
                            &[tag::FILE_EXTENSION],
                            &mut file.extension,
                            &mut file.message_type,
                            &[tag::FILE_MESSAGE],
                        )?;
                    }
                    "syntax" | "edition" => {
                        return Err(self.err_here(format!(
                            "the {w} statement must be the first statement of the file"
                        )));
                    }
                    _ => {
                        return Err(self.err_here(format!(
                            "expected a top-level statement (import, package, option, message, enum, service, extend), found {}",
                            self.describe()
                        )));
                    }
                },
                _ => {
                    return Err(self.err_here(format!(
                        "expected a top-level statement, found {}",
                        self.describe()
                    )));
                }
            }
        }
    }

    /// `message` or `enum` when a declaration of one starts here (`export`/`local` first
    /// in edition 2024).
    fn decl_kind(&self) -> Option<&'static str> {
        let kind = |t: &Tok| match t {
            Tok::Ident(w) if w == "message" => Some("message"),
            Tok::Ident(w) if w == "enum" => Some("enum"),
            _ => None,
        };
        match &self.tok().tok {
            Tok::Ident(w) if w == "export" || w == "local" => kind(&self.peek_tok(1).tok),
            t => kind(t),
        }
    }

    fn import(&mut self, file: &mut FileDescriptorProto) -> R<()> {
        let first = self.bump();
        let mut modifier = None;
        if let Tok::Ident(w) = &self.tok().tok
            && matches!(w.as_str(), "public" | "weak" | "option")
        {
            modifier = Some((w.clone(), self.bump()));
        }
        let (path, pt) = self.string("an import path")?;
        let path = self.utf8(path, pt, "the import path")?;
        if let Some(why) = bad_import_path(&path) {
            return Err(self.err_at(pt, why));
        }
        let last = self.expect_sym(';')?;
        let start = self.toks[first].start;
        if file.dependency.contains(&path) || self.option_dependency.contains(&path) {
            return Err(self.err_at(pt, format!("{path:?} is imported twice")));
        }
        match modifier {
            Some((w, mt)) if w == "option" => {
                if !matches!(self.syntax, Syntax::Editions(e) if e >= Edition::E2024) {
                    return Err(self.err_at(mt, "`import option` needs edition 2024 or later"));
                }
                let idx = self.option_dependency.len() as i32;
                self.option_dependency.push(path);
                self.loc_c(&[tag::FILE_OPTION_DEPENDENCY, idx], first, start, last);
                return Ok(());
            }
            _ => {}
        }
        if !self.option_dependency.is_empty() {
            return Err(self.err_at(first, "a plain import may not follow `import option`"));
        }
        let idx = file.dependency.len() as i32;
        file.dependency.push(path);
        self.loc_c(&[tag::FILE_DEPENDENCY, idx], first, start, last);
        match modifier {
            Some((w, mt)) if w == "public" => {
                let j = file.public_dependency.len() as i32;
                file.public_dependency.push(idx);
                self.loc_tok(&[tag::FILE_PUBLIC_DEPENDENCY, j], mt);
            }
            Some((_, mt)) => {
                let j = file.weak_dependency.len() as i32;
                file.weak_dependency.push(idx);
                self.loc_tok(&[tag::FILE_WEAK_DEPENDENCY, j], mt);
            }
            None => {}
        }
        Ok(())
    }

    /// `export`/`local` before `message`/`enum` (edition 2024).
    fn visibility(&mut self) -> R<Option<Visibility>> {
        let v = match &self.tok().tok {
            Tok::Ident(w) if w == "export" => Visibility::Export,
            Tok::Ident(w) if w == "local" => Visibility::Local,
            _ => return Ok(None),
        };
        if !matches!(self.syntax, Syntax::Editions(e) if e >= Edition::E2024) {
            return Err(self.err_here(format!(
                "`{}` needs edition 2024 or later",
                self.text(self.i)
            )));
        }
        self.bump();
        Ok(Some(v))
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_here(format!(
                "declarations nest more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    /// `[export|local] message|enum Name`: enters a nesting level, records the visibility,
    /// and returns the first token, the keyword, the name and the name's token.
    fn decl_header(
        &mut self,
        path: &[i32],
        keyword: &str,
        what: &str,
    ) -> R<(usize, usize, String, usize)> {
        self.enter()?;
        let first = self.i;
        if let Some(v) = self.visibility()? {
            self.visibility.push((path.to_vec(), v));
        }
        let kw = self.expect_word(keyword)?;
        let (name, nt) = self.ident(what)?;
        Ok((first, kw, name, nt))
    }

    // ---- messages ----

    fn message(&mut self, path: &[i32]) -> R<DescriptorProto> {
        let (first, kw, name, nt) = self.decl_header(path, "message", "a message name")?;
        let mut msg = DescriptorProto {
            name: Some(name),
            ..Default::default()
        };
        let start = self.toks[kw].start;
        let loc_index = self.locs.len();
        self.loc_tok(&with(path, &[tag::MSG_NAME]), nt);
        let open_brace = self.expect_sym('{')?;
        self.message_body(path, &mut msg)?;
        self.close_body(open_brace, loc_index, path, first, start)?;
        if self.syntax == Syntax::Proto3 {
            synthetic_oneofs(&mut msg);
        }
        self.depth -= 1;
        Ok(msg)
    }

    /// Closes a `{ … }` body: expects the `}` and records the declaration's location (before
    /// its parts' locations) with the trailing comment of its opening brace.
    fn close_body(
        &mut self,
        open_brace: usize,
        at: usize,
        path: &[i32],
        first: usize,
        start: Pos,
    ) -> R<()> {
        let last = self.expect_sym('}')?;
        self.trail = Some(open_brace);
        self.insert_loc_c(at, path, first, start, last);
        Ok(())
    }

    /// Inserts a statement's own location before the locations of its parts.
    fn insert_loc_c(&mut self, at: usize, path: &[i32], first: usize, start: Pos, last: usize) {
        self.loc_c(path, first, start, last);
        let l = self.locs.pop().expect("just pushed");
        self.locs.insert(at, l);
    }

    fn message_body(&mut self, path: &[i32], msg: &mut DescriptorProto) -> R<()> {
        loop {
            match &self.tok().tok {
                Tok::Sym('}') | Tok::Eof => return Ok(()),
                Tok::Sym(';') => {
                    self.bump();
                }
                Tok::Ident(w) => match w.as_str() {
                    "message" | "enum" | "export" | "local" if self.decl_kind().is_some() => {
                        if self.decl_kind() == Some("enum") {
                            let idx = msg.enum_type.len() as i32;
                            let e = self.enumeration(&with(path, &[tag::MSG_ENUM, idx]))?;
                            msg.enum_type.push(e);
                        } else {
                            let idx = msg.nested_type.len() as i32;
                            let m = self.message(&with(path, &[tag::MSG_NESTED, idx]))?;
                            msg.nested_type.push(m);
                        }
                    }
                    "extend" => {
                        self.extend(
                            &with(path, &[tag::MSG_EXTENSION]),
                            &mut msg.extension,
                            &mut msg.nested_type,
                            &with(path, &[tag::MSG_NESTED]),
                        )?;
                    }
                    "option" => {
                        let mut uo = msg.options.take().unwrap_or_default();
                        self.option_statement(
                            &with(path, &[tag::MSG_OPTIONS]),
                            "google.protobuf.MessageOptions",
                            &mut uo.uninterpreted_option,
                        )?;
                        msg.options = Some(uo);
                    }
                    "oneof" => self.oneof(path, msg)?,
                    "extensions" => self.extensions(path, msg)?,
                    "reserved" => self.reserved_message(path, msg)?,
                    _ => {
                        let idx = msg.field.len() as i32;
                        let mut nested = std::mem::take(&mut msg.nested_type);
                        let f = self.field(
                            &with(path, &[tag::MSG_FIELD, idx]),
                            FieldCtx::Message,
                            &mut nested,
                            &with(path, &[tag::MSG_NESTED]),
                        )?;
                        msg.nested_type = nested;
                        msg.field.push(f);
                    }
                },
                Tok::Sym('.') => {
                    // A field whose type is fully qualified (`.a.b.C c = 1;`).
                    let idx = msg.field.len() as i32;
                    let mut nested = std::mem::take(&mut msg.nested_type);
                    let f = self.field(
                        &with(path, &[tag::MSG_FIELD, idx]),
                        FieldCtx::Message,
                        &mut nested,
                        &with(path, &[tag::MSG_NESTED]),
                    )?;
                    msg.nested_type = nested;
                    msg.field.push(f);
                }
                _ => {
                    return Err(self.err_here(format!(
                        "expected a message element (field, message, enum, oneof, option, reserved, extensions, extend), found {}",
                        self.describe()
                    )));
                }
            }
        }
    }

    /// One field declaration (plain or map; groups are refused). Map entries are added to
    /// `nested`, the containing message's nested types.
    fn field(
        &mut self,
        path: &[i32],
        ctx: FieldCtx,
        nested: &mut Vec<DescriptorProto>,
        nested_path: &[i32],
    ) -> R<FieldDescriptorProto> {
        let first = self.i;
        let start = self.tok().start;
        let mut field = FieldDescriptorProto::default();
        let loc_index = self.locs.len();
        // Label.
        let mut label = None;
        if let Tok::Ident(w) = &self.tok().tok {
            let l = match w.as_str() {
                "optional" => Some(Label::Optional),
                "required" => Some(Label::Required),
                "repeated" => Some(Label::Repeated),
                _ => None,
            };
            if let Some(l) = l {
                // `optional.Foo x = 1;` would be a type name; a label is followed by a type.
                label = Some((l, self.bump()));
            }
        }
        if let Some((l, lt)) = label {
            if ctx == FieldCtx::Oneof {
                return Err(self.err_at(lt, "fields in a oneof must not have labels"));
            }
            if let Syntax::Editions(_) = self.syntax
                && l != Label::Repeated
            {
                return Err(self.err_at(
                        lt,
                        format!(
                            "label \"{}\" is not allowed in editions; use option features.field_presence instead",
                            self.text(lt)
                        ),
                    ));
            }
            if self.syntax == Syntax::Proto3 && l == Label::Required {
                return Err(self.err_at(lt, "required fields are not allowed in proto3"));
            }
            self.loc_tok(&with(path, &[tag::FIELD_LABEL]), lt);
        } else if self.syntax == Syntax::Proto2 && ctx != FieldCtx::Oneof && !self.is_ident("map") {
            return Err(self.err_here(
                "expected \"required\", \"optional\" or \"repeated\" (proto2 fields need a label)",
            ));
        }
        // Type.
        if self.is_ident("group") {
            if self.syntax != Syntax::Proto2 {
                return Err(self.err_here(match self.syntax {
                    Syntax::Editions(_) => "group syntax is not allowed in editions; use a message field with features.message_encoding = DELIMITED",
                    _ => "groups are not allowed in proto3; use a message field",
                }));
            }
            return self.group(path, first, start, label.map(|l| l.0), nested, nested_path);
        }
        let is_map = self.is_ident("map") && self.peek_tok(1).tok == Tok::Sym('<');
        if is_map {
            if label.is_some() {
                return Err(self.err_at(first, "map fields must not have labels"));
            }
            if ctx != FieldCtx::Message {
                return Err(self.err_here("map fields are not allowed here"));
            }
            let mt = self.bump();
            self.expect_sym('<')?;
            let key = self.field_type("a map key type")?;
            self.expect_sym(',')?;
            let value = self.field_type("a map value type")?;
            let close = self.expect_sym('>')?;
            self.loc_toks(&with(path, &[tag::FIELD_TYPE_NAME]), mt, close);
            let (fname, nt) = self.ident("a field name")?;
            let entry_name = map_entry_name(&fname);
            let mut entry = DescriptorProto {
                name: Some(entry_name.clone()),
                options: Some(MessageOptions {
                    map_entry: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            };
            for (n, (name, ty)) in [("key", key), ("value", value)].into_iter().enumerate() {
                let mut f = FieldDescriptorProto {
                    name: Some(name.into()),
                    number: Some(n as i32 + 1),
                    label: Some(Label::Optional as i32),
                    json_name: Some(name.into()),
                    ..Default::default()
                };
                set_type(&mut f, ty);
                entry.field.push(f);
            }
            {
                let k = &entry.field[0];
                if matches!(k.r#type, Some(t) if t == Type::Float as i32 || t == Type::Double as i32 || t == Type::Bytes as i32)
                    || k.type_name.is_some()
                {
                    return Err(
                        self.err_at(mt + 2, "map keys must be an integer, bool or string type")
                    );
                }
            }
            nested.push(entry);
            field.name = Some(fname);
            field.label = Some(Label::Repeated as i32);
            field.r#type = Some(Type::Message as i32);
            field.type_name = Some(entry_name);
            self.loc_tok(&with(path, &[tag::FIELD_NAME]), nt);
        } else {
            let (ty, tf, tl) = {
                let tf = self.i;
                let ty = self.field_type("a field type")?;
                (ty, tf, self.i - 1)
            };
            let tag_ = if ty.0.is_some() {
                tag::FIELD_TYPE
            } else {
                tag::FIELD_TYPE_NAME
            };
            self.loc_toks(&with(path, &[tag_]), tf, tl);
            set_type(&mut field, ty);
            let (fname, nt) = self.ident("a field name")?;
            field.name = Some(fname);
            self.loc_tok(&with(path, &[tag::FIELD_NAME]), nt);
            field.label = Some(label.map(|l| l.0).unwrap_or(Label::Optional) as i32);
            if self.syntax == Syntax::Proto3 && matches!(label, Some((Label::Optional, _))) {
                field.proto3_optional = Some(true);
            }
        }
        self.number_and_options(path, &mut field)?;
        let last = self.expect_sym(';')?;
        if field.json_name.is_none() {
            field.json_name = Some(json_name(field.name()));
        }
        self.insert_loc_c(loc_index, path, first, start, last);
        Ok(field)
    }

    /// `= number [options]` of a field or group.
    fn number_and_options(&mut self, path: &[i32], field: &mut FieldDescriptorProto) -> R<()> {
        self.expect_sym('=')?;
        let (number, numt) = self.int("a field number")?;
        if !(1..=MAX_FIELD_NUMBER as i64).contains(&number) {
            return Err(self.err_at(
                numt,
                format!("field number {number} is out of range (1 to {MAX_FIELD_NUMBER})"),
            ));
        }
        field.number = Some(number as i32);
        self.loc_toks(&with(path, &[tag::FIELD_NUMBER]), numt, self.i - 1);
        if self.is_sym('[') {
            let mut opts = FieldOptions::default();
            self.compact_options(path, field, &mut opts)?;
            if !opts.uninterpreted_option.is_empty() {
                field.options = Some(opts);
            }
        }
        Ok(())
    }

    /// A proto2 group: a field of type `TYPE_GROUP` named after the group in lower case, and
    /// a message of the group's name beside it (in `nested`, at `nested_path`). Both span the
    /// whole statement; the message carries the comments, as buf records them.
    fn group(
        &mut self,
        path: &[i32],
        first: usize,
        start: Pos,
        label: Option<Label>,
        nested: &mut Vec<DescriptorProto>,
        nested_path: &[i32],
    ) -> R<FieldDescriptorProto> {
        let gt = self.bump();
        self.loc_tok(&with(path, &[tag::FIELD_TYPE_NAME]), gt);
        let (gname, nt) = self.ident("a group name")?;
        if !gname.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(self.err_at(nt, "group names must start with a capital letter"));
        }
        let mpath = with(nested_path, &[nested.len() as i32]);
        self.loc_tok(&with(path, &[tag::FIELD_NAME]), nt);
        self.loc_tok(&with(&mpath, &[tag::MSG_NAME]), nt);
        let mut field = FieldDescriptorProto {
            name: Some(gname.to_ascii_lowercase()),
            label: Some(label.unwrap_or(Label::Optional) as i32),
            r#type: Some(Type::Group as i32),
            type_name: Some(gname.clone()),
            ..Default::default()
        };
        self.number_and_options(path, &mut field)?;
        let open = self.expect_sym('{')?;
        let mut msg = DescriptorProto {
            name: Some(gname),
            ..Default::default()
        };
        self.enter()?;
        self.message_body(&mpath, &mut msg)?;
        self.depth -= 1;
        let close = self.expect_sym('}')?;
        self.loc(path, start, self.toks[close].end);
        self.trail = Some(open);
        self.loc_c(&mpath, first, start, close);
        nested.push(msg);
        field.json_name = Some(json_name(field.name()));
        Ok(field)
    }

    /// A scalar type keyword or a (possibly qualified) message/enum name.
    fn field_type(&mut self, what: &str) -> R<(Option<Type>, Option<String>)> {
        if let Tok::Ident(w) = &self.tok().tok
            && let Some(t) = scalar(w)
            && self.peek_tok(1).tok != Tok::Sym('.')
        {
            self.bump();
            return Ok((Some(t), None));
        }
        let (name, _, _) = self.type_name(what)?;
        Ok((None, Some(name)))
    }

    /// `[name = value, ...]` after a field: pseudo-options `default` and `json_name` are set
    /// on the field; the rest become uninterpreted options.
    fn compact_options(
        &mut self,
        path: &[i32],
        field: &mut FieldDescriptorProto,
        opts: &mut FieldOptions,
    ) -> R<()> {
        let open = self.expect_sym('[')?;
        let bracket_index = self.locs.len();
        loop {
            let o = self.option_body()?;
            match o.simple.as_deref() {
                Some("default") => {
                    if field.default_value.is_some() {
                        return Err(self.err_at(o.value_tok, "the default value is set twice"));
                    }
                    if field.label == Some(Label::Repeated as i32) {
                        return Err(
                            self.err_at(o.value_tok, "repeated fields cannot have default values")
                        );
                    }
                    if self.syntax == Syntax::Proto3 {
                        return Err(
                            self.err_at(o.value_tok, "default values are not allowed in proto3")
                        );
                    }
                    field.default_value = Some(self.default_value(field, &o)?);
                    self.loc(&with(path, &[tag::FIELD_DEFAULT]), o.start, o.end);
                }
                Some("json_name") => {
                    let Value::Str(s) = o.value else {
                        return Err(self.err_at(o.value_tok, "json_name must be a string"));
                    };
                    if field.json_name.is_some() {
                        return Err(self.err_at(o.value_tok, "json_name is set twice"));
                    }
                    field.json_name = Some(self.utf8(s, o.value_tok, "json_name")?);
                    self.loc(&with(path, &[tag::FIELD_JSON_NAME]), o.start, o.end);
                }
                _ => {
                    let k = opts.uninterpreted_option.len() as i32;
                    self.loc(
                        &with(path, &[tag::FIELD_OPTIONS, tag::UNINTERPRETED, k]),
                        o.start,
                        o.end,
                    );
                    opts.uninterpreted_option.push(uninterpreted(o));
                }
            }
            if self.is_sym(',') {
                self.bump();
                continue;
            }
            break;
        }
        let close = self.expect_sym(']')?;
        if !opts.uninterpreted_option.is_empty() {
            let (s, e) = (self.toks[open].start, self.toks[close].end);
            self.locs.insert(
                bracket_index,
                Location {
                    path: with(path, &[tag::FIELD_OPTIONS]),
                    span: span(s, e),
                    ..Default::default()
                },
            );
        }
        Ok(())
    }

    fn default_value(&self, field: &FieldDescriptorProto, o: &OptionStmt) -> R<String> {
        let bad = |what: &str| {
            self.err_at(
                o.value_tok,
                format!("invalid default value: expected {what}"),
            )
        };
        let ty = field.r#type.and_then(|t| Type::try_from(t).ok());
        Ok(match (ty, &o.value) {
            (Some(Type::String), Value::Str(s)) => {
                self.utf8(s.clone(), o.value_tok, "the default string")?
            }
            (Some(Type::Bytes), Value::Str(s)) => c_escape(s),
            (Some(Type::String | Type::Bytes), _) => return Err(bad("a string")),
            (Some(Type::Bool), Value::Ident(s)) if s == "true" || s == "false" => s.clone(),
            (Some(Type::Bool), _) => return Err(bad("true or false")),
            (Some(Type::Float | Type::Double), v) => match v {
                Value::Int(i) => i.to_string(),
                Value::NegInt(i) => i.to_string(),
                Value::Double(d) => format_double(*d),
                Value::Ident(s) if s == "inf" || s == "nan" => s.clone(),
                _ => return Err(bad("a number")),
            },
            (Some(_), Value::Int(i)) => i.to_string(),
            (Some(_), Value::NegInt(i)) => i.to_string(),
            (Some(_), _) => return Err(bad("an integer")),
            (None, Value::Ident(s)) => s.clone(),
            (None, _) => return Err(bad("an enum value name")),
        })
    }

    /// `option name = value;` in a body: records the statement and the option.
    fn option_statement(
        &mut self,
        opts_path: &[i32],
        options_message: &'static str,
        out: &mut Vec<UninterpretedOption>,
    ) -> R<()> {
        let first = self.expect_word("option")?;
        let o = self.option_body()?;
        let last = self.expect_sym(';')?;
        let start = self.toks[first].start;
        let k = out.len() as i32;
        // The statement's comments go with the option itself, as buf records them.
        self.loc(opts_path, start, self.toks[last].end);
        let option_path = with(opts_path, &[tag::UNINTERPRETED, k]);
        if matches!(o.value, Value::Aggregate(_)) {
            // A message literal: buf spans the option itself over `name = { … }`, or over
            // the statement when the option is an element of a repeated field, which only
            // the linker knows: both are kept for it.
            self.loc_c(&option_path, first, o.start, last);
            let l = self.locs.last_mut().expect("just pushed");
            l.span = span(o.start, o.end);
            self.aggregate_options.push(AggregateOption {
                options_message,
                options_path: opts_path.to_vec(),
                name_value_span: span(o.start, o.end),
                statement_span: span(start, self.toks[last].end),
            });
        } else {
            self.loc_c(&option_path, first, start, last);
        }
        out.push(uninterpreted(o));
        Ok(())
    }

    /// `name = value` of an option.
    fn option_body(&mut self) -> R<OptionStmt> {
        let start = self.tok().start;
        let mut name = Vec::new();
        let mut simple = None;
        loop {
            if self.is_sym('(') {
                self.bump();
                let (n, _, _) = self.type_name("an extension name")?;
                self.expect_sym(')')?;
                name.push(NamePart {
                    name_part: n,
                    is_extension: true,
                });
            } else {
                let (n, _) = self.ident("an option name")?;
                name.push(NamePart {
                    name_part: n,
                    is_extension: false,
                });
            }
            if self.is_sym('.') {
                self.bump();
                continue;
            }
            break;
        }
        if name.len() == 1 && !name[0].is_extension {
            simple = Some(name[0].name_part.clone());
        }
        self.expect_sym('=')?;
        let value_tok = self.i;
        let value = self.option_value()?;
        Ok(OptionStmt {
            name,
            simple,
            value,
            start,
            end: self.prev_end(),
            value_tok,
        })
    }

    fn option_value(&mut self) -> R<Value> {
        match self.tok().tok.clone() {
            Tok::Str(_) => Ok(Value::Str(self.string("a string")?.0)),
            Tok::Int(Some(v)) => {
                self.bump();
                Ok(Value::Int(v))
            }
            Tok::Int(None) => Err(self.err_here("integer is out of range")),
            Tok::Float(f) => {
                self.bump();
                Ok(Value::Double(f))
            }
            Tok::Ident(w) => {
                self.bump();
                Ok(Value::Ident(w))
            }
            Tok::Sym('-') => {
                self.bump();
                match self.tok().tok.clone() {
                    Tok::Int(Some(v)) if v <= 1u64 << 63 => {
                        self.bump();
                        Ok(Value::NegInt((v as i128).wrapping_neg() as i64))
                    }
                    Tok::Int(_) => Err(self.err_here("integer is out of range")),
                    Tok::Float(f) => {
                        self.bump();
                        Ok(Value::Double(-f))
                    }
                    Tok::Ident(w) if w == "inf" || w == "nan" => {
                        self.bump();
                        Ok(Value::Double(if w == "inf" {
                            f64::NEG_INFINITY
                        } else {
                            f64::NAN
                        }))
                    }
                    _ => Err(self.err_here(format!(
                        "expected a number after '-', found {}",
                        self.describe()
                    ))),
                }
            }
            Tok::Sym('{') => {
                self.bump();
                let mut depth = 1;
                let mut parts: Vec<String> = Vec::new();
                loop {
                    match &self.tok().tok {
                        Tok::Eof => {
                            return Err(self.err_here("unterminated aggregate value (missing '}')"));
                        }
                        Tok::Sym('{') => depth += 1,
                        Tok::Sym('}') => {
                            depth -= 1;
                            if depth == 0 {
                                self.bump();
                                break;
                            }
                        }
                        _ => {}
                    }
                    parts.push(self.text(self.i).to_string());
                    self.bump();
                }
                Ok(Value::Aggregate(parts.join(" ")))
            }
            _ => Err(self.err_here(format!(
                "expected an option value, found {}",
                self.describe()
            ))),
        }
    }

    fn oneof(&mut self, path: &[i32], msg: &mut DescriptorProto) -> R<()> {
        let first = self.bump();
        let idx = msg.oneof_decl.len() as i32;
        let opath = with(path, &[tag::MSG_ONEOF, idx]);
        let (name, nt) = self.ident("a oneof name")?;
        let loc_index = self.locs.len();
        self.loc_tok(&with(&opath, &[tag::ONEOF_NAME]), nt);
        let mut oneof = OneofDescriptorProto {
            name: Some(name),
            ..Default::default()
        };
        let open_brace = self.expect_sym('{')?;
        let mut count = 0;
        loop {
            match &self.tok().tok {
                Tok::Sym('}') => break,
                Tok::Sym(';') => {
                    self.bump();
                }
                Tok::Ident(w) if w == "option" => {
                    let mut o = oneof.options.take().unwrap_or_default();
                    self.option_statement(
                        &with(&opath, &[tag::ONEOF_OPTIONS]),
                        "google.protobuf.OneofOptions",
                        &mut o.uninterpreted_option,
                    )?;
                    oneof.options = Some(o);
                }
                Tok::Eof => return Err(self.err_here("expected '}' to close the oneof")),
                _ => {
                    let fidx = msg.field.len() as i32;
                    let mut nested = std::mem::take(&mut msg.nested_type);
                    let mut f = self.field(
                        &with(path, &[tag::MSG_FIELD, fidx]),
                        FieldCtx::Oneof,
                        &mut nested,
                        &with(path, &[tag::MSG_NESTED]),
                    )?;
                    msg.nested_type = nested;
                    f.oneof_index = Some(idx);
                    msg.field.push(f);
                    count += 1;
                }
            }
        }
        if count == 0 {
            return Err(self.err_at(first, "a oneof must contain at least one field"));
        }
        let start = self.toks[first].start;
        self.close_body(open_brace, loc_index, &opath, first, start)?;
        msg.oneof_decl.push(oneof);
        Ok(())
    }

    /// `extensions 100 to 199, 500 [opts];`
    fn extensions(&mut self, path: &[i32], msg: &mut DescriptorProto) -> R<()> {
        let first = self.bump();
        let ranges = self.ranges(MAX_FIELD_NUMBER, "an extension number")?;
        let mut opts = ExtensionRangeOptions::default();
        let mut opt_locs: Vec<(Pos, Pos)> = Vec::new();
        let mut bracket = None;
        if self.is_sym('[') {
            let open = self.bump();
            loop {
                let o = self.option_body()?;
                opt_locs.push((o.start, o.end));
                opts.uninterpreted_option.push(uninterpreted(o));
                if self.is_sym(',') {
                    self.bump();
                    continue;
                }
                break;
            }
            let close = self.expect_sym(']')?;
            bracket = Some((self.toks[open].start, self.toks[close].end));
        }
        let last = self.expect_sym(';')?;
        let start = self.toks[first].start;
        let base = msg.extension_range.len() as i32;
        for _ in &ranges {
            self.loc_c(&with(path, &[tag::MSG_EXTENSION_RANGE]), first, start, last);
        }
        for (k, r) in ranges.iter().enumerate() {
            let rp = with(path, &[tag::MSG_EXTENSION_RANGE, base + k as i32]);
            self.range_locs(&rp, r);
        }
        for (k, r) in ranges.iter().enumerate() {
            let rp = with(path, &[tag::MSG_EXTENSION_RANGE, base + k as i32]);
            if let Some((s, e)) = bracket {
                self.loc(&with(&rp, &[tag::EXT_RANGE_OPTIONS]), s, e);
            }
            msg.extension_range.push(descriptor_proto::ExtensionRange {
                start: Some(r.start as i32),
                end: Some(r.end as i32 + 1),
                options: bracket.map(|_| opts.clone()),
            });
        }
        for k in 0..ranges.len() {
            let rp = with(path, &[tag::MSG_EXTENSION_RANGE, base + k as i32]);
            for (j, (s, e)) in opt_locs.iter().enumerate() {
                self.loc(
                    &with(&rp, &[tag::EXT_RANGE_OPTIONS, tag::UNINTERPRETED, j as i32]),
                    *s,
                    *e,
                );
            }
        }
        Ok(())
    }

    fn range_locs(&mut self, rp: &[i32], r: &Range) {
        self.loc_toks(&with(rp, &[1]), r.first, r.start_last);
        self.loc_toks(rp, r.first, r.last);
        self.loc_toks(&with(rp, &[2]), r.end_first, r.last);
    }

    /// `1, 5 to 10, 20 to max` (inclusive ends).
    fn ranges(&mut self, max: i32, what: &str) -> R<Vec<Range>> {
        let mut out = Vec::new();
        loop {
            let (start, first) = self.int(what)?;
            let start_last = self.i - 1;
            let mut end = start;
            let mut end_first = first;
            if self.is_ident("to") {
                self.bump();
                end_first = self.i;
                if self.is_ident("max") {
                    self.bump();
                    end = max as i64;
                } else {
                    end = self.int(what)?.0;
                }
            }
            let last = self.i - 1;
            if end < start {
                return Err(self.err_at(
                    first,
                    format!("range end {end} is before its start {start}"),
                ));
            }
            out.push(Range {
                start,
                end,
                first,
                start_last,
                end_first,
                last,
            });
            if self.is_sym(',') {
                self.bump();
                continue;
            }
            return Ok(out);
        }
    }

    fn reserved_message(&mut self, path: &[i32], msg: &mut DescriptorProto) -> R<()> {
        let first = self.bump();
        if matches!(self.tok().tok, Tok::Int(_) | Tok::Sym('-')) {
            let ranges = self.ranges(MAX_FIELD_NUMBER, "a field number")?;
            let last = self.expect_sym(';')?;
            let start = self.toks[first].start;
            self.loc_c(&with(path, &[tag::MSG_RESERVED_RANGE]), first, start, last);
            for r in ranges {
                let k = msg.reserved_range.len() as i32;
                self.range_locs(&with(path, &[tag::MSG_RESERVED_RANGE, k]), &r);
                if r.start < 1 || r.end > MAX_FIELD_NUMBER as i64 {
                    return Err(self.err_at(
                        r.first,
                        "reserved field numbers must be between 1 and 536870911",
                    ));
                }
                msg.reserved_range.push(descriptor_proto::ReservedRange {
                    start: Some(r.start as i32),
                    end: Some(r.end as i32 + 1),
                });
            }
        } else {
            let names = self.reserved_names()?;
            let last = self.expect_sym(';')?;
            let start = self.toks[first].start;
            self.loc_c(&with(path, &[tag::MSG_RESERVED_NAME]), first, start, last);
            for (n, t) in names {
                let k = msg.reserved_name.len() as i32;
                self.loc_toks(&with(path, &[tag::MSG_RESERVED_NAME, k]), t.0, t.1);
                msg.reserved_name.push(n);
            }
        }
        Ok(())
    }

    /// Reserved names: identifiers in editions, string literals before.
    fn reserved_names(&mut self) -> R<Vec<(String, (usize, usize))>> {
        let mut out = Vec::new();
        loop {
            let t = self.i;
            match (&self.tok().tok, self.syntax) {
                (Tok::Ident(_), Syntax::Editions(_)) => {
                    let (n, t) = self.ident("a name")?;
                    out.push((n, (t, t)));
                }
                (Tok::Str(_), Syntax::Editions(_)) => {
                    return Err(self.err_here(
                        "reserved names must be identifiers in editions, not string literals",
                    ));
                }
                (Tok::Str(_), _) => {
                    let (s, last) = self.string("a name")?;
                    let s = self.utf8(s, t, "the reserved name")?;
                    if !is_identifier(&s) {
                        return Err(self
                            .err_at(t, format!("reserved name {s:?} is not a valid identifier")));
                    }
                    out.push((s, (t, last)));
                }
                (Tok::Ident(_), _) => {
                    return Err(
                        self.err_here("reserved names must be string literals before editions")
                    );
                }
                _ => {
                    return Err(self.err_here(format!(
                        "expected a reserved name or number, found {}",
                        self.describe()
                    )));
                }
            }
            if self.is_sym(',') {
                self.bump();
                continue;
            }
            return Ok(out);
        }
    }

    // ---- extend ----

    /// `extend Foo { fields }`: fields go to `out` under `list_path` (`[7]` or `[.., 6]`).
    fn extend(
        &mut self,
        list_path: &[i32],
        out: &mut Vec<FieldDescriptorProto>,
        nested: &mut Vec<DescriptorProto>,
        nested_path: &[i32],
    ) -> R<()> {
        let first = self.bump();
        let (extendee, et, el) = self.type_name("a message name to extend")?;
        let open_brace = self.expect_sym('{')?;
        let loc_index = self.locs.len();
        let mut count = 0;
        loop {
            match &self.tok().tok {
                Tok::Sym('}') => break,
                Tok::Sym(';') => {
                    self.bump();
                }
                Tok::Eof => return Err(self.err_here("expected '}' to close the extend block")),
                _ => {
                    let idx = out.len() as i32;
                    let fpath = with(list_path, &[idx]);
                    self.loc_toks(&with(&fpath, &[tag::FIELD_EXTENDEE]), et, el);
                    let mut f = self.field(&fpath, FieldCtx::Extend, nested, nested_path)?;
                    f.extendee = Some(extendee.clone());
                    out.push(f);
                    count += 1;
                }
            }
        }
        if count == 0 {
            return Err(self.err_at(first, "an extend block must contain at least one field"));
        }
        let start = self.toks[first].start;
        self.close_body(open_brace, loc_index, list_path, first, start)?;
        Ok(())
    }

    // ---- enums ----

    fn enumeration(&mut self, path: &[i32]) -> R<EnumDescriptorProto> {
        let (first, kw, name, nt) = self.decl_header(path, "enum", "an enum name")?;
        let loc_index = self.locs.len();
        self.loc_tok(&with(path, &[tag::ENUM_NAME]), nt);
        let mut e = EnumDescriptorProto {
            name: Some(name),
            ..Default::default()
        };
        let open_brace = self.expect_sym('{')?;
        loop {
            let vfirst = self.i;
            match &self.tok().tok {
                Tok::Sym('}') => break,
                Tok::Sym(';') => {
                    self.bump();
                }
                Tok::Eof => return Err(self.err_here("expected '}' to close the enum")),
                Tok::Ident(w) if w == "option" && self.peek_tok(1).tok != Tok::Sym('=') => {
                    let mut o = e.options.take().unwrap_or_default();
                    self.option_statement(
                        &with(path, &[tag::ENUM_OPTIONS]),
                        "google.protobuf.EnumOptions",
                        &mut o.uninterpreted_option,
                    )?;
                    e.options = Some(o);
                }
                Tok::Ident(w) if w == "reserved" && self.peek_tok(1).tok != Tok::Sym('=') => {
                    self.bump();
                    if matches!(self.tok().tok, Tok::Int(_) | Tok::Sym('-')) {
                        let ranges = self.ranges(i32::MAX, "an enum number")?;
                        let last = self.expect_sym(';')?;
                        let start = self.toks[vfirst].start;
                        self.loc_c(
                            &with(path, &[tag::ENUM_RESERVED_RANGE]),
                            vfirst,
                            start,
                            last,
                        );
                        for r in ranges {
                            let k = e.reserved_range.len() as i32;
                            self.range_locs(&with(path, &[tag::ENUM_RESERVED_RANGE, k]), &r);
                            if r.start < i32::MIN as i64 || r.end > i32::MAX as i64 {
                                return Err(
                                    self.err_at(r.first, "enum numbers must fit in 32 bits")
                                );
                            }
                            e.reserved_range
                                .push(enum_descriptor_proto::EnumReservedRange {
                                    start: Some(r.start as i32),
                                    end: Some(r.end as i32),
                                });
                        }
                    } else {
                        let names = self.reserved_names()?;
                        let last = self.expect_sym(';')?;
                        let start = self.toks[vfirst].start;
                        self.loc_c(&with(path, &[tag::ENUM_RESERVED_NAME]), vfirst, start, last);
                        for (n, t) in names {
                            let k = e.reserved_name.len() as i32;
                            self.loc_toks(&with(path, &[tag::ENUM_RESERVED_NAME, k]), t.0, t.1);
                            e.reserved_name.push(n);
                        }
                    }
                }
                Tok::Ident(_) => {
                    let idx = e.value.len() as i32;
                    let vpath = with(path, &[tag::ENUM_VALUE, idx]);
                    let (vname, vt) = self.ident("an enum value name")?;
                    let vloc = self.locs.len();
                    self.loc_tok(&with(&vpath, &[tag::VALUE_NAME]), vt);
                    self.expect_sym('=')?;
                    let (num, numt) = self.int("an enum value number")?;
                    if num < i32::MIN as i64 || num > i32::MAX as i64 {
                        return Err(self.err_at(numt, "enum numbers must fit in 32 bits"));
                    }
                    self.loc_toks(&with(&vpath, &[tag::VALUE_NUMBER]), numt, self.i - 1);
                    let mut v = EnumValueDescriptorProto {
                        name: Some(vname),
                        number: Some(num as i32),
                        options: None,
                    };
                    if self.is_sym('[') {
                        let open = self.bump();
                        let bracket_index = self.locs.len();
                        let mut o = EnumValueOptions::default();
                        loop {
                            let ob = self.option_body()?;
                            let k = o.uninterpreted_option.len() as i32;
                            self.loc(
                                &with(&vpath, &[tag::VALUE_OPTIONS, tag::UNINTERPRETED, k]),
                                ob.start,
                                ob.end,
                            );
                            o.uninterpreted_option.push(uninterpreted(ob));
                            if self.is_sym(',') {
                                self.bump();
                                continue;
                            }
                            break;
                        }
                        let close = self.expect_sym(']')?;
                        let (s, en) = (self.toks[open].start, self.toks[close].end);
                        self.locs.insert(
                            bracket_index,
                            Location {
                                path: with(&vpath, &[tag::VALUE_OPTIONS]),
                                span: span(s, en),
                                ..Default::default()
                            },
                        );
                        v.options = Some(o);
                    }
                    let last = self.expect_sym(';')?;
                    let start = self.toks[vfirst].start;
                    self.insert_loc_c(vloc, &vpath, vfirst, start, last);
                    e.value.push(v);
                }
                _ => {
                    return Err(self.err_here(format!(
                        "expected an enum value, option or reserved, found {}",
                        self.describe()
                    )));
                }
            }
        }
        let start = self.toks[kw].start;
        self.close_body(open_brace, loc_index, path, first, start)?;
        self.depth -= 1;
        Ok(e)
    }

    // ---- services ----

    fn service(&mut self, path: &[i32]) -> R<ServiceDescriptorProto> {
        let first = self.bump();
        let (name, nt) = self.ident("a service name")?;
        let loc_index = self.locs.len();
        self.loc_tok(&with(path, &[tag::SERVICE_NAME]), nt);
        let mut s = ServiceDescriptorProto {
            name: Some(name),
            ..Default::default()
        };
        let open_brace = self.expect_sym('{')?;
        loop {
            match &self.tok().tok {
                Tok::Sym('}') => break,
                Tok::Sym(';') => {
                    self.bump();
                }
                Tok::Eof => return Err(self.err_here("expected '}' to close the service")),
                Tok::Ident(w) if w == "option" => {
                    let mut o = s.options.take().unwrap_or_default();
                    self.option_statement(
                        &with(path, &[tag::SERVICE_OPTIONS]),
                        "google.protobuf.ServiceOptions",
                        &mut o.uninterpreted_option,
                    )?;
                    s.options = Some(o);
                }
                Tok::Ident(w) if w == "rpc" => {
                    let idx = s.method.len() as i32;
                    let m = self.method(&with(path, &[tag::SERVICE_METHOD, idx]))?;
                    s.method.push(m);
                }
                _ => {
                    return Err(self.err_here(format!(
                        "expected \"rpc\" or \"option\" in a service, found {}",
                        self.describe()
                    )));
                }
            }
        }
        let start = self.toks[first].start;
        self.close_body(open_brace, loc_index, path, first, start)?;
        Ok(s)
    }

    fn method(&mut self, path: &[i32]) -> R<MethodDescriptorProto> {
        let first = self.bump();
        let loc_index = self.locs.len();
        let (name, nt) = self.ident("a method name")?;
        self.loc_tok(&with(path, &[tag::METHOD_NAME]), nt);
        let mut m = MethodDescriptorProto {
            name: Some(name),
            ..Default::default()
        };
        for (stream_tag, type_tag) in [
            (tag::METHOD_CLIENT_STREAMING, tag::METHOD_INPUT),
            (tag::METHOD_SERVER_STREAMING, tag::METHOD_OUTPUT),
        ] {
            if type_tag == tag::METHOD_OUTPUT {
                self.expect_word("returns")?;
            }
            self.expect_sym('(')?;
            let streaming = self.is_ident("stream")
                && !matches!(self.peek_tok(1).tok, Tok::Sym(')') | Tok::Sym('.'));
            if streaming {
                let st = self.bump();
                self.loc_tok(&with(path, &[stream_tag]), st);
            }
            let (ty, tf, tl) = self.type_name("a message type")?;
            self.loc_toks(&with(path, &[type_tag]), tf, tl);
            self.expect_sym(')')?;
            if type_tag == tag::METHOD_INPUT {
                m.input_type = Some(ty);
                m.client_streaming = streaming.then_some(true);
            } else {
                m.output_type = Some(ty);
                m.server_streaming = streaming.then_some(true);
            }
        }
        let mut open_brace = None;
        let last = if self.is_sym('{') {
            open_brace = Some(self.bump());
            // A body, even an empty one, gives the method (empty) options, as protoc does.
            m.options.get_or_insert_with(MethodOptions::default);
            loop {
                match &self.tok().tok {
                    Tok::Sym('}') => break,
                    Tok::Sym(';') => {
                        self.bump();
                    }
                    Tok::Ident(w) if w == "option" => {
                        let mut o = m.options.take().unwrap_or_default();
                        self.option_statement(
                            &with(path, &[tag::METHOD_OPTIONS]),
                            "google.protobuf.MethodOptions",
                            &mut o.uninterpreted_option,
                        )?;
                        m.options = Some(o);
                    }
                    _ => {
                        return Err(self.err_here(format!(
                            "expected \"option\" or '}}' in a method body, found {}",
                            self.describe()
                        )));
                    }
                }
            }
            let close = self.bump();
            if self.is_sym(';') { self.bump() } else { close }
        } else {
            self.expect_sym(';')?
        };
        let start = self.toks[first].start;
        self.trail = open_brace;
        self.insert_loc_c(loc_index, path, first, start, last);
        Ok(m)
    }
}

/// proto3 `optional` fields each get a oneof of their own, after the real ones, named
/// `_field` (prefixed with `X` until the name is free), as protoc declares them.
fn synthetic_oneofs(msg: &mut DescriptorProto) {
    for i in 0..msg.field.len() {
        if !msg.field[i].proto3_optional() {
            continue;
        }
        let taken = |n: &str, m: &DescriptorProto| {
            m.field.iter().any(|f| f.name() == n)
                || m.oneof_decl.iter().any(|o| o.name() == n)
                || m.nested_type.iter().any(|t| t.name() == n)
                || m.enum_type.iter().any(|e| e.name() == n)
        };
        let mut name = format!("_{}", msg.field[i].name());
        while taken(&name, msg) {
            name.insert(0, 'X');
        }
        msg.field[i].oneof_index = Some(msg.oneof_decl.len() as i32);
        msg.oneof_decl.push(OneofDescriptorProto {
            name: Some(name),
            ..Default::default()
        });
    }
}

struct Range {
    start: i64,
    end: i64,
    first: usize,
    start_last: usize,
    end_first: usize,
    last: usize,
}

fn with(path: &[i32], more: &[i32]) -> Vec<i32> {
    let mut p = Vec::with_capacity(path.len() + more.len());
    p.extend_from_slice(path);
    p.extend_from_slice(more);
    p
}

fn uninterpreted(o: OptionStmt) -> UninterpretedOption {
    let mut u = UninterpretedOption {
        name: o.name,
        ..Default::default()
    };
    match o.value {
        Value::Ident(s) => u.identifier_value = Some(s),
        Value::Int(v) => u.positive_int_value = Some(v),
        Value::NegInt(v) => u.negative_int_value = Some(v),
        Value::Double(d) => u.double_value = Some(d),
        Value::Str(s) => u.string_value = Some(s),
        Value::Aggregate(s) => u.aggregate_value = Some(s),
    }
    u
}

/// Why an import path is refused (as buf words it), if it is.
fn bad_import_path(path: &str) -> Option<&'static str> {
    if path.contains('\\') {
        return Some("import path cannot use `\\` as a path separator");
    }
    if path.starts_with('/') {
        return Some("import path must be relative");
    }
    if path.split('/').any(|c| c == "..") {
        return Some("import path must not refer to parent directory");
    }
    if path.is_empty() || path.split('/').any(|c| c.is_empty() || c == ".") {
        return Some("import path must not contain `.`, `..`, or repeated separators");
    }
    None
}

fn scalar(word: &str) -> Option<Type> {
    Some(match word {
        "double" => Type::Double,
        "float" => Type::Float,
        "int32" => Type::Int32,
        "int64" => Type::Int64,
        "uint32" => Type::Uint32,
        "uint64" => Type::Uint64,
        "sint32" => Type::Sint32,
        "sint64" => Type::Sint64,
        "fixed32" => Type::Fixed32,
        "fixed64" => Type::Fixed64,
        "sfixed32" => Type::Sfixed32,
        "sfixed64" => Type::Sfixed64,
        "bool" => Type::Bool,
        "string" => Type::String,
        "bytes" => Type::Bytes,
        _ => return None,
    })
}

fn set_type(f: &mut FieldDescriptorProto, (ty, name): (Option<Type>, Option<String>)) {
    f.r#type = ty.map(|t| t as i32);
    f.type_name = name;
}

/// protoc's JSON name: underscores dropped, the letter after each one upper-cased.
pub fn json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `foo_bar` → `FooBarEntry`, as protoc names map entry messages.
fn map_entry_name(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 5);
    let mut upper = true;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out.push_str("Entry");
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// protoc's `CEscape` for bytes defaults.
fn c_escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out
}

fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    let s = format!("{d}");
    if s.len() > 15 { format!("{d:e}") } else { s }
}
