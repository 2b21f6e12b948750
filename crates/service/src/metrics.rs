//! Operations figures for `/metrics` (DESIGN.md, "Probes and metrics"):
//! what the intake, the public routes and the connection cap do at a peak,
//! in the Prometheus text format (OpenMetrics).
//!
//! They are process-wide, as Prometheus's own clients keep them: the intake
//! writer, the public routes and the listener record where they act (an
//! atomic add, or a histogram's lock once per batch), and a scrape reads
//! them all. No figure carries a resident, a household or an address: only
//! counts, sizes and durations.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::Service;

type Labels = Vec<(&'static str, &'static str)>;

/// Every figure, registered once.
pub struct Figures {
    registry: Registry,
    /// Submissions stored by the intake writer.
    pub intake_stored: Counter,
    /// Submissions whose idempotency key was stored before: the original
    /// answer was given again.
    pub intake_duplicates: Counter,
    /// Submissions refused with 503: the intake queue was full, or its
    /// writer had stopped.
    pub intake_refused: Counter,
    /// Submissions answered with an error by the writer (store unavailable
    /// or a failed write).
    pub intake_failed: Counter,
    /// Submissions per committed batch.
    pub intake_batch_size: Histogram,
    /// How long a batch's commit took, answers included.
    pub intake_commit_seconds: Histogram,
    intake_queue_depth: Gauge,
    intake_queue_capacity: Gauge,
    /// The process, read at the scrape (Linux): memory, and the file
    /// descriptors that served and held connections take.
    resident_memory_bytes: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    /// Public requests refused before their handler, by reason.
    pub public_shed: Counter,
    pub public_timed_out: Counter,
    pub public_rate_limited: Counter,
    /// Connections counted against the cap now: those served, and over TLS
    /// also those refused and closed at the cap, until they close.
    pub connections_open: Gauge,
    /// Connections beyond the cap held open and refused at a slow pace.
    pub connections_held: Gauge,
    /// Connections refused at the cap, then held …
    pub connections_refused_held: Counter,
    /// … or closed (no room to hold them).
    pub connections_refused_closed: Counter,
    /// Staff requests (pages, the staff API, assets, probes) answered, by
    /// the class of their status: 2xx (and 1xx), 3xx, 4xx, 5xx.
    staff_answered: [Counter; 4],
    /// How long staff requests took, from the stack's outside to the answer.
    staff_request_seconds: Histogram,
    /// Staff requests being served now.
    staff_in_flight: Gauge,
}

impl std::fmt::Debug for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Figures").finish_non_exhaustive()
    }
}

static FIGURES: LazyLock<Figures> = LazyLock::new(Figures::new);

/// The process's figures.
pub fn figures() -> &'static Figures {
    &FIGURES
}

/// Registers `metric` under `name` and gives back the handle to record
/// with.
fn registered<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
    metric
}

/// A counter of `family` with one label, kept as a handle so that recording
/// needs no lookup.
fn labelled(family: &Family<Labels, Counter>, key: &'static str, value: &'static str) -> Counter {
    family.get_or_create(&vec![(key, value)]).clone()
}

impl Figures {
    fn new() -> Self {
        let mut root = Registry::default();
        // The process's figures by the names Prometheus's other clients give
        // them (no prefix of ours), so dashboards made for those work here.
        let process = root.sub_registry_with_prefix("process");
        let resident_memory_bytes = registered(
            process,
            "resident_memory_bytes",
            "Resident memory of the process",
            Gauge::default(),
        );
        let open_fds = registered(process, "open_fds", "Open file descriptors", Gauge::default());
        let max_fds =
            registered(process, "max_fds", "The most file descriptors allowed", Gauge::default());
        let registry = root.sub_registry_with_prefix("epigrid");
        let submissions = registered(
            registry,
            "intake_submissions",
            "Submissions the intake answered, by outcome",
            Family::<Labels, Counter>::default(),
        );
        // One submission to thousands a batch: powers of two.
        let intake_batch_size = registered(
            registry,
            "intake_batch_size",
            "Submissions per committed intake batch",
            Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0]),
        );
        // A commit is a fraction of a millisecond on a quiet disk and
        // seconds on a failing one.
        let intake_commit_seconds = registered(
            registry,
            "intake_commit_seconds",
            "Time to commit an intake batch",
            Histogram::new([
                0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        );
        let intake_queue_depth = registered(
            registry,
            "intake_queue_depth",
            "Submissions waiting for the intake writer",
            Gauge::default(),
        );
        let intake_queue_capacity = registered(
            registry,
            "intake_queue_capacity",
            "Submissions the intake queue holds at most (beyond, 503)",
            Gauge::default(),
        );
        let public_refused = registered(
            registry,
            "public_refused",
            "Resident requests refused before their handler, by reason",
            Family::<Labels, Counter>::default(),
        );
        let connections_open = registered(
            registry,
            "connections_open",
            "Connections counted against the cap (served; over TLS also refused, until closed)",
            Gauge::default(),
        );
        let connections_held = registered(
            registry,
            "connections_held",
            "Connections beyond the cap, held and refused at a slow pace",
            Gauge::default(),
        );
        let connections_refused = registered(
            registry,
            "connections_refused",
            "Connections refused at the cap, by what happened to them next",
            Family::<Labels, Counter>::default(),
        );
        // The staff's routes only: the resident routes' figures are the
        // intake's above, and they skip this recording (it is CPU on every
        // submission at the peak).
        let staff_requests = registered(
            registry,
            "staff_requests",
            "Staff requests (pages, API, assets, probes) answered, by status class",
            Family::<Labels, Counter>::default(),
        );
        // A page renders in milliseconds; an export or a report may take
        // tens of seconds, and the stack times out at 30.
        let staff_request_seconds = registered(
            registry,
            "staff_request_seconds",
            "Time to answer a staff request",
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        );
        let staff_in_flight = registered(
            registry,
            "staff_requests_in_flight",
            "Staff requests being served now",
            Gauge::default(),
        );
        Self {
            staff_answered: ["2xx", "3xx", "4xx", "5xx"]
                .map(|class| labelled(&staff_requests, "status", class)),
            staff_request_seconds,
            staff_in_flight,
            intake_stored: labelled(&submissions, "outcome", "stored"),
            intake_duplicates: labelled(&submissions, "outcome", "duplicate"),
            intake_refused: labelled(&submissions, "outcome", "refused"),
            intake_failed: labelled(&submissions, "outcome", "failed"),
            intake_batch_size,
            intake_commit_seconds,
            intake_queue_depth,
            intake_queue_capacity,
            resident_memory_bytes,
            open_fds,
            max_fds,
            public_shed: labelled(&public_refused, "reason", "shed"),
            public_timed_out: labelled(&public_refused, "reason", "timed_out"),
            public_rate_limited: labelled(&public_refused, "reason", "rate_limited"),
            connections_open,
            connections_held,
            connections_refused_held: labelled(&connections_refused, "then", "held"),
            connections_refused_closed: labelled(&connections_refused, "then", "closed"),
            registry: root,
        }
    }

    /// Records one committed batch.
    pub(crate) fn batch_committed(&self, size: usize, took: Duration) {
        self.intake_batch_size.observe(size as f64);
        self.intake_commit_seconds.observe(took.as_secs_f64());
    }

    /// Counts a staff request in flight until the guard is dropped: when it
    /// is answered, or when its client goes away and the request is dropped.
    pub fn staff_request_started(&self) -> StaffRequestInFlight {
        self.staff_in_flight.inc();
        StaffRequestInFlight(self.staff_in_flight.clone())
    }

    /// Records a staff request's answer and how long it took.
    pub fn staff_request_answered(&self, status: u16, took: Duration) {
        let class = match status {
            0..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            _ => 3,
        };
        self.staff_answered[class].inc();
        self.staff_request_seconds.observe(took.as_secs_f64());
    }
}

/// A staff request counted in flight (see `Figures::staff_request_started`).
#[derive(Debug)]
pub struct StaffRequestInFlight(Gauge);

impl Drop for StaffRequestInFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A count as a gauge's value, the largest one past its range.
fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Resident memory, open and allowed file descriptors, from `/proc`
/// (`None` where there is none).
fn process_figures() -> Option<(u64, usize, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let resident_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())?;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count();
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let max = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(0);
    Some((resident_kib * 1024, open, max))
}

/// The work of the sub-district (this instance's store) now, for
/// `/metrics`: a grid office short of hands shows here first, as overdue
/// and escalated tasks rising.
fn task_figures_text(grids: &[epigrid_store::GridTaskFigures]) -> String {
    let total = |figure: fn(&epigrid_store::GridTaskFigures) -> i64| -> i64 {
        grids.iter().map(figure).sum()
    };
    // A registry of this scrape's own: the figures are the store's, not the
    // process's, so two services in one process (tests) never mix them.
    let mut root = Registry::default();
    let registry = root.sub_registry_with_prefix("epigrid");
    for (name, help, value) in [
        ("tasks_open", "Open tasks: not rejected, closed or evaluated", total(|g| g.open)),
        ("tasks_overdue", "Open tasks past their stage deadline", total(|g| g.overdue)),
        (
            "tasks_escalated_open",
            "Open tasks escalated at least once on their current stage",
            total(|g| g.escalated_open),
        ),
        ("tasks_closed_today", "Tasks closed since the start of today", total(|g| g.closed_today)),
        (
            "task_escalations_today",
            "Escalation steps since the start of today",
            total(|g| g.escalations_today),
        ),
    ] {
        let gauge: Gauge = Gauge::default();
        gauge.set(value);
        registry.register(name, help, gauge);
    }
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &root);
    text
}

impl Service {
    /// The figures as Prometheus scrapes them, with the intake queue's
    /// depth and the task figures read now. If the store does not answer,
    /// the task figures are left out and the rest is served.
    pub async fn metrics_text(&self) -> String {
        let figures = figures();
        let (depth, capacity) = self.intake_queue_fill();
        figures.intake_queue_depth.set(gauge_value(depth));
        figures.intake_queue_capacity.set(gauge_value(capacity));
        if let Some((memory, open, max)) = process_figures() {
            figures.resident_memory_bytes.set(gauge_value(memory));
            figures.open_fds.set(gauge_value(open));
            figures.max_fds.set(gauge_value(max));
        }
        let tasks = self.store().grid_task_figures(None, self.now(), self.day_start()).await;
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &figures.registry);
        match tasks {
            Ok(grids) => {
                // One exposition ends with one `# EOF`: the process's
                // figures, then the tasks' with theirs.
                if let Some(head) = text.strip_suffix("# EOF\n") {
                    text = format!("{head}{}", task_figures_text(&grids));
                }
            }
            Err(error) => tracing::warn!(%error, "task figures left out of /metrics"),
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_render_with_their_names_labels_and_buckets() {
        let figures = figures();
        let stored = figures.intake_stored.get();
        figures.intake_stored.inc();
        figures.batch_committed(3, Duration::from_micros(700));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &figures.registry).unwrap();
        let line = format!("epigrid_intake_submissions_total{{outcome=\"stored\"}} {}", stored + 1);
        // Other tests of this process may record too: at least ours.
        let counted = text
            .lines()
            .find_map(|l| l.strip_prefix("epigrid_intake_submissions_total{outcome=\"stored\"} "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        assert!(counted > stored, "{line} in\n{text}");
        assert!(text.contains("epigrid_intake_batch_size_bucket{le=\"4.0\"}"), "{text}");
        assert!(text.contains("epigrid_intake_commit_seconds_bucket{le=\"0.001\"}"), "{text}");
        assert!(text.contains("# TYPE epigrid_connections_open gauge"), "{text}");
        assert!(text.contains("epigrid_connections_refused_total{then=\"held\"}"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
