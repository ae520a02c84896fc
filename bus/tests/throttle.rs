//! The login throttle on a real Redis, with explicit times.

use balas_bus::{Attempt, Bus, LoginSubject, Throttle, ThrottlePolicy};
use balas_domain::{Email, Timestamp};

const T0: Timestamp = Timestamp(1_700_000_000_000);

async fn bus() -> Bus {
    Bus::connect(&balas_testkit::redis_url(), &balas_testkit::redis_prefix()).await.unwrap()
}

fn account(email: &str) -> LoginSubject {
    LoginSubject::Account(Email::parse(email).unwrap())
}

#[tokio::test]
async fn failures_slow_down_then_lock() {
    let bus = bus().await;
    let ana = [account("ana@example.com")];
    let policy = ThrottlePolicy::ACCOUNT;
    for _ in 0..policy.slow_after {
        assert_eq!(bus.begin_password_attempt(&ana, T0).await.unwrap(), Attempt::Counted { locked: vec![] });
    }
    // From here each attempt waits twice as long as the one before.
    let mut at = T0;
    for wait in [1_000, 2_000, 4_000, 8_000] {
        let refused = bus.begin_password_attempt(&ana, at).await.unwrap();
        assert_eq!(refused, Attempt::Refused(Throttle::Slowed { retry_after_ms: wait }));
        assert_eq!(
            bus.begin_password_attempt(&ana, at.plus_millis(wait - 1)).await.unwrap(),
            Attempt::Refused(Throttle::Slowed { retry_after_ms: 1 })
        );
        at = at.plus_millis(wait);
        assert_eq!(bus.begin_password_attempt(&ana, at).await.unwrap(), Attempt::Counted { locked: vec![] });
    }
    // The tenth counted attempt locks the account.
    at = at.plus_millis(16_000);
    assert_eq!(bus.begin_password_attempt(&ana, at).await.unwrap(), Attempt::Counted { locked: ana.to_vec() });
    match bus.begin_password_attempt(&ana, at.plus_millis(60_000)).await.unwrap() {
        Attempt::Refused(Throttle::Locked { retry_after_ms }) => {
            assert!(retry_after_ms > policy.lock_ms - 60_000 && retry_after_ms <= policy.lock_ms, "{retry_after_ms}")
        }
        other => panic!("expected a lock, got {other:?}"),
    }
}

#[tokio::test]
async fn a_right_password_resets_the_account_but_not_the_address() {
    let bus = bus().await;
    let office = LoginSubject::Address("10.0.0.1".into());
    let budi = [office.clone(), account("budi@example.com")];
    for _ in 0..3 {
        bus.begin_password_attempt(&budi, T0).await.unwrap();
    }
    bus.begin_password_attempt(&budi, T0).await.unwrap();
    bus.password_attempt_succeeded(&budi).await.unwrap();
    // The account starts afresh: five more free tries. The address keeps its three failures.
    for _ in 0..ThrottlePolicy::ACCOUNT.slow_after {
        assert!(matches!(bus.begin_password_attempt(&budi[1..], T0).await.unwrap(), Attempt::Counted { .. }));
    }
    let address_only = [office];
    for _ in 3..ThrottlePolicy::ADDRESS.slow_after {
        assert!(matches!(bus.begin_password_attempt(&address_only, T0).await.unwrap(), Attempt::Counted { .. }));
    }
    assert!(
        matches!(
            bus.begin_password_attempt(&address_only, T0).await.unwrap(),
            Attempt::Refused(Throttle::Slowed { .. })
        ),
        "the address kept its earlier failures"
    );
}

#[tokio::test]
async fn a_burst_of_parallel_attempts_gets_no_more_than_the_free_tries() {
    let bus = bus().await;
    let citra = [account("citra@example.com")];
    let attempts = (0..40).map(|_| bus.begin_password_attempt(&citra, T0));
    let results = futures::future::join_all(attempts).await;
    let counted = results.iter().filter(|r| matches!(r, Ok(Attempt::Counted { .. }))).count();
    assert_eq!(counted as u32, ThrottlePolicy::ACCOUNT.slow_after, "{results:?}");
}
