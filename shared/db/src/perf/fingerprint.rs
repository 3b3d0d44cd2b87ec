//! Statement fingerprints: the SQL with every value replaced by `?`, so one statement run with
//! different values is counted as one.
//!
//! Normalisation: string, numeric, bit/hex and dollar-quoted literals and `$n` parameters become
//! `?` (a sign in front of a number is part of the value), lists of values inside `IN (…)` and
//! `ARRAY[…]` collapse to one `?`, repeated identical `VALUES` tuples collapse to one tuple,
//! comments are dropped, unquoted words are lower-cased (PostgreSQL folds them anyway; quoted
//! identifiers keep their case) and spacing is canonical.

/// Longest fingerprint text kept; longer ones are cut (the id still covers the whole text).
pub const MAX_FINGERPRINT_CHARS: usize = 4096;

/// A statement's fingerprint and what the monitor needs to know about its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The normalised text (at most [`MAX_FINGERPRINT_CHARS`] characters).
    pub text: String,
    /// FNV-1a 64 of the full normalised text, as 16 hex digits: stable across processes.
    pub id: String,
    /// The highest `$n` parameter the statement uses (0 when it has none).
    pub max_param: u32,
    /// The first keyword, lower case (`select`, `insert`, …), empty when there is none.
    pub first_keyword: String,
    /// Whether the text holds more than one statement (a `;` before the end).
    pub multiple_statements: bool,
}

/// The normalised text of a statement.
pub fn fingerprint(sql: &str) -> String {
    analyze(sql).text
}

/// Normalises a statement and collects the facts the monitor uses.
pub fn analyze(sql: &str) -> Fingerprint {
    let (tokens, max_param) = tokenize(sql);
    let mut tokens = merge_signs(tokens);
    while matches!(tokens.last(), Some(Tok::Punct(";"))) {
        tokens.pop();
    }
    let multiple_statements = tokens.iter().any(|t| matches!(t, Tok::Punct(";")));
    let tokens = collapse_lists(tokens);
    let full = render(&tokens);
    let id = format!("{:016x}", fnv1a64(full.as_bytes()));
    let first_keyword = match tokens.iter().find(|t| !matches!(t, Tok::Punct("("))) {
        Some(Tok::Word(w)) => w.clone(),
        _ => String::new(),
    };
    let text = if full.chars().count() > MAX_FINGERPRINT_CHARS {
        let mut cut: String = full.chars().take(MAX_FINGERPRINT_CHARS).collect();
        cut.push('…');
        cut
    } else {
        full
    };
    Fingerprint {
        text,
        id,
        max_param,
        first_keyword,
        multiple_statements,
    }
}

/// FNV-1a, 64 bits: tiny, dependency-free and stable, unlike std's `DefaultHasher`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An unquoted identifier or keyword, lower-cased.
    Word(String),
    /// A quoted identifier, quotes included.
    Quoted(String),
    /// A literal or parameter.
    Value,
    /// Punctuation: ( ) [ ] , ; . ::
    Punct(&'static str),
    /// An operator.
    Op(String),
}

const OP_CHARS: &[char] = &[
    '+', '-', '*', '/', '<', '>', '=', '~', '!', '@', '#', '%', '^', '&', '|', '`', '?', ':',
];

fn tokenize(sql: &str) -> (Vec<Tok>, u32) {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut max_param = 0u32;
    let mut i = 0;
    let n = chars.len();
    let at = |k: usize| chars.get(k).copied();
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && at(i + 1) == Some('-') {
            while i < n && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == Some('*') {
            i = skip_block_comment(&chars, i);
        } else if c == '\'' {
            i = skip_string(&chars, i + 1, false);
            tokens.push(Tok::Value);
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < n {
                if chars[i] == '"' {
                    if at(i + 1) == Some('"') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            tokens.push(Tok::Quoted(chars[start..i].iter().collect()));
        } else if c == '$' {
            if at(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                let start = i + 1;
                i += 1;
                while i < n && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let digits: String = chars[start..i].iter().collect();
                if let Ok(p) = digits.parse::<u32>() {
                    max_param = max_param.max(p);
                }
                tokens.push(Tok::Value);
            } else if let Some(end) = dollar_quote_end(&chars, i) {
                i = end;
                tokens.push(Tok::Value);
            } else {
                tokens.push(Tok::Op("$".into()));
                i += 1;
            }
        } else if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            i = skip_number(&chars, i);
            tokens.push(Tok::Value);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < n && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            // E'…', B'…', X'…', N'…' and U&'…' are literals with a prefix.
            if at(i) == Some('\'') && matches!(word.as_str(), "e" | "b" | "x" | "n") {
                i = skip_string(&chars, i + 1, word == "e");
                tokens.push(Tok::Value);
            } else if word == "u" && at(i) == Some('&') && at(i + 1) == Some('\'') {
                i = skip_string(&chars, i + 2, false);
                tokens.push(Tok::Value);
            } else {
                tokens.push(Tok::Word(word));
            }
        } else if c == ':' && at(i + 1) == Some(':') {
            tokens.push(Tok::Punct("::"));
            i += 2;
        } else if let Some(p) = punct(c) {
            tokens.push(Tok::Punct(p));
            i += 1;
        } else if OP_CHARS.contains(&c) {
            let start = i;
            while i < n && OP_CHARS.contains(&chars[i]) {
                // A comment start ends the operator.
                if (chars[i] == '-' && at(i + 1) == Some('-'))
                    || (chars[i] == '/' && at(i + 1) == Some('*'))
                    || (chars[i] == ':' && at(i + 1) == Some(':'))
                {
                    break;
                }
                i += 1;
            }
            if i == start {
                // Only reachable for ':' followed by ':' which is handled above; be safe.
                i += 1;
            }
            tokens.push(Tok::Op(chars[start..i].iter().collect()));
        } else {
            tokens.push(Tok::Op(c.to_string()));
            i += 1;
        }
    }
    (tokens, max_param)
}

fn punct(c: char) -> Option<&'static str> {
    Some(match c {
        '(' => "(",
        ')' => ")",
        '[' => "[",
        ']' => "]",
        ',' => ",",
        ';' => ";",
        '.' => ".",
        _ => return None,
    })
}

/// Index just past a (possibly nested) block comment starting at `i`.
fn skip_block_comment(chars: &[char], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// Index just past the closing quote of a string whose body starts at `i`.
fn skip_string(chars: &[char], mut i: usize, backslash_escapes: bool) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' if backslash_escapes => i += 2,
            '\'' if chars.get(i + 1) == Some(&'\'') => i += 2,
            '\'' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// Index just past a dollar-quoted string starting at `i` (`$$…$$` or `$tag$…$tag$`), if it is one.
fn dollar_quote_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    if chars.get(j) != Some(&'$') || chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    let tag = &chars[i..=j];
    let mut k = j + 1;
    while k + tag.len() <= chars.len() {
        if &chars[k..k + tag.len()] == tag {
            return Some(k + tag.len());
        }
        k += 1;
    }
    Some(chars.len())
}

fn skip_number(chars: &[char], mut i: usize) -> usize {
    let n = chars.len();
    while i < n && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
        // `1.5e-3`: a sign right after the exponent marker belongs to the number.
        if (chars[i] == 'e' || chars[i] == 'E')
            && matches!(chars.get(i + 1), Some('+') | Some('-'))
            && chars.get(i + 2).is_some_and(|d| d.is_ascii_digit())
        {
            i += 2;
            continue;
        }
        // `1..2` never occurs in SQL, but `t.col` after a number would: stop at a second dot.
        if chars[i] == '.' && chars.get(i + 1) == Some(&'.') {
            break;
        }
        i += 1;
    }
    i
}

/// Words after which a `-` or `+` can only be a sign.
const VALUE_CONTEXT: &[&str] = &[
    "select",
    "where",
    "and",
    "or",
    "not",
    "when",
    "then",
    "else",
    "by",
    "values",
    "in",
    "like",
    "between",
    "is",
    "limit",
    "offset",
    "set",
    "return",
    "returning",
    "having",
    "on",
    "as",
    "array",
    "distinct",
    "case",
];

fn merge_signs(tokens: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(tokens.len());
    let mut iter = tokens.into_iter().peekable();
    while let Some(t) = iter.next() {
        if let Tok::Op(op) = &t
            && (op == "-" || op == "+")
            && matches!(iter.peek(), Some(Tok::Value))
        {
            let sign_position = match out.last() {
                None => true,
                Some(Tok::Punct(p)) => matches!(*p, "(" | "," | "[" | "::"),
                Some(Tok::Op(_)) => true,
                Some(Tok::Word(w)) => VALUE_CONTEXT.contains(&w.as_str()),
                Some(Tok::Quoted(_)) | Some(Tok::Value) => false,
            };
            if sign_position {
                continue;
            }
        }
        out.push(t);
    }
    out
}

/// Collapses `in (?, ?, …)` and `array[?, ?, …]` to one `?`, and repeated identical tuples after
/// `values` to one tuple.
fn collapse_lists(tokens: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let prev_word = match out.last() {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        let open = match &tokens[i] {
            Tok::Punct("(") if prev_word == Some("in") => Some(")"),
            Tok::Punct("[") if prev_word == Some("array") => Some("]"),
            _ => None,
        };
        if let Some(close) = open
            && let Some(end) = value_list_end(&tokens, i + 1, close)
        {
            out.push(tokens[i].clone());
            out.push(Tok::Value);
            out.push(tokens[end].clone());
            i = end + 1;
            continue;
        }
        if prev_word == Some("values")
            && tokens[i] == Tok::Punct("(")
            && let Some(end) = matching_paren(&tokens, i)
        {
            let tuple = &tokens[i..=end];
            out.extend_from_slice(tuple);
            let mut j = end + 1;
            // `, (same tuple)` repeated: drop the repeats.
            while tokens.get(j) == Some(&Tok::Punct(","))
                && tokens.get(j + 1) == Some(&Tok::Punct("("))
                && tokens.get(j + 1..j + 1 + tuple.len()) == Some(tuple)
            {
                j += 1 + tuple.len();
            }
            i = j;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// If tokens from `start` are `? (, ?)* close`, the index of `close`.
fn value_list_end(tokens: &[Tok], start: usize, close: &'static str) -> Option<usize> {
    let mut i = start;
    loop {
        if tokens.get(i) != Some(&Tok::Value) {
            return None;
        }
        i += 1;
        // Allow a cast on each element: `?::int`.
        while tokens.get(i) == Some(&Tok::Punct("::")) {
            match tokens.get(i + 1) {
                Some(Tok::Word(_)) | Some(Tok::Quoted(_)) => i += 2,
                _ => return None,
            }
        }
        match tokens.get(i) {
            Some(Tok::Punct(",")) => i += 1,
            Some(Tok::Punct(p)) if *p == close => return Some(i),
            _ => return None,
        }
    }
}

fn matching_paren(tokens: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Tok::Punct("(") => depth += 1,
            Tok::Punct(")") => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Keywords that read better with a space before `(`; any other word followed by `(` is taken
/// as a function or table name and written without one.
const SPACED_BEFORE_PAREN: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "values",
    "from",
    "join",
    "where",
    "on",
    "as",
    "exists",
    "select",
    "when",
    "then",
    "else",
    "using",
    "any",
    "all",
    "by",
    "over",
    "table",
    "with",
    "set",
    "union",
    "intersect",
    "except",
    "is",
    "between",
    "returning",
    "lateral",
    "case",
];

fn render(tokens: &[Tok]) -> String {
    let mut out = String::new();
    let mut prev: Option<&Tok> = None;
    for t in tokens {
        if let Some(p) = prev {
            let no_space_after_prev = matches!(p, Tok::Punct("(" | "[" | "." | "::"));
            let no_space_before = match t {
                Tok::Punct(")" | "]" | "," | "." | "::" | ";") => true,
                Tok::Punct("(") => match p {
                    Tok::Word(w) => !SPACED_BEFORE_PAREN.contains(&w.as_str()),
                    Tok::Quoted(_) => true,
                    _ => false,
                },
                Tok::Punct("[") => matches!(p, Tok::Word(_) | Tok::Quoted(_) | Tok::Punct(")")),
                _ => false,
            };
            if !no_space_after_prev && !no_space_before {
                out.push(' ');
            }
        }
        match t {
            Tok::Word(w) => out.push_str(w),
            Tok::Quoted(q) => out.push_str(q),
            Tok::Value => out.push('?'),
            Tok::Punct(p) => out.push_str(p),
            Tok::Op(o) => out.push_str(o),
        }
        prev = Some(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_parameters_become_placeholders() {
        assert_eq!(
            fingerprint("SELECT * FROM users WHERE id = 42 AND email = 'a@b.c'"),
            "select * from users where id = ? and email = ?"
        );
        assert_eq!(
            fingerprint("select *  from users\n where id=$1 and email = $2"),
            "select * from users where id = ? and email = ?"
        );
        assert_eq!(
            fingerprint("SELECT 1.5e-3, .5, -7, x - 1 FROM t"),
            "select ?, ?, ?, x - ? from t"
        );
        assert_eq!(
            fingerprint("select E'it\\'s', $$a;b$$, $tag$x$tag$, B'101', X'ff'"),
            "select ?, ?, ?, ?, ?"
        );
    }

    #[test]
    fn the_same_statement_with_other_values_has_one_fingerprint() {
        let a = analyze("SELECT name FROM t WHERE id IN (1, 2, 3) AND tag = 'x' -- note\n");
        let b = analyze("select name\n  from t /* why */ where ID in ($1) and TAG = 'yy'");
        assert_eq!(a.text, b.text);
        assert_eq!(a.id, b.id);
        assert_eq!(a.text, "select name from t where id in (?) and tag = ?");
    }

    #[test]
    fn in_lists_arrays_and_values_tuples_collapse() {
        assert_eq!(
            fingerprint("SELECT 1 FROM t WHERE a NOT IN ('a','b','c') AND b = ANY(ARRAY[1,2,3])"),
            "select ? from t where a not in (?) and b = any (array[?])"
        );
        assert_eq!(
            fingerprint("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), ($1, $2)"),
            fingerprint("insert into t(a,b) values ($1, $2)")
        );
        // A sub-query inside IN is not a list of values.
        assert_eq!(
            fingerprint("select * from t where id in (select id from u where x = 3)"),
            "select * from t where id in (select id from u where x = ?)"
        );
    }

    #[test]
    fn quoted_identifiers_keep_their_case() {
        assert_eq!(
            fingerprint(r#"SELECT "MixedCase"."Col" FROM "MixedCase""#),
            r#"select "MixedCase"."Col" from "MixedCase""#
        );
        assert_ne!(
            fingerprint(r#"select "A" from t"#),
            fingerprint(r#"select "a" from t"#)
        );
    }

    #[test]
    fn casts_and_operators_are_kept() {
        assert_eq!(
            fingerprint("SELECT $1::text[], a->>'k', b @> '{}'::jsonb FROM t WHERE c <= 3"),
            "select ?::text[], a ->> ?, b @> ?::jsonb from t where c <= ?"
        );
    }

    #[test]
    fn facts_about_the_text() {
        let f = analyze("  UPDATE t SET a = $1 WHERE b = $12;  ");
        assert_eq!(f.max_param, 12);
        assert_eq!(f.first_keyword, "update");
        assert!(!f.multiple_statements);
        assert!(analyze("select 1; delete from t").multiple_statements);
        assert!(!analyze("select ';'").multiple_statements);
        assert_eq!(
            analyze("(select 1) union (select 2)").first_keyword,
            "select"
        );
    }

    #[test]
    fn hostile_or_broken_input_does_not_panic() {
        for s in [
            "",
            "'",
            "\"",
            "$",
            "$$",
            "$a$",
            "/*",
            "/* /* */",
            "--",
            "E'\\",
            "1e",
            "1e-",
            "::",
            "u&'",
            "$1$2",
            "ünïcödé = 'ß'",
            "((((",
            "in (",
            "values (",
            "array[",
        ] {
            let _ = analyze(s);
        }
        let long = format!("select {}", "a, ".repeat(5000));
        let f = analyze(&long);
        assert!(f.text.chars().count() <= MAX_FINGERPRINT_CHARS + 1);
    }
}
