//! The loss curves of a run as an SVG, from its `metrics.csv`.

use std::path::Path;

use plotters::prelude::*;

use crate::{Error, Result};

/// `(step, loss)` points.
pub(crate) type Curve = Vec<(f64, f64)>;

/// Reads `(split, step, loss)` from a `metrics.csv` written by the trainer; a step logged twice
/// (a run resumed from an earlier checkpoint) keeps its last value.
pub(crate) fn read_curves(csv: &str) -> (Curve, Curve) {
    let mut train = std::collections::BTreeMap::new();
    let mut valid = std::collections::BTreeMap::new();
    for line in csv.lines().skip(1) {
        let mut fields = line.split(',');
        let (Some(split), Some(step), Some(_epoch), Some(loss)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(step), Ok(loss)) = (step.parse::<u64>(), loss.parse::<f64>()) else {
            continue;
        };
        if !loss.is_finite() {
            continue;
        }
        match split {
            "train" => train.insert(step, loss),
            "valid" => valid.insert(step, loss),
            _ => None,
        };
    }
    let pts = |m: std::collections::BTreeMap<u64, f64>| m.into_iter().map(|(s, l)| (s as f64, l)).collect();
    (pts(train), pts(valid))
}

/// Draws the training and validation loss against the optimizer step into `svg`.
pub fn plot_losses(csv_path: &Path, svg: &Path) -> Result<()> {
    let csv = std::fs::read_to_string(csv_path).map_err(|e| Error::Load {
        path: csv_path.to_path_buf(),
        message: e.to_string(),
    })?;
    let (train, valid) = read_curves(&csv);
    let err = |e: String| Error::Save {
        path: svg.to_path_buf(),
        message: e,
    };
    let all = train.iter().chain(&valid);
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-3);
    let root = SVGBackend::new(svg, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("loss", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("optimizer step")
        .y_desc("loss (nats)")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (name, points, color) in [("train", train, BLUE), ("valid", valid, RED)] {
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_keep_the_last_value_of_a_repeated_step() {
        let csv =
            "header\ntrain,10,0,2.0,,,,,,,,\ntrain,20,0,1.5\nvalid,20,0,1.7\ntrain,20,0,1.4\ntrain,x,0,1\n";
        let (t, v) = read_curves(csv);
        assert_eq!(t, vec![(10.0, 2.0), (20.0, 1.4)]);
        assert_eq!(v, vec![(20.0, 1.7)]);
    }
}
