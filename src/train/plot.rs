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

/// Draws the training and validation loss against the optimizer step into `svg`, on a linear
/// loss axis; see [`plot_losses_with`].
pub fn plot_losses(csv_path: &Path, svg: &Path) -> Result<()> {
    plot_losses_with(csv_path, svg, false)
}

/// Draws the training and validation loss against the optimizer step into `svg`: lines with a
/// marker at every logged point (so that a single validation is visible), integer step ticks,
/// and with `log_scale` a logarithmic loss axis (where the late, small improvements show; a
/// linear one is used anyway if a loss is not positive).
pub fn plot_losses_with(csv_path: &Path, svg: &Path, log_scale: bool) -> Result<()> {
    let csv = std::fs::read_to_string(csv_path).map_err(|e| Error::Load {
        path: csv_path.to_path_buf(),
        message: e.to_string(),
    })?;
    let (train, valid) = read_curves(&csv);
    let err = |e: String| Error::Save {
        path: svg.to_path_buf(),
        message: e,
    };
    let (mut x_max, mut y_min, mut y_max) = (1u64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in train.iter().chain(&valid) {
        x_max = x_max.max(x as u64);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let root = SVGBackend::new(svg, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    macro_rules! builder {
        () => {
            ChartBuilder::on(&root)
                .caption("loss", ("sans-serif", 22))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(60)
        };
    }
    // Steps are integers: an integer axis puts its ticks on whole steps.
    let to_int = |c: &Curve| -> Vec<(u64, f64)> { c.iter().map(|&(x, y)| (x as u64, y)).collect() };
    let series = [("train", to_int(&train), BLUE), ("valid", to_int(&valid), RED)];
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("optimizer step")
                .y_desc(if log_scale && y_min > 0.0 {
                    "loss (nats, log scale)"
                } else {
                    "loss (nats)"
                })
                .draw()
                .map_err(|e| err(e.to_string()))?;
            for (name, points, color) in series {
                if points.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(|e| err(e.to_string()))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                chart
                    .draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| err(e.to_string()))?;
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }};
    }
    if log_scale && y_min > 0.0 {
        let range = (y_min * 0.95..y_max * 1.05).log_scale();
        draw!(
            builder!()
                .build_cartesian_2d(0..x_max, range)
                .map_err(|e| err(e.to_string()))?
        );
    } else {
        let pad = ((y_max - y_min) * 0.05).max(1e-3);
        draw!(
            builder!()
                .build_cartesian_2d(0..x_max, (y_min - pad)..(y_max + pad))
                .map_err(|e| err(e.to_string()))?
        );
    }
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

    /// A single validation point gets a marker; step ticks are whole numbers; the log axis
    /// draws, and falls back to linear for a non-positive loss.
    #[test]
    fn the_plot_marks_points_on_integer_steps() {
        let dir = std::env::temp_dir().join(format!("ember-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("metrics.csv");
        std::fs::write(
            &csv,
            "header\ntrain,1,0,3.0\ntrain,2,0,2.0\ntrain,3,0,1.5\nvalid,3,0,1.7\n",
        )
        .unwrap();
        for log in [false, true] {
            let svg = dir.join(format!("loss-{log}.svg"));
            plot_losses_with(&csv, &svg, log).unwrap();
            let text = std::fs::read_to_string(&svg).unwrap();
            // Four points, four markers (the lone validation point included).
            assert_eq!(text.matches("<circle").count(), 4, "log {log}: {text}");
            assert!(
                !text.contains(">2.5<") && !text.contains(">0.5<"),
                "fractional step tick"
            );
            assert_eq!(text.contains("log scale"), log);
        }
        std::fs::write(&csv, "header\ntrain,1,0,0.0\ntrain,2,0,-1.0\n").unwrap();
        let svg = dir.join("loss-neg.svg");
        plot_losses_with(&csv, &svg, true).unwrap();
        assert!(!std::fs::read_to_string(&svg).unwrap().contains("log scale"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
