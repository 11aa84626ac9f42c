//! The music theory the fields need: key signatures (`K:`), meters (`M:`), unit lengths (`L:`),
//! tempo (`Q:`), part orders (`Y:`/`P:`) and chord symbols (`"D7/f+"`).

use super::frac::Frac;

/// Semitone of each natural letter above C, indexed A=0 .. G=6.
const LETTER_SEMITONE: [i32; 7] = [9, 11, 0, 2, 4, 5, 7];

/// Index 0..7 of a letter `A`..`G` (either case); `None` for anything else.
pub fn letter_index(letter: char) -> Option<usize> {
    let u = letter.to_ascii_uppercase();
    ('A'..='G').contains(&u).then(|| (u as u8 - b'A') as usize)
}

/// MIDI key number of a natural letter in an ABC octave (`C` octave 0 is middle C, 60), plus
/// `alteration` semitones.
pub fn midi_pitch(letter: char, octave: i32, alteration: i32) -> Option<i32> {
    let i = letter_index(letter)?;
    Some(60 + 12 * octave + LETTER_SEMITONE[i] + alteration)
}

/// A key signature: the alteration (in semitones) of each letter A..G, and the description a
/// MIDI key-signature event needs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct KeySig {
    /// Alteration of each letter, indexed A=0 .. G=6.
    pub alter: [i8; 7],
    /// Sharps (positive) or flats (negative) of the standard signature, -7..=7.
    pub fifths: i8,
    /// Minor-ish mode (for the MIDI key-signature event only).
    pub minor: bool,
}

/// Order in which sharps are added to a key signature.
const SHARP_ORDER: [char; 7] = ['F', 'C', 'G', 'D', 'A', 'E', 'B'];

impl KeySig {
    /// Signature with `fifths` sharps (or flats when negative).
    pub fn from_fifths(fifths: i8, minor: bool) -> KeySig {
        let fifths = fifths.clamp(-7, 7);
        let mut alter = [0i8; 7];
        if fifths > 0 {
            for l in SHARP_ORDER.iter().take(fifths as usize) {
                if let Some(i) = letter_index(*l) {
                    alter[i] = 1;
                }
            }
        } else {
            for l in SHARP_ORDER.iter().rev().take((-fifths) as usize) {
                if let Some(i) = letter_index(*l) {
                    alter[i] = -1;
                }
            }
        }
        KeySig { alter, fifths, minor }
    }

    /// Parses a `K:` value: tonic (`G`, `Bb`, `F#`), mode (`m`, `min`, `dor`, `mix`, ...),
    /// then optional explicit accidentals (`^f _b`). `K:` empty or `none` is C major; `HP`/`Hp`
    /// are the bagpipe keys. Clef and other `name=value` settings are ignored.
    pub fn parse(value: &str) -> Result<KeySig, String> {
        let v = value.trim();
        let mut words = v.split_whitespace().peekable();
        let Some(first) = words.next() else {
            return Ok(KeySig::default());
        };
        if first.eq_ignore_ascii_case("none") || first.contains('=') {
            return Ok(KeySig::default());
        }
        if first == "HP" {
            return Ok(KeySig::default());
        }
        if first == "Hp" {
            let mut k = KeySig::from_fifths(2, false);
            if let Some(g) = letter_index('G') {
                k.alter[g] = 0;
            }
            return Ok(k);
        }
        let mut chars = first.chars();
        let tonic = chars.next().unwrap_or('C');
        let Some(ti) = letter_index(tonic).filter(|_| tonic.is_ascii_uppercase()) else {
            return Err(format!("bad key '{v}': the key must start with a tonic A-G (K:G, K:Am, K:Dmix)"));
        };
        let rest: String = chars.collect();
        let (acc, mode_text) = if let Some(r) = rest.strip_prefix('#') {
            (1i32, r.to_string())
        } else if let Some(r) = rest.strip_prefix('b') {
            (-1, r.to_string())
        } else {
            (0, rest)
        };
        // The mode may be glued to the tonic (Am, Ddor) or be the next word (A minor).
        let mode_word = if mode_text.is_empty() {
            match words.peek() {
                Some(w) if mode_offset(w).is_some() => words.next().unwrap_or("").to_string(),
                _ => String::new(),
            }
        } else {
            mode_text
        };
        let Some((offset, minor)) = mode_offset(&mode_word) else {
            return Err(format!(
                "bad key '{v}': unknown mode '{mode_word}' (use m, min, maj, dor, mix, phr, lyd, loc, aeo, ion)"
            ));
        };
        // Fifths of the major key on this tonic: position on the circle of fifths.
        let major_fifths: [i32; 7] = [3, 5, 0, 2, 4, -1, 1]; // A B C D E F G
        let fifths = major_fifths[ti] + 7 * acc + offset;
        if !(-7..=7).contains(&fifths) {
            return Err(format!("bad key '{v}': more than 7 sharps or flats"));
        }
        let mut key = KeySig::from_fifths(fifths as i8, minor);
        // Explicit accidentals: `K:D ^g _b =f`.
        for w in words {
            let mut cs = w.chars().peekable();
            let mut alt: Option<i8> = None;
            while let Some(&c) = cs.peek() {
                let d = match c {
                    '^' => 1,
                    '_' => -1,
                    '=' => 0,
                    _ => break,
                };
                alt = Some(alt.map_or(d, |a| if d == 0 { 0 } else { a + d }));
                cs.next();
            }
            if let (Some(a), Some(l)) = (alt, cs.next())
                && let Some(i) = letter_index(l)
            {
                key.alter[i] = a;
            }
        }
        Ok(key)
    }
}

/// Offset in fifths from the major key, and whether the mode is minor-like.
fn mode_offset(mode: &str) -> Option<(i32, bool)> {
    let m = mode.to_ascii_lowercase();
    if m.is_empty() {
        return Some((0, false));
    }
    if m == "m" {
        return Some((-3, true));
    }
    let key: String = m.chars().take(3).collect();
    if key.len() < 3 {
        return None;
    }
    Some(match key.as_str() {
        "maj" | "ion" => (0, false),
        "min" | "aeo" => (-3, true),
        "mix" => (-1, false),
        "dor" => (-2, true),
        "phr" => (-4, true),
        "lyd" => (1, false),
        "loc" => (-5, true),
        _ => return None,
    })
}

/// A meter `M:`: the bar length in whole notes (`None` for free meter) and the written
/// numerator/denominator for the MIDI time-signature event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meter {
    /// Length of a complete bar in whole notes; `None` for `M:none`.
    pub bar: Option<Frac>,
    /// Written numerator (sum of `2+3` parts).
    pub num: u32,
    /// Written denominator.
    pub den: u32,
}

impl Meter {
    /// Parses `6/8`, `C` (4/4), `C|` (2/2), `2+3/8`, `none`.
    pub fn parse(value: &str) -> Result<Meter, String> {
        let v = value.trim();
        let bad = || format!("bad meter '{v}' (use M:6/8, M:4/4, M:C, M:C| or M:none)");
        match v {
            "" | "none" | "None" | "NONE" => {
                return Ok(Meter { bar: None, num: 4, den: 4 });
            }
            "C" => {
                return Ok(Meter { bar: Some(Frac::ONE), num: 4, den: 4 });
            }
            "C|" => {
                return Ok(Meter { bar: Frac::new(2, 2), num: 2, den: 2 });
            }
            _ => {}
        }
        let (n, d) = v.split_once('/').ok_or_else(bad)?;
        let n = n.trim().trim_start_matches('(').trim_end_matches(')');
        let mut num: u32 = 0;
        for part in n.split('+') {
            let x: u32 = part.trim().parse().map_err(|_| bad())?;
            num = num.checked_add(x).ok_or_else(bad)?;
        }
        let den: u32 = d.trim().parse().map_err(|_| bad())?;
        if num == 0 || den == 0 || num > 64 || den > 64 {
            return Err(bad());
        }
        Ok(Meter { bar: Frac::new(num as i128, den as i128), num, den })
    }

    /// The default unit note length for this meter (ABC 2.1, 3.1.7): 1/16 when the meter is
    /// below 3/4, else 1/8 (also for free meter).
    pub fn default_unit(&self) -> Frac {
        match self.bar {
            Some(b) if b < Frac::new(3, 4).unwrap_or(Frac::ONE) => Frac::new(1, 16).unwrap_or(Frac::ONE),
            _ => Frac::new(1, 8).unwrap_or(Frac::ONE),
        }
    }
}

/// Parses a unit note length `L:1/8` (also `1`, `1/16`).
pub fn parse_unit_length(value: &str) -> Result<Frac, String> {
    let v = value.trim();
    let bad = || format!("bad unit note length '{v}' (use L:1/8, L:1/4 or L:1/16)");
    let (n, d) = match v.split_once('/') {
        Some((n, d)) => (n.trim(), d.trim()),
        None => (v, "1"),
    };
    let n: u32 = n.parse().map_err(|_| bad())?;
    let d: u32 = d.parse().map_err(|_| bad())?;
    if n == 0 || d == 0 || n > 64 || d > 1024 {
        return Err(bad());
    }
    Frac::new(n as i128, d as i128).ok_or_else(bad)
}

/// Parses a tempo `Q:` into microseconds per quarter note. Accepts `1/4=120`, `3/8=100`,
/// `"Allegro" 1/4=120` and the old form `Q:120` (unit notes per minute, `unit` = `L:`).
pub fn parse_tempo(value: &str, unit: Frac) -> Result<u32, String> {
    let v = value.trim();
    let bad = || format!("bad tempo '{v}' (use Q:1/4=120)");
    // Drop quoted text.
    let mut s = String::new();
    let mut inq = false;
    for c in v.chars() {
        if c == '"' {
            inq = !inq;
        } else if !inq {
            s.push(c);
        }
    }
    let s = s.trim();
    let (beat, bpm) = match s.split_once('=') {
        Some((b, m)) => {
            let mut beat = Frac::ZERO;
            for part in b.split_whitespace() {
                let (n, d) = part.split_once('/').ok_or_else(bad)?;
                let n: i128 = n.trim().parse().map_err(|_| bad())?;
                let d: i128 = d.trim().parse().map_err(|_| bad())?;
                if n <= 0 || d <= 0 || n > 64 || d > 1024 {
                    return Err(bad());
                }
                beat = beat.checked_add(Frac::new(n, d).ok_or_else(bad)?).ok_or_else(bad)?;
            }
            if beat.is_zero() {
                beat = Frac::new(1, 4).ok_or_else(bad)?;
            }
            (beat, m.trim())
        }
        None => (unit, s),
    };
    let bpm: f64 = bpm.parse().map_err(|_| bad())?;
    if !(bpm.is_finite() && (1.0..=2000.0).contains(&bpm)) {
        return Err(bad());
    }
    // Quarter notes per minute = beats per minute * (beat length / quarter length).
    let qpm = bpm * beat.to_f64() * 4.0;
    let us = 60_000_000.0 / qpm;
    if !(1.0..=16_777_215.0).contains(&us) {
        return Err(bad());
    }
    Ok(us.round() as u32)
}

/// Expands a part order (`Y:AABB`, `P:ABACA`, `P:A(AB)3`, `Y:A ABBB ACCC A`) into the list of
/// part labels to play. Spaces, dots and other punctuation are ignored; a digit after a label
/// or a parenthesised group repeats it.
pub fn parse_part_order(value: &str) -> Vec<char> {
    fn group(chars: &[char], i: &mut usize, depth: usize, out: &mut Vec<char>) {
        while *i < chars.len() {
            let c = chars[*i];
            *i += 1;
            let mut item: Vec<char> = Vec::new();
            if c == '(' && depth < 8 {
                group(chars, i, depth + 1, &mut item);
            } else if c == ')' {
                return;
            } else if c.is_ascii_uppercase() {
                item.push(c);
            } else {
                continue;
            }
            let mut n = 0usize;
            while *i < chars.len() && chars[*i].is_ascii_digit() {
                n = (n * 10 + chars[*i].to_digit(10).unwrap_or(0) as usize).min(64);
                *i += 1;
            }
            for _ in 0..n.max(1) {
                if out.len() + item.len() > 4096 {
                    return;
                }
                out.extend_from_slice(&item);
            }
        }
    }
    let chars: Vec<char> = value.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    group(&chars, &mut i, 0, &mut out);
    out
}

/// A chord symbol reduced to what an accompaniment needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChordName {
    /// Root pitch class, 0 = C .. 11 = B.
    pub root: i32,
    /// Intervals above the root in semitones (0 first).
    pub intervals: Vec<i32>,
    /// Bass pitch class (the root unless written as `/b`).
    pub bass: i32,
}

/// Parses a chord symbol such as `G`, `Am`, `D7`, `F#m`, `Bb`, `Cd` (diminished), `Ea`
/// (augmented), `D/f+` (D over F sharp), `Gm/bb`, `(E7)`. `None` for text that is not a chord.
pub fn parse_chord_symbol(text: &str) -> Option<ChordName> {
    let t = text.trim().trim_start_matches('(').trim_end_matches(')').trim();
    let mut chars = t.chars().peekable();
    let root_letter = chars.next().filter(|c| ('A'..='G').contains(c))?;
    let mut root = LETTER_SEMITONE[letter_index(root_letter)?];
    match chars.peek() {
        Some('#') => {
            root += 1;
            chars.next();
        }
        Some('b') => {
            root -= 1;
            chars.next();
        }
        _ => {}
    }
    let rest: String = chars.collect();
    let (quality, bass_text) = match rest.split_once('/') {
        Some((q, b)) => (q.to_string(), Some(b.to_string())),
        None => (rest, None),
    };
    let intervals: Vec<i32> = match quality.as_str() {
        "" | "maj" | "M" => vec![0, 4, 7],
        "m" | "min" | "mi" | "-" => vec![0, 3, 7],
        "7" => vec![0, 4, 7, 10],
        "m7" | "min7" | "-7" => vec![0, 3, 7, 10],
        "maj7" | "M7" | "j7" => vec![0, 4, 7, 11],
        "6" => vec![0, 4, 7, 9],
        "m6" => vec![0, 3, 7, 9],
        "9" => vec![0, 4, 7, 10, 14],
        "m9" => vec![0, 3, 7, 10, 14],
        "d" | "dim" | "o" => vec![0, 3, 6],
        "d7" | "dim7" | "o7" => vec![0, 3, 6, 9],
        "m7b5" => vec![0, 3, 6, 10],
        "a" | "aug" | "+" => vec![0, 4, 8],
        "sus" | "sus4" => vec![0, 5, 7],
        "sus2" => vec![0, 2, 7],
        "7sus4" | "7sus" => vec![0, 5, 7, 10],
        "7b9" => vec![0, 4, 7, 10, 13],
        "5" => vec![0, 7],
        _ => return None,
    };
    let bass = match bass_text {
        None => root,
        Some(b) => {
            let mut bc = b.chars();
            let l = bc.next()?;
            let mut p = LETTER_SEMITONE[letter_index(l)?];
            for c in bc {
                match c {
                    '#' | '+' => p += 1,
                    'b' | '-' => p -= 1,
                    _ => return None,
                }
            }
            p
        }
    };
    Some(ChordName { root: root.rem_euclid(12), intervals, bass: bass.rem_euclid(12) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_signatures() {
        let g = KeySig::parse("G").expect("G");
        assert_eq!(g.fifths, 1);
        assert_eq!(g.alter[letter_index('F').expect("F")], 1);
        assert_eq!(KeySig::parse("Am").expect("Am").fifths, 0);
        assert_eq!(KeySig::parse("Bb").expect("Bb").fifths, -2);
        assert_eq!(KeySig::parse("F#m").expect("F#m").fifths, 3);
        assert_eq!(KeySig::parse("Dmix").expect("Dmix").fifths, 1);
        assert_eq!(KeySig::parse("Ador").expect("Ador").fifths, 1);
        assert_eq!(KeySig::parse("E minor").expect("E minor").fifths, 1);
        assert_eq!(KeySig::parse("Cm").expect("Cm").fifths, -3);
        let exp = KeySig::parse("D ^g").expect("D ^g");
        assert_eq!(exp.alter[letter_index('G').expect("G")], 1);
        assert!(KeySig::parse("H").is_err());
        assert!(KeySig::parse("Gxyz").is_err());
    }

    #[test]
    fn meters_and_default_unit() {
        let m = Meter::parse("6/8").expect("6/8");
        assert_eq!(m.bar, Frac::new(3, 4));
        assert_eq!(m.default_unit(), Frac::new(1, 8).expect("1/8"));
        assert_eq!(Meter::parse("2/4").expect("2/4").default_unit(), Frac::new(1, 16).expect("1/16"));
        assert_eq!(Meter::parse("C").expect("C").bar, Some(Frac::ONE));
        assert_eq!(Meter::parse("C|").expect("C|").bar, Some(Frac::ONE));
        assert_eq!(Meter::parse("2+3/8").expect("2+3/8").num, 5);
        assert_eq!(Meter::parse("none").expect("none").bar, None);
        assert!(Meter::parse("6-8").is_err());
    }

    #[test]
    fn tempo() {
        let q = Frac::new(1, 4).expect("1/4");
        assert_eq!(parse_tempo("1/4=120", q), Ok(500_000));
        assert_eq!(parse_tempo("1/4=180", q), Ok(333_333));
        assert_eq!(parse_tempo("\"Allegro\" 3/8=100", q), Ok(400_000));
        assert_eq!(parse_tempo("120", q), Ok(500_000));
        assert!(parse_tempo("fast", q).is_err());
    }

    #[test]
    fn part_orders() {
        assert_eq!(parse_part_order("AABB"), vec!['A', 'A', 'B', 'B']);
        assert_eq!(parse_part_order("A ABBB ACCC A").iter().collect::<String>(), "AABBBACCCA");
        assert_eq!(parse_part_order("A(AB)2C").iter().collect::<String>(), "AABABC");
        assert_eq!(parse_part_order("A2B").iter().collect::<String>(), "AAB");
    }

    #[test]
    fn chord_symbols() {
        let d = parse_chord_symbol("D/f+").expect("D/f+");
        assert_eq!((d.root, d.bass), (2, 6));
        let g = parse_chord_symbol("Gm/bb").expect("Gm/bb");
        assert_eq!((g.root, g.intervals.clone(), g.bass), (7, vec![0, 3, 7], 10));
        assert_eq!(parse_chord_symbol("Cd").expect("Cd").intervals, vec![0, 3, 6]);
        assert_eq!(parse_chord_symbol("F#m").expect("F#m").root, 6);
        assert_eq!(parse_chord_symbol("(E7)").expect("(E7)").root, 4);
        assert_eq!(parse_chord_symbol(" "), None);
        assert_eq!(parse_chord_symbol("Fine"), None);
    }
}
