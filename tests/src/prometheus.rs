//! A strict parser of the Prometheus text exposition format (version 0.0.4), for tests
//! that scrape `/metrics`: every line must be well-formed, every sample must belong to a
//! family with a `# TYPE`, no series may repeat, and histograms must be consistent
//! (cumulative buckets ending in `+Inf`, equal to `_count`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail, ensure};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Family name -> type (`counter`, `gauge`, `histogram`, `summary`, `untyped`).
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
}

impl Exposition {
    /// Samples named `name` whose labels include every pair of `labels`.
    pub fn find<'a>(&'a self, name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample `name{labels…}`; panics unless there is exactly one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.find(name, labels);
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0].value
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn parse_value(s: &str) -> anyhow::Result<f64> {
    Ok(match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s.parse().with_context(|| format!("`{s}` is not a value"))?,
    })
}

/// Parses `{a="x",b="y"}` at the start of `s`; returns the labels and the rest.
fn parse_labels(s: &str) -> anyhow::Result<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').context("labels start with {")?;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let (name, r) = rest.split_once('=').context("a label needs =")?;
        let name = name.trim();
        ensure!(is_label_name(name), "bad label name `{name}`");
        let mut chars = r
            .strip_prefix('"')
            .context("label values are quoted")?
            .chars();
        let mut value = String::new();
        loop {
            match chars.next().context("unterminated label value")? {
                '"' => break,
                '\\' => match chars.next().context("dangling escape")? {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => bail!("bad escape \\{c}"),
                },
                '\n' => bail!("newline in a label value"),
                c => value.push(c),
            }
        }
        ensure!(
            labels.insert(name.to_owned(), value).is_none(),
            "label `{name}` repeats"
        );
        rest = chars.as_str().trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else {
            ensure!(rest.starts_with('}'), "labels are separated by commas");
        }
    }
}

/// The family a sample name belongs to, given the declared types.
fn family<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            )
        {
            return Some(base);
        }
    }
    None
}

pub fn parse(text: &str) -> anyhow::Result<Exposition> {
    let mut e = Exposition::default();
    let mut seen = BTreeSet::new();
    let mut sampled_families = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let at = || format!("line {}: `{line}`", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(ty)) => {
                    ensure!(is_metric_name(name), "{}: bad metric name", at());
                    ensure!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty),
                        "{}: unknown type",
                        at()
                    );
                    ensure!(
                        !sampled_families.contains(name),
                        "{}: TYPE after samples",
                        at()
                    );
                    ensure!(
                        e.types.insert(name.into(), ty.into()).is_none(),
                        "{}: TYPE repeats",
                        at()
                    );
                }
                (Some("HELP"), Some(name), help) => {
                    ensure!(is_metric_name(name), "{}: bad metric name", at());
                    e.help.insert(name.into(), help.unwrap_or("").into());
                }
                _ => {} // a plain comment
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).with_context(at)?;
        let name = &line[..name_end];
        ensure!(is_metric_name(name), "{}: bad metric name", at());
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).with_context(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().with_context(at)?).with_context(at)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().with_context(at)?;
        }
        ensure!(fields.next().is_none(), "{}: trailing text", at());
        let fam = family(name, &e.types).with_context(|| format!("{}: no # TYPE", at()))?;
        sampled_families.insert(fam.to_owned());
        ensure!(
            seen.insert((name.to_owned(), labels.clone())),
            "{}: series repeats",
            at()
        );
        e.samples.push(Sample {
            name: name.into(),
            labels,
            value,
        });
    }
    check_histograms(&e)?;
    Ok(e)
}

fn check_histograms(e: &Exposition) -> anyhow::Result<()> {
    for (fam, _) in e.types.iter().filter(|(_, t)| *t == "histogram") {
        // Series of this histogram, keyed by labels without `le`.
        let mut buckets: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in e.find(&format!("{fam}_bucket"), &[]) {
            let mut labels = s.labels.clone();
            let le = labels.remove("le").context("a bucket without le")?;
            buckets
                .entry(labels)
                .or_default()
                .push((parse_value(&le)?, s.value));
        }
        for (labels, mut b) in buckets {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            ensure!(
                b.windows(2).all(|w| w[0].1 <= w[1].1),
                "{fam}{labels:?}: buckets are not cumulative"
            );
            let last = b.last().expect("at least one bucket");
            ensure!(last.0 == f64::INFINITY, "{fam}{labels:?}: no +Inf bucket");
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let count = e.value(&format!("{fam}_count"), &pairs);
            ensure!(
                count == last.1,
                "{fam}{labels:?}: +Inf bucket {} != count {count}",
                last.1
            );
            e.value(&format!("{fam}_sum"), &pairs);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_and_refuses_the_rest() {
        let good = "# HELP c_total Things.\n# TYPE c_total counter\nc_total{a=\"x\\\"y\",b=\"\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.7\nh_count 2\n\
                    # TYPE g gauge\ng NaN 1700000000000\n";
        let e = parse(good).unwrap();
        assert_eq!(e.value("c_total", &[("a", "x\"y")]), 3.0);
        assert_eq!(e.samples.len(), 6);
        for bad in [
            "c 1\n",                                     // no TYPE
            "# TYPE c counter\nc{a=x} 1\n",              // unquoted value
            "# TYPE c counter\nc 1\nc 2\n",              // repeated series
            "# TYPE c counter\nc one\n",                 // bad value
            "# TYPE c counter\nc 1\n# TYPE c counter\n", // TYPE repeats
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad}");
        }
    }
}
