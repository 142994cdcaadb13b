//! The HTML report: a self-contained page with SVG charts (drawn by `plotters`) of the
//! roles' dominant shares and the cluster's utilisation over time, and the summary tables.

use plotters::prelude::*;

use super::report::Report;

/// One chart as an SVG document: a line per series, time on the x axis, 0..1 on the y axis.
fn line_chart(title: &str, series: &[(String, Vec<(f64, f64)>)], end: f64) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let top = series.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)).fold(0.0, f64::max);
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
        for (index, (name, points)) in series.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Renders the report as one HTML page.
pub fn html(report: &Report) -> Result<String, String> {
    let end = report.end_time;
    let shares: Vec<(String, Vec<(f64, f64)>)> = report
        .roles
        .iter()
        .enumerate()
        .map(|(i, role)| (role.role.clone(), report.series.iter().map(|r| (r.t, r.role_shares[i])).collect()))
        .collect();
    let mut names: Vec<&String> = report.utilisation_mean.keys().collect();
    names.sort();
    let utilisation: Vec<(String, Vec<(f64, f64)>)> = names
        .iter()
        .map(|name| {
            let points =
                report.series.iter().map(|r| (r.t, r.utilisation.get(*name).copied().unwrap_or(0.0))).collect();
            ((*name).clone(), points)
        })
        .collect();
    // Many roles make an unreadable chart: draw the 12 with the largest mean share.
    let mut top = shares;
    if top.len() > 12 {
        top.sort_by(|a, b| {
            let mean = |s: &[(f64, f64)]| s.iter().map(|p| p.1).sum::<f64>();
            mean(&b.1).total_cmp(&mean(&a.1))
        });
        top.truncate(12);
    }
    let share_svg = line_chart("Dominant share by role", &top, end)?;
    let utilisation_svg = line_chart("Utilisation by resource", &utilisation, end)?;
    // Shadow runs: the share each policy's offers would give each role, round by round.
    let shadow_svg = match &report.shadow {
        Some(shadow) => {
            let mut series = Vec::new();
            for (i, role) in report.roles.iter().enumerate().take(6) {
                for (label, pick) in [("active", 0), ("shadow", 1)] {
                    let points = report
                        .series
                        .iter()
                        .filter_map(|r| {
                            let shares = if pick == 0 { &r.offered_shares } else { &r.shadow_offered_shares };
                            shares.get(i).map(|s| (r.t, *s))
                        })
                        .collect();
                    series.push((format!("{} ({label})", role.role), points));
                }
            }
            let title = format!("Offered share by role: {} vs shadow {}", report.allocator, shadow.allocator);
            line_chart(&title, &series, end)?
        }
        None => String::new(),
    };

    let mut rows = String::new();
    for role in &report.roles {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.1}%</td></tr>\n",
            escape(&role.role),
            role.weight,
            role.frameworks,
            role.launched,
            role.share_mean * 100.0,
            role.share_peak * 100.0
        ));
    }
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
td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>modhost simulate: {workload}</h1>
<p>Allocator <b>{allocator}</b>, seed {seed}, allocation interval {interval} s; {rounds} rounds to t={end} s ({stopped}).</p>
<p>Tasks: {launched} launched, {finished} finished, {failed} failed, {lost} lost, {killed} killed, {pending} never launched.
Offers: {offers} made, {declined} declined, {rejected} refused by the host.
Allocator time per round: median {median:.1} µs, p99 {p99:.1} µs. Task wait: mean {wait:.1} s, p99 {wait99:.1} s.</p>
{share_svg}
{utilisation_svg}
{shadow_svg}
<h2>Roles</h2>
<table><tr><th>role</th><th>weight</th><th>frameworks</th><th>tasks launched</th><th>mean share</th><th>peak share</th></tr>
{rows}</table>
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
