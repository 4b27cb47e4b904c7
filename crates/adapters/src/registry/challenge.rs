//! Parsing of `WWW-Authenticate` header values into authentication challenges
//! (RFC 9110 §11.6.1, formerly RFC 7235 §4.1). This module owns only the
//! syntax: scheme names, `token68` values and `name=value` parameters with
//! quoted strings and backslash escapes, several challenges per header, and
//! several headers per response. It must never perform I/O, never decide what
//! a challenge means for a login, and never see credentials — its input is
//! server-sent text only, which is why its errors may quote positions in it.
//!
//! Leniency, deliberately: parameter names are matched case-insensitively, an
//! unquoted parameter value may contain any character except `,` and
//! whitespace (some registries send `realm=https://…` unquoted), and empty list
//! elements (`a, , b`) are skipped, as RFC 9110 §5.6.1 asks recipients to do.

use std::fmt;

/// One challenge: `Bearer realm="…",service="…"` or `Negotiate abc==`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme as sent (compare with [`Challenge::is`], which ignores case).
    pub scheme: String,
    /// Parameters in order, names lower-cased, values unquoted and unescaped.
    /// When a name repeats (which RFC 9110 forbids) the first one wins in
    /// [`Challenge::param`].
    pub params: Vec<(String, String)>,
    /// The `token68` form (`Negotiate abc==`), exclusive with `params`.
    pub token68: Option<String>,
}

impl Challenge {
    /// Whether this challenge uses `scheme` (case-insensitive, RFC 9110 §11.1).
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first value of the parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A header value that is not a valid challenge list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the header value where parsing stopped.
    pub at: usize,
    /// What was expected there.
    pub expected: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed WWW-Authenticate at byte {}: expected {}",
            self.at, self.expected
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses one `WWW-Authenticate` header value into its challenges.
pub fn parse(value: &str) -> Result<Vec<Challenge>, ParseError> {
    Parser {
        s: value.as_bytes(),
        pos: 0,
    }
    .challenges()
}

/// Parses every `WWW-Authenticate` header value of a response, in order.
/// A value that does not parse is skipped; the error of the first such value
/// is returned only when no challenge at all could be read.
pub fn parse_all<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, ParseError> {
    let mut out = Vec::new();
    let mut first_err = None;
    for v in values {
        match parse(v) {
            Ok(cs) => out.extend(cs),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Skips whitespace and commas (empty list elements); returns whether
    /// at least one comma was seen.
    fn skip_separators(&mut self) -> bool {
        let mut comma = false;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => {}
                b',' => comma = true,
                _ => break,
            }
            self.pos += 1;
        }
        comma
    }

    fn err(&self, expected: &'static str) -> ParseError {
        ParseError {
            at: self.pos,
            expected,
        }
    }

    fn run(&mut self, pred: fn(u8) -> bool) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(pred) {
            self.pos += 1;
        }
        // Only ASCII bytes satisfy the predicates, so this slice is valid UTF-8.
        std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default()
    }

    fn token(&mut self) -> String {
        self.run(is_tchar).to_owned()
    }

    fn at_end_of_element(&self) -> bool {
        let mut p = self.pos;
        while matches!(self.s.get(p), Some(b' ' | b'\t')) {
            p += 1;
        }
        matches!(self.s.get(p), None | Some(b','))
    }

    /// If the input at `pos` is `name BWS "=" BWS value` (and not a token68
    /// that merely ends in `=`), consumes it and returns the pair.
    fn try_param(&mut self) -> Result<Option<(String, String)>, ParseError> {
        let start = self.pos;
        let name = self.token();
        self.skip_ws();
        if name.is_empty() || self.peek() != Some(b'=') {
            self.pos = start;
            return Ok(None);
        }
        self.pos += 1;
        // `abc=` / `abc==` followed by the end of the element is a token68.
        let after_eq = self.pos;
        while self.peek() == Some(b'=') {
            self.pos += 1;
        }
        if self.at_end_of_element() {
            self.pos = start;
            return Ok(None);
        }
        self.pos = after_eq;
        self.skip_ws();
        let value = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else {
            let start_v = self.pos;
            while self
                .peek()
                .is_some_and(|b| !matches!(b, b',' | b' ' | b'\t' | b'"'))
            {
                self.pos += 1;
            }
            if self.pos == start_v {
                return Err(self.err("a parameter value"));
            }
            String::from_utf8_lossy(&self.s[start_v..self.pos]).into_owned()
        };
        Ok(Some((name.to_ascii_lowercase(), value)))
    }

    fn quoted_string(&mut self) -> Result<String, ParseError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("a closing quote")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        None => return Err(self.err("an escaped character")),
                        Some(b) => out.push(b),
                    }
                    self.pos += 1;
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    fn challenges(&mut self) -> Result<Vec<Challenge>, ParseError> {
        let mut out = Vec::new();
        self.skip_separators();
        while self.peek().is_some() {
            let scheme = self.token();
            if scheme.is_empty() {
                return Err(self.err("an auth-scheme"));
            }
            let mut ch = Challenge {
                scheme,
                params: Vec::new(),
                token68: None,
            };
            let had_space = matches!(self.peek(), Some(b' ' | b'\t'));
            self.skip_ws();
            if had_space && !self.at_end_of_element() {
                // First item after the scheme: a parameter or a token68.
                match self.try_param()? {
                    Some(p) => ch.params.push(p),
                    None => {
                        let t = self.run(is_token68_char).to_owned();
                        let start_eq = self.pos;
                        while self.peek() == Some(b'=') {
                            self.pos += 1;
                        }
                        if t.is_empty() || !self.at_end_of_element() {
                            return Err(self.err("a parameter or token68"));
                        }
                        let eqs = "=".repeat(self.pos - start_eq);
                        ch.token68 = Some(t + &eqs);
                    }
                }
                // Further parameters, until something that is not `name=`,
                // which starts the next challenge.
                if ch.token68.is_none() {
                    loop {
                        let before = self.pos;
                        if !self.skip_separators() {
                            if self.peek().is_none() {
                                break;
                            }
                            return Err(self.err("a comma"));
                        }
                        if self.peek().is_none() {
                            break;
                        }
                        match self.try_param()? {
                            Some(p) => ch.params.push(p),
                            None => {
                                self.pos = before;
                                break;
                            }
                        }
                    }
                }
            } else if !self.at_end_of_element() {
                return Err(self.err("a space or comma after the auth-scheme"));
            }
            out.push(ch);
            let more = self.skip_separators();
            if self.peek().is_some() && !more {
                return Err(self.err("a comma between challenges"));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> Vec<Challenge> {
        parse(v).unwrap_or_else(|e| panic!("{v:?}: {e}"))
    }

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect()
    }

    #[test]
    fn distribution_bearer_example() {
        // https://distribution.github.io/distribution/spec/auth/token/
        let cs = p(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(cs.len(), 1);
        assert!(cs[0].is("bearer"));
        assert_eq!(
            params(&cs[0]),
            [
                ("realm", "https://auth.docker.io/token"),
                ("service", "registry.docker.io"),
                ("scope", "repository:samalba/my-app:pull,push"),
            ]
        );
        assert_eq!(
            cs[0].param("SCOPE"),
            Some("repository:samalba/my-app:pull,push")
        );
    }

    #[test]
    fn basic_with_realm_and_charset() {
        // RFC 7617 §2.1
        let cs = p(r#"Basic realm="foo", charset="UTF-8""#);
        assert_eq!(cs.len(), 1);
        assert!(cs[0].is("Basic"));
        assert_eq!(params(&cs[0]), [("realm", "foo"), ("charset", "UTF-8")]);
    }

    #[test]
    fn rfc7235_multiple_challenges_in_one_header() {
        // RFC 7235 §4.1 example.
        let cs =
            p(r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#);
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].scheme, "Newauth");
        assert_eq!(
            params(&cs[0]),
            [
                ("realm", "apps"),
                ("type", "1"),
                ("title", r#"Login to "apps""#)
            ]
        );
        assert_eq!(cs[1].scheme, "Basic");
        assert_eq!(params(&cs[1]), [("realm", "simple")]);
    }

    #[test]
    fn escapes_and_commas_inside_quotes() {
        let cs = p(r#"Bearer realm="a\\b\"c,d", error="x""#);
        assert_eq!(cs[0].param("realm"), Some(r#"a\b"c,d"#));
        assert_eq!(cs[0].param("error"), Some("x"));
    }

    #[test]
    fn whitespace_around_equals_and_case_of_names() {
        let cs = p("BEARER  Realm = \"r\" ,\tService=svc");
        assert!(cs[0].is("Bearer"));
        assert_eq!(params(&cs[0]), [("realm", "r"), ("service", "svc")]);
    }

    #[test]
    fn token68_and_bare_schemes() {
        let cs = p("Negotiate abc+/def==, Basic, NTLM");
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0].token68.as_deref(), Some("abc+/def=="));
        assert!(cs[0].params.is_empty());
        assert!(cs[1].is("basic") && cs[1].params.is_empty());
        assert!(cs[2].is("ntlm"));
    }

    #[test]
    fn token68_ending_in_equals_is_not_a_param() {
        let cs = p("Negotiate abc=");
        assert_eq!(cs[0].token68.as_deref(), Some("abc="));
    }

    #[test]
    fn empty_list_elements_are_skipped() {
        let cs = p(r#" , Basic realm="x" ,, , Bearer realm="y","#);
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[1].param("realm"), Some("y"));
    }

    #[test]
    fn lenient_unquoted_url_value() {
        let cs = p("Bearer realm=https://auth.example.com/token?x=1,service=example");
        assert_eq!(
            cs[0].param("realm"),
            Some("https://auth.example.com/token?x=1")
        );
        assert_eq!(cs[0].param("service"), Some("example"));
    }

    #[test]
    fn empty_header_has_no_challenges() {
        assert!(p("").is_empty());
        assert!(p("  ").is_empty());
    }

    #[test]
    fn malformed_values_are_errors() {
        for bad in [
            r#"Bearer realm="unterminated"#,
            r#"Bearer realm="x" service="y""#,
            "=foo",
            r#"Bearer realm="x\"#,
            "Basic \"quoted\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn parse_all_skips_bad_headers_but_reports_when_nothing_parsed() {
        let cs = parse_all([r#"Basic realm="a""#, "\"garbage", r#"Bearer realm="b""#]).unwrap();
        assert_eq!(cs.len(), 2);
        assert!(parse_all(["\"garbage"]).is_err());
        assert!(parse_all([]).unwrap().is_empty());
    }
}
