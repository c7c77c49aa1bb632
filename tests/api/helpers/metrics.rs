//! `GET /metrics` of a server started with `ROWGUARD_METRICS_BIND`, read with a
//! Prometheus text-format parser (what a Prometheus server does with it).

use prometheus_parse::{Scrape, Value};

use super::TestApp;

/// One scrape, parsed.
pub struct Metrics(pub Scrape);

impl TestApp {
    /// Scrapes the server's metrics address; panics unless it answers 200 in the text
    /// format.
    pub async fn scrape(&self) -> Metrics {
        let address = self
            .metrics_address
            .expect("the server was started with settings.metrics_bind");
        let response = self
            .http
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.unwrap();
        let lines = text.lines().map(|line| Ok(line.to_string()));
        Metrics(Scrape::parse(lines).expect("the metrics parse as Prometheus text"))
    }
}

impl Metrics {
    /// The value of the counter or gauge `name` whose labels include `labels`; `None`
    /// when there is no such series.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.series(name, labels).map(|value| match value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is not a single value: {other:?}"),
        })
    }

    /// [`Metrics::value`], 0 when the series does not exist yet (a counter no event
    /// has touched).
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    /// How many observations the histogram `name` with `labels` holds (its `+Inf`
    /// bucket), 0 when it has none.
    pub fn observations(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.series(name, labels) {
            None => 0.0,
            Some(Value::Histogram(buckets)) => buckets
                .iter()
                .find(|bucket| bucket.less_than.is_infinite())
                .map_or(0.0, |bucket| bucket.count),
            Some(other) => panic!("{name} is not a histogram: {other:?}"),
        }
    }

    /// Every value a label takes among the series of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        self.0
            .samples
            .iter()
            .filter(|sample| sample.metric == name)
            .filter_map(|sample| sample.labels.get(label).map(str::to_string))
            .collect()
    }

    fn series(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Value> {
        self.0
            .samples
            .iter()
            .find(|sample| {
                sample.metric == name
                    && labels
                        .iter()
                        .all(|(label, value)| sample.labels.get(label) == Some(*value))
            })
            .map(|sample| &sample.value)
    }
}
