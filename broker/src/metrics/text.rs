//! The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` lines,
//! then one line per sample, label values escaped as the format requires.

use std::fmt::Write;

/// The content type a scraper expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A page of metric families being written.
#[derive(Default)]
pub struct Text {
    out: String,
}

/// A metric family's type.
#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Text {
    /// Starts a family: every sample of `name` must follow before the next family.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value.into() {
            Value::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            Value::Float(v) if v.is_nan() => self.out.push_str("NaN"),
            Value::Float(v) if v == f64::INFINITY => self.out.push_str("+Inf"),
            Value::Float(v) if v == f64::NEG_INFINITY => self.out.push_str("-Inf"),
            Value::Float(v) => {
                let _ = write!(self.out, "{v}");
            }
        }
        self.out.push('\n');
    }

    /// A whole histogram: cumulative `_bucket` lines (with `le`), `_sum` and `_count`,
    /// each carrying `labels`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        let mut cumulative = 0u64;
        let bounds: Vec<String> = h.bounds.iter().map(|b| format!("{b}")).collect();
        for (i, n) in h.counts.iter().enumerate() {
            cumulative += n;
            let le = bounds.get(i).map(String::as_str).unwrap_or("+Inf");
            with_le.push(("le", le));
            self.sample(&bucket, &with_le, cumulative);
            with_le.pop();
        }
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, cumulative);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample's value.
pub enum Value {
    Int(i64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v.min(i64::MAX as u64) as i64)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v.min(i64::MAX as usize) as i64)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(v as i64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// A histogram's state at one moment: per-bucket (not cumulative) counts, the last one
/// for values above every bound; the sum of observed values.
pub struct HistogramSnapshot {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_label_values_and_histograms_are_cumulative() {
        let mut t = Text::default();
        t.family("strom_x_total", Kind::Counter, "Things.\nMore");
        t.sample("strom_x_total", &[("topic", "a\"b\\c\nd")], 3u64);
        t.family("strom_d_seconds", Kind::Histogram, "Durations.");
        t.histogram(
            "strom_d_seconds",
            &[("api", "Fetch")],
            &HistogramSnapshot {
                bounds: &[0.5, 1.0],
                counts: vec![1, 2, 3],
                sum: 7.25,
            },
        );
        t.sample("strom_g", &[], f64::INFINITY);
        assert_eq!(
            t.finish(),
            "# HELP strom_x_total Things.\\nMore\n\
             # TYPE strom_x_total counter\n\
             strom_x_total{topic=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP strom_d_seconds Durations.\n\
             # TYPE strom_d_seconds histogram\n\
             strom_d_seconds_bucket{api=\"Fetch\",le=\"0.5\"} 1\n\
             strom_d_seconds_bucket{api=\"Fetch\",le=\"1\"} 3\n\
             strom_d_seconds_bucket{api=\"Fetch\",le=\"+Inf\"} 6\n\
             strom_d_seconds_sum{api=\"Fetch\"} 7.25\n\
             strom_d_seconds_count{api=\"Fetch\"} 6\n\
             strom_g +Inf\n"
        );
    }
}
