//! The HTML report: a self-contained page with SVG charts (drawn by `plotters`) of the
//! roles' dominant shares and the cluster's utilisation over time, and the summary tables.

use plotters::prelude::*;

use super::report::Report;

/// One line of a chart: a role's (in its colour), or a resource's.
struct Line {
    name: String,
    color: RGBColor,
    /// Drawn dashed: a shadow allocator's line beside the active one's solid line.
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// The colour of the role at `index` of the report's roles, the same in every chart and
/// table of the page.
fn role_color(index: usize) -> RGBColor {
    let (r, g, b) = Palette99::pick(index).rgb();
    RGBColor(r, g, b)
}

/// Resources are drawn in greys, so that no resource line takes a role's colour.
fn resource_color(index: usize) -> RGBColor {
    const GREYS: [RGBColor; 4] =
        [RGBColor(30, 30, 30), RGBColor(110, 110, 110), RGBColor(160, 160, 160), RGBColor(70, 70, 70)];
    GREYS[index % GREYS.len()]
}

fn hex(color: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2)
}

/// One chart as an SVG document (time on the x axis, 0..1 on the y axis), followed by its
/// legend in HTML, outside the plot, so that no line is hidden under it.
fn line_chart(title: &str, lines: &[Line], end: f64) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let top = lines.iter().flat_map(|line| line.points.iter().map(|p| p.1)).fold(0.0, f64::max);
        let y_max = if top > 0.0 { (top * 1.1).clamp(0.05, 1.0) } else { 1.0 };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..end.max(1.0), 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()
            .map_err(|e| e.to_string())?;
        for line in lines {
            let style = line.color.stroke_width(2);
            let points = line.points.iter().copied();
            if line.dashed {
                chart.draw_series(DashedLineSeries::new(points, 6, 4, style)).map_err(|e| e.to_string())?;
            } else {
                chart.draw_series(LineSeries::new(points, style)).map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    let legend: Vec<String> = lines
        .iter()
        .map(|line| {
            let dash = if line.dashed { r#" stroke-dasharray="6 4""# } else { "" };
            format!(
                r#"<span class="key"><svg width="28" height="10"><line x1="0" y1="5" x2="28" y2="5" stroke="{}" stroke-width="3"{dash}/></svg> {}</span>"#,
                hex(line.color),
                escape(&line.name)
            )
        })
        .collect();
    Ok(format!("<figure>{svg}\n<figcaption class=\"legend\">{}</figcaption></figure>", legend.join(" ")))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn percent(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

/// Renders the report as one HTML page.
pub fn html(report: &Report) -> Result<String, String> {
    let end = report.end_time;
    // Many roles make an unreadable chart: the 12 with the largest mean share are drawn (6
    // in the shadow chart, two lines each), in the report's order and each in its colour.
    let mut shown: Vec<usize> = (0..report.roles.len()).collect();
    shown.sort_by(|&a, &b| report.roles[b].share_mean.total_cmp(&report.roles[a].share_mean).then(a.cmp(&b)));
    shown.truncate(12);
    shown.sort_unstable();
    let shares: Vec<Line> = shown
        .iter()
        .map(|&i| Line {
            name: report.roles[i].role.clone(),
            color: role_color(i),
            dashed: false,
            points: report.series.iter().map(|r| (r.t, r.role_shares[i])).collect(),
        })
        .collect();
    let utilisation: Vec<Line> = report
        .utilisation_mean
        .keys()
        .enumerate()
        .map(|(index, name)| Line {
            name: name.clone(),
            color: resource_color(index),
            dashed: false,
            points: report.series.iter().map(|r| (r.t, r.utilisation.get(name).copied().unwrap_or(0.0))).collect(),
        })
        .collect();
    let share_svg = line_chart("Dominant share by role", &shares, end)?;
    let utilisation_svg = line_chart("Utilisation by resource", &utilisation, end)?;
    // Shadow runs: the share each policy's offers would give each role, round by round; a
    // role's two lines share its colour, the active one solid, the shadow's dashed.
    let shadow_html = match &report.shadow {
        Some(shadow) => {
            let mut lines = Vec::new();
            let mut by_share = shown.clone();
            by_share
                .sort_by(|&a, &b| report.roles[b].share_mean.total_cmp(&report.roles[a].share_mean).then(a.cmp(&b)));
            by_share.truncate(6);
            by_share.sort_unstable();
            for &i in &by_share {
                for (who, dashed) in [(report.allocator.as_str(), false), (shadow.allocator.as_str(), true)] {
                    let points = report
                        .series
                        .iter()
                        .filter_map(|r| {
                            let shares = if dashed { &r.shadow_offered_shares } else { &r.offered_shares };
                            shares.get(i).map(|s| (r.t, *s))
                        })
                        .collect();
                    lines.push(Line {
                        name: format!("{} ({who})", report.roles[i].role),
                        color: role_color(i),
                        dashed,
                        points,
                    });
                }
            }
            let title =
                format!("Offered share by role: {} (solid) vs shadow {} (dashed)", report.allocator, shadow.allocator);
            let first = match &shadow.first_difference {
                Some((t, example)) => format!(" First difference at t={t} s: {}.", escape(example)),
                None => String::new(),
            };
            format!(
                "<h2>Shadow run</h2>\n<p>Shadow <b>{}</b>: {} of {} rounds identical; offers: {} alike, {} only by {}, {} only by the shadow; {} errors.{first}</p>\n{}",
                escape(&shadow.allocator),
                shadow.identical_rounds,
                shadow.rounds,
                shadow.offers_same,
                shadow.offers_only_active,
                escape(&report.allocator),
                shadow.offers_only_shadow,
                shadow.errors,
                line_chart(&title, &lines, end)?
            )
        }
        None => String::new(),
    };

    let mut rows = String::new();
    for (i, role) in report.roles.iter().enumerate() {
        rows.push_str(&format!(
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            hex(role_color(i)),
            escape(&role.role),
            role.weight,
            role.frameworks,
            role.launched,
            percent(role.share_mean),
            percent(role.share_peak),
            percent(role.share_final)
        ));
    }
    let quota_rows = report.quota_rows();
    let quota_html = if quota_rows.is_empty() {
        String::new()
    } else {
        let amount = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let rows: String = quota_rows
            .iter()
            .map(|row| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape(row.role),
                    escape(row.resource),
                    amount(row.guarantee),
                    amount(row.limit),
                    row.reserved,
                    row.used,
                    row.peak
                )
            })
            .collect();
        format!(
            "<h2>Quota</h2>\n<p>What each role with a quota or reservations is guaranteed, limited to and has reserved, and what its whole subtree used (while it had a quota): at the end, and at most in a round.</p>\n<table><tr><th>role</th><th>resource</th><th>guarantee</th><th>limit</th><th>reserved</th><th>used</th><th>peak used</th></tr>\n{rows}</table>"
        )
    };
    // Frameworks as the terminal lists them: by mean share, largest first.
    let frameworks = report.frameworks_by_share();
    let framework_rows: String = frameworks
        .iter()
        .map(|f| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td></tr>\n",
                escape(&f.id),
                escape(&f.role),
                f.launched,
                f.tasks,
                f.finished,
                percent(f.share_mean),
                percent(f.share_peak),
                f.wait_mean
            )
        })
        .collect();
    let failure = match &report.failure {
        Some(failure) => {
            format!("<p class=\"failure\"><b>The run failed:</b> {}</p>", escape(failure).replace('\n', "<br>"))
        }
        None => String::new(),
    };
    let t = &report.totals;
    let events: String = report
        .events
        .iter()
        .map(|(at, what)| format!("<li>t={at}s: {}</li>", escape(what)))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modhost simulate: {workload}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child,td:nth-child(2){{text-align:left}}
figure{{margin:1em 0}}.legend{{font-size:90%}}.key{{white-space:nowrap;margin-right:1.2em}}
.swatch{{display:inline-block;width:0.8em;height:0.8em;margin-right:0.4em}}.failure{{color:#a00}}</style></head><body>
<h1>modhost simulate: {workload}</h1>
<p>Allocator <b>{allocator}</b>, seed {seed}, allocation interval {interval} s; {rounds} rounds to t={end} s ({stopped}).</p>
{failure}
<p>Tasks: {launched} launched, {finished} finished, {failed} failed, {lost} lost, {killed} killed, {pending} never launched.
Offers: {offers} made, {declined} declined, {rejected} refused by the host.
Allocator time per round: median {median:.1} µs, p99 {p99:.1} µs. Task wait: mean {wait:.1} s, p99 {wait99:.1} s.</p>
{share_svg}
{utilisation_svg}
{shadow_html}
<h2>Roles</h2>
<table><tr><th>role</th><th>weight</th><th>frameworks</th><th>tasks launched</th><th>mean share</th><th>peak share</th><th>final share</th></tr>
{rows}</table>
{quota_html}
<h2>Frameworks</h2>
<table><tr><th>framework</th><th>role</th><th>launched/tasks</th><th>finished</th><th>mean share</th><th>peak share</th><th>mean wait</th></tr>
{framework_rows}</table>
<h2>Events</h2><ul>{events}</ul>
<p>Decisions digest {digest}.</p>
</body></html>
"#,
        workload = escape(&report.workload),
        allocator = escape(&report.allocator),
        seed = report.seed,
        interval = report.allocation_interval,
        rounds = report.rounds,
        stopped = escape(&report.stopped),
        launched = t.launched,
        finished = t.finished,
        failed = t.failed,
        lost = t.lost,
        killed = t.killed,
        pending = t.pending_at_end,
        offers = t.offers,
        declined = t.declined,
        rejected = t.rejected_offers,
        median = report.allocator_us.median,
        p99 = report.allocator_us.p99,
        wait = report.task_wait.mean,
        wait99 = report.task_wait.p99,
        digest = report.decisions_digest,
    ))
}
