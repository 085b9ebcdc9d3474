//! The plots a Maelstrom user looks at, written next to `results.json`:
//!
//! - `latency.png` / `latency.svg`: every operation's latency against the time it completed, one
//!   colour per operation and outcome (ok, fail, info), on a log scale;
//! - `rate.png` / `rate.svg`: per second, operations completed ok, acknowledged sends and records
//!   delivered to consumers.
//!
//! Both shade the windows during which the nemesis had the network cut. Drawn with `plotters`;
//! text needs a TrueType font, found at run time (`KGROUPS_LAB_FONT`, else fontconfig's
//! `sans-serif`, else the usual DejaVu and Liberation paths). Without one, no plot is written and
//! the lab says why.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::checker::kafka::OpType;
use crate::sync::OnceLock;
use crate::workload::Sample;

/// Pixels of each plot.
const SIZE: (u32, u32) = (1200, 600);

/// At most this many ok points per operation on the latency plot (a long run is thinned evenly;
/// every fail and info is kept).
const MAX_POINTS: usize = 20_000;

/// The windows with the network cut, for the shading: (from, to) in seconds.
pub type Windows = [(f64, f64)];

/// What the plots mark besides the operations: when the main phase ended (the time limit; the
/// final reads follow) and the windows with the network cut.
#[derive(Debug, Clone, Copy)]
pub struct Marks<'a> {
    /// The end of the main phase, in seconds since the workload started.
    pub main_end_s: f64,
    /// The cut windows.
    pub cuts: &'a Windows,
}

/// Writes the plots of a run into `dir`; returns their paths, or why there are none.
pub fn write(dir: &Path, samples: &[Sample], marks: Marks<'_>) -> Result<Vec<PathBuf>, String> {
    font()?;
    let mut written = Vec::new();
    for plot in [Plot::Latency, Plot::Rate] {
        let name = plot.name();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            plot.draw(&root, samples, marks)
                .map_err(|e| format!("drawing {name}.svg: {e}"))?;
        }
        let svg_path = dir.join(format!("{name}.svg"));
        std::fs::write(&svg_path, svg).map_err(|e| format!("{}: {e}", svg_path.display()))?;
        let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            plot.draw(&root, samples, marks)
                .map_err(|e| format!("drawing {name}.png: {e}"))?;
        }
        let png_path = dir.join(format!("{name}.png"));
        write_png(&png_path, &rgb).map_err(|e| format!("{}: {e}", png_path.display()))?;
        written.push(png_path);
        written.push(svg_path);
    }
    Ok(written)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The plots.
#[derive(Debug, Clone, Copy)]
enum Plot {
    Latency,
    Rate,
}

impl Plot {
    fn name(self) -> &'static str {
        match self {
            Plot::Latency => "latency",
            Plot::Rate => "rate",
        }
    }

    /// Draws the plot on `root`, of any backend, and presents it.
    fn draw<DB: DrawingBackend>(
        self,
        root: &DrawingArea<DB, Shift>,
        samples: &[Sample],
        marks: Marks<'_>,
    ) -> DrawResult<DB> {
        match self {
            Plot::Latency => latency(root, samples, marks)?,
            Plot::Rate => rate(root, samples, marks)?,
        }
        root.present()
    }
}

/// Encodes an RGB buffer of [`SIZE`] as a PNG file.
fn write_png(path: &Path, rgb: &[u8]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), SIZE.0, SIZE.1);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| e.to_string())?;
    w.write_image_data(rgb).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())
}

/// Registers a TrueType font as `sans-serif`, once per process.
fn font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = font_path().ok_or_else(|| {
            "no TrueType font found: set KGROUPS_LAB_FONT to a .ttf file, or install one \
             (Debian: fonts-dejavu-core)"
                .to_string()
        })?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        // The font lives as long as the process: plotters keeps a `'static` reference to it.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a TrueType font", path.display()))
    })
    .clone()
}

/// Where a TrueType font is: `KGROUPS_LAB_FONT`, fontconfig's `sans-serif`, or a usual path.
fn font_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KGROUPS_LAB_FONT") {
        return Some(PathBuf::from(p));
    }
    let fc = std::process::Command::new("fc-match")
        .args(["-f", "%{file}", "sans-serif:style=Regular"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ttf")) && p.is_file());
    fc.or_else(|| {
        [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    })
}

/// The end of the time axis: the last completion (at least 1 s).
fn t_max(samples: &[Sample], marks: Marks<'_>) -> f64 {
    samples
        .iter()
        .map(|s| s.complete_s)
        .chain(marks.cuts.iter().map(|c| c.1))
        .chain(std::iter::once(marks.main_end_s))
        .fold(1.0, f64::max)
}

/// Shades the cut windows over the whole height `[lo, hi]`, and draws the end of the main phase.
fn shade<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    marks: Marks<'_>,
    (lo, hi): (f64, f64),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let band = RGBColor(255, 170, 170).mix(0.35).filled();
    let mut first = true;
    for &(a, b) in marks.cuts {
        let s = chart.draw_series(std::iter::once(Rectangle::new([(a, lo), (b, hi)], band)))?;
        if first {
            s.label("network cut (nemesis)")
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], band));
            first = false;
        }
    }
    let end = marks.main_end_s;
    let grey = RGBColor(90, 90, 90).stroke_width(2);
    chart
        .draw_series(std::iter::once(PathElement::new(
            [(end, lo), (end, hi)],
            grey,
        )))?
        .label("time limit: final reads after")
        .legend(move |(x, y)| PathElement::new([(x + 7, y - 6), (x + 7, y + 6)], grey));
    Ok(())
}

/// The colour of an operation and its outcome.
fn color(op: &str, typ: OpType) -> RGBColor {
    let base = match op {
        "send" => (31, 119, 180),
        "poll" => (44, 160, 44),
        "commit" => (148, 103, 189),
        "subscribe" => (23, 190, 207),
        "unsubscribe" => (140, 86, 75),
        "assign" => (188, 189, 34),
        _ => (127, 127, 127),
    };
    match typ {
        OpType::Ok => RGBColor(base.0, base.1, base.2),
        OpType::Fail => RGBColor(255, 127, 14),
        OpType::Info => RGBColor(214, 39, 40),
    }
}

fn outcome(typ: OpType) -> &'static str {
    match typ {
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info => "info",
    }
}

/// Latency of every operation over time, per operation and outcome.
fn latency<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    samples: &[Sample],
    marks: Marks<'_>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let x_max = t_max(samples, marks);
    let lat = |s: &Sample| s.latency_ms().max(0.001);
    let y_max = samples.iter().map(lat).fold(1.0, f64::max) * 2.0;
    let y_min = samples.iter().map(lat).fold(y_max, f64::min).max(0.001) / 2.0;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "latency per operation and outcome (ms, log scale)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time since the workload started (s)")
        .y_desc("latency (ms)")
        .draw()?;
    shade(&mut chart, marks, (y_min, y_max))?;
    let mut kinds: Vec<(&str, OpType)> = samples.iter().map(|s| (s.op, s.typ)).collect();
    kinds.sort_by_key(|&(op, t)| (op, t as u8));
    kinds.dedup();
    for (op, typ) in kinds {
        let all: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.op == op && s.typ == typ && s.op != "crash")
            .collect();
        if all.is_empty() {
            continue;
        }
        let step = if typ == OpType::Ok {
            all.len().div_ceil(MAX_POINTS)
        } else {
            1
        };
        let c = color(op, typ);
        let points = all
            .into_iter()
            .step_by(step)
            .map(|s| (s.complete_s, lat(s)));
        let series = match typ {
            OpType::Ok => {
                chart.draw_series(points.map(|p| Circle::new(p, 2, c.mix(0.6).filled())))?
            }
            _ => chart.draw_series(points.map(|p| Cross::new(p, 4, c.stroke_width(2))))?,
        };
        series
            .label(format!("{op} {}", outcome(typ)))
            .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Per second: operations completed ok, acknowledged sends, records delivered; counted in
/// buckets of a second (longer in a long run: about 60 buckets), each drawn at its middle.
fn rate<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    samples: &[Sample],
    marks: Marks<'_>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let x_max = t_max(samples, marks);
    let width = (x_max / 60.0).ceil().max(1.0);
    let buckets = (x_max / width).ceil() as usize + 1;
    let mut ok = vec![0f64; buckets];
    let mut sends = vec![0f64; buckets];
    let mut records = vec![0f64; buckets];
    for s in samples.iter().filter(|s| s.typ == OpType::Ok) {
        let b = ((s.complete_s.max(0.0) / width) as usize).min(buckets - 1);
        ok[b] += 1.0 / width;
        if s.op == "send" {
            sends[b] += 1.0 / width;
        }
        records[b] += f64::from(s.records) / width;
    }
    let y_max = ok.iter().chain(&records).fold(1.0f64, |a, &b| a.max(b)) * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption("throughput per second", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time since the workload started (s)")
        .y_desc("per second")
        .draw()?;
    shade(&mut chart, marks, (0.0, y_max))?;
    for (name, series, c) in [
        ("ok operations/s", &ok, RGBColor(31, 119, 180)),
        ("acknowledged sends/s", &sends, RGBColor(255, 127, 14)),
        ("records delivered/s", &records, RGBColor(44, 160, 44)),
    ] {
        if series.iter().all(|&v| v == 0.0) {
            continue;
        }
        let points = series
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i as f64 + 0.5) * width, v));
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
