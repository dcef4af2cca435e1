//! The multi-part AOF's manifest (Redis 7.0 `aof.c`): which base, history and incr files make
//! up the AOF, one line each: `file appendonly.aof.1.base.rdb seq 1 type b`. Loading reads the
//! base, then every incr file in order; a rewrite writes a new manifest to a temp name and
//! renames it over the old one, so a crash leaves one manifest or the other.

use std::fmt::Write as _;

/// Redis refuses manifest lines longer than this (`AOF_MANIFEST_LINE_MAX`... 1024 + 1).
const MANIFEST_MAX_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Base,
    History,
    Incr,
}

impl FileType {
    fn tag(self) -> char {
        match self {
            FileType::Base => 'b',
            FileType::History => 'h',
            FileType::Incr => 'i',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: u64,
    pub kind: FileType,
}

/// A parsed manifest. `incrs` are in load order; the last one is the file being appended to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    pub history: Vec<AofFile>,
    pub incrs: Vec<AofFile>,
    pub curr_base_seq: u64,
    pub curr_incr_seq: u64,
}

/// `appendonly.aof.manifest`.
pub fn manifest_name(appendfilename: &str) -> String {
    format!("{appendfilename}.manifest")
}

pub fn temp_manifest_name(appendfilename: &str) -> String {
    format!("temp-{}", manifest_name(appendfilename))
}

impl Manifest {
    /// The manifest as Redis writes it: base, history, then incr files.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incrs) {
            let _ = writeln!(s, "file {} seq {} type {}", quote(&f.name), f.seq, f.kind.tag());
        }
        s
    }

    /// Parses a manifest; the error text is Redis's where it has one.
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        let mut any = false;
        for line in text.split(|&b| b == b'\n') {
            if line.len() > MANIFEST_MAX_LINE {
                return Err("The AOF manifest file contains too long line".into());
            }
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let argv = split_args(line).ok_or("Invalid AOF manifest file format")?;
            if argv.len() < 6 || argv.len() % 2 != 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for kv in argv.chunks(2) {
                match kv[0].as_str() {
                    "file" => name = Some(kv[1].clone()),
                    "seq" => seq = kv[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match kv[1].as_str() {
                            "b" => Some(FileType::Base),
                            "h" => Some(FileType::History),
                            "i" => Some(FileType::Incr),
                            _ => None,
                        }
                    }
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err("Invalid AOF manifest file format".into());
            };
            if name.is_empty() || name.contains('/') {
                return Err("Invalid AOF manifest file format".into());
            }
            any = true;
            let f = AofFile { name, seq, kind };
            match kind {
                FileType::Base => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.curr_base_seq = seq;
                    m.base = Some(f);
                }
                FileType::History => m.history.push(f),
                FileType::Incr => {
                    if seq <= m.curr_incr_seq {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.curr_incr_seq = seq;
                    m.incrs.push(f);
                }
            }
        }
        if !any {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// Files to load, in order: the base, then the incr files.
    pub fn load_order(&self) -> impl Iterator<Item = &AofFile> {
        self.base.iter().chain(&self.incrs)
    }
}

/// `appendonly.aof.<seq>.base.rdb|aof`.
pub fn base_name(appendfilename: &str, seq: u64, rdb_preamble: bool) -> String {
    format!("{appendfilename}.{seq}.base.{}", if rdb_preamble { "rdb" } else { "aof" })
}

/// `appendonly.aof.<seq>.incr.aof`.
pub fn incr_name(appendfilename: &str, seq: u64) -> String {
    format!("{appendfilename}.{seq}.incr.aof")
}

fn quote(name: &str) -> String {
    if name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\') {
        name.to_string()
    } else {
        let mut s = String::from("\"");
        for c in name.chars() {
            match c {
                '"' | '\\' => {
                    s.push('\\');
                    s.push(c)
                }
                ' '..='~' => s.push(c),
                _ => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        let _ = write!(s, "\\x{byte:02x}");
                    }
                }
            }
        }
        s.push('"');
        s
    }
}

/// Splits a line into words, with double quotes and `\"` / `\\` escapes (a subset of
/// `sdssplitargs`, enough for the names Redis writes).
fn split_args(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { return Some(out) };
        // Bytes, so that `\xHH` escapes of a multi-byte character come back as that character.
        let mut word: Vec<u8> = Vec::new();
        let push = |w: &mut Vec<u8>, c: char| w.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
        if c == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    // As sdssplitargs: a closing quote ends the word.
                    '"' if chars.peek().is_none_or(|c| c.is_whitespace()) => break,
                    '"' => return None,
                    '\\' => match chars.next()? {
                        'x' => {
                            let h: String = [chars.next()?, chars.next()?].iter().collect();
                            word.push(u8::from_str_radix(&h, 16).ok()?);
                        }
                        'n' => word.push(b'\n'),
                        other => push(&mut word, other),
                    },
                    other => push(&mut word, other),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                push(&mut word, c);
                chars.next();
            }
        }
        out.push(String::from_utf8_lossy(&word).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_in_redis_line_format() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n\
                    file appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.curr_base_seq, 1);
        assert_eq!(m.curr_incr_seq, 2);
        assert_eq!(m.load_order().map(|f| f.name.as_str()).collect::<Vec<_>>().len(), 3);
        assert_eq!(m.to_text(), text);
    }

    #[test]
    fn manifest_rejects_empty_duplicate_base_and_bad_lines() {
        assert!(Manifest::parse(b"").unwrap_err().contains("empty"));
        assert!(Manifest::parse(b"file a seq 1 type b\nfile b seq 2 type b\n").unwrap_err().contains("duplicate"));
        assert!(Manifest::parse(b"file a seq 1\n").is_err());
        assert!(Manifest::parse(b"file a seq 2 type i\nfile b seq 1 type i\n").is_err());
        assert!(Manifest::parse(b"file \"with space\" seq 1 type i\n").unwrap().incrs[0].name == "with space");
        let odd = Manifest::parse("file a\u{fffd}b seq 1 type i\n".as_bytes()).unwrap();
        assert_eq!(Manifest::parse(odd.to_text().as_bytes()), Ok(odd));
    }
}
