//! Loss and accuracy curves from `training_log.csv`, drawn as SVG with `plotters`.

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// One row of the training log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogRow {
    /// Epoch number.
    pub epoch: u32,
    /// Training loss (nats/char).
    pub loss: f64,
    /// Training accuracy.
    pub acc: f64,
    /// Validation loss, when there was a validation split.
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_acc: Option<f64>,
}

/// Reads `training_log.csv`. When an epoch appears twice (a run resumed from an earlier
/// checkpoint), the later row wins.
pub fn read_log(path: &Path) -> Result<Vec<LogRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |line: usize, why: &str| Error::Config(format!("{}:{line}: {why}", path.display()));
    let mut rows: Vec<LogRow> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 5 {
            return Err(bad(i + 1, "expected epoch,loss,acc,val_loss,val_acc,..."));
        }
        let num = |s: &str| s.trim().parse::<f64>().map_err(|_| bad(i + 1, &format!("{s:?} is not a number")));
        let opt = |s: &str| {
            if s.trim().is_empty() { Ok(None) } else { num(s).map(Some) }
        };
        let row = LogRow {
            epoch: f[0].trim().parse().map_err(|_| bad(i + 1, "bad epoch"))?,
            loss: num(f[1])?,
            acc: num(f[2])?,
            val_loss: opt(f[3])?,
            val_acc: opt(f[4])?,
        };
        rows.retain(|r| r.epoch != row.epoch);
        rows.push(row);
    }
    rows.sort_by_key(|r| r.epoch);
    Ok(rows)
}

/// Draws loss (left) and accuracy (right) against epoch into an SVG file.
pub fn plot_log(rows: &[LogRow], out: &Path, title: &str) -> Result<()> {
    if rows.is_empty() {
        return Err(Error::Config("the training log has no rows to plot".into()));
    }
    let err = |e: &dyn std::fmt::Display| Error::Config(format!("cannot draw {}: {e}", out.display()));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(|e| err(&e))?;
        let (left, right) = root.split_horizontally(480);
        let last = rows.last().map_or(1, |r| r.epoch).max(1) as f64;
        let max_loss = rows.iter().flat_map(|r| [Some(r.loss), r.val_loss]).flatten().fold(0.0, f64::max) * 1.05;
        type Series = (fn(&LogRow) -> f64, fn(&LogRow) -> Option<f64>);
        let panels: [(_, &str, f64, Series); 2] = [
            (left, "loss (nats/char)", max_loss.max(1e-3), (|r| r.loss, |r| r.val_loss)),
            (right, "accuracy", 1.0, (|r| r.acc, |r| r.val_acc)),
        ];
        for (area, name, top, (train, val)) in panels {
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(48)
                .build_cartesian_2d(0.0..last, 0.0..top)
                .map_err(|e| err(&e))?;
            chart.configure_mesh().x_desc("epoch").y_desc(name).draw().map_err(|e| err(&e))?;
            chart
                .draw_series(LineSeries::new(rows.iter().map(|r| (r.epoch as f64, train(r))), &BLUE))
                .map_err(|e| err(&e))?
                .label("training")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
            if rows.iter().any(|r| val(r).is_some()) {
                chart
                    .draw_series(LineSeries::new(rows.iter().filter_map(|r| Some((r.epoch as f64, val(r)?))), &RED))
                    .map_err(|e| err(&e))?
                    .label("validation")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(crate::files::write_atomic(out, svg.as_bytes())?)
}
