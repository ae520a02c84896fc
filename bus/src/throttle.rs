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
}

/// Why an attempt may not go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Too many recent failures: try again after this many milliseconds.
    Slowed { retry_after_ms: i64 },
    /// Locked for this many more milliseconds.
    Locked { retry_after_ms: i64 },
}

/// The answer to [`Bus::begin_password_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Not now; nothing was counted.
    Refused(Throttle),
    /// The attempt was counted against every subject; these subjects reached their lock with it
    /// (it stands if the password turns out wrong).
    Counted { locked: Vec<LoginSubject> },
}

/// Checks every subject and, when none is slowed or locked, counts the attempt against all of
/// them, in one step. Counting before the (slow) password check is what stops a burst of parallel
/// guesses: each one is counted before the next is let through.
const BEGIN_ATTEMPT: &str = r"
local now = tonumber(ARGV[1])
local worst_kind, worst_ms = 0, 0
for i, key in ipairs(KEYS) do
    local b = 1 + (i - 1) * 5
    local slow, lock, max_delay = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local fails = tonumber(redis.call('HGET', key, 'fails') or '0')
    local last = tonumber(redis.call('HGET', key, 'last') or '0')
    if fails >= lock then
        local ttl = math.max(redis.call('PTTL', key), 1)
        if worst_kind < 2 or ttl > worst_ms then worst_kind, worst_ms = 2, ttl end
    elseif fails >= slow then
        local wait = last + math.min(1000 * 2 ^ math.min(fails - slow, 20), max_delay) - now
        if wait > 0 and worst_kind < 2 and (worst_kind < 1 or wait > worst_ms) then worst_kind, worst_ms = 1, wait end
    end
end
if worst_kind > 0 then return {worst_kind, math.floor(worst_ms), 0} end
local locked = 0
for i, key in ipairs(KEYS) do
    local b = 1 + (i - 1) * 5
    local lock, window, lock_ms = tonumber(ARGV[b + 2]), ARGV[b + 4], ARGV[b + 5]
    local fails = redis.call('HINCRBY', key, 'fails', 1)
    redis.call('HSET', key, 'last', now)
    if fails >= lock then
        redis.call('PEXPIRE', key, lock_ms)
        if fails == lock then locked = locked + 2 ^ (i - 1) end
    else
        redis.call('PEXPIRE', key, window)
    end
end
return {0, 0, locked}
";

/// Takes back a counted attempt whose password was right: an account starts afresh; an address
/// loses only this attempt (its other failures stand).
const ATTEMPT_SUCCEEDED: &str = r"
for i, key in ipairs(KEYS) do
    if ARGV[i] == 'account' then
        redis.call('DEL', key)
    elseif redis.call('HINCRBY', key, 'fails', -1) <= 0 then
        redis.call('DEL', key)
    end
end
return 0
";

impl Bus {
    /// Asks to check a password for these subjects now. See [`Attempt`].
    pub async fn begin_password_attempt(&self, subjects: &[LoginSubject], now: Timestamp) -> BusResult<Attempt> {
        let script = Script::new(BEGIN_ATTEMPT);
        let mut invocation = script.prepare_invoke();
        invocation.arg(now.0);
        for subject in subjects {
            let policy = ThrottlePolicy::for_subject(subject);
            invocation
                .key(self.keys.login_failures(subject))
                .arg(policy.slow_after)
                .arg(policy.lock_after)
                .arg(policy.max_delay_ms)
                .arg(policy.window_ms)
                .arg(policy.lock_ms);
        }
        let mut conn = self.conn.clone();
        let (kind, retry_after_ms, locked_mask): (u8, i64, u64) = invocation.invoke_async(&mut conn).await?;
        Ok(match kind {
            0 => Attempt::Counted {
                locked: subjects
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| locked_mask & (1 << i) != 0)
                    .map(|(_, s)| s.clone())
                    .collect(),
            },
            1 => Attempt::Refused(Throttle::Slowed { retry_after_ms }),
            _ => Attempt::Refused(Throttle::Locked { retry_after_ms }),
        })
    }

    /// The password of an attempt begun with [`Bus::begin_password_attempt`] was right.
    pub async fn password_attempt_succeeded(&self, subjects: &[LoginSubject]) -> BusResult<()> {
        let script = Script::new(ATTEMPT_SUCCEEDED);
        let mut invocation = script.prepare_invoke();
        for subject in subjects {
            invocation.key(self.keys.login_failures(subject)).arg(match subject {
                LoginSubject::Account(_) => "account",
                LoginSubject::Address(_) => "address",
            });
        }
        let mut conn = self.conn.clone();
        invocation.invoke_async::<()>(&mut conn).await?;
        Ok(())
    }
}

impl Bus {
    /// Counts one request of an API key in the current minute; returns the count so far and the
    /// milliseconds left in the minute.
    pub async fn count_api_request(&self, key_id: i64, now: Timestamp) -> BusResult<(u64, i64)> {
        let minute = now.0.div_euclid(60_000);
        let key = self.keys.api_requests(key_id, minute);
        let mut conn = self.conn.clone();
        let (count, _): (u64, i64) =
            redis::pipe().atomic().incr(&key, 1).pexpire(&key, 61_000).query_async(&mut conn).await?;
        Ok((count, (minute + 1) * 60_000 - now.0))
    }
}
