//! A worker announces itself while it runs and takes itself off the list when it stops; a worker
//! that dies without saying so drops off once its heartbeat expires.

use balas_backend::{Settings, now};
use balas_bus::{Bus, HEARTBEAT_EXPIRY_MS};
use balas_domain::{Timestamp, WorkerInfo, WorkerKind};
use balas_workers::Worker;
use secrecy::SecretString;

#[tokio::test]
async fn workers_announce_themselves_and_leave_cleanly() {
    let prefix = balas_testkit::redis_prefix();
    let settings = Settings {
        redis_url: SecretString::from(balas_testkit::redis_url()),
        redis_prefix: prefix.clone(),
        ..Settings::default()
    };
    let bus = Bus::connect(&balas_testkit::redis_url(), &prefix).await.unwrap();
    assert!(bus.live_workers(now()).await.unwrap().is_empty());

    let wa = Worker::start(WorkerKind::Whatsapp, &settings).await.unwrap();
    let ai = Worker::start(WorkerKind::Ai, &settings).await.unwrap();
    let (stop_wa, wa_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_ai, ai_stopped) = tokio::sync::oneshot::channel::<()>();
    let wa = tokio::spawn(wa.serve(async {
        let _ = wa_stopped.await;
    }));
    let ai = tokio::spawn(ai.serve(async {
        let _ = ai_stopped.await;
    }));

    // Started means listed: no waiting.
    let workers = bus.live_workers(now()).await.unwrap();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let mut kinds: Vec<_> = workers.iter().map(|w| w.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["ai", "whatsapp"]);
    assert!(workers.iter().all(|w| w.pid == std::process::id() && w.instance.starts_with(w.kind.as_str())));

    stop_wa.send(()).unwrap();
    wa.await.unwrap().unwrap();
    let workers = bus.live_workers(now()).await.unwrap();
    assert_eq!(workers.iter().map(|w| w.kind).collect::<Vec<_>>(), [WorkerKind::Ai], "the stopped worker left at once");

    stop_ai.send(()).unwrap();
    ai.await.unwrap().unwrap();
    assert!(bus.live_workers(now()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_silent_worker_expires() {
    let bus = Bus::connect(&balas_testkit::redis_url(), &balas_testkit::redis_prefix()).await.unwrap();
    let t0 = Timestamp(1_700_000_000_000);
    let crashed = WorkerInfo {
        kind: WorkerKind::Whatsapp,
        instance: "whatsapp-crashed".into(),
        host: "h".into(),
        pid: 1,
        version: "0".into(),
        started_at: t0,
        last_seen: t0,
    };
    bus.worker_heartbeat(&crashed).await.unwrap();
    assert_eq!(bus.live_workers(t0.plus_millis(HEARTBEAT_EXPIRY_MS)).await.unwrap(), std::slice::from_ref(&crashed));
    assert!(bus.live_workers(t0.plus_millis(HEARTBEAT_EXPIRY_MS + 1)).await.unwrap().is_empty());
    // Expired entries are cleared, not just hidden.
    assert!(bus.live_workers(t0).await.unwrap().is_empty());
}
