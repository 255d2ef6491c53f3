//! Charts of the driver's reports, as SVG files: `starling-bench chart
//! --input results.json --out docs/` draws fan-out throughput against
//! follower count, fresh and steady, each beside its raw baseline;
//! home-page read latency; durable post acknowledgement latency; and, from
//! a `soak` run's JSON-lines file (`--soak soak.jsonl`, or the
//! `soak.jsonl` beside the input), write amplification over time.
//! `scripts/bench` gathers the input from the `fanout`, `latency` and
//! `soak` subcommands and calls this.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::element::DashedPathElement;
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
    /// First post, fresh inboxes, and its baseline.
    pub(crate) entries_per_sec: f64,
    pub(crate) baseline_entries_per_sec: f64,
    /// Posts 2 to P and their baseline; reports of drivers that measured
    /// one post have neither.
    #[serde(default)]
    pub(crate) steady_entries_per_sec: Option<f64>,
    #[serde(default)]
    pub(crate) steady_baseline_entries_per_sec: Option<f64>,
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

/// The fields of a soak interval line (`soak`'s JSON-lines file) the soak
/// chart draws.
#[derive(Debug, Deserialize)]
pub(crate) struct SoakLine {
    /// Seconds since the workload started, at the end of the interval.
    pub(crate) total_seconds: f64,
    /// Over the interval.
    pub(crate) write_amplification_with_wal: f64,
    pub(crate) write_amplification_without_wal: f64,
    /// Since the workload started.
    pub(crate) total_write_amplification_with_wal: f64,
    pub(crate) total_write_amplification_without_wal: f64,
    pub(crate) total_inbox_writes: u64,
    /// Posts of the most-followed account in the interval.
    #[serde(default)]
    pub(crate) celebrity_posts: u64,
}

/// The files [`write_all`] always writes, in the order it writes them.
pub(crate) const FILES: [&str; 3] = ["fanout.svg", "home-latency.svg", "post-ack.svg"];
/// The file [`write_all`] writes when given a soak's lines.
pub(crate) const SOAK_FILE: &str = "soak-wa.svg";
/// The soak's lines `scripts/bench` keeps beside the gathered reports.
pub(crate) const SOAK_LINES: &str = "soak.jsonl";

const WIDTH: u32 = 860;
const HEIGHT: u32 = 500;
const FONT: &str = "sans-serif";
const ENGINE: RGBColor = RGBColor(31, 119, 180);
const ENGINE_LIGHT: RGBColor = RGBColor(140, 190, 230);
const BASELINE: RGBColor = RGBColor(230, 120, 20);
const BASELINE_LIGHT: RGBColor = RGBColor(245, 190, 130);
const WITHOUT_WAL: RGBColor = RGBColor(44, 160, 44);

/// Reads `input` (and the soak's lines at `soak`, when given) and writes
/// every chart into `out` (created if missing), returning the files
/// written. Nothing is written unless every chart could be drawn.
pub(crate) fn write_all(input: &Path, soak: Option<&Path>, out: &Path) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let results: Results =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", input.display()))?;
    let mut charts = vec![
        (FILES[0], fanout_svg(&results).context("the fan-out chart")?),
        (FILES[1], home_latency_svg(&results)?),
        (FILES[2], post_ack_svg(&results)?),
    ];
    if let Some(soak) = soak {
        let lines = read_soak(soak)?;
        let svg = soak_svg(&lines, results.cores)
            .with_context(|| format!("drawing {}", soak.display()))?;
        charts.push((SOAK_FILE, svg));
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::with_capacity(charts.len());
    for (name, svg) in charts {
        let path = out.join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The soak's lines `scripts/bench` saved beside `input`, if there are any.
pub(crate) fn saved_soak(input: &Path) -> Option<PathBuf> {
    let path = input.with_file_name(SOAK_LINES);
    path.is_file().then_some(path)
}

/// Reads a soak's JSON-lines file: one interval line a line, each with the
/// fields of [`SoakLine`].
pub(crate) fn read_soak(path: &Path) -> Result<Vec<SoakLine>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_soak(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse_soak(text: &str) -> Result<Vec<SoakLine>> {
    if text.is_empty() {
        bail!("the file is empty: the soak wrote no interval line");
    }
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            bail!("line {} is blank", i + 1);
        }
        let parsed: SoakLine = serde_json::from_str(line)
            .with_context(|| format!("line {} is not a soak interval line", i + 1))?;
        lines.push(parsed);
    }
    Ok(lines)
}

fn caption(results: &Results, what: &str) -> String {
    with_cores(results.cores, what)
}

fn with_cores(cores: Option<u32>, what: &str) -> String {
    match cores {
        Some(cores) => format!("{what}; measured on a machine with {cores} cores"),
        None => what.to_owned(),
    }
}

/// A line of a line chart, with a marker and its value at every point.
struct Line {
    label: &'static str,
    color: RGBColor,
    /// Dashed (steady state) or solid.
    dashed: bool,
    points: Vec<(f64, f64)>,
    /// How each point's value is anchored: by its right end (the value
    /// left of the point), its centre, or its left end (right of it);
    /// above the point when it is the higher of its pair, below otherwise.
    value_at: HPos,
}

/// Fan-out entries per second against the author's follower count, the
/// engine beside raw sorted RocksDB batches of the same keys: the first
/// post (fresh) and later posts to the same followers (steady). Reports
/// without steady figures (drivers that measured one post) are drawn
/// fresh only; reports that mix both kinds are refused.
pub(crate) fn fanout_svg(results: &Results) -> Result<String> {
    if results.fanout.is_empty() {
        bail!("no fan-out results to draw");
    }
    let steady = |p: &FanoutPoint| {
        p.steady_entries_per_sec
            .zip(p.steady_baseline_entries_per_sec)
    };
    if results.fanout.iter().any(|p| {
        p.followers == 0
            || !p.entries_per_sec.is_finite()
            || !p.baseline_entries_per_sec.is_finite()
            || steady(p).is_some_and(|(ours, base)| !ours.is_finite() || !base.is_finite())
    }) {
        bail!("a fan-out result has no followers or no finite rate");
    }
    let steady_reports = results
        .fanout
        .iter()
        .filter(|p| steady(p).is_some())
        .count();
    let with_steady = match steady_reports {
        0 => false,
        n if n == results.fanout.len() => true,
        _ => bail!(
            "{steady_reports} of {} fan-out reports have steady-state figures \
             (steady_entries_per_sec and steady_baseline_entries_per_sec) and the others \
             do not: gather them again with one driver",
            results.fanout.len()
        ),
    };
    // Several runs at one follower count are drawn as their median.
    let mut runs: BTreeMap<u64, [Vec<f64>; 4]> = BTreeMap::new();
    for p in &results.fanout {
        let r = runs.entry(p.followers).or_default();
        r[0].push(p.entries_per_sec);
        r[1].push(p.baseline_entries_per_sec);
        if let Some((ours, base)) = steady(p) {
            r[2].push(ours);
            r[3].push(base);
        }
    }
    let fewest_runs = runs.values().map(|r| r[0].len()).min().unwrap_or(0);
    let medians: Vec<(f64, [f64; 4])> = runs
        .into_iter()
        .map(|(followers, r)| (followers as f64, r.map(median)))
        .collect();
    let series =
        |i: usize| -> Vec<(f64, f64)> { medians.iter().map(|(x, m)| (*x, m[i])).collect() };
    let lines = if with_steady {
        // Fresh values to the left of their points, steady to the right;
        // the lines come in pairs, Starling and then its baseline.
        vec![
            Line {
                label: "Starling, fresh: the first post, to empty inboxes",
                color: ENGINE,
                dashed: false,
                points: series(0),
                value_at: HPos::Right,
            },
            Line {
                label: "baseline, fresh: the same keys as raw sorted RocksDB batches",
                color: BASELINE,
                dashed: false,
                points: series(1),
                value_at: HPos::Right,
            },
            Line {
                label: "Starling, steady: later posts to the same followers",
                color: ENGINE,
                dashed: true,
                points: series(2),
                value_at: HPos::Left,
            },
            Line {
                label: "baseline, steady: the same keys into one database kept across them",
                color: BASELINE,
                dashed: true,
                points: series(3),
                value_at: HPos::Left,
            },
        ]
    } else {
        vec![
            Line {
                label: "Starling: one post, fanned out by the engine",
                color: ENGINE,
                dashed: false,
                points: series(0),
                value_at: HPos::Center,
            },
            Line {
                label: "baseline: the same keys as raw sorted RocksDB batches",
                color: BASELINE,
                dashed: false,
                points: series(1),
                value_at: HPos::Center,
            },
        ]
    };
    let lo = medians.first().map_or(1.0, |(x, _)| *x);
    let hi = medians.last().map_or(1.0, |(x, _)| *x);
    let highest = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max);
    // Room above the highest point for its value and the legend.
    let top = highest * if with_steady { 1.6 } else { 1.25 };
    let runs = if fewest_runs > 1 {
        format!("median of {fewest_runs} runs per follower count")
    } else {
        "one run per follower count".to_owned()
    };
    let (title, what) = if with_steady {
        (
            "Fan-out: inbox entries written per second, fresh and steady",
            format!("synced posts, {runs}, delivered in batches of 10,000"),
        )
    } else {
        (
            "Fan-out: inbox entries written per second",
            format!("one synced post, {runs}, delivered in batches of 10,000"),
        )
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (body, foot) = root.split_vertically(HEIGHT - 28);
        foot.draw(&Text::new(
            caption(results, &what),
            (12, 6),
            (FONT, 14).into_font().color(&BLACK.mix(0.7)),
        ))?;
        let mut chart = ChartBuilder::on(&body)
            .caption(title, (FONT, 22).into_font())
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
        for (i, line) in lines.iter().enumerate() {
            let color = line.color;
            let style = color.stroke_width(3);
            let anno = if line.dashed {
                chart.draw_series(DashedLineSeries::new(line.points.clone(), 10, 6, style))?
            } else {
                chart.draw_series(LineSeries::new(line.points.clone(), style))?
            };
            if line.dashed {
                anno.label(line.label).legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 24, y)], 7, 4, style)
                });
            } else {
                anno.label(line.label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            }
            chart.draw_series(
                line.points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 5, color.filled())),
            )?;
            // Each value above its point when the point is the higher of
            // its pair (Starling's on a tie), below it otherwise, so the
            // two values at one follower count never meet.
            let partner = &lines[i ^ 1].points;
            let dx = match line.value_at {
                HPos::Right => -6,
                HPos::Left => 6,
                HPos::Center => 0,
            };
            chart.draw_series(
                line.points
                    .iter()
                    .zip(partner)
                    .map(|(&(x, y), &(_, other))| {
                        let higher = y > other || (y == other && i % 2 == 0);
                        let (vpos, dy) = if higher {
                            (VPos::Bottom, -9)
                        } else {
                            (VPos::Top, 9)
                        };
                        let text = TextStyle::from((FONT, 14).into_font())
                            .color(&color)
                            .pos(Pos::new(line.value_at, vpos));
                        EmptyElement::at((x, y)) + Text::new(format!("{}/s", si(y)), (dx, dy), text)
                    }),
            )?;
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

/// Write amplification of a soak run against minutes since its workload
/// started, with and without the WAL, over each interval and since the
/// start.
pub(crate) fn soak_svg(lines: &[SoakLine], cores: Option<u32>) -> Result<String> {
    let Some(last) = lines.last() else {
        bail!("no soak intervals to draw");
    };
    let mut previous = 0.0;
    for (i, l) in lines.iter().enumerate() {
        let amplifications = [
            l.write_amplification_with_wal,
            l.write_amplification_without_wal,
            l.total_write_amplification_with_wal,
            l.total_write_amplification_without_wal,
        ];
        if amplifications.iter().any(|a| !a.is_finite() || *a < 0.0) {
            bail!(
                "interval {} has a write amplification that is not a finite, non-negative number",
                i + 1
            );
        }
        if !(l.total_seconds.is_finite() && l.total_seconds > previous) {
            bail!(
                "interval {} ends at {} s, not after the one before it (at {previous} s): \
                 the lines of one soak run, in order, are needed",
                i + 1,
                l.total_seconds
            );
        }
        previous = l.total_seconds;
    }
    let minutes = |l: &SoakLine| l.total_seconds / 60.0;
    let series = [
        (
            "with WAL, each interval",
            ENGINE,
            false,
            lines
                .iter()
                .map(|l| (minutes(l), l.write_amplification_with_wal))
                .collect::<Vec<_>>(),
        ),
        (
            "without WAL, each interval",
            WITHOUT_WAL,
            false,
            lines
                .iter()
                .map(|l| (minutes(l), l.write_amplification_without_wal))
                .collect(),
        ),
        (
            "with WAL, since start",
            ENGINE,
            true,
            lines
                .iter()
                .map(|l| (minutes(l), l.total_write_amplification_with_wal))
                .collect(),
        ),
        (
            "without WAL, since start",
            WITHOUT_WAL,
            true,
            lines
                .iter()
                .map(|l| (minutes(l), l.total_write_amplification_without_wal))
                .collect(),
        ),
    ];
    let highest = series
        .iter()
        .flat_map(|(_, _, _, points)| points.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max);
    // Room above the highest point for the legend; an axis even when
    // nothing was written.
    let top = (highest * 1.5).max(1.0);
    let right = minutes(last) * 1.08;
    let celebrity: u64 = lines.iter().map(|l| l.celebrity_posts).sum();
    let mut what = format!(
        "{} intervals, {} inbox entries written in {} min",
        lines.len(),
        si(last.total_inbox_writes as f64),
        number(minutes(last))
    );
    if celebrity > 0 {
        what.push_str(&format!(", {celebrity} posts of the most-followed account"));
    }

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (body, foot) = root.split_vertically(HEIGHT - 28);
        foot.draw(&Text::new(
            with_cores(cores, &what),
            (12, 6),
            (FONT, 14).into_font().color(&BLACK.mix(0.7)),
        ))?;
        let mut chart = ChartBuilder::on(&body)
            .caption(
                "Soak: write amplification over time",
                (FONT, 22).into_font(),
            )
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..right, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("minutes since the workload started")
            .y_desc("write amplification (disk bytes per user byte)")
            .x_label_formatter(&|x| number(*x))
            .y_label_formatter(&|y| number(*y))
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .draw()?;
        for (label, color, since_start, points) in series {
            let style = if since_start {
                color.stroke_width(3)
            } else {
                color.mix(0.6).stroke_width(1)
            };
            chart
                .draw_series(LineSeries::new(points.clone(), style))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            if since_start {
                // The figure at the end of the run, beside its last point.
                let text = TextStyle::from((FONT, 14).into_font())
                    .color(&color)
                    .pos(Pos::new(HPos::Right, VPos::Bottom));
                chart.draw_series(points.last().map(|&(x, y)| {
                    EmptyElement::at((x, y)) + Text::new(number(y), (0, -6), text.clone())
                }))?;
            } else {
                chart.draw_series(
                    points
                        .iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                )?;
            }
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

    /// A report of a driver that measured one post: no steady figures.
    fn point(followers: u64, entries_per_sec: f64, baseline_entries_per_sec: f64) -> FanoutPoint {
        FanoutPoint {
            followers,
            entries_per_sec,
            baseline_entries_per_sec,
            steady_entries_per_sec: None,
            steady_baseline_entries_per_sec: None,
        }
    }

    /// A report with fresh and steady figures: fresh, fresh baseline,
    /// steady, steady baseline.
    fn steady_point(followers: u64, rates: [f64; 4]) -> FanoutPoint {
        FanoutPoint {
            followers,
            entries_per_sec: rates[0],
            baseline_entries_per_sec: rates[1],
            steady_entries_per_sec: Some(rates[2]),
            steady_baseline_entries_per_sec: Some(rates[3]),
        }
    }

    /// An interval line as the soak writes it.
    fn interval(minutes: f64, per_interval: (f64, f64), since_start: (f64, f64)) -> String {
        let line = crate::soak::Interval {
            seconds: 30.0,
            total_seconds: minutes * 60.0,
            write_amplification_with_wal: per_interval.0,
            write_amplification_without_wal: per_interval.1,
            total_write_amplification_with_wal: since_start.0,
            total_write_amplification_without_wal: since_start.1,
            total_inbox_writes: (minutes * 1_000_000.0) as u64,
            celebrity_posts: 3,
            ..Default::default()
        };
        serde_json::to_string(&line).expect("an interval line") + "\n"
    }

    /// Three intervals of a soak, as its JSON-lines file holds them.
    fn soak_lines() -> String {
        [
            interval(0.5, (1.12, 0.12), (1.12, 0.12)),
            interval(1.0, (2.75, 1.75), (1.94, 0.94)),
            interval(1.5, (1.63, 0.63), (1.84, 0.84)),
        ]
        .concat()
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
    fn reports_without_the_steady_state_are_drawn_fresh_only() -> Result<()> {
        let svg = fanout_svg(&results(vec![
            point(10_000, 350_000.0, 1_500_000.0),
            point(100_000, 400_000.0, 1_800_000.0),
        ]))?;
        assert!(svg.contains("one synced post, one run per follower count"));
        assert!(!svg.contains("steady"), "no steady series to show");
        assert_eq!(svg.matches("<circle").count(), 4);
        Ok(())
    }

    #[test]
    fn fanout_chart_shows_fresh_and_steady_beside_their_baselines() -> Result<()> {
        let r = results(vec![
            steady_point(
                1_000_000,
                [1_540_000.0, 1_980_000.0, 999_000.0, 1_250_000.0],
            ),
            steady_point(10_000, [1_010_000.0, 1_910_000.0, 512_000.0, 604_000.0]),
            steady_point(100_000, [1_520_000.0, 1_910_000.0, 789_000.0, 774_000.0]),
        ]);
        let svg = fanout_svg(&r)?;
        for text in [
            "Fan-out: inbox entries written per second, fresh and steady",
            "Starling, fresh: the first post, to empty inboxes",
            "baseline, fresh: the same keys as raw sorted RocksDB batches",
            "Starling, steady: later posts to the same followers",
            "baseline, steady: the same keys into one database kept across them",
            "followers of the author (log scale)",
            "entries per second",
            "10k",
            "100k",
            "1M",
            // A value beside every point of each series, in entries/s.
            "1.54M/s",
            "1.98M/s",
            "999k/s",
            "1.25M/s",
            "1.01M/s",
            "512k/s",
            "604k/s",
            "1.52M/s",
            "1.91M/s",
            "789k/s",
            "774k/s",
            "one run per follower count",
            "machine with 2 cores",
        ] {
            assert!(svg.contains(text), "no {text:?} in the chart");
        }
        // A marker per point of each of the four series.
        assert_eq!(svg.matches("<circle").count(), 12);
        Ok(())
    }

    #[test]
    fn steady_runs_are_drawn_as_their_median_too() -> Result<()> {
        let r = results(vec![
            steady_point(1_000, [300_000.0, 900_000.0, 110_000.0, 510_000.0]),
            steady_point(1_000, [100_000.0, 800_000.0, 130_000.0, 530_000.0]),
            steady_point(1_000, [200_000.0, 700_000.0, 120_000.0, 520_000.0]),
            steady_point(10_000, [500_000.0, 2_000_000.0, 410_000.0, 640_000.0]),
            steady_point(10_000, [700_000.0, 1_000_000.0, 440_000.0, 610_000.0]),
        ]);
        let svg = fanout_svg(&r)?;
        for text in [
            "200k/s",
            "800k/s",
            "120k/s",
            "520k/s",
            "600k/s",
            "1.5M/s",
            "425k/s",
            "625k/s",
            "median of 2 runs",
        ] {
            assert!(svg.contains(text), "no {text:?} in the chart");
        }
        for text in ["110k/s", "130k/s", "510k/s", "530k/s", "410k/s", "640k/s"] {
            assert!(!svg.contains(text), "{text:?} is not a median");
        }
        assert_eq!(svg.matches("<circle").count(), 8);
        Ok(())
    }

    #[test]
    fn soak_chart_draws_write_amplification_against_minutes() -> Result<()> {
        let lines = parse_soak(&soak_lines())?;
        assert_eq!(lines.len(), 3);
        let svg = soak_svg(&lines, Some(2))?;
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in [
            "Soak: write amplification over time",
            "with WAL, since start",
            "without WAL, since start",
            "with WAL, each interval",
            "without WAL, each interval",
            "minutes since the workload started",
            "write amplification (disk bytes per user byte)",
            // The figures at the end of the run.
            "1.84",
            "0.84",
            "3 intervals, 1.5M inbox entries written in 1.5 min",
            "9 posts of the most-followed account",
            "machine with 2 cores",
        ] {
            assert!(svg.contains(text), "no {text:?} in the chart");
        }
        // A marker per interval of each per-interval series.
        assert_eq!(svg.matches("<circle").count(), 6);
        Ok(())
    }

    #[test]
    fn bad_soak_input_is_refused_not_drawn() {
        let refused = |text: &str, why: &str| {
            let err = parse_soak(text)
                .and_then(|lines| soak_svg(&lines, None))
                .expect_err(why);
            format!("{err:#}")
        };
        assert!(refused("", "an empty file").contains("empty"));
        let good = interval(0.5, (1.0, 0.0), (1.0, 0.0));
        assert!(refused(&format!("{good}\n{good}"), "a blank line").contains("line 2 is blank"));
        assert!(refused("\n", "no interval line").contains("line 1 is blank"));
        assert!(
            refused(&format!("{good}{{\"total_seconds\": 6"), "a cut line")
                .contains("line 2 is not a soak interval line")
        );
        assert!(refused("{}", "a line without the fields").contains("line 1"));
        // The summary `soak --json` prints is not the file of lines.
        assert!(refused(r#"{"users":3,"intervals":[]}"#, "the summary").contains("line 1"));
        // Two runs' lines in one file go back in time.
        assert!(refused(&soak_lines().repeat(2), "two runs").contains("interval 4 ends at 30 s"));
        let mut lines = parse_soak(&soak_lines()).expect("lines");
        lines[1].write_amplification_without_wal = f64::INFINITY;
        assert!(soak_svg(&lines, None).is_err(), "an infinite amplification");
        lines[1].write_amplification_without_wal = -1.0;
        assert!(soak_svg(&lines, None).is_err(), "a negative amplification");
        assert!(soak_svg(&[], None).is_err(), "no intervals");
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
        assert!(
            fanout_svg(&results(vec![steady_point(
                10,
                [1.0, 1.0, 1.0, f64::INFINITY]
            )]))
            .is_err()
        );
        // Reports with and without the steady state cannot share a chart.
        let mixed = fanout_svg(&results(vec![
            steady_point(10, [1.0, 1.0, 1.0, 1.0]),
            point(100, 1.0, 1.0),
        ]))
        .expect_err("a mix of old and new reports");
        assert!(
            mixed.to_string().contains("1 of 2 fan-out reports"),
            "{mixed}"
        );
        let mut half = steady_point(10, [1.0, 1.0, 1.0, 1.0]);
        half.steady_baseline_entries_per_sec = None;
        assert!(
            fanout_svg(&results(vec![steady_point(100, [1.0; 4]), half])).is_err(),
            "a steady figure without its baseline"
        );
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
    fn the_reports_saved_in_docs_draw() -> Result<()> {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        let input = docs.join("bench-results.json");
        let out = tempfile::tempdir()?;
        let written = write_all(&input, saved_soak(&input).as_deref(), out.path())?;
        assert!(written.len() >= FILES.len(), "{written:?}");
        Ok(())
    }

    #[test]
    fn write_all_reads_what_the_script_gathers() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let input = dir.path().join("bench-results.json");
        // A fan-out report as `fanout --json` prints it.
        let report = serde_json::to_string(&crate::fanout::FanoutReport {
            store: "rocksdb",
            followers: 1000,
            posts: 20,
            load_seconds: 0.1,
            post_ack_ms: 0.5,
            delivery_seconds: 0.2,
            entries_per_sec: 5000.0,
            baseline_seconds: 0.1,
            baseline_entries_per_sec: 9000.0,
            ratio_to_baseline: 0.55,
            steady_seconds: 1.0,
            steady_entries_per_sec: 3000.0,
            steady_baseline_seconds: 0.5,
            steady_baseline_entries_per_sec: 4000.0,
            steady_ratio_to_baseline: 0.75,
            steady_slowest_entries_per_sec: 2000.0,
            inbox_bytes_per_entry: None,
            peak_rss_mib: 50.0,
            load_average_before: 0.1,
            load_average_after: 0.2,
        })?;
        let p = r#"{"samples":10,"p50_ms":0.5,"p99_ms":0.9,"max_ms":1.0}"#;
        std::fs::write(
            &input,
            format!(
                r#"{{"cores":2,"fanout":[{report}],
                "latency":{{"post_ack_1_posters":{p},"baseline_synced_write_1_threads":{p},"post_ack_8_posters":{p},
                "baseline_synced_write_8_threads":{p},"home_50_0_pulled":{p},"home_50_20_pulled":{p}}}}}"#
            ),
        )?;
        let out = dir.path().join("charts");
        // Without a soak: the three charts, no soak chart.
        let written = write_all(&input, None, &out)?;
        assert_eq!(written, FILES.map(|name| out.join(name)));
        assert!(!out.join(SOAK_FILE).exists());
        let fanout = std::fs::read_to_string(out.join(FILES[0]))?;
        for text in ["5k/s", "9k/s", "3k/s", "4k/s", "steady"] {
            assert!(fanout.contains(text), "no {text:?} in the fan-out chart");
        }
        // With the soak's lines saved beside the reports, as the script does.
        assert_eq!(saved_soak(&input), None);
        let soak = dir.path().join(SOAK_LINES);
        std::fs::write(&soak, soak_lines())?;
        assert_eq!(saved_soak(&input), Some(soak.clone()));
        let written = write_all(&input, Some(&soak), &out)?;
        assert_eq!(written.len(), 4);
        for path in &written {
            let svg = std::fs::read_to_string(path)?;
            assert!(
                svg.contains("</svg>"),
                "{} is not a whole SVG",
                path.display()
            );
        }
        assert_eq!(written[3], out.join(SOAK_FILE));
        // A bad soak file: refused, and no chart written at all.
        std::fs::write(&soak, "")?;
        let fresh = dir.path().join("fresh");
        assert!(write_all(&input, Some(&soak), &fresh).is_err());
        assert!(
            !fresh.exists(),
            "nothing is written unless every chart is drawn"
        );
        assert!(write_all(&input, Some(&dir.path().join("missing.jsonl")), &fresh).is_err());
        std::fs::write(&input, "{}")?;
        assert!(write_all(&input, None, &out).is_err());
        Ok(())
    }
}
