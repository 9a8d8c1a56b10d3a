//! The delay-based half of the bandwidth estimate: libwebrtc's trendline
//! detector and AIMD rate control, over transport-wide feedback. Pure:
//! every instant is an input; no clock, no socket, no panic on any input.
//!
//! Why our own: webrtc-rs's `gcc` (rtc-interceptor 0.21.1) compares the
//! Kalman-filtered delay change of *one* packet group with a 12.5 ms
//! threshold. A queue that grows by a few ms a group, which is what a link
//! 20% over its rate does, never crosses it: on a 600 kbit/s link its
//! delay half climbed to 1.5 Mbit/s while the queue overflowed, and only
//! its loss half (kept: [`crate::link`] takes the lower of the two) pulled
//! the estimate down, in a saw-tooth of lost packets. libwebrtc scales the
//! slope of the accumulated delay by the number of deltas in it
//! (`modified_trend = min(n, 60) * slope * 4`), which sees that queue in
//! about a second.
//!
//! The loss-based half ([`LossBased`]) is ours too, for the reason given
//! there; the estimate is the lower of the two.
//!
//! ```text
//! reports ─▶ Groups (5 ms bursts) ─▶ Trendline (slope of the smoothed
//!            accumulated delay, 20 groups) ─▶ Detector (adaptive
//!            threshold) ─▶ Usage ─▶ Aimd (x1.08/s up, x0.85 of what
//!            arrives on overuse, capped at 1.5x what arrives) ─▶ bit/s
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One packet the peer reported on, in send order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sent {
    /// When it left here.
    pub departure: Instant,
    /// When it arrived, on the peer's clock; `None`: lost.
    pub arrival: Option<Duration>,
    /// Bytes on the wire.
    pub size: usize,
}

/// What the delay trend says about the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// The queue is steady: the rate may grow.
    Normal,
    /// The queue is growing: the rate must fall.
    Over,
    /// The queue is draining: hold the rate while it does.
    Under,
}

/// Packets sent within this of a group's first are one group (a burst).
const GROUP: Duration = Duration::from_millis(5);
/// Groups the slope is fitted over.
const WINDOW: usize = 20;
/// Weight of the old value in the smoothed accumulated delay.
const SMOOTHING: f64 = 0.9;
/// libwebrtc's scaling of the slope before it meets the threshold.
const TREND_GAIN: f64 = 4.0;
/// The threshold starts here (ms) and adapts within 6..600.
const THRESHOLD_START: f64 = 12.5;
/// How fast the threshold rises to a trend above it, and falls to one below.
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// How long a trend must stay over the threshold to count as overuse.
const OVERUSE_FOR_MS: f64 = 10.0;
/// On overuse the rate becomes this share of what arrives.
const BETA: f64 = 0.85;
/// Growth per second while far from the link's known capacity.
const GROWTH_PER_S: f64 = 1.08;
/// The rate never runs further ahead of what arrives than this.
const AHEAD_OF_ARRIVALS: f64 = 1.5;
/// What arrives is measured over this window.
const RATE_WINDOW: Duration = Duration::from_millis(500);
/// At most one decrease this often, so each is seen before the next.
const DECREASE_EVERY: Duration = Duration::from_millis(200);

/// A burst of packets, by send time.
#[derive(Clone, Copy, Debug)]
struct Group {
    first_departure: Instant,
    last_departure: Instant,
    last_arrival: Duration,
}

/// The slope of the accumulated delay, and the detector on it.
#[derive(Clone, Debug)]
struct Trendline {
    deltas: u32,
    accumulated_ms: f64,
    smoothed_ms: f64,
    first_arrival: Option<Duration>,
    points: VecDeque<(f64, f64)>,
    prev_trend: f64,
    threshold: f64,
    last_threshold_update: Option<Duration>,
    over_ms: Option<f64>,
    over_count: u32,
    usage: Usage,
}

impl Trendline {
    fn new() -> Self {
        Trendline {
            deltas: 0,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            first_arrival: None,
            points: VecDeque::with_capacity(WINDOW + 1),
            prev_trend: 0.0,
            threshold: THRESHOLD_START,
            last_threshold_update: None,
            over_ms: None,
            over_count: 0,
            usage: Usage::Normal,
        }
    }

    /// One group's deltas to the previous group (ms) and its arrival.
    fn update(&mut self, arrival_delta: f64, send_delta: f64, arrival: Duration) -> Usage {
        self.deltas = (self.deltas + 1).min(1000);
        self.accumulated_ms += arrival_delta - send_delta;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let first = *self.first_arrival.get_or_insert(arrival);
        let x = arrival.saturating_sub(first).as_secs_f64() * 1000.0;
        self.points.push_back((x, self.smoothed_ms));
        if self.points.len() > WINDOW {
            self.points.pop_front();
        }
        let trend = if self.points.len() == WINDOW {
            slope(&self.points).unwrap_or(self.prev_trend)
        } else {
            self.prev_trend
        };
        self.detect(trend, send_delta, arrival);
        self.usage
    }

    fn detect(&mut self, trend: f64, send_delta: f64, arrival: Duration) {
        if self.deltas < 2 {
            self.usage = Usage::Normal;
            return;
        }
        let modified = f64::from(self.deltas.min(60)) * trend * TREND_GAIN;
        if modified > self.threshold {
            let over = match self.over_ms {
                None => send_delta / 2.0,
                Some(t) => t + send_delta,
            };
            self.over_ms = Some(over);
            self.over_count += 1;
            if over > OVERUSE_FOR_MS && self.over_count > 1 && trend >= self.prev_trend {
                self.over_ms = Some(0.0);
                self.over_count = 0;
                self.usage = Usage::Over;
            }
        } else if modified < -self.threshold {
            self.over_ms = None;
            self.over_count = 0;
            self.usage = Usage::Under;
        } else {
            self.over_ms = None;
            self.over_count = 0;
            self.usage = Usage::Normal;
        }
        self.prev_trend = trend;
        self.adapt_threshold(modified, arrival);
    }

    fn adapt_threshold(&mut self, modified: f64, now: Duration) {
        let last = self.last_threshold_update.replace(now);
        // A spike (a route change, a suspended peer) says nothing of the queue.
        if modified.abs() > self.threshold + 15.0 {
            return;
        }
        let Some(last) = last else { return };
        let k = if modified.abs() < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let dt = (now.saturating_sub(last).as_secs_f64() * 1000.0).min(100.0);
        self.threshold =
            (self.threshold + k * (modified.abs() - self.threshold) * dt).clamp(6.0, 600.0);
    }
}

/// Least-squares slope of `points`; `None` when they have no spread in x.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den > 0.0).then(|| num / den).filter(|s| s.is_finite())
}

/// The delay-based estimate.
#[derive(Clone, Debug)]
pub struct DelayBased {
    min: f64,
    max: f64,
    rate: f64,
    group: Option<Group>,
    prev: Option<Group>,
    trend: Trendline,
    /// (arrival on the peer's clock, bytes) of the packets that arrived in
    /// the last [`RATE_WINDOW`] of it, for the arrival rate.
    arrived: VecDeque<(Duration, usize)>,
    last_change: Option<Instant>,
    last_decrease: Option<Instant>,
    /// What arrived when overuse was seen: near it, grow gently.
    capacity: Capacity,
}

/// Weight of a new overuse's arrival rate in [`Capacity`].
const CAPACITY_ALPHA: f64 = 0.05;
/// [`Capacity`]'s normalised variance (kbit/s) is held within this: at
/// 500 kbit/s its bounds are 42..106 kbit/s either side.
const CAPACITY_VARIANCE: (f64, f64) = (0.4, 2.5);

/// What the link took when it last overflowed, as libwebrtc's
/// `LinkCapacityEstimator`: the arrival rates at overuse, smoothed, with
/// their spread. A rate outside its three-deviation bounds means the link
/// changed: it is forgotten, and the rate control finds the link again at
/// [`GROWTH_PER_S`] rather than creeping at one packet per 300 ms. Without
/// the lower bound, a link that fell from 2 to 0.5 Mbit/s kept a capacity
/// of ~1 Mbit/s (each overuse moves it 5%), and when the link came back
/// the rate crept through the last few hundred kbit/s it had before.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Capacity {
    /// kbit/s.
    estimate: Option<f64>,
    /// The variance of the samples, normalised by the estimate (kept when
    /// the estimate is forgotten, as libwebrtc does).
    variance: f64,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            estimate: None,
            variance: CAPACITY_VARIANCE.0,
        }
    }
}

impl Capacity {
    /// Overuse seen while `kbps` arrived.
    fn on_overuse(&mut self, kbps: f64) {
        if self.bounds().is_some_and(|(low, _)| kbps < low) {
            // Well under what the link took: it narrowed.
            self.estimate = None;
        }
        let e = match self.estimate {
            None => kbps,
            Some(e) => (1.0 - CAPACITY_ALPHA) * e + CAPACITY_ALPHA * kbps,
        };
        let v = (1.0 - CAPACITY_ALPHA) * self.variance
            + CAPACITY_ALPHA * (e - kbps).powi(2) / e.max(1.0);
        self.variance = v.clamp(CAPACITY_VARIANCE.0, CAPACITY_VARIANCE.1);
        self.estimate = Some(e);
    }

    /// Three deviations either side of the estimate, kbit/s.
    fn bounds(&self) -> Option<(f64, f64)> {
        let e = self.estimate?;
        let spread = 3.0 * (e * self.variance).sqrt();
        Some((e - spread, e + spread))
    }

    /// `kbps` arrives without overuse: a link it outgrew is forgotten.
    /// `Some`: the capacity still known, bit/s (near it, grow gently).
    fn near(&mut self, kbps: f64) -> Option<f64> {
        if self.bounds().is_some_and(|(_, high)| kbps > high) {
            self.estimate = None;
        }
        self.estimate.map(|e| e * 1000.0)
    }
}

impl DelayBased {
    /// Starting at `start` bit/s, held within `min..=max`.
    pub fn new(start: f64, min: f64, max: f64) -> Self {
        let (min, max) = (min.max(1.0), max.max(min.max(1.0)));
        DelayBased {
            min,
            max,
            rate: if start.is_finite() {
                start.clamp(min, max)
            } else {
                min
            },
            group: None,
            prev: None,
            trend: Trendline::new(),
            arrived: VecDeque::new(),
            last_change: None,
            last_decrease: None,
            capacity: Capacity::default(),
        }
    }

    /// The estimate, bit/s.
    pub fn target(&self) -> f64 {
        self.rate
    }

    /// What the trend said last.
    pub fn usage(&self) -> Usage {
        self.trend.usage
    }

    /// What arrives, bit/s, over the last [`RATE_WINDOW`] of arrivals
    /// (by the peer's clock, so feedback's own timing doesn't skew it).
    pub fn arrival_rate(&self) -> Option<f64> {
        let (first, last) = (self.arrived.front()?.0, self.arrived.back()?.0);
        let span = last.saturating_sub(first);
        if span < RATE_WINDOW / 4 {
            return None;
        }
        // The first packet's bytes arrived at the span's start, not within it.
        let bytes: f64 = self.arrived.iter().skip(1).map(|(_, b)| *b as f64).sum();
        Some(bytes * 8.0 / span.as_secs_f64())
    }

    /// Feedback heard at `now` on `reports` (in send order); the estimate.
    pub fn on_reports(&mut self, now: Instant, reports: &[Sent]) -> f64 {
        for r in reports {
            let Some(arrival) = r.arrival else { continue };
            self.group_packet(r.departure, arrival);
            // Kept in arrival order; a reordered packet counts as arriving last.
            let at = self
                .arrived
                .back()
                .map_or(arrival, |(t, _)| arrival.max(*t));
            self.arrived.push_back((at, r.size));
        }
        if let Some(&(last, _)) = self.arrived.back() {
            while self
                .arrived
                .front()
                .is_some_and(|(t, _)| last.saturating_sub(*t) > RATE_WINDOW)
            {
                self.arrived.pop_front();
            }
        }
        self.control(now);
        self.rate
    }

    fn group_packet(&mut self, departure: Instant, arrival: Duration) {
        match &mut self.group {
            Some(g) if departure.saturating_duration_since(g.first_departure) <= GROUP => {
                g.last_departure = g.last_departure.max(departure);
                g.last_arrival = g.last_arrival.max(arrival);
            }
            // A packet sent before the group began (reordered feedback): skip it.
            Some(g) if departure < g.first_departure => {}
            _ => {
                let done = self.group.replace(Group {
                    first_departure: departure,
                    last_departure: departure,
                    last_arrival: arrival,
                });
                if let Some(done) = done {
                    if let Some(prev) = self.prev {
                        let send = done
                            .last_departure
                            .saturating_duration_since(prev.last_departure)
                            .as_secs_f64()
                            * 1000.0;
                        // Reordered across groups: no delta to take.
                        if let Some(arr) = done.last_arrival.checked_sub(prev.last_arrival) {
                            self.trend
                                .update(arr.as_secs_f64() * 1000.0, send, done.last_arrival);
                        }
                    }
                    self.prev = Some(done);
                }
            }
        }
    }

    fn control(&mut self, now: Instant) {
        let Some(arriving) = self.arrival_rate() else {
            self.last_change = Some(now);
            return;
        };
        let since = self
            .last_change
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        match self.trend.usage {
            Usage::Over => {
                let may = self
                    .last_decrease
                    .is_none_or(|t| now.saturating_duration_since(t) >= DECREASE_EVERY);
                if may {
                    self.rate = (BETA * arriving).min(self.rate);
                    self.capacity.on_overuse(arriving / 1000.0);
                    self.last_decrease = Some(now);
                }
            }
            Usage::Under => {}
            Usage::Normal => {
                let dt = since.as_secs_f64().min(1.0);
                let grown = match self.capacity.near(arriving / 1000.0) {
                    // Near capacity: about one packet per 300 ms.
                    Some(c) if self.rate > 0.9 * c => self.rate + 1200.0 * 8.0 * dt / 0.3,
                    _ => self.rate * GROWTH_PER_S.powf(dt) + 1000.0 * dt,
                };
                let cap = AHEAD_OF_ARRIVALS * arriving + 10_000.0;
                if grown > self.rate {
                    self.rate = grown.min(cap.max(self.rate));
                }
            }
        }
        self.rate = self.rate.clamp(self.min, self.max);
        self.last_change = Some(now);
    }
}

/// Below this loss the loss half lets the rate follow the delay half.
pub const LOW_LOSS: f64 = 0.02;
/// Above this it cuts the rate by half the loss.
pub const HIGH_LOSS: f64 = 0.10;
/// At most one cut this often (a cut must be seen before the next).
const LOSS_CUT_EVERY: Duration = Duration::from_millis(500);

/// The loss-based half, as libwebrtc's first one: under 2% loss the rate
/// may grow (to what the delay half allows), between 2 and 10% it holds
/// (loss a wireless link has anyway; cutting would only starve the
/// call), over 10% it is cut by half the loss.
///
/// The loss is the peer's receiver reports' (RTCP RR `fraction lost`, about
/// once a second), not transport-wide feedback's: webrtc-rs counts every
/// packet a lost *feedback* packet would have acknowledged as lost, so on a
/// path losing 5% each way it read 10-33%, and webrtc-rs GCC's loss half,
/// judging each feedback alone, cut the rate again and again.
#[derive(Clone, Debug)]
pub struct LossBased {
    rate: f64,
    min: f64,
    max: f64,
    last: Option<Instant>,
    last_cut: Option<Instant>,
    last_loss: Option<f64>,
}

impl LossBased {
    pub fn new(start: f64, min: f64, max: f64) -> Self {
        let (min, max) = (min.max(1.0), max.max(min.max(1.0)));
        LossBased {
            rate: if start.is_finite() {
                start.clamp(min, max)
            } else {
                min
            },
            min,
            max,
            last: None,
            last_cut: None,
            last_loss: None,
        }
    }

    pub fn target(&self) -> f64 {
        self.rate
    }

    /// The loss last reported.
    pub fn loss(&self) -> Option<f64> {
        self.last_loss
    }

    /// A receiver report at `now` says `fraction` (0..1) was lost;
    /// `delay_target` is the delay half's estimate, which this half never
    /// raises the rate past.
    pub fn on_loss(&mut self, now: Instant, fraction: f64, delay_target: f64) -> f64 {
        if !fraction.is_finite() {
            return self.rate;
        }
        let loss = fraction.clamp(0.0, 1.0);
        let elapsed = self.last.map_or(0.0, |t| {
            now.saturating_duration_since(t).as_secs_f64().min(1.0)
        });
        self.last = Some(now);
        self.last_loss = Some(loss);
        if loss < LOW_LOSS {
            let grown = self.rate * GROWTH_PER_S.powf(elapsed) + 1000.0 * elapsed;
            let ceiling = if delay_target.is_finite() {
                delay_target
            } else {
                self.rate
            };
            self.rate = grown.max(self.rate).min(ceiling.max(self.rate));
        } else if loss > HIGH_LOSS {
            let may = self
                .last_cut
                .is_none_or(|t| now.saturating_duration_since(t) >= LOSS_CUT_EVERY);
            if may {
                let from = if delay_target.is_finite() {
                    self.rate.min(delay_target)
                } else {
                    self.rate
                };
                self.rate = from * (1.0 - 0.5 * loss);
                self.last_cut = Some(now);
            }
        }
        self.rate = self.rate.clamp(self.min, self.max);
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender at `send_bps` through a bottleneck of `link_bps` (an
    /// unlimited queue), fed back every 50 ms for `secs`; the estimates.
    fn run(
        est: &mut DelayBased,
        send_bps: impl Fn(f64) -> f64,
        link_bps: f64,
        secs: u64,
    ) -> Vec<f64> {
        run_on(est, send_bps, |_| link_bps, secs)
    }

    /// As [`run`], on a link whose rate at `t` s is `link_bps(t)`.
    fn run_on(
        est: &mut DelayBased,
        send_bps: impl Fn(f64) -> f64,
        link_bps: impl Fn(f64) -> f64,
        secs: u64,
    ) -> Vec<f64> {
        let t0 = Instant::now();
        let size = 1200usize;
        let mut queue_free_at = 0.0f64; // s, on the path's clock
        let mut t = 0.0f64;
        let mut batch = Vec::new();
        let mut next_feedback = 0.05;
        let mut out = Vec::new();
        while t < secs as f64 {
            let rate = send_bps(est.target()).max(10_000.0);
            t += size as f64 * 8.0 / rate;
            let start = queue_free_at.max(t);
            queue_free_at = start + size as f64 * 8.0 / link_bps(start);
            batch.push(Sent {
                departure: t0 + Duration::from_secs_f64(t),
                arrival: Some(Duration::from_secs_f64(queue_free_at + 0.04)),
                size,
            });
            if t >= next_feedback {
                next_feedback += 0.05;
                out.push(est.on_reports(t0 + Duration::from_secs_f64(t + 0.04), &batch));
                batch.clear();
            }
        }
        out
    }

    #[test]
    fn a_sender_filling_a_600_kbit_link_settles_below_it() {
        let mut est = DelayBased::new(500_000.0, 100_000.0, 2_500_000.0);
        // The encoder makes what it's told (as VP8 with a camera does).
        let rates = run(&mut est, |target| target, 600_000.0, 30);
        let last = &rates[rates.len() - 200..]; // the last 10 s
        let mean = last.iter().sum::<f64>() / last.len() as f64;
        assert!(
            (400_000.0..=600_000.0).contains(&mean),
            "settled at {mean:.0} bit/s on a 600 kbit/s link"
        );
        assert!(last.iter().all(|&r| r <= 720_000.0), "peaks {last:?}");
    }

    #[test]
    fn an_idle_path_is_not_pushed_far_ahead_of_what_arrives() {
        let mut est = DelayBased::new(200_000.0, 100_000.0, 2_500_000.0);
        // A light picture: 170 kbit/s whatever the estimate says.
        let rates = run(&mut est, |_| 170_000.0, 10_000_000.0, 10);
        let last = *rates.last().unwrap();
        assert!(last <= 1.5 * 170_000.0 + 15_000.0, "{last:.0}");
    }

    #[test]
    fn a_link_that_narrows_and_widens_again_is_found_again_within_15_s() {
        let mut est = DelayBased::new(500_000.0, 100_000.0, 2_500_000.0);
        // The camera-like picture makes at most 1.4 Mbit/s; the link gives
        // 2 Mbit/s, then 0.5, then 2 again, 20 s each (the bench's step).
        let link = |t: f64| {
            if (20.0..40.0).contains(&t) {
                500_000.0
            } else {
                2_000_000.0
            }
        };
        let sent = |target: f64| target.min(1_400_000.0);
        let rates: Vec<f64> = run_on(&mut est, sent, link, 60)
            .into_iter()
            .map(sent)
            .collect();
        let at = |s: f64| (s * 20.0) as usize; // a figure every 50 ms
        let before = rates[at(15.0)..at(20.0)].iter().sum::<f64>() / at(5.0) as f64;
        assert!(before > 1_000_000.0, "only {before:.0} before the step");
        let low = &rates[at(30.0)..at(40.0)];
        assert!(low.iter().all(|&r| r < 650_000.0), "on 500 kbit/s: {low:?}");
        let back = rates[at(40.0)..]
            .iter()
            .position(|&r| r >= 0.8 * before)
            .map(|i| i as f64 / 20.0);
        assert!(
            back.is_some_and(|s| s <= 15.0),
            "back to 80% of {before:.0} after {back:?} s"
        );
    }

    #[test]
    fn on_a_wide_link_the_estimate_climbs() {
        let mut est = DelayBased::new(500_000.0, 100_000.0, 2_500_000.0);
        let rates = run(&mut est, |target| target, 5_000_000.0, 15);
        let last = *rates.last().unwrap();
        // 8% a second: x3.2 in 15 s.
        assert!(last >= 1_200_000.0, "only {last:.0} after 15 s on 5 Mbit/s");
    }

    #[test]
    fn any_input_is_taken_without_panic_and_the_estimate_stays_in_bounds() {
        let t0 = Instant::now();
        let mut est = DelayBased::new(f64::NAN, 100_000.0, 2_500_000.0);
        let odd = [
            Sent {
                departure: t0,
                arrival: Some(Duration::MAX),
                size: usize::MAX / 2,
            },
            Sent {
                departure: t0 + Duration::from_secs(1),
                arrival: Some(Duration::ZERO),
                size: 0,
            },
            Sent {
                departure: t0,
                arrival: None,
                size: 1200,
            },
            Sent {
                departure: t0 + Duration::from_secs(99),
                arrival: Some(Duration::from_millis(5)),
                size: 1,
            },
        ];
        for i in 0..50u64 {
            let r = est.on_reports(t0 + Duration::from_millis(i * 7), &odd);
            assert!((100_000.0..=2_500_000.0).contains(&r), "{r}");
            est.on_reports(t0, &[]);
        }
    }

    /// `secs` of receiver reports (one a second) from `clock` on, each
    /// saying `fraction` was lost.
    fn reports(
        est: &mut LossBased,
        clock: &mut Instant,
        fraction: f64,
        secs: u64,
        delay_target: f64,
    ) -> f64 {
        for _ in 0..secs {
            *clock += Duration::from_secs(1);
            est.on_loss(*clock, fraction, delay_target);
        }
        est.target()
    }

    #[test]
    fn five_percent_loss_holds_the_rate_and_twenty_percent_cuts_it() {
        let mut est = LossBased::new(500_000.0, 100_000.0, 2_500_000.0);
        let t = &mut Instant::now();
        assert_eq!(
            reports(&mut est, t, 0.05, 10, 2_500_000.0),
            500_000.0,
            "5%: held"
        );
        let cut = reports(&mut est, t, 0.20, 2, 2_500_000.0);
        assert!(cut < 420_000.0, "20%: only down to {cut}");
        let back = reports(&mut est, t, 0.0, 10, 2_500_000.0);
        assert!(back > cut * 1.8, "no loss: back to only {back}");
        let held = reports(&mut est, t, 0.0, 10, back / 2.0);
        assert_eq!(held, back, "no growth past the delay half");
        assert_eq!(
            reports(&mut est, t, f64::NAN, 3, f64::NAN),
            back,
            "a bad report changes nothing"
        );
    }
}
