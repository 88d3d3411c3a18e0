//! The run as a picture a person can look at: acknowledged records per second and the
//! p99 produce latency of each second over time, faults shaded, as one SVG file.

use super::verdict::{Fault, Produced};

const W: f64 = 960.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the run `[start, end]` (ms since the epoch).
pub fn svg(produced: &[Produced], faults: &[Fault], start: i64, end: i64, title: &str) -> String {
    let seconds = (((end - start).max(1000)) as f64 / 1000.0).ceil() as usize;
    let mut acks = vec![0u64; seconds];
    let mut latencies: Vec<Vec<i64>> = vec![Vec::new(); seconds];
    for p in produced {
        if let Some(a) = p.acked_ms {
            let s = ((a - start).max(0) / 1000) as usize;
            if s < seconds {
                acks[s] += 1;
                latencies[s].push(a - p.sent_ms);
            }
        }
    }
    let p99: Vec<Option<i64>> = latencies
        .into_iter()
        .map(|mut v| {
            v.sort_unstable();
            (!v.is_empty())
                .then(|| v[((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1])
        })
        .collect();
    let max_acks = acks.iter().copied().max().unwrap_or(1).max(1) as f64;
    let max_lat = p99.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |sec: f64| LEFT + pw * sec / seconds as f64;
    let y_acks = |n: f64| TOP + ph * (1.0 - n / max_acks);
    let y_lat = |ms: f64| TOP + ph * (1.0 - ms / max_lat);
    let mut out = String::new();
    out.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{LEFT}\" y=\"22\" font-size=\"15\">{}</text>\n",
        esc(title)
    ));
    for f in faults {
        let (a, b) = (
            ((f.start_ms - start) as f64 / 1000.0).max(0.0),
            ((f.end_ms - start) as f64 / 1000.0).min(seconds as f64),
        );
        out.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{ph}\" fill=\"#f4c7c3\" opacity=\"0.6\"><title>{} node {}</title></rect>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#a33\">{} {}</text>\n",
            x(a),
            (x(b) - x(a)).max(1.0),
            esc(&f.kind),
            f.node,
            x(a) + 2.0,
            TOP + 12.0,
            esc(&f.kind),
            f.node
        ));
    }
    let acks_line: Vec<String> = acks
        .iter()
        .enumerate()
        .map(|(s, n)| format!("{:.1},{:.1}", x(s as f64 + 0.5), y_acks(*n as f64)))
        .collect();
    out.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#1f6fb2\" stroke-width=\"1.5\" points=\"{}\"/>\n",
        acks_line.join(" ")
    ));
    let lat_points: Vec<String> = p99
        .iter()
        .enumerate()
        .filter_map(|(s, v)| {
            v.map(|ms| format!("{:.1},{:.1}", x(s as f64 + 0.5), y_lat(ms as f64)))
        })
        .collect();
    out.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#d9822b\" stroke-width=\"1.5\" points=\"{}\"/>\n",
        lat_points.join(" ")
    ));
    // Axes and labels.
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#444\"/>\n",
        TOP + ph,
        LEFT + pw,
        TOP + ph
    ));
    for i in 0..=5 {
        let sec = seconds as f64 * i as f64 / 5.0;
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.0} s</text>\n",
            x(sec),
            TOP + ph + 18.0,
            sec
        ));
        let frac = i as f64 / 5.0;
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1f6fb2\">{:.0}</text>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d9822b\">{:.0} ms</text>\n",
            LEFT - 6.0,
            TOP + ph * (1.0 - frac) + 4.0,
            max_acks * frac,
            LEFT + pw + 6.0,
            TOP + ph * (1.0 - frac) + 4.0,
            max_lat * frac
        ));
    }
    out.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#1f6fb2\">acknowledged records per second</text>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#d9822b\">p99 produce latency of the second</text>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#a33\">shaded: faults</text>\n</svg>\n",
        H - 8.0,
        W - RIGHT,
        H - 8.0,
        W / 2.0,
        H - 8.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_has_both_series_and_the_faults() {
        let produced: Vec<Produced> = (0..30)
            .map(|i| Produced {
                producer: 0,
                seq: i,
                key: "k".into(),
                value: format!("v{i}"),
                sent_ms: 1_000 + i as i64 * 100,
                acked_ms: Some(1_003 + i as i64 * 100),
                partition: 0,
                offset: i as i64,
                error: None,
            })
            .collect();
        let faults = vec![Fault {
            kind: "kill".into(),
            node: 2,
            start_ms: 2_000,
            end_ms: 2_500,
        }];
        let s = svg(&produced, &faults, 1_000, 4_000, "a <run>");
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("kill node 2") && s.contains("a &lt;run&gt;"));
    }
}
