//! Slows, then locks, repeated failed logins. Kept in Redis so that every server instance sees the
//! same counts, and so that the counts expire by themselves.

use balas_domain::{Email, Timestamp};
use redis::Script;

use crate::{Bus, BusResult};

/// Who is failing to log in: one account, or one network address (which may try many accounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginSubject {
    Account(Email),
    Address(String),
}

/// When failures start to slow a subject down, and when they lock it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// From this many failures on, each attempt must wait longer (1 s, 2 s, 4 s, … up to `max_delay_ms`).
    pub slow_after: u32,
    /// At this many failures the subject is locked for `lock_ms`.
    pub lock_after: u32,
    pub max_delay_ms: i64,
    /// Failures are forgotten this long after the last one.
    pub window_ms: i64,
    pub lock_ms: i64,
}

impl ThrottlePolicy {
    /// For one account: a person mistyping gets a few free tries; a guesser is locked for 15 minutes.
    pub const ACCOUNT: ThrottlePolicy = ThrottlePolicy {
        slow_after: 5,
        lock_after: 10,
        max_delay_ms: 30_000,
        window_ms: 15 * 60_000,
        lock_ms: 15 * 60_000,
    };
    /// For one address: higher limits, because an office shares one address.
    pub const ADDRESS: ThrottlePolicy = ThrottlePolicy {
        slow_after: 20,
        lock_after: 50,
        max_delay_ms: 30_000,
        window_ms: 15 * 60_000,
        lock_ms: 15 * 60_000,
    };

    pub fn for_subject(subject: &LoginSubject) -> Self {
        match subject {
            LoginSubject::Account(_) => Self::ACCOUNT,
            LoginSubject::Address(_) => Self::ADDRESS,
        }
    }

    /// How long after the last failure the next attempt may come, given `failures` so far.
    fn delay_ms(&self, failures: u32) -> i64 {
        if failures < self.slow_after {
            return 0;
        }
        let steps = (failures - self.slow_after).min(20);
        (1000i64 << steps).min(self.max_delay_ms)
    }
}

/// Whether a login attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    Allowed,
    /// Too many recent failures: try again after this many milliseconds.
    Slowed {
        retry_after_ms: i64,
    },
    /// Locked for this many more milliseconds.
    Locked {
        retry_after_ms: i64,
    },
}

impl Bus {
    /// Checks every subject of an attempt; the strictest answer wins.
    pub async fn login_throttle(&self, subjects: &[LoginSubject], now: Timestamp) -> BusResult<Throttle> {
        let mut verdict = Throttle::Allowed;
        for subject in subjects {
            let policy = ThrottlePolicy::for_subject(subject);
            let key = self.keys.login_failures(subject);
            let mut conn = self.conn.clone();
            let (fails, last, ttl): (Option<u32>, Option<i64>, i64) =
                redis::pipe().hget(&key, "fails").hget(&key, "last").pttl(&key).query_async(&mut conn).await?;
            let fails = fails.unwrap_or(0);
            let this = if fails >= policy.lock_after {
                Throttle::Locked { retry_after_ms: ttl.max(1) }
            } else {
                let ready_at = last.unwrap_or(0) + policy.delay_ms(fails);
                if ready_at > now.0 { Throttle::Slowed { retry_after_ms: ready_at - now.0 } } else { Throttle::Allowed }
            };
            verdict = stricter(verdict, this);
        }
        Ok(verdict)
    }

    /// Counts a failed attempt against a subject. Returns true when this failure locked it.
    pub async fn login_failed(&self, subject: &LoginSubject, now: Timestamp) -> BusResult<bool> {
        let policy = ThrottlePolicy::for_subject(subject);
        let script = Script::new(
            r"
            local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
            redis.call('HSET', KEYS[1], 'last', ARGV[1])
            if fails >= tonumber(ARGV[3]) then
                redis.call('PEXPIRE', KEYS[1], ARGV[4])
            else
                redis.call('PEXPIRE', KEYS[1], ARGV[2])
            end
            return fails
            ",
        );
        let mut conn = self.conn.clone();
        let fails: u32 = script
            .key(self.keys.login_failures(subject))
            .arg(now.0)
            .arg(policy.window_ms)
            .arg(policy.lock_after)
            .arg(policy.lock_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(fails == policy.lock_after)
    }

    /// Forgets the failures of a subject after a successful login.
    pub async fn login_succeeded(&self, subject: &LoginSubject) -> BusResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL").arg(self.keys.login_failures(subject)).query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

fn stricter(a: Throttle, b: Throttle) -> Throttle {
    fn rank(t: Throttle) -> (u8, i64) {
        match t {
            Throttle::Allowed => (0, 0),
            Throttle::Slowed { retry_after_ms } => (1, retry_after_ms),
            Throttle::Locked { retry_after_ms } => (2, retry_after_ms),
        }
    }
    if rank(b) > rank(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_then_caps() {
        let p = ThrottlePolicy::ACCOUNT;
        assert_eq!(p.delay_ms(4), 0);
        assert_eq!(p.delay_ms(5), 1000);
        assert_eq!(p.delay_ms(6), 2000);
        assert_eq!(p.delay_ms(9), 16_000);
        assert_eq!(p.delay_ms(30), p.max_delay_ms);
    }

    #[test]
    fn lock_beats_slow() {
        let slow = Throttle::Slowed { retry_after_ms: 99_000 };
        let lock = Throttle::Locked { retry_after_ms: 1 };
        assert_eq!(stricter(slow, lock), lock);
        assert_eq!(stricter(lock, Throttle::Allowed), lock);
    }
}
