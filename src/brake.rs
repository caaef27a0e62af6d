//! The deletion brake's arithmetic, pure (docs/brake.md): what a change weighs, the threshold of
//! a tenant, and whether a change is held. No I/O; `store::brake` reads the counts from the
//! database and applies the verdict in the transaction of the change.
//!
//! Entra's own "accidental deletions prevention" counts per provisioning cycle; a scoping
//! mistake spread over several cycles slips under it. The brake counts over a sliding window
//! that spans cycles instead.

use crate::domain::Timestamp;

/// The brake's configuration (`[brake]`), as the store reads it during a write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Removals allowed in the window before changes are held; 0 disables the brake.
    pub max_removals: u32,
    /// The same as a fraction of the tenant's active users; the larger of the two applies.
    pub max_fraction: f64,
    /// The sliding window, in minutes (at least 1).
    pub window_minutes: u32,
}

impl Settings {
    pub const DEFAULT: Settings = Settings {
        max_removals: 50,
        max_fraction: 0.05,
        window_minutes: 60,
    };

    pub fn enabled(&self) -> bool {
        self.max_removals > 0
    }

    /// The most removals the window may hold before further ones are held:
    /// max(`max_removals`, ceil(`max_fraction` × active users)).
    pub fn threshold(&self, active_users: u64) -> u64 {
        let fraction = (self.max_fraction.clamp(0.0, 1.0) * active_users as f64).ceil();
        // In [0, active_users]: the cast cannot truncate anything meaningful.
        (self.max_removals as u64).max(fraction as u64)
    }

    /// The oldest time a removal still counts at `now`.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        let secs = now.unix_seconds() - 60 * i64::from(self.window_minutes.max(1));
        time::OffsetDateTime::from_unix_timestamp(secs)
            .map(Timestamp::from)
            .unwrap_or(now)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::DEFAULT
    }
}

/// What a change is, as far as the brake counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// A user's `active` turned false.
    Deactivation,
    /// A user or group deleted (a group counts once, however many members it had).
    Deletion,
    /// Members removed from a group by a PATCH or PUT (one each).
    Members(usize),
    /// A group losing a member because that member was deleted: the deletion already counted.
    Implied,
    /// Anything else: creates, updates, additions, reactivations.
    None,
}

impl Removal {
    /// How many removals the change counts for.
    pub fn weight(self) -> u64 {
        match self {
            Removal::Deactivation | Removal::Deletion => 1,
            Removal::Members(n) => n as u64,
            Removal::Implied | Removal::None => 0,
        }
    }
}

/// Whether a change of `weight` removals is held when the window already counts `counted`
/// (delivered and held) and the threshold is `threshold`: a change is held when it would take
/// the count beyond the threshold. A change that removes nothing is never held on its own count.
pub fn holds(counted: u64, weight: u64, threshold: u64) -> bool {
    weight > 0 && counted.saturating_add(weight) > threshold
}

/// Whether the threshold must be computed at all: below `max_removals` no tenant size can hold
/// (the threshold is never smaller), so the active users need not be counted.
pub fn may_hold(settings: &Settings, counted: u64, weight: u64) -> bool {
    settings.enabled() && holds(counted, weight, settings.max_removals as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(max_removals: u32, max_fraction: f64) -> Settings {
        Settings {
            max_removals,
            max_fraction,
            window_minutes: 60,
        }
    }

    #[test]
    fn the_threshold_is_the_larger_of_the_count_and_the_fraction_rounded_up() {
        // (max_removals, fraction, active users, threshold)
        let table = [
            (50, 0.05, 0, 50),
            (50, 0.05, 1000, 50),
            (50, 0.05, 1001, 51), // 50.05 → 51
            (50, 0.05, 10_000, 500),
            (5, 0.0, 10_000, 5),
            (5, 1.0, 7, 7),
            (5, 2.0, 7, 7), // clamped to 1
            (1, 0.5, 3, 2),
        ];
        for (max, fraction, active, want) in table {
            assert_eq!(
                s(max, fraction).threshold(active),
                want,
                "{max} {fraction} {active}"
            );
        }
    }

    #[test]
    fn a_change_is_held_once_it_would_go_beyond_the_threshold() {
        // (counted, weight, threshold, held)
        let table = [
            (0, 1, 5, false),
            (4, 1, 5, false),
            (5, 1, 5, true),
            (4, 2, 5, true), // a group PATCH removing two members, one slot left: held whole
            (100, 0, 5, false), // nothing removed: never held on its own count
            (u64::MAX, 1, 5, true),
        ];
        for (counted, weight, threshold, held) in table {
            assert_eq!(
                holds(counted, weight, threshold),
                held,
                "{counted} {weight} {threshold}"
            );
        }
    }

    #[test]
    fn max_removals_zero_disables_the_brake() {
        let off = s(0, 0.05);
        assert!(!off.enabled());
        assert!(!may_hold(&off, 1_000_000, 1));
        assert!(may_hold(&s(5, 0.05), 5, 1));
        assert!(!may_hold(&s(5, 0.05), 4, 1));
    }

    #[test]
    fn weights_count_objects_not_members_of_a_deleted_group() {
        assert_eq!(Removal::Deactivation.weight(), 1);
        assert_eq!(Removal::Deletion.weight(), 1);
        assert_eq!(Removal::Members(3).weight(), 3);
        assert_eq!(Removal::Implied.weight(), 0);
        assert_eq!(Removal::None.weight(), 0);
    }

    #[test]
    fn the_window_reaches_back_window_minutes() {
        let now = Timestamp::now();
        let start = s(5, 0.0).window_start(now);
        assert_eq!(now.unix_seconds() - start.unix_seconds(), 3600);
        let zero = Settings {
            window_minutes: 0,
            ..Settings::DEFAULT
        };
        assert_eq!(
            now.unix_seconds() - zero.window_start(now).unix_seconds(),
            60
        );
    }
}
