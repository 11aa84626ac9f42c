//! `train --reflow` (`abc::reflow`) over every tune of the shared Nottingham files: a reflowed
//! tune reads back as the same music (the timeline compared here, apart from the module's own
//! check) and stays valid, its music lines hold at most four complete bars (or eight, with
//! `--line-bars 8`), and nearly every tune is reflowed.

mod common;
use folklstm::abc::frac::Frac;
use folklstm::abc::reflow::{BARS_PER_LINE, Layout, reflow_text};
use folklstm::abc::timeline::{self, StepKind, Timeline};
use folklstm::abc::{check_text, parse};
use std::collections::BTreeMap;

fn timeline_of(text: &str) -> Timeline {
    let tunes = parse::split_tunes(text);
    assert_eq!(tunes.len(), 1, "{text}");
    let (tune, problems) = parse::parse_lines(&tunes[0].lines, 1, 0);
    assert!(problems.is_empty(), "{problems:?} in\n{text}");
    timeline::build(&tune).0
}

/// Complete bars on each line of the tune's music, by the timeline's positions.
fn full_bars_per_line(tl: &Timeline) -> Vec<(usize, usize)> {
    let Some(mut full) = tl.meter.and_then(|m| m.bar) else { return Vec::new() };
    let mut time = Frac::ZERO;
    let mut per_line: Vec<(usize, usize)> = Vec::new();
    for s in &tl.steps {
        match &s.kind {
            StepKind::Sound { advance, .. } => time = time.checked_add(*advance).unwrap(),
            StepKind::Meter(m) => full = m.bar.unwrap_or(full),
            StepKind::Bar(_) => {
                let n = usize::from(time == full);
                match per_line.last_mut() {
                    Some((line, count)) if *line == s.pos.line => *count += n,
                    _ => per_line.push((s.pos.line, n)),
                }
                time = Frac::ZERO;
            }
            _ => {}
        }
    }
    per_line
}

/// Reflows every shared tune at `per_line` bars a line, checks each reflowed tune against the
/// original (still valid, the same timeline by an independent parse, no line over `per_line`
/// complete bars but where a numbered ending runs on) and returns the tunes reflowed and the
/// reflowed music lines counted by their complete bars; None without the shared files.
fn reflow_every_shared_tune(per_line: usize) -> Option<(usize, BTreeMap<usize, usize>)> {
    let files = common::shared_abc_files()?;
    let (mut tunes, mut reflowed, mut lines) = (0, 0, BTreeMap::new());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let r = reflow_text(&text, Layout { line_bars: per_line, ..Layout::default() });
        assert!(r.describe().contains(&format!("at {per_line} bars a line")), "{}", r.describe());
        reflowed += r.reflowed;
        let (old, new) = (parse::tune_starts(&text), parse::tune_starts(&r.text));
        assert_eq!(old.len(), new.len(), "{}: the tunes stay the tunes", f.display());
        for (k, (&a, &b)) in old.iter().zip(&new).enumerate() {
            let was = text[a..old.get(k + 1).copied().unwrap_or(text.len())].trim_end();
            let now = r.text[b..new.get(k + 1).copied().unwrap_or(r.text.len())].trim_end();
            if !check_text(was).iter().all(|t| t.valid) {
                assert_eq!(was, now, "{}: tune {k} is not valid and must be left as written", f.display());
                continue;
            }
            if was == now {
                // Already in this layout, or left as written (the module counts those).
                continue;
            }
            assert!(check_text(now).iter().all(|t| t.valid), "{}: tune {k} no longer valid:\n{now}", f.display());
            let kinds = |tl: &Timeline| tl.steps.iter().map(|s| s.kind.clone()).collect::<Vec<_>>();
            assert_eq!(kinds(&timeline_of(was)), kinds(&timeline_of(now)), "{}: tune {k}:\n{now}", f.display());
            for (_, n) in full_bars_per_line(&timeline_of(now)) {
                // An ending numbered on its bar line (`:|2`) cannot start a line: that line
                // runs on, by one bar at most in this corpus.
                assert!(n <= per_line + 1, "{}: tune {k}: a line of {n} bars:\n{now}", f.display());
                *lines.entry(n).or_insert(0) += 1;
            }
        }
        tunes += old.len();
    }
    assert_eq!(tunes, 534);
    Some((reflowed, lines))
}

#[test]
fn every_shared_tune_reflows_to_the_same_music_at_four_bars_a_line() {
    let Some((reflowed, by_bars)) = reflow_every_shared_tune(BARS_PER_LINE) else { return };
    let (lines, four) = (by_bars.values().sum::<usize>(), by_bars.get(&BARS_PER_LINE).copied().unwrap_or(0));
    let share = four as f64 / lines.max(1) as f64;
    eprintln!("{reflowed} of 534 tunes reflowed; {four} of {lines} music lines hold exactly 4 complete bars");
    common::note("reflow", &format!("{reflowed} of 534 reflowed; {share:.3} of lines at 4 bars"));
    // All but the invalid tunes (4 of 534, and one the module leaves for a free meter or a
    // changed timeline) are reflowed; most lines then hold exactly four bars (the rest end a
    // part early or hold a pickup's bar).
    assert!(reflowed >= 525, "only {reflowed} reflowed");
    assert!(share > 0.6, "{four} of {lines} lines at four bars");
}

#[test]
fn at_eight_bars_a_line_most_lines_are_a_whole_part() {
    let Some((reflowed, by_bars)) = reflow_every_shared_tune(8) else { return };
    let lines = by_bars.values().sum::<usize>();
    // A whole 8-bar part, or half of a 16-bar one: 8 complete bars, or 7 and the short bar that
    // completes a pickup, or 9 where a second ending written onto its bar line runs on.
    let part = (7..=9).map(|n| by_bars.get(&n).copied().unwrap_or(0)).sum::<usize>();
    let share = part as f64 / lines.max(1) as f64;
    eprintln!("{reflowed} of 534 tunes reflowed; music lines by complete bars: {by_bars:?}");
    common::note("reflow-8", &format!("{reflowed} of 534 reflowed; {share:.3} of lines at 7 to 9 bars"));
    assert!(reflowed >= 525, "only {reflowed} reflowed");
    // The corpus's parts are mostly 8 bars (777 of its 1,137 sections by the judge's count)
    // or 16 (184: two lines), so most lines are a part or half of one; at four bars a line
    // none would be.
    assert!(share > 0.6, "{part} of {lines} lines at 7 to 9 bars: {by_bars:?}");
}

#[test]
fn labelled_parts_are_the_parts_the_judge_counts_and_promise_what_the_body_delivers() {
    use folklstm::abc::judge::read_tunes;
    let Some(files) = common::shared_abc_files() else { return };
    let (mut tunes, mut labelled, mut had) = (0, 0, 0);
    let mut unlabelled = std::collections::BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let (plain, marked) = (
            reflow_text(&text, Layout::default()),
            reflow_text(&text, Layout { label_parts: true, ..Layout::default() }),
        );
        assert_eq!(plain.reflowed, marked.reflowed, "{}: labelling reflows the same tunes", f.display());
        labelled += marked.labelled;
        had += marked.had_labels;
        for (k, n) in &marked.unlabelled {
            *unlabelled.entry(*k).or_insert(0) += n;
        }
        let (before, after) = (read_tunes(&plain.text), read_tunes(&marked.text));
        assert_eq!(before.len(), after.len(), "{}", f.display());
        let mut here = 0;
        for (b, a) in before.iter().zip(&after) {
            let bars = |v: &folklstm::abc::judge::Features| v.sections.iter().map(|s| s.bars).collect::<Vec<_>>();
            // Labels move no part: the judge counts the same parts with the same bars, and the
            // verdict stays the one the reflowed tune had.
            assert_eq!(bars(b), bars(a), "{}: {}", f.display(), a.name());
            assert_eq!(b.valid, a.valid, "{}: {}", f.display(), a.name());
            if b.promised_order.is_none() && a.promised_order.is_some() {
                here += 1;
                // A labelled tune names its parts A, B, C ... in written order and keeps its promise.
                let letters: String = a.sections.iter().map(|s| s.label.clone()).collect();
                assert_eq!(a.promised_order.as_deref(), Some(letters.as_str()), "{}: {}", f.display(), a.name());
                assert_eq!(a.order_delivered, Some(true), "{}: {}", f.display(), a.name());
                assert!(a.valid, "{}: {}", f.display(), a.name());
            }
        }
        assert_eq!(here, marked.labelled, "{}: the tunes counted as labelled are those that gained a Y:", f.display());
        tunes += before.len();
    }
    eprintln!("{labelled} of {tunes} tunes labelled, {had} had labels, left unlabelled: {unlabelled:?}");
    common::note("label-parts", &format!("{labelled} labelled, {had} had labels, {unlabelled:?} left"));
    // 224 of the 534 name their parts already; nearly all the rest can be labelled.
    assert_eq!(tunes, 534);
    assert!(labelled + had >= 500, "{labelled} labelled, {had} had labels");
}

/// Every shared tune reflowed and labelled, then marked as `marks` says: each marked tune is the
/// same music with only spaces beside bar lines added, and the guide accepts every character of
/// a valid one. (marked tunes, tunes, music lines changed, music lines) of the marked tunes, or
/// None without the shared files.
fn marked_are_the_same_music(marks: Layout) -> Option<(usize, usize, usize, usize)> {
    use folklstm::abc::guide::Guide;
    use folklstm::abc::judge::read_tunes;
    let files = common::shared_abc_files()?;
    let (mut tunes, mut marked_tunes, mut lines, mut changed) = (0, 0, 0, 0);
    let labelled = Layout { label_parts: true, ..Layout::default() };
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let (plain, marked) = (reflow_text(&text, labelled), reflow_text(&text, Layout { label_parts: true, ..marks }));
        assert!(marked.unmarked.is_empty(), "{}: {}", f.display(), marked.describe());
        marked_tunes += marked.marked;
        let (before, after) = (read_tunes(&plain.text), read_tunes(&marked.text));
        assert_eq!(before.len(), after.len(), "{}", f.display());
        for (b, a) in before.iter().zip(&after) {
            // The same verdict, parts and bars by the judge's own reading.
            let bars = |v: &folklstm::abc::judge::Features| v.sections.iter().map(|s| s.bars).collect::<Vec<_>>();
            assert_eq!((b.valid, bars(b)), (a.valid, bars(a)), "{}: {}", f.display(), a.name());
        }
        let (old, new) = (parse::tune_starts(&plain.text), parse::tune_starts(&marked.text));
        for (k, (&a, &b)) in old.iter().zip(&new).enumerate() {
            let was = plain.text[a..old.get(k + 1).copied().unwrap_or(plain.text.len())].trim_end();
            let now = marked.text[b..new.get(k + 1).copied().unwrap_or(marked.text.len())].trim_end();
            tunes += 1;
            if was == now {
                continue;
            }
            // Only spaces beside bar lines were added: without the spaces next to a `|` or `:`
            // the texts are one, line for line, and the timelines are step for step the same.
            let squeeze = |t: &str| {
                let c: Vec<char> = t.chars().collect();
                let bar = |k: Option<&char>| k.is_some_and(|ch| matches!(ch, '|' | ':'));
                (0..c.len())
                    .filter(|&k| c[k] != ' ' || !(bar(k.checked_sub(1).and_then(|j| c.get(j))) || bar(c.get(k + 1))))
                    .map(|k| c[k])
                    .collect::<String>()
            };
            assert_eq!(squeeze(was), squeeze(now), "{}: tune {k}", f.display());
            let kinds = |tl: &Timeline| tl.steps.iter().map(|s| s.kind.clone()).collect::<Vec<_>>();
            assert_eq!(kinds(&timeline_of(was)), kinds(&timeline_of(now)), "{}: tune {k}:\n{now}", f.display());
            for (x, y) in was.lines().zip(now.lines()) {
                let field = x.len() > 1 && x.as_bytes()[0].is_ascii_alphabetic() && x.as_bytes()[1] == b':';
                if x.trim().is_empty() || x.starts_with('%') || field {
                    continue;
                }
                lines += 1;
                changed += usize::from(x != y);
            }
            // Guided sampling may write every character of a marked valid tune.
            if check_text(now).iter().all(|t| t.valid) {
                let mut g = Guide::new();
                let body = format!("{now}\n");
                let refused = body.char_indices().find(|&(_, c)| !g.push(c));
                assert!(refused.is_none(), "{}: tune {k}: the guide refuses {refused:?}:\n{now}", f.display());
                assert!(g.may_end(), "{}: tune {k}", f.display());
            }
        }
    }
    Some((marked_tunes, tunes, changed, lines))
}

#[test]
fn marked_lines_are_the_same_music_and_the_guide_can_write_them() {
    let marks = Layout { mark_lines: true, ..Layout::default() };
    let Some((marked_tunes, tunes, changed, lines)) = marked_are_the_same_music(marks) else { return };
    eprintln!("{marked_tunes} of {tunes} tunes marked; {changed} of their {lines} music lines changed");
    common::note("mark-lines", &format!("{marked_tunes} of {tunes} marked; {changed} of {lines} music lines changed"));
    assert_eq!(tunes, 534);
    // Nearly every reflowed tune has a part of two lines or more, and about every second music
    // line of a marked tune is a part's second or fourth line (a line of its own for a part of
    // one line, or a bar line only at a line's ends, stays as it was).
    assert!(marked_tunes >= 500, "{marked_tunes} marked");
    assert!(changed * 10 >= lines * 4 && changed * 10 <= lines * 6, "{changed} of {lines} music lines changed");
}

#[test]
fn marked_last_parts_are_the_same_music_and_the_guide_can_write_them() {
    let marks = Layout { mark_lines: true, mark_last: true, ..Layout::default() };
    let Some((marked_tunes, tunes, changed, lines)) = marked_are_the_same_music(marks) else { return };
    common::note("mark-last", &format!("{marked_tunes} of {tunes} marked; {changed} of {lines} music lines changed"));
    assert_eq!(tunes, 534);
    // Every reflowed tune has a last part with a bar line inside a line, and the second lines of
    // the other parts change as well: three lines in four or more of a two-part tune change
    // (all of the last part's, half of the rest).
    assert!(marked_tunes >= 520, "{marked_tunes} marked");
    assert!(changed * 10 >= lines * 7, "{changed} of {lines} music lines changed");
}

/// `train --restate-key` over every shared tune (reflowed, labelled, marked as run v's recipe
/// marks them): the restated text is the marked text with `K:` lines added, each on the line
/// after a part label and each the key in force there; the judge reads the same verdict, parts,
/// key and ending; and the guide, keeping the header's key as `sample --key` does, accepts
/// every character of every valid restated tune.
#[test]
fn restated_keys_change_no_music_and_the_guide_can_write_them() {
    use folklstm::abc::guide::Guide;
    use folklstm::abc::judge::read_tunes;
    let Some(files) = common::shared_abc_files() else { return };
    let marks = Layout { label_parts: true, mark_lines: true, mark_last: true, ..Layout::default() };
    let (mut tunes, mut restated, mut added, mut labels_after_first, mut kept_key) = (0, 0, 0, 0, 0);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let (plain, keyed) = (reflow_text(&text, marks), reflow_text(&text, Layout { restate_key: true, ..marks }));
        assert!(keyed.unrestated.is_empty(), "{}: {}", f.display(), keyed.describe());
        restated += keyed.restated;
        let (before, after) = (read_tunes(&plain.text), read_tunes(&keyed.text));
        assert_eq!(before.len(), after.len(), "{}", f.display());
        for (b, a) in before.iter().zip(&after) {
            let bars = |v: &folklstm::abc::judge::Features| v.sections.iter().map(|s| s.bars).collect::<Vec<_>>();
            assert_eq!(
                (b.valid, bars(b), &b.key, b.ends_on_tonic, &b.form),
                (a.valid, bars(a), &a.key, a.ends_on_tonic, &a.form),
                "{}: {}",
                f.display(),
                a.name()
            );
        }
        let (old, new) = (parse::tune_starts(&plain.text), parse::tune_starts(&keyed.text));
        for (k, (&a, &b)) in old.iter().zip(&new).enumerate() {
            let was = plain.text[a..old.get(k + 1).copied().unwrap_or(plain.text.len())].trim_end();
            let now = keyed.text[b..new.get(k + 1).copied().unwrap_or(keyed.text.len())].trim_end();
            tunes += 1;
            // Walk both texts line by line: a line only `now` has is a K: line after a P: line,
            // restating the last K: line above it.
            let (was_lines, now_lines): (Vec<&str>, Vec<&str>) = (was.lines().collect(), now.lines().collect());
            let (mut j, mut key) = (0, None);
            for (i, line) in now_lines.iter().enumerate() {
                if was_lines.get(j) == Some(line) {
                    j += 1;
                    if line.starts_with("K:") {
                        key = Some(*line);
                    }
                    // A label with a K: line beside it in the marked text has its key written.
                    let beside = |l: Option<&&str>| l.is_some_and(|l| l.starts_with("K:"));
                    if line.starts_with("P:")
                        && key.is_some()
                        && !beside(was_lines.get(j.wrapping_sub(2)))
                        && !beside(was_lines.get(j))
                    {
                        labels_after_first += usize::from(check_text(was).iter().all(|t| t.valid));
                    }
                    continue;
                }
                assert!(
                    i > 0 && now_lines[i - 1].starts_with("P:"),
                    "{}: tune {k}: {line:?} added:\n{now}",
                    f.display()
                );
                assert_eq!(Some(*line), key, "{}: tune {k}: the key in force is restated:\n{now}", f.display());
                added += 1;
            }
            assert_eq!(j, was_lines.len(), "{}: tune {k}: every line kept:\n{now}", f.display());
            if was != now {
                // The timeline is the marked tune's with only key steps added.
                let kinds = |tl: &Timeline| {
                    tl.steps
                        .iter()
                        .filter(|s| !matches!(s.kind, StepKind::Key(_)))
                        .map(|s| s.kind.clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(kinds(&timeline_of(was)), kinds(&timeline_of(now)), "{}: tune {k}:\n{now}", f.display());
            }
            if check_text(now).iter().all(|t| t.valid) {
                // Keeping the key where the tune never changes it (many change the meter).
                let one_key = now_lines.iter().filter(|l| l.starts_with("K:")).all(|l| Some(*l) == key);
                for g in [Guide::new(), Guide::new().keep_header(false, one_key)] {
                    let mut g = g;
                    let body = format!("{now}\n");
                    let refused = body.char_indices().find(|&(_, c)| !g.push(c));
                    assert!(refused.is_none(), "{}: tune {k}: the guide refuses {refused:?}:\n{now}", f.display());
                    assert!(g.may_end(), "{}: tune {k}", f.display());
                }
                kept_key += usize::from(one_key);
            }
        }
    }
    eprintln!(
        "{restated} of {tunes} tunes restated, {added} K: lines added for {labels_after_first} later labels; \
         {kept_key} valid tunes of one key written with the key kept"
    );
    common::note("restate-key", &format!("{restated} of {tunes} restated; {added} K: lines"));
    assert_eq!(tunes, 534);
    // Every labelled tune of two parts or more gets its key restated (about 500 of the 534 are
    // labelled; some have one part), and every label after the first of a valid tune gets a line.
    assert!(restated >= 400, "{restated} restated");
    assert_eq!(added, labels_after_first);
    assert!(kept_key >= 450, "{kept_key} written with the key kept");
}
