//! The cache contract, run against whichever backend the environment selects (in-process by
//! default, Redis when `SCRM_TEST_REDIS_URL` is set).

use std::time::Duration;

use futures::future::join_all;
use wecom_scrm::cache::Cache;

use crate::helpers::*;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn backend_matches_the_environment() {
    let cache = test_cache().await;
    let expected = if redis_url().is_empty() { "memory" } else { "redis" };
    assert_eq!(cache.backend_name(), expected);
    cache.ping().await.unwrap();
}

#[tokio::test]
async fn get_set_delete() {
    let cache = test_cache().await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache.set("k", "张三", MINUTE).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("张三"));
    cache.set("k", "v2", MINUTE).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v2"));
    assert!(cache.delete("k").await.unwrap());
    assert!(!cache.delete("k").await.unwrap());
    assert_eq!(cache.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn entries_expire() {
    let cache = test_cache().await;
    cache.set("short", "v", Duration::from_millis(100)).await.unwrap();
    let ttl = cache.ttl("short").await.unwrap().unwrap();
    assert!(ttl <= Duration::from_millis(100) && ttl > Duration::ZERO, "{ttl:?}");
    let gone = wait_for(Duration::from_secs(2), || async {
        cache.get("short").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the entry expired");
    assert_eq!(cache.ttl("short").await.unwrap(), None);
    // An expired key can be set-if-absent again.
    assert!(cache.set_nx("short", "again", MINUTE).await.unwrap());
}

#[tokio::test]
async fn set_if_absent_has_exactly_one_winner_under_concurrency() {
    let cache = test_cache().await;
    let attempts = (0..50).map(|i| {
        let cache = cache.clone();
        async move { cache.set_nx("dedupe:msg:1", &i.to_string(), MINUTE).await.unwrap() }
    });
    let winners = join_all(attempts).await.into_iter().filter(|won| *won).count();
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn delete_if_equals_only_removes_the_expected_value() {
    let cache = test_cache().await;
    cache.set("owner", "a", MINUTE).await.unwrap();
    assert!(!cache.delete_if_equals("owner", "b").await.unwrap());
    assert_eq!(cache.get("owner").await.unwrap().as_deref(), Some("a"));
    assert!(cache.delete_if_equals("owner", "a").await.unwrap());
    assert_eq!(cache.get("owner").await.unwrap(), None);
}

#[tokio::test]
async fn counters_are_atomic_fixed_windows() {
    let cache = test_cache().await;
    let increments = (0..40).map(|_| {
        let cache = cache.clone();
        async move { cache.incr("sent:zhangsan", 1, MINUTE).await.unwrap() }
    });
    let mut values = join_all(increments).await;
    values.sort_unstable();
    assert_eq!(values, (1..=40).collect::<Vec<_>>());
    assert_eq!(cache.incr("sent:zhangsan", 5, MINUTE).await.unwrap(), 45);
    // The window is set once, when the counter is created.
    let ttl = cache.ttl("sent:zhangsan").await.unwrap().unwrap();
    assert!(ttl <= MINUTE && ttl > Duration::from_secs(50), "{ttl:?}");
    cache.set("text", "abc", MINUTE).await.unwrap();
    assert!(cache.incr("text", 1, MINUTE).await.is_err());
}

#[tokio::test]
async fn locks_exclude_and_release_only_for_the_holder() {
    let cache = test_cache().await;
    let lock = cache
        .try_lock("token-refresh", MINUTE)
        .await
        .unwrap()
        .expect("free lock");
    assert!(cache.try_lock("token-refresh", MINUTE).await.unwrap().is_none());
    assert!(cache.unlock(lock.clone()).await.unwrap());
    // Releasing twice, or after someone else took it, does nothing.
    let second = cache
        .try_lock("token-refresh", MINUTE)
        .await
        .unwrap()
        .expect("free again");
    assert!(!cache.unlock(lock).await.unwrap());
    assert!(cache.try_lock("token-refresh", MINUTE).await.unwrap().is_none());
    assert!(cache.unlock(second).await.unwrap());
}

#[tokio::test]
async fn a_lock_frees_itself_when_its_holder_dies() {
    let cache = test_cache().await;
    let _abandoned = cache
        .try_lock("job", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    let retaken = wait_for(Duration::from_secs(2), || async {
        cache.try_lock("job", MINUTE).await.unwrap()
    })
    .await;
    assert!(retaken.is_some());
}

#[tokio::test]
async fn prefixes_keep_tenants_apart() {
    let cache = test_cache().await;
    let a = cache.scoped("a:");
    let b = cache.scoped("b:");
    a.set("session:zhangsan", "A", MINUTE).await.unwrap();
    assert_eq!(b.get("session:zhangsan").await.unwrap(), None);
    assert_eq!(a.get("session:zhangsan").await.unwrap().as_deref(), Some("A"));
}

#[tokio::test]
async fn the_in_process_cache_is_bounded() {
    let cache = Cache::memory(3, "t:");
    for i in 0..10 {
        cache
            .set(&format!("k{i}"), "v", Duration::from_secs(60 + i))
            .await
            .unwrap();
    }
    let mut present = 0;
    for i in 0..10 {
        present += usize::from(cache.get(&format!("k{i}")).await.unwrap().is_some());
    }
    assert_eq!(present, 3);
    // The entries closest to expiry were evicted first.
    assert!(cache.get("k9").await.unwrap().is_some());
}
