//! Charts of the driver's reports, as SVG files: `starling-bench chart
//! --input results.json --out docs/` draws fan-out throughput against
//! follower count (beside the raw baseline), home-page read latency, and
//! durable post acknowledgement latency. `scripts/bench` gathers the input
//! from the `fanout` and `latency` subcommands and calls this.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Deserialize;

use crate::latency::Percentiles;

/// What `scripts/bench` gathers: `fanout --json` reports (one per run and
/// follower count) and one `latency --json` report.
#[derive(Debug, Deserialize)]
pub(crate) struct Results {
    /// Cores of the machine that ran the workloads, named in the captions.
    pub(crate) cores: Option<u32>,
    /// Fan-out reports, one per run and follower count.
    pub(crate) fanout: Vec<FanoutPoint>,
    /// The latency report.
    pub(crate) latency: LatencyResults,
}

/// The fields of a fan-out report the chart draws.
#[derive(Debug, Deserialize)]
pub(crate) struct FanoutPoint {
    pub(crate) followers: u64,
    pub(crate) entries_per_sec: f64,
    pub(crate) baseline_entries_per_sec: f64,
}

/// The latency report, as `latency --json` prints it.
#[derive(Debug, Deserialize)]
pub(crate) struct LatencyResults {
    pub(crate) post_ack_1_posters: Percentiles,
    pub(crate) baseline_synced_write_1_threads: Percentiles,
    pub(crate) post_ack_8_posters: Percentiles,
    pub(crate) baseline_synced_write_8_threads: Percentiles,
    pub(crate) home_50_0_pulled: Percentiles,
    pub(crate) home_50_20_pulled: Percentiles,
}

/// The files [`write_all`] writes, in the order it writes them.
pub(crate) const FILES: [&str; 3] = ["fanout.svg", "home-latency.svg", "post-ack.svg"];

const WIDTH: u32 = 860;
const HEIGHT: u32 = 500;
const FONT: &str = "sans-serif";
const ENGINE: RGBColor = RGBColor(31, 119, 180);
const ENGINE_LIGHT: RGBColor = RGBColor(140, 190, 230);
const BASELINE: RGBColor = RGBColor(230, 120, 20);
const BASELINE_LIGHT: RGBColor = RGBColor(245, 190, 130);

/// Reads `input` and writes every chart into `out` (created if missing).
pub(crate) fn write_all(input: &Path, out: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let results: Results =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", input.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let charts = [
        fanout_svg(&results)?,
        home_latency_svg(&results)?,
        post_ack_svg(&results)?,
    ];
    for (name, svg) in FILES.iter().zip(charts) {
        let path = out.join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn caption(results: &Results, what: &str) -> String {
    match results.cores {
        Some(cores) => format!("{what}; measured on a machine with {cores} cores"),
        None => what.to_owned(),
    }
}

/// Fan-out entries per second against the author's follower count, the
/// engine beside raw sorted RocksDB batches of the same keys.
pub(crate) fn fanout_svg(results: &Results) -> Result<String> {
    if results.fanout.is_empty() {
        bail!("no fan-out results to draw");
    }
    if results.fanout.iter().any(|p| {
        p.followers == 0
            || !p.entries_per_sec.is_finite()
            || !p.baseline_entries_per_sec.is_finite()
    }) {
        bail!("a fan-out result has no followers or no finite rate");
    }
    // Several runs at one follower count are drawn as their median.
    let mut runs: BTreeMap<u64, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for p in &results.fanout {
        let (ours, base) = runs.entry(p.followers).or_default();
        ours.push(p.entries_per_sec);
        base.push(p.baseline_entries_per_sec);
    }
    let fewest_runs = runs.values().map(|(ours, _)| ours.len()).min().unwrap_or(0);
    let points: Vec<FanoutPoint> = runs
        .into_iter()
        .map(|(followers, (ours, base))| FanoutPoint {
            followers,
            entries_per_sec: median(ours),
            baseline_entries_per_sec: median(base),
        })
        .collect();
    let lo = points.first().map_or(1, |p| p.followers) as f64;
    let hi = points.last().map_or(1, |p| p.followers) as f64;
    let top = points
        .iter()
        .map(|p| p.entries_per_sec.max(p.baseline_entries_per_sec))
        .fold(0.0, f64::max)
        * 1.25;
    let what = if fewest_runs > 1 {
        format!("one synced post, median of {fewest_runs} runs per follower count")
    } else {
        "one synced post per follower count".to_owned()
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (body, foot) = root.split_vertically(HEIGHT - 28);
        foot.draw(&Text::new(
            caption(results, &format!("{what}, delivered in batches of 10,000")),
            (12, 6),
            (FONT, 14).into_font().color(&BLACK.mix(0.7)),
        ))?;
        let mut chart = ChartBuilder::on(&body)
            .caption(
                "Fan-out: inbox entries written per second",
                (FONT, 22).into_font(),
            )
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(
                // Ticks at the powers of ten, where the driver measures.
                ((lo / 2.0)..(hi * 2.0)).log_scale(),
                0.0..top,
            )?;
        chart
            .configure_mesh()
            .x_desc("followers of the author (log scale)")
            .y_desc("entries per second")
            .x_label_formatter(&|x| si(*x))
            .y_label_formatter(&|y| si(*y))
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .draw()?;

        let series = [
            (
                "Starling: one post, fanned out by the engine",
                ENGINE,
                points
                    .iter()
                    .map(|p| (p.followers as f64, p.entries_per_sec))
                    .collect::<Vec<_>>(),
                true,
            ),
            (
                "baseline: the same keys as raw sorted RocksDB batches",
                BASELINE,
                points
                    .iter()
                    .map(|p| (p.followers as f64, p.baseline_entries_per_sec))
                    .collect::<Vec<_>>(),
                false,
            ),
        ];
        for (label, color, data, above) in series {
            chart
                .draw_series(LineSeries::new(data.clone(), color.stroke_width(3)))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart.draw_series(
                data.iter()
                    .map(|&(x, y)| Circle::new((x, y), 5, color.filled())),
            )?;
            // Values beside the points: above the engine's, below the baseline's.
            let (vpos, offset) = if above {
                (VPos::Bottom, -10)
            } else {
                (VPos::Top, 10)
            };
            let style = TextStyle::from((FONT, 14).into_font())
                .color(&color)
                .pos(Pos::new(HPos::Center, vpos));
            chart.draw_series(data.iter().map(|&(x, y)| {
                EmptyElement::at((x, y))
                    + Text::new(format!("{}/s", si(y)), (0, offset), style.clone())
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Home-page read latency, p50 and p99, without and with pulled authors.
pub(crate) fn home_latency_svg(results: &Results) -> Result<String> {
    let l = &results.latency;
    let (none, pulled) = (&l.home_50_0_pulled, &l.home_50_20_pulled);
    bars(&Bars {
        title: "Home page of 50 posts: read latency",
        caption: caption(
            results,
            &format!(
                "warm reads of one reader's first page, {} samples each",
                none.samples.min(pulled.samples)
            ),
        ),
        groups: vec![
            "40 pushed authors, none pulled".into(),
            "20 pushed authors, 20 pulled (merged at read time)".into(),
        ],
        series: vec![
            Series {
                label: "p50",
                color: ENGINE_LIGHT,
                values: vec![none.p50_ms, pulled.p50_ms],
            },
            Series {
                label: "p99",
                color: ENGINE,
                values: vec![none.p99_ms, pulled.p99_ms],
            },
        ],
    })
}

/// Durable post acknowledgement latency with 1 and 8 posters, beside raw
/// synced RocksDB writes from as many threads.
pub(crate) fn post_ack_svg(results: &Results) -> Result<String> {
    let l = &results.latency;
    let (one, eight) = (&l.post_ack_1_posters, &l.post_ack_8_posters);
    let (base_one, base_eight) = (
        &l.baseline_synced_write_1_threads,
        &l.baseline_synced_write_8_threads,
    );
    bars(&Bars {
        title: "Durable post: time until acknowledged (fsync'd)",
        caption: caption(
            results,
            &format!(
                "{} and {} posts; baseline: one synced RocksDB write per post",
                one.samples, eight.samples
            ),
        ),
        groups: vec!["1 poster".into(), "8 posters at once".into()],
        series: vec![
            Series {
                label: "Starling p50",
                color: ENGINE_LIGHT,
                values: vec![one.p50_ms, eight.p50_ms],
            },
            Series {
                label: "Starling p99",
                color: ENGINE,
                values: vec![one.p99_ms, eight.p99_ms],
            },
            Series {
                label: "raw synced write p50",
                color: BASELINE_LIGHT,
                values: vec![base_one.p50_ms, base_eight.p50_ms],
            },
            Series {
                label: "raw synced write p99",
                color: BASELINE,
                values: vec![base_one.p99_ms, base_eight.p99_ms],
            },
        ],
    })
}

/// A grouped bar chart of latencies in milliseconds.
struct Bars<'a> {
    title: &'a str,
    caption: String,
    groups: Vec<String>,
    series: Vec<Series<'a>>,
}

struct Series<'a> {
    label: &'a str,
    color: RGBColor,
    /// One value per group, in milliseconds.
    values: Vec<f64>,
}

fn bars(b: &Bars<'_>) -> Result<String> {
    let all = || b.series.iter().flat_map(|s| s.values.iter().copied());
    if b.series.iter().any(|s| s.values.len() != b.groups.len()) {
        bail!("a series of {:?} has not one value per group", b.title);
    }
    if all().any(|v| !v.is_finite() || v < 0.0) {
        bail!(
            "{:?} has a latency that is not a finite, non-negative number",
            b.title
        );
    }
    // Percentiles a hundredfold apart are both legible on a log scale.
    let max_ms = all().fold(0.0, f64::max);
    let min_ms = all().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    if !min_ms.is_finite() {
        bail!("{:?} has no latency above zero", b.title);
    }
    // Sub-millisecond figures read better in microseconds.
    let (unit, scale) = if min_ms < 1.0 {
        ("microseconds (log scale)", 1e3)
    } else {
        ("milliseconds (log scale)", 1.0)
    };
    let floor = 10f64.powf((min_ms * scale / 2.0).log10().floor());
    // The tallest bar reaches 70% of the height: room for its value and
    // the legend above it.
    let top = floor * (max_ms * scale / floor).powf(1.0 / 0.7);
    // Ticks at 1, 2 and 5 of each decade, or only at powers of ten when
    // the axis spans many.
    let mantissas: &[f64] = if (top / floor).log10() > 3.0 {
        &[1.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    let ticks: Vec<f64> = (-6..=9)
        .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|t| (floor..=top).contains(t))
        .collect();
    let n = b.series.len() as f64;
    let width = 0.8 / n;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (body, foot) = root.split_vertically(HEIGHT - 28);
        foot.draw(&Text::new(
            b.caption.clone(),
            (12, 6),
            (FONT, 14).into_font().color(&BLACK.mix(0.7)),
        ))?;
        let mut chart = ChartBuilder::on(&body)
            .caption(b.title, (FONT, 22).into_font())
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(
                -0.5..(b.groups.len() as f64 - 0.5),
                (floor..top).log_scale().with_key_points(ticks),
            )?;
        let groups = &b.groups;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(unit)
            // As many labels as groups puts one tick at each whole number,
            // the centre of a group.
            .x_labels(groups.len())
            .x_label_formatter(&|x| {
                if x.fract() == 0.0 && *x >= 0.0 {
                    groups.get(*x as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| number(*y))
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 15))
            .light_line_style(WHITE)
            .draw()?;
        let value_style =
            TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, s) in b.series.iter().enumerate() {
            let color = s.color;
            let bars = s.values.iter().enumerate().map(|(g, &v)| {
                let x0 = g as f64 - 0.4 + i as f64 * width;
                let y = (v * scale).max(floor);
                Rectangle::new([(x0, floor), (x0 + width * 0.92, y)], color.filled())
            });
            chart
                .draw_series(bars)?
                .label(s.label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled())
                });
            chart.draw_series(s.values.iter().enumerate().map(|(g, &v)| {
                let x = g as f64 - 0.4 + (i as f64 + 0.46) * width;
                EmptyElement::at((x, (v * scale).max(floor)))
                    + Text::new(number(v * scale), (0, -4), value_style.clone())
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// The middle value (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}

/// A count or rate with an SI suffix: 950, 12k, 1.5M.
fn si(v: f64) -> String {
    let (value, suffix) = if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{}{suffix}", number(value))
}

/// Three significant figures at most, without trailing zeros.
fn number(v: f64) -> String {
    let magnitude = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    let decimals = (2 - magnitude).clamp(0, 9) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percentiles(p50_ms: f64, p99_ms: f64) -> Percentiles {
        Percentiles {
            samples: 100,
            p50_ms,
            p99_ms,
            max_ms: p99_ms * 2.0,
        }
    }

    fn results(fanout: Vec<FanoutPoint>) -> Results {
        Results {
            cores: Some(2),
            fanout,
            latency: LatencyResults {
                post_ack_1_posters: percentiles(2.5, 7.25),
                baseline_synced_write_1_threads: percentiles(2.0, 6.0),
                post_ack_8_posters: percentiles(3.5, 11.0),
                baseline_synced_write_8_threads: percentiles(3.0, 9.0),
                home_50_0_pulled: percentiles(0.061, 0.118),
                home_50_20_pulled: percentiles(0.412, 0.957),
            },
        }
    }

    fn point(followers: u64, entries_per_sec: f64, baseline_entries_per_sec: f64) -> FanoutPoint {
        FanoutPoint {
            followers,
            entries_per_sec,
            baseline_entries_per_sec,
        }
    }

    #[test]
    fn numbers_read_short() {
        for (v, expect) in [
            (0.0, "0"),
            (0.957, "0.957"),
            (0.0408, "0.0408"),
            (0.5, "0.5"),
            (7.25, "7.25"),
            (12.5, "12.5"),
            (118.0, "118"),
            (950.0, "950"),
            (12_000.0, "12k"),
            (1_234_567.0, "1.23M"),
            (10_000_000.0, "10M"),
        ] {
            assert_eq!(si(v), expect, "si({v})");
        }
    }

    #[test]
    fn fanout_chart_shows_both_series_at_every_follower_count() -> Result<()> {
        let r = results(vec![
            point(1_000_000, 410_000.0, 1_900_000.0),
            point(10_000, 350_000.0, 1_500_000.0),
            point(100_000, 400_000.0, 1_800_000.0),
        ]);
        let svg = fanout_svg(&r)?;
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in [
            "Starling: one post, fanned out by the engine",
            "baseline: the same keys as raw sorted RocksDB batches",
            "followers of the author (log scale)",
            "entries per second",
            "10k",
            "100k",
            "1M",
            "410k/s",
            "1.9M/s",
            "machine with 2 cores",
        ] {
            assert!(svg.contains(text), "no {text:?} in the chart");
        }
        // A marker per point of each series (the legend shows lines, not markers).
        assert_eq!(svg.matches("<circle").count(), 6);
        Ok(())
    }

    #[test]
    fn repeated_runs_are_drawn_as_their_median() -> Result<()> {
        let r = results(vec![
            point(1_000, 300_000.0, 900_000.0),
            point(1_000, 100_000.0, 800_000.0),
            point(1_000, 200_000.0, 700_000.0),
            point(10_000, 500_000.0, 2_000_000.0),
            point(10_000, 700_000.0, 1_000_000.0),
            point(10_000, 600_000.0, 3_000_000.0),
        ]);
        let svg = fanout_svg(&r)?;
        for text in ["200k/s", "800k/s", "600k/s", "2M/s", "median of 3 runs"] {
            assert!(svg.contains(text), "no {text:?} in the chart");
        }
        for text in ["100k/s", "300k/s", "3M/s"] {
            assert!(!svg.contains(text), "{text:?} is not a median");
        }
        assert_eq!(svg.matches("<circle").count(), 4);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
        Ok(())
    }

    #[test]
    fn latency_charts_pick_their_unit_and_label_every_bar() -> Result<()> {
        let r = results(vec![point(10, 1.0, 1.0)]);
        let home = home_latency_svg(&r)?;
        assert!(home.contains("microseconds"));
        for text in ["61", "118", "412", "957", "p50", "p99", "20 pulled"] {
            assert!(home.contains(text), "no {text:?} in the home chart");
        }
        let ack = post_ack_svg(&r)?;
        assert!(ack.contains("milliseconds"));
        for text in ["7.25", "11", "raw synced write p99", "8 posters at once"] {
            assert!(ack.contains(text), "no {text:?} in the post chart");
        }
        Ok(())
    }

    #[test]
    fn bad_input_is_refused_not_drawn() {
        assert!(fanout_svg(&results(vec![])).is_err());
        assert!(fanout_svg(&results(vec![point(0, 1.0, 1.0)])).is_err());
        assert!(fanout_svg(&results(vec![point(10, f64::NAN, 1.0)])).is_err());
        let mut r = results(vec![point(10, 1.0, 1.0)]);
        r.latency.home_50_20_pulled.p99_ms = f64::INFINITY;
        assert!(home_latency_svg(&r).is_err());
        r.latency.home_50_0_pulled = percentiles(0.0, 0.0);
        r.latency.home_50_20_pulled = percentiles(0.0, 0.0);
        assert!(
            home_latency_svg(&r).is_err(),
            "nothing to draw on a log scale"
        );
    }

    #[test]
    fn write_all_reads_what_the_script_gathers() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let input = dir.path().join("results.json");
        let p = r#"{"samples":10,"p50_ms":0.5,"p99_ms":0.9,"max_ms":1.0}"#;
        std::fs::write(
            &input,
            format!(
                r#"{{"cores":2,"fanout":[{{"followers":1000,"load_seconds":0.1,"entries_per_sec":5000.0,"baseline_entries_per_sec":9000.0}}],
                "latency":{{"post_ack_1_posters":{p},"baseline_synced_write_1_threads":{p},"post_ack_8_posters":{p},
                "baseline_synced_write_8_threads":{p},"home_50_0_pulled":{p},"home_50_20_pulled":{p}}}}}"#
            ),
        )?;
        let out = dir.path().join("charts");
        write_all(&input, &out)?;
        for name in FILES {
            let svg = std::fs::read_to_string(out.join(name))?;
            assert!(svg.contains("</svg>"), "{name} is not a whole SVG");
        }
        std::fs::write(&input, "{}")?;
        assert!(write_all(&input, &out).is_err());
        Ok(())
    }
}
