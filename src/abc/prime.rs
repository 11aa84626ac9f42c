//! The start of a tune, written the way a training corpus writes its headers, so that a user
//! can ask for a meter and a key (`sample --meter 6/8 --key Dmix`) without knowing the corpus's
//! format. The corpus's [`CorpusStyle`] is learnt from its tunes (the most common header
//! layout: field order, spacing after `X:`, constant comment lines) and can be saved beside a
//! model as `style.json`; [`plan`] turns it and the user's wishes into a [`Piece`] list: text
//! written for the model, and lines the model writes itself (the title, the source).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::judge::KeyName;
use super::music::Meter;
use super::parse::split_tunes;

/// The file beside a model's checkpoints that holds its corpus's style.
pub const STYLE_FILE: &str = "style.json";

/// What a corpus looks like to a tune writer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CorpusStyle {
    /// The most common header layout, one entry per line: `X: ` (a field letter, its colon and
    /// the spacing after it) or a whole comment line (`% Nottingham Music Database`).
    pub header: Vec<String>,
    /// Tunes per meter (`6/8`).
    pub meters: BTreeMap<String, usize>,
    /// Tunes per key (`G`, `Am`, `Dmix`).
    pub keys: BTreeMap<String, usize>,
    /// Per meter, tunes per unit note length their header gives (`1/8`; `""` for none, the
    /// standard's default): the corpus's 4/4 tunes may count in eighths and its 3/4 ones in
    /// quarters, and a header without the unit the model expects reads as the wrong one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub units: BTreeMap<String, BTreeMap<String, usize>>,
    /// Per meter, the most common header layout of the corpus's tunes in it (as `header`): the
    /// Nottingham 4/4 tunes are hornpipes with an `R:` line the jigs do not have, and a header
    /// without it reads to the model as something else.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layouts: BTreeMap<String, Vec<String>>,
}

/// One line of a header as a layout: a comment line whole, a field as its letter, colon and
/// following space (`X: ` and `X:` are different layouts).
fn layout(line: &str) -> Option<String> {
    let line = line.trim_end();
    if line.starts_with('%') {
        return Some(line.to_string());
    }
    let mut cs = line.chars();
    let (letter, colon) = (cs.next()?, cs.next()?);
    if !(letter.is_ascii_alphabetic() && colon == ':') {
        return None;
    }
    let space = if cs.next() == Some(' ') { " " } else { "" };
    Some(format!("{letter}:{space}"))
}

impl CorpusStyle {
    /// Learns the style of the ABC tunes in `texts` (tunes start at `X:` lines; text outside
    /// them is ignored). Reads headers only, so it costs little on any text.
    pub fn learn<'a>(texts: impl IntoIterator<Item = &'a str>) -> CorpusStyle {
        let mut layouts: HashMap<Vec<String>, usize> = HashMap::new();
        let mut per_meter: HashMap<String, HashMap<Vec<String>, usize>> = HashMap::new();
        let mut style = CorpusStyle::default();
        for text in texts {
            for tt in split_tunes(text) {
                if !tt.lines.first().is_some_and(|l| l.starts_with("X:")) {
                    continue;
                }
                let mut lines = Vec::new();
                let (mut meter, mut key, mut unit) = (None, None, None);
                let mut in_header = true;
                for l in &tt.lines {
                    let Some(shape) = layout(l) else { break };
                    let value = l.get(2..).unwrap_or("").trim();
                    // The meter of the first note: a body M: before any music overrides the
                    // header's (as the judge reads it).
                    match shape.chars().next() {
                        Some('M') => meter = Some(value.split_whitespace().collect::<String>()),
                        Some('K') if in_header => key = KeyName::parse(value).map(|k| k.name),
                        Some('L') if in_header => unit = Some(value.split_whitespace().collect::<String>()),
                        _ => {}
                    }
                    if in_header {
                        let is_key = shape.starts_with("K:");
                        lines.push(shape);
                        in_header = !is_key;
                    }
                }
                if !in_header {
                    if let Some(m) = &meter {
                        *per_meter.entry(m.clone()).or_default().entry(lines.clone()).or_default() += 1;
                    }
                    *layouts.entry(lines).or_default() += 1;
                    if let Some(m) = meter {
                        *style.units.entry(m.clone()).or_default().entry(unit.unwrap_or_default()).or_default() += 1;
                        *style.meters.entry(m).or_default() += 1;
                    }
                    if let Some(k) = key {
                        *style.keys.entry(k).or_default() += 1;
                    }
                }
            }
        }
        // The most common layout; ties go to the shorter, then the first in order.
        let most = |layouts: HashMap<Vec<String>, usize>| {
            layouts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.len().cmp(&a.0.len())).then(b.0.cmp(&a.0)))
                .map(|(l, _)| l)
                .unwrap_or_default()
        };
        style.header = most(layouts);
        style.layouts = per_meter.into_iter().map(|(m, l)| (m, most(l))).collect();
        style
    }

    /// The unit note length the corpus's tunes in `meter` most often give (`None` when most give
    /// none, or the meter is unknown); ties go to no line, then the first in order.
    pub fn unit(&self, meter: &str) -> Option<&str> {
        let units = self.units.get(meter)?;
        let (unit, _) = units.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.len().cmp(&a.0.len())).then(b.0.cmp(a.0)))?;
        (!unit.is_empty()).then_some(unit.as_str())
    }

    /// Whether any tune was seen.
    pub fn is_empty(&self) -> bool {
        self.header.is_empty()
    }

    /// Reads `style.json` from a model folder; `None` when there is none.
    pub fn read(dir: &std::path::Path) -> Result<Option<CorpusStyle>, String> {
        let path = dir.join(STYLE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("{}: not a corpus style file ({e}); delete it or write it again", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The style as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// A piece of the start of a tune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text written for the model.
    Text(String),
    /// A line the model writes itself, up to and including its newline.
    Line,
}

/// What the user asks for.
#[derive(Clone, Debug, Default)]
pub struct Wishes {
    /// `--meter`.
    pub meter: Option<String>,
    /// `--key`.
    pub key: Option<String>,
    /// `--title`.
    pub title: Option<String>,
}

/// The header layout used without a corpus style.
const PLAIN: [&str; 4] = ["X:", "T:", "M:", "K:"];

fn counts_line(m: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<(&String, &usize)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{k} ({n})")).collect::<Vec<_>>().join(", ")
}

/// The start of a tune for `wishes` in `style`'s layout (a plain `X:`, `T:`, `M:`, `K:` without
/// one), and warnings for a meter or key the corpus never uses. Errors name the flag.
pub fn plan(style: Option<&CorpusStyle>, wishes: &Wishes) -> Result<(Vec<Piece>, Vec<String>), String> {
    let mut warnings = Vec::new();
    let meter = match &wishes.meter {
        Some(m) => {
            let m = m.trim();
            Meter::parse(m).map_err(|e| format!("--meter {m}: {e}"))?;
            Some(m.split_whitespace().collect::<String>())
        }
        None => None,
    };
    let key = match &wishes.key {
        Some(k) => Some(
            KeyName::parse(k)
                .ok_or_else(|| format!("--key {k}: not a key; write a tonic and a mode, e.g. G, Am, Dmix, Edor, F#m"))?
                .name,
        ),
        None => None,
    };
    if let Some(t) = &wishes.title
        && (t.contains('\n') || t.trim().is_empty())
    {
        return Err("--title must be one non-empty line".into());
    }
    match style {
        Some(s) => {
            if let Some(m) = &meter
                && !s.meters.contains_key(m)
            {
                warnings.push(format!(
                    "the training corpus has no tune in {m}; its meters: {}; the model may not follow",
                    counts_line(&s.meters)
                ));
            }
            if let Some(k) = &key
                && !s.keys.contains_key(k)
            {
                warnings.push(format!(
                    "the training corpus has no tune in {k}; its keys: {}; the model may not follow",
                    counts_line(&s.keys)
                ));
            }
        }
        None if meter.is_some() || key.is_some() => warnings.push(
            "no corpus style known for this model (no style.json beside it, no --corpus): the header is written \
             plainly and the meter and key are not checked against the corpus"
                .into(),
        ),
        None => {}
    }
    // The layout of the corpus's tunes in the wished meter, else its most common one.
    let layout: Vec<String> = match style {
        Some(s) if !s.is_empty() => meter.as_ref().and_then(|m| s.layouts.get(m)).unwrap_or(&s.header).clone(),
        _ => PLAIN.iter().map(|s| s.to_string()).collect(),
    };
    let unit = meter.as_ref().and_then(|m| style.and_then(|s| s.unit(m)));
    // The unit the corpus's tunes in this meter give goes on the layout's L: line, or else on
    // the line after the meter's.
    let unit_line = layout.iter().any(|s| s.starts_with('L'));
    let meter_value = meter.as_ref().map(|m| match unit {
        Some(u) if !unit_line => format!("{m}\nL:{u}"),
        _ => m.clone(),
    });
    let mut pieces = Vec::new();
    let mut text = String::new();
    for shape in &layout {
        if shape.starts_with('%') {
            text.push_str(shape);
            text.push('\n');
            continue;
        }
        text.push_str(shape);
        let fixed = match shape.chars().next() {
            Some('X') => Some("1".to_string()),
            Some('T') => wishes.title.clone(),
            Some('M') => meter_value.clone(),
            Some('L') => unit.map(str::to_string),
            Some('K') => key.clone(),
            _ => None,
        };
        match fixed {
            Some(v) => {
                text.push_str(&v);
                text.push('\n');
            }
            None => {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Line);
            }
        }
    }
    // A layout without M: or K: lines still gets the wished ones, before its end.
    for (letter, v) in [('M', &meter_value), ('K', &key)] {
        if let Some(v) = v
            && !layout.iter().any(|s| s.starts_with(letter))
        {
            text.push_str(&format!("{letter}:{v}\n"));
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok((pieces, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = "X: 1\nT:One\n% Made here\nS:me\nM:6/8\nK:G\nGAB|\n\nX: 2\nT:Two\n% Made here\nS:you\nM:6/8\nK:Am\nABc|\n\n\
                          X: 3\nT:Three\nM:3/4\nK:D\nd2|\n";

    #[test]
    fn the_most_common_layout_and_the_counts() {
        let s = CorpusStyle::learn([CORPUS]);
        assert_eq!(s.header, vec!["X: ", "T:", "% Made here", "S:", "M:", "K:"]);
        assert_eq!(s.meters, BTreeMap::from([("6/8".to_string(), 2), ("3/4".to_string(), 1)]));
        assert_eq!(s.keys.get("Am"), Some(&1));
    }

    #[test]
    fn a_plan_writes_the_wished_fields_and_leaves_the_rest_to_the_model() {
        let s = CorpusStyle::learn([CORPUS]);
        let w = Wishes { meter: Some("6/8".into()), key: Some("D mix".into()), title: None };
        let (pieces, warnings) = plan(Some(&s), &w).unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::Text("X: 1\nT:".into()),
                Piece::Line,
                Piece::Text("% Made here\nS:".into()),
                Piece::Line,
                Piece::Text("M:6/8\nK:Dmix\n".into()),
            ]
        );
        // Dmix is not among the corpus's keys: a warning that names the ones it has.
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("Dmix") && warnings[0].contains("G (1)"), "{warnings:?}");
        let titled = Wishes { title: Some("New".into()), ..w };
        let (pieces, _) = plan(Some(&s), &titled).unwrap();
        assert_eq!(pieces[0], Piece::Text("X: 1\nT:New\n% Made here\nS:".into()));
        assert!(plan(Some(&s), &Wishes { meter: Some("6/0".into()), ..Default::default() }).is_err());
        assert!(plan(Some(&s), &Wishes { key: Some("H".into()), ..Default::default() }).is_err());
    }

    #[test]
    fn a_meter_gets_the_unit_its_corpus_tunes_give() {
        let corpus =
            format!("{CORPUS}\nX: 4\nT:Four\nM:3/4\nL:1/4\nK:D\nd2|\n\nX: 5\nT:Five\nM:3/4\nL: 1/4\nK:G\nG3|\n");
        let s = CorpusStyle::learn([corpus.as_str()]);
        // 3/4: two tunes in quarters against one without L:; 6/8: none gives one.
        assert_eq!(s.unit("3/4"), Some("1/4"));
        assert_eq!(s.unit("6/8"), None);
        assert_eq!(s.unit("2/4"), None, "a meter the corpus never uses");
        let wish = |m: &str| Wishes { meter: Some(m.into()), key: Some("G".into()), title: Some("N".into()) };
        let (pieces, _) = plan(Some(&s), &wish("3/4")).unwrap();
        // (In the layout of the corpus's 3/4 tunes: no comment or S: line.)
        assert_eq!(pieces.last(), Some(&Piece::Text("X: 1\nT:N\nM:3/4\nL:1/4\nK:G\n".into())));
        let (pieces, _) = plan(Some(&s), &wish("6/8")).unwrap();
        assert_eq!(pieces.last(), Some(&Piece::Text("M:6/8\nK:G\n".into())));
        // A layout without an M: line gets the unit after the meter it adds.
        let bare = CorpusStyle { header: vec!["X:".into(), "K:".into()], layouts: BTreeMap::new(), ..s.clone() };
        let (pieces, _) = plan(Some(&bare), &Wishes { key: None, ..wish("3/4") }).unwrap();
        assert_eq!(pieces.last(), Some(&Piece::Text("M:3/4\nL:1/4\n".into())));
        // A style file written before units were learnt still reads, and gives no L: line.
        let old: CorpusStyle = serde_json::from_str(r#"{"header":["X:","M:","K:"],"meters":{},"keys":{}}"#).unwrap();
        assert_eq!(old.unit("3/4"), None);
    }

    #[test]
    fn a_meter_gets_the_header_its_corpus_tunes_give() {
        // Two 4/4 hornpipes with a unit and an R: line the 6/8 tunes do not have.
        let corpus = format!(
            "{CORPUS}\nX: 4\nT:Four\n% Made here\nS:me\nM:4/4\nL:1/8\nR:Hornpipe\nK:D\nd2|\n\n\
             X: 5\nT:Five\n% Made here\nS:you\nM:4/4\nL:1/8\nR:Hornpipe\nK:G\nG3|\n"
        );
        let s = CorpusStyle::learn([corpus.as_str()]);
        assert_eq!(s.header, vec!["X: ", "T:", "% Made here", "S:", "M:", "K:"], "still the most common overall");
        assert_eq!(s.layouts["4/4"], vec!["X: ", "T:", "% Made here", "S:", "M:", "L:", "R:", "K:"]);
        assert_eq!(s.layouts["6/8"], s.header);
        let w = Wishes { meter: Some("4/4".into()), key: Some("D".into()), title: Some("N".into()) };
        let (pieces, _) = plan(Some(&s), &w).unwrap();
        // The unit goes on the layout's own L: line, once; the model writes the R: line.
        assert_eq!(
            pieces,
            vec![
                Piece::Text("X: 1\nT:N\n% Made here\nS:".into()),
                Piece::Line,
                Piece::Text("M:4/4\nL:1/8\nR:".into()),
                Piece::Line,
                Piece::Text("K:D\n".into()),
            ]
        );
        let (pieces, _) = plan(Some(&s), &Wishes { meter: Some("6/8".into()), ..w.clone() }).unwrap();
        assert_eq!(pieces.last(), Some(&Piece::Text("M:6/8\nK:D\n".into())));
        // Without a meter wished, the most common layout.
        let (pieces, _) = plan(Some(&s), &Wishes { meter: None, ..w }).unwrap();
        assert_eq!(pieces.last(), Some(&Piece::Text("K:D\n".into())));
        assert!(!pieces.iter().any(|p| matches!(p, Piece::Text(t) if t.contains("R:"))));
        // A style file written before layouts were learnt still reads.
        let old: CorpusStyle = serde_json::from_str(r#"{"header":["X:","M:","K:"],"meters":{},"keys":{}}"#).unwrap();
        assert!(old.layouts.is_empty());
    }
}
