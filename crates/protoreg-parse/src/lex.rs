//! The tokenizer: tokens with 0-based line/column spans (tab stops of 4, as buf counts them;
//! columns in characters) and the comments that belong to them.

use crate::ParseError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// A non-negative integer literal; `None` when it does not fit in 64 bits.
    Int(Option<u64>),
    Float(f64),
    /// A string literal's decoded bytes (adjacent literals are separate tokens).
    Str(Vec<u8>),
    Sym(char),
    Eof,
}

/// A position: 0-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub line: i32,
    pub col: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: Pos,
    pub end: Pos,
    /// Byte offsets of the token in the source.
    pub offset: usize,
    pub len: usize,
    pub leading: Option<String>,
    pub trailing: Option<String>,
    pub detached: Vec<String>,
}

/// What lies between tokens, in order: comments and newlines (other spaces do not matter).
enum Item {
    Token(usize),
    /// A comment: its text (without `//`, or without `/*` `*/` and each later line's
    /// indentation and leading `*`), whether it is a block comment, byte offsets.
    Comment {
        text: String,
        block: bool,
        start: usize,
        end: usize,
    },
    Newline(usize),
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    i: usize,
    line: i32,
    col: i32,
}

const TAB_STOP: i32 = 4;

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.i).copied()
    }
    fn peek_at(&self, n: usize) -> Option<u8> {
        self.bytes.get(self.i + n).copied()
    }
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }
    /// Advances one character, keeping line and column.
    fn bump(&mut self) {
        let Some(c) = self.src[self.i..].chars().next() else {
            return;
        };
        self.i += c.len_utf8();
        match c {
            '\n' => {
                self.line += 1;
                self.col = 0;
            }
            '\t' => self.col += TAB_STOP - self.col % TAB_STOP,
            _ => self.col += 1,
        }
    }
    fn err(&self, offset: usize, len: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.src, offset, len, message)
    }
}

/// Splits a file into tokens (ending with `Eof`) and attributes comments.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer {
        src,
        bytes: src.as_bytes(),
        i: 0,
        line: 0,
        col: 0,
    };
    if src.starts_with('\u{feff}') {
        lx.i = 3; // a UTF-8 byte-order mark, as editors on Windows write it
    }
    let mut tokens: Vec<Token> = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    loop {
        // Whitespace and comments.
        match lx.peek() {
            Some(b'\n') => {
                items.push(Item::Newline(lx.i));
                lx.bump();
                continue;
            }
            Some(b' ' | b'\t' | b'\r' | b'\x0c' | b'\x0b') => {
                lx.bump();
                continue;
            }
            Some(b'/') if lx.peek_at(1) == Some(b'/') => {
                let start = lx.i;
                lx.bump();
                lx.bump();
                let s = lx.i;
                while let Some(c) = lx.peek() {
                    if c == b'\n' {
                        break;
                    }
                    lx.bump();
                }
                items.push(Item::Comment {
                    text: src[s..lx.i].to_string(),
                    block: false,
                    start,
                    end: lx.i,
                });
                continue;
            }
            Some(b'/') if lx.peek_at(1) == Some(b'*') => {
                let start = lx.i;
                lx.bump();
                lx.bump();
                let mut text = String::new();
                loop {
                    match lx.peek() {
                        None => return Err(lx.err(start, 2, "block comment never terminates")),
                        Some(b'*') if lx.peek_at(1) == Some(b'/') => {
                            lx.bump();
                            lx.bump();
                            break;
                        }
                        Some(b'\n') => {
                            text.push('\n');
                            lx.bump();
                            // Drop the next line's indentation and a leading `*`.
                            while matches!(
                                lx.peek(),
                                Some(b' ' | b'\t' | b'\r' | b'\x0c' | b'\x0b')
                            ) {
                                lx.bump();
                            }
                            if lx.peek() == Some(b'*') && lx.peek_at(1) != Some(b'/') {
                                lx.bump();
                            }
                        }
                        Some(_) => {
                            let c = src[lx.i..].chars().next().unwrap_or(' ');
                            text.push(c);
                            lx.bump();
                        }
                    }
                }
                items.push(Item::Comment {
                    text,
                    block: true,
                    start,
                    end: lx.i,
                });
                continue;
            }
            _ => {}
        }
        let start = lx.pos();
        let offset = lx.i;
        let tok = match lx.peek() {
            None => Tok::Eof,
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                while matches!(lx.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
                    lx.bump();
                }
                Tok::Ident(src[offset..lx.i].to_string())
            }
            Some(c) if c.is_ascii_digit() || (c == b'.' && next_is_digit(&lx)) => number(&mut lx)?,
            Some(q @ (b'"' | b'\'')) => string(&mut lx, q)?,
            Some(c) if c.is_ascii() => {
                lx.bump();
                Tok::Sym(c as char)
            }
            Some(_) => {
                let c = src[offset..].chars().next().unwrap_or('?');
                return Err(lx.err(offset, c.len_utf8(), format!("invalid character {c:?}")));
            }
        };
        let end = lx.pos();
        let is_eof = tok == Tok::Eof;
        let token = Token {
            tok,
            start,
            end,
            offset,
            len: lx.i - offset,
            leading: None,
            trailing: None,
            detached: Vec::new(),
        };
        if is_eof {
            tokens.push(token);
            attribute(src, &mut tokens, &items);
            return Ok(tokens);
        }
        items.push(Item::Token(tokens.len()));
        tokens.push(token);
    }
}

fn next_is_digit(lx: &Lexer) -> bool {
    matches!(lx.peek_at(1), Some(c) if c.is_ascii_digit())
}

/// A run of comments (and the newlines inside it) that is attributed as one.
type Paragraph = Vec<usize>; // indices into `items`

/// Attributes comments to tokens the way buf 1.75 does. Comments group into paragraphs:
/// consecutive line comments, with a blank line or a block comment closing a paragraph. At
/// each token, the first paragraph since the previous token becomes that token's trailing
/// comment when it starts on the previous token's line, or on the next line and something
/// separates it from this token (another paragraph, a blank line, or this token closing a
/// body); the paragraph right before this token (one newline apart) leads it; the rest,
/// from the first one that stands apart from its neighbours by blank lines, are detached.
fn attribute(src: &str, tokens: &mut [Token], items: &[Item]) {
    let bytes = src.as_bytes();
    let tspans: Vec<(usize, usize)> = tokens
        .iter()
        .map(|t| (t.offset, t.offset + t.len))
        .collect();
    let span = |i: usize| -> (usize, usize) {
        match &items[i] {
            Item::Token(t) => tspans[*t],
            Item::Comment { start, end, .. } => (*start, *end),
            Item::Newline(o) => (*o, *o + 1),
        }
    };
    // Newlines from the last byte of `a` to the start of `b`, at most 2.
    let newlines = |a: (usize, usize), b: (usize, usize)| -> usize {
        let from = a.1.saturating_sub(1).min(b.0);
        bytes[from..b.0]
            .iter()
            .filter(|&&c| c == b'\n')
            .take(2)
            .count()
    };
    let is_comment = |i: usize| matches!(items[i], Item::Comment { .. });
    let ends_in_newline = |i: usize| matches!(items[i], Item::Newline(_));
    let text_of = |p: &Paragraph| -> String {
        let mut out = String::new();
        for &i in p {
            match &items[i] {
                Item::Comment { text, .. } => out.push_str(text),
                Item::Newline(_) => out.push('\n'),
                Item::Token(_) => {}
            }
        }
        out
    };
    let mut current: Paragraph = Vec::new();
    let mut tracked: Vec<Paragraph> = Vec::new();
    let mut prev: Option<usize> = None; // item index of the previous token
    let mut first_on_same_line = false;
    let close = |current: &mut Paragraph, tracked: &mut Vec<Paragraph>| {
        if current.iter().any(|&i| is_comment(i)) {
            tracked.push(std::mem::take(current));
        } else {
            current.clear();
        }
    };
    // The EOF token closes the stream like any other token.
    let eof_item = items.len();
    for idx in 0..=items.len() {
        let item_span = if idx == eof_item {
            let t = tspans[tspans.len() - 1];
            (t.0, t.0)
        } else {
            span(idx)
        };
        match items.get(idx) {
            Some(Item::Comment { block: true, .. }) => {
                close(&mut current, &mut tracked);
                current.push(idx);
                close(&mut current, &mut tracked);
            }
            Some(Item::Comment { .. }) => {
                current.push(idx);
                if current.len() == 1
                    && let Some(p) = prev
                    && newlines(span(p), item_span) == 0
                {
                    close(&mut current, &mut tracked);
                    first_on_same_line = true;
                }
            }
            Some(Item::Newline(_)) => {
                if let Some(&last) = current.last() {
                    if ends_in_newline(last) {
                        close(&mut current, &mut tracked);
                    } else {
                        current.push(idx);
                    }
                }
            }
            Some(Item::Token(_)) | None => {
                close(&mut current, &mut tracked);
                let this_prev = prev.replace(idx);
                if tracked.is_empty() {
                    continue;
                }
                let tok_index = match items.get(idx) {
                    Some(Item::Token(t)) => *t,
                    _ => tokens.len() - 1,
                };
                let donate = match this_prev {
                    None => false,
                    Some(_) if first_on_same_line => true,
                    Some(p) if newlines(span(p), span(tracked[0][0])) < 2 => {
                        let last_of_first = *tracked[0].last().expect("non-empty paragraph");
                        tracked.len() > 1
                            || matches!(tokens[tok_index].tok, Tok::Sym(')' | ']' | '}'))
                            || newlines(span(last_of_first), item_span) > 1
                    }
                    Some(_) => false,
                };
                if donate {
                    let p = tracked.remove(0);
                    if let Some(Item::Token(pt)) = this_prev.map(|p| &items[p]) {
                        tokens[*pt].trailing = Some(text_of(&p));
                    }
                }
                if let Some(last) = tracked.last() {
                    let end = *last.last().expect("non-empty paragraph");
                    if newlines(span(end), item_span) == 1 {
                        tokens[tok_index].leading = Some(text_of(last));
                        tracked.pop();
                    }
                }
                for (k, para) in tracked.iter().enumerate() {
                    // The nearest non-space items around the paragraph.
                    let before = (0..para[0])
                        .rev()
                        .find(|&i| !matches!(items[i], Item::Newline(_)));
                    let last = *para.last().expect("non-empty paragraph");
                    let after =
                        (last + 1..items.len()).find(|&i| !matches!(items[i], Item::Newline(_)));
                    if let Some(b) = before
                        && newlines(span(b), span(para[0])) < 2
                    {
                        continue;
                    }
                    let after_span = after.map(span).unwrap_or(item_span);
                    if newlines(span(last), after_span) == 2 {
                        tokens[tok_index].detached = tracked[k..].iter().map(text_of).collect();
                        break;
                    }
                }
                first_on_same_line = false;
                tracked.clear();
            }
        }
    }
}

fn number(lx: &mut Lexer) -> Result<Tok, ParseError> {
    let start = lx.i;
    let b = lx.bytes;
    if b[start] == b'0' && matches!(lx.peek_at(1), Some(b'x' | b'X')) {
        lx.bump();
        lx.bump();
        let s = lx.i;
        while matches!(lx.peek(), Some(c) if c.is_ascii_hexdigit()) {
            lx.bump();
        }
        if s == lx.i {
            return Err(lx.err(start, lx.i - start, "invalid hexadecimal literal"));
        }
        trailing_ident_check(lx, start)?;
        return Ok(Tok::Int(u64::from_str_radix(&lx.src[s..lx.i], 16).ok()));
    }
    let mut float = false;
    while matches!(lx.peek(), Some(c) if c.is_ascii_digit()) {
        lx.bump();
    }
    if lx.peek() == Some(b'.') {
        float = true;
        lx.bump();
        while matches!(lx.peek(), Some(c) if c.is_ascii_digit()) {
            lx.bump();
        }
    }
    if matches!(lx.peek(), Some(b'e' | b'E')) {
        let save = (lx.i, lx.line, lx.col);
        lx.bump();
        if matches!(lx.peek(), Some(b'+' | b'-')) {
            lx.bump();
        }
        if matches!(lx.peek(), Some(c) if c.is_ascii_digit()) {
            float = true;
            while matches!(lx.peek(), Some(c) if c.is_ascii_digit()) {
                lx.bump();
            }
        } else {
            (lx.i, lx.line, lx.col) = save;
        }
    }
    trailing_ident_check(lx, start)?;
    let text = &lx.src[start..lx.i];
    if float {
        return text
            .parse::<f64>()
            .map(Tok::Float)
            .map_err(|_| lx.err(start, text.len(), format!("invalid number {text}")));
    }
    if text.len() > 1 && text.starts_with('0') {
        if !text.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
            return Err(lx.err(start, text.len(), format!("invalid octal literal {text}")));
        }
        return Ok(Tok::Int(u64::from_str_radix(&text[1..], 8).ok()));
    }
    match text.parse::<u64>() {
        Ok(v) => Ok(Tok::Int(Some(v))),
        Err(_) => Ok(Tok::Float(text.parse::<f64>().unwrap_or(f64::INFINITY))),
    }
}

fn trailing_ident_check(lx: &mut Lexer, start: usize) -> Result<(), ParseError> {
    if matches!(lx.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
        while matches!(lx.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
            lx.bump();
        }
        let text = &lx.src[start..lx.i];
        return Err(lx.err(start, text.len(), format!("invalid number {text:?}")));
    }
    Ok(())
}

fn string(lx: &mut Lexer, quote: u8) -> Result<Tok, ParseError> {
    let start = lx.i;
    lx.bump();
    let mut out = Vec::new();
    loop {
        let Some(c) = lx.peek() else {
            return Err(lx.err(start, lx.i - start, "unterminated string literal"));
        };
        if c == quote {
            lx.bump();
            return Ok(Tok::Str(out));
        }
        if c == b'\n' || c == 0 {
            return Err(lx.err(start, lx.i - start, "unterminated string literal"));
        }
        if c != b'\\' {
            let ch = lx.src[lx.i..].chars().next().unwrap_or('?');
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            lx.bump();
            continue;
        }
        let esc_start = lx.i;
        lx.bump();
        let Some(e) = lx.peek() else {
            return Err(lx.err(start, lx.i - start, "unterminated string literal"));
        };
        lx.bump();
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' | b'\'' | b'"' | b'?' => out.push(e),
            b'x' | b'X' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && matches!(lx.peek(), Some(c) if c.is_ascii_hexdigit()) {
                    v = v * 16
                        + (lx.peek().unwrap_or(b'0') as char)
                            .to_digit(16)
                            .unwrap_or(0);
                    lx.bump();
                    n += 1;
                }
                if n == 0 {
                    return Err(lx.err(esc_start, 2, "invalid hex escape"));
                }
                out.push(v as u8);
            }
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                let mut n = 1;
                while n < 3 && matches!(lx.peek(), Some(b'0'..=b'7')) {
                    v = v * 8 + (lx.peek().unwrap_or(b'0') - b'0') as u32;
                    lx.bump();
                    n += 1;
                }
                if v > 255 {
                    return Err(lx.err(esc_start, lx.i - esc_start, "octal escape out of range"));
                }
                out.push(v as u8);
            }
            b'u' | b'U' => {
                let digits = if e == b'u' { 4 } else { 8 };
                let mut v = 0u32;
                for _ in 0..digits {
                    match lx.peek() {
                        Some(c) if c.is_ascii_hexdigit() => {
                            v = v * 16 + (c as char).to_digit(16).unwrap_or(0);
                            lx.bump();
                        }
                        _ => {
                            return Err(lx.err(
                                esc_start,
                                lx.i - esc_start,
                                "invalid unicode escape",
                            ));
                        }
                    }
                }
                let Some(ch) = char::from_u32(v) else {
                    return Err(lx.err(esc_start, lx.i - esc_start, "invalid unicode code point"));
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => {
                return Err(lx.err(esc_start, lx.i - esc_start, "invalid escape sequence"));
            }
        }
    }
}
