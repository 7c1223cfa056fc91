//! [`Population`]: a synthetic customer base, deterministic by seed.
//!
//! Customers follow the patterns Pulse distinguishes — daily, weekly, monthly, weekday-only,
//! bursty and churning — so a preloaded server has members in every activity segment. Which
//! customer a request touches follows a Zipf law over customer ranks (a few customers are very
//! popular), categories come from correlated interest groups (a fashion buyer also buys
//! beauty), and purchase amounts are log-normal.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Zipf};

use pulse_proto::v1;

/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;

/// Interest groups: a customer's categories come mostly from one group.
const INTEREST_GROUPS: &[&[&str]] = &[
    &["electronics", "games", "books"],
    &["fashion", "beauty", "jewellery"],
    &["food", "home", "garden"],
    &["travel", "sports", "outdoor"],
];

/// Share of a customer's events in its favourite group (the rest is spread over every category).
const IN_GROUP_SHARE: f64 = 0.8;

/// How a customer is active over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Active on most days.
    Daily,
    /// Active two or three days a week.
    Weekly,
    /// Active a few days a month.
    Monthly,
    /// Active on one weekday only (e.g. every Tuesday).
    WeekdayOnly(u32),
    /// Quiet, then several events within a few days.
    Bursty,
    /// Active until some day, then never again.
    Churning,
}

impl Pattern {
    /// Draws a pattern with the population's mix.
    fn draw(rng: &mut StdRng) -> Self {
        match rng.random_range(0..100) {
            0..20 => Pattern::Daily,
            20..45 => Pattern::Weekly,
            45..65 => Pattern::Monthly,
            65..75 => Pattern::WeekdayOnly(rng.random_range(0..7)),
            75..85 => Pattern::Bursty,
            _ => Pattern::Churning,
        }
    }

    /// Probability of activity on `day` (days since the Unix epoch), `age` days before the end.
    fn activity_probability(self, day: i64, age: i64, customer_salt: u64) -> f64 {
        let weekday = (day + 3).rem_euclid(7) as u32; // 1970-01-01 was a Thursday; 0 = Monday
        match self {
            Pattern::Daily => 0.85,
            Pattern::Weekly => 0.35,
            Pattern::Monthly => 0.1,
            Pattern::WeekdayOnly(favourite) if weekday == favourite => 0.9,
            Pattern::WeekdayOnly(_) => 0.0,
            Pattern::Bursty => {
                // one burst of five days every ~three weeks, offset per customer
                let phase = (day + customer_salt as i64 % 21).rem_euclid(21);
                if phase < 5 { 0.7 } else { 0.02 }
            }
            Pattern::Churning => {
                let quiet_days = 20 + (customer_salt % 60) as i64;
                if age > quiet_days { 0.6 } else { 0.0 }
            }
        }
    }
}

/// A customer of the population.
#[derive(Debug, Clone)]
pub struct Customer {
    /// Its id.
    pub id: String,
    /// How it is active.
    pub pattern: Pattern,
    /// Its favourite interest group (index into the groups).
    group: usize,
    /// Per-customer randomness for the pattern's phase.
    salt: u64,
}

/// The population: customers, the Zipf law over them, the amount distribution.
#[derive(Debug, Clone)]
pub struct Population {
    customers: Vec<Customer>,
    popularity: Zipf<f64>,
    amounts: LogNormal<f64>,
    seed: u64,
}

impl Population {
    /// `count` customers (at least 1), the same for the same `seed`.
    pub fn new(count: usize, seed: u64) -> Self {
        let count = count.max(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let customers = (0..count)
            .map(|rank| Customer {
                id: format!("cust-{seed}-{rank:07}"),
                pattern: Pattern::draw(&mut rng),
                group: rng.random_range(0..INTEREST_GROUPS.len()),
                salt: rng.random(),
            })
            .collect();
        Self {
            customers,
            // s = 1.0: the classic web popularity law; valid for any n >= 1
            popularity: Zipf::new(count as f64, 1.0).expect("n >= 1 and s > 0"),
            amounts: LogNormal::new(3.2, 0.8).expect("finite mean, positive sigma"),
            seed,
        }
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    /// Every customer, by rank.
    pub fn customers(&self) -> &[Customer] {
        &self.customers
    }

    /// A customer drawn by popularity (rank 0 the most popular).
    pub fn pick<'a>(&'a self, rng: &mut impl Rng) -> &'a Customer {
        let rank = self.popularity.sample(rng) as usize;
        &self.customers[rank.saturating_sub(1).min(self.customers.len() - 1)]
    }

    /// One event of `customer` at `timestamp_ms` with id `event_id`: mostly visits and
    /// interactions, a purchase in four, categories from its interest group.
    pub fn event(
        &self,
        customer: &Customer,
        event_id: String,
        timestamp_ms: i64,
        rng: &mut impl Rng,
    ) -> v1::Event {
        let kind = match rng.random_range(0..100) {
            0..25 => v1::EventKind::Purchase,
            25..60 => v1::EventKind::Visit,
            60..85 => v1::EventKind::Interaction,
            85..95 => v1::EventKind::Payment,
            _ => v1::EventKind::Support,
        };
        let group = if rng.random_bool(IN_GROUP_SHARE) {
            INTEREST_GROUPS[customer.group]
        } else {
            INTEREST_GROUPS[rng.random_range(0..INTEREST_GROUPS.len())]
        };
        let category = group[rng.random_range(0..group.len())];
        let amount = match kind {
            v1::EventKind::Purchase | v1::EventKind::Payment => {
                (self.amounts.sample(rng) * 100.0).round() / 100.0
            }
            _ => 0.0,
        };
        v1::Event {
            customer_id: customer.id.clone(),
            event_id,
            timestamp_ms,
            kind: kind as i32,
            category: category.to_owned(),
            amount,
            channel: ["web", "app", "store"][rng.random_range(0..3)].to_owned(),
        }
    }

    /// The history of `customer` over the `days` days before `end_ms`, in time order, with
    /// event ids that are the same on every run with the same seed (so a repeated preload is
    /// deduplicated by the server, not applied twice).
    pub fn history(&self, customer: &Customer, end_ms: i64, days: u32) -> Vec<v1::Event> {
        let mut rng = StdRng::seed_from_u64(self.seed ^ customer.salt);
        let end_day = end_ms.div_euclid(DAY_MS);
        let mut events = Vec::new();
        for age in (0..i64::from(days)).rev() {
            let day = end_day - age;
            if !rng.random_bool(customer.pattern.activity_probability(day, age, customer.salt)) {
                continue;
            }
            let per_day = rng.random_range(1..=2);
            for _ in 0..per_day {
                let timestamp_ms = (day * DAY_MS + rng.random_range(0..DAY_MS)).min(end_ms);
                let event_id = format!("{}-h{}", customer.id, events.len());
                events.push(self.event(customer, event_id, timestamp_ms, &mut rng));
            }
        }
        if events.is_empty() {
            // Every customer exists: one that the pattern kept quiet all along (a churner, a
            // rare monthly buyer) was seen once, at the start of the window.
            let timestamp_ms = (end_day - i64::from(days) + 1) * DAY_MS + rng.random_range(0..DAY_MS);
            let event_id = format!("{}-h0", customer.id);
            events.push(self.event(customer, event_id, timestamp_ms.min(end_ms), &mut rng));
        }
        events.sort_by_key(|e| e.timestamp_ms);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_population_and_histories() {
        let end = 1_767_571_200_000;
        let (a, b) = (Population::new(200, 7), Population::new(200, 7));
        for (x, y) in a.customers().iter().zip(b.customers()) {
            assert_eq!(x.id, y.id);
            assert_eq!(x.pattern, y.pattern);
            assert_eq!(a.history(x, end, 60), b.history(y, end, 60));
        }
        let other = Population::new(200, 8);
        assert_ne!(a.customers()[0].id, other.customers()[0].id, "ids carry the seed");
    }

    #[test]
    fn histories_follow_their_pattern() {
        let end = 1_767_571_200_000;
        let population = Population::new(2_000, 1);
        for customer in population.customers() {
            let history = population.history(customer, end, 90);
            assert!(!history.is_empty(), "every customer has a history");
            assert!(history.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
            assert!(history.iter().all(|e| e.timestamp_ms <= end && e.timestamp_ms > end - 90 * DAY_MS));
            let days: std::collections::BTreeSet<i64> =
                history.iter().map(|e| e.timestamp_ms.div_euclid(DAY_MS)).collect();
            match customer.pattern {
                Pattern::WeekdayOnly(weekday) if history.len() > 1 => {
                    assert!(days.iter().all(|d| (d + 3).rem_euclid(7) as u32 == weekday), "{}", customer.id)
                }
                Pattern::Churning => {
                    let last = days.last().copied().unwrap_or(i64::MIN);
                    assert!(last < end.div_euclid(DAY_MS) - 19, "a churner is silent at the end");
                }
                Pattern::Daily => assert!(days.len() > 50, "{} active days", days.len()),
                _ => {}
            }
        }
    }

    #[test]
    fn popularity_is_skewed_toward_low_ranks() {
        let population = Population::new(10_000, 3);
        let mut rng = StdRng::seed_from_u64(5);
        let top_percent = (0..10_000)
            .filter(|_| {
                let id = &population.pick(&mut rng).id;
                let rank: usize = id.rsplit('-').next().unwrap().parse().unwrap();
                rank < 100
            })
            .count();
        // Zipf(s = 1) over 10 000 ranks puts about half the draws on the top 1 %.
        assert!(top_percent > 3_500, "{top_percent} draws on the top 100 customers");
    }
}
