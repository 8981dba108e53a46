//! Codes, refresh tokens and grants: single use under concurrency, revocation, the janitor.

use std::sync::Arc;

use super::*;

pub async fn code_is_redeemed_once_under_16_concurrent_redemptions<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.issue_code(&code("c1", "g1")).await.unwrap();
    let loaded = s.code(&code_hash("c1")).await.unwrap().unwrap();
    assert_eq!(loaded.grant, grant("g1", "u-alice"));
    assert!(!loaded.used);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.redeem_code(
                &code_hash("c1"),
                Some(&rt(&format!("r{i}"), "g1")),
                &at("g1"),
            )
            .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Redeemed::Won {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    assert!(s.code(&code_hash("c1")).await.unwrap().unwrap().used);
    assert!(s.code(&code_hash("nope")).await.unwrap().is_none());
}

pub async fn refresh_rotation_has_one_winner_under_20_concurrent_uses<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.issue_code(&code("c1", "g1")).await.unwrap();
    s.redeem_code(&code_hash("c1"), Some(&rt("r0", "g1")), &at("g1"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.rotate_refresh_token(&rt_hash("r0"), &rt(&format!("r1-{i}"), "g1"), &at("g1"))
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Redeemed::Won {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let old = s.refresh_token(&rt_hash("r0")).await.unwrap().unwrap();
    assert!(old.used);
    assert_eq!(old.grant.id, gid("g1"));
    assert!(!old.grant_revoked);
}

/// RFC 9700 §4.14 under load: codes and refresh tokens of several grants redeemed at the same
/// time (a backend may commit them together), including a token of a revoked grant. Each
/// token has exactly one winner, only the winners' replacements exist, and the revoked grant's
/// token is never rotated.
pub async fn mixed_concurrent_redemptions_each_have_one_winner<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    for g in ["ga", "gb", "gr"] {
        s.issue_code(&code(&format!("c-{g}"), g)).await.unwrap();
        s.redeem_code(
            &code_hash(&format!("c-{g}")),
            Some(&rt(&format!("r-{g}"), g)),
            &at(g),
        )
        .await
        .unwrap();
    }
    s.issue_code(&code("c-gc", "gc")).await.unwrap();
    s.revoke_grant(&gid("gr"), rv()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        for g in ["ga", "gb", "gr"] {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let r = s
                    .rotate_refresh_token(
                        &rt_hash(&format!("r-{g}")),
                        &rt(&format!("r2-{g}-{i}"), g),
                        &at(g),
                    )
                    .await
                    .unwrap();
                (g, i, r)
            }));
        }
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let r = s
                .redeem_code(
                    &code_hash("c-gc"),
                    Some(&rt(&format!("r2-gc-{i}"), "gc")),
                    &at("gc"),
                )
                .await
                .unwrap();
            ("gc", i, r)
        }));
    }
    let mut winners = std::collections::BTreeMap::new();
    for t in tasks {
        let (g, i, r) = t.await.unwrap();
        if r == Redeemed::Won {
            assert!(winners.insert(g, i).is_none(), "two winners for {g}");
        }
    }
    assert_eq!(
        winners.keys().copied().collect::<Vec<_>>(),
        ["ga", "gb", "gc"]
    );
    for g in ["ga", "gb", "gc"] {
        for i in 0..8 {
            let new = s
                .refresh_token(&rt_hash(&format!("r2-{g}-{i}")))
                .await
                .unwrap();
            if winners[g] == i {
                let Some(new) = new else {
                    panic!("the winner's replacement for {g} is not stored");
                };
                assert_eq!(new.grant.id, gid(g));
                assert_eq!(new.scope, rt("x", g).scope);
                assert_eq!(new.expires_at, UnixTime(10_000));
                assert!(!new.used);
                assert!(
                    !revoked(&*s, &format!("{g}.j2-{i}"), Some(g), None)
                        .await
                        .unwrap()
                );
            } else {
                assert!(new.is_none(), "a loser's replacement was stored for {g}");
            }
        }
    }
    for i in 0..8 {
        assert!(
            s.refresh_token(&rt_hash(&format!("r2-gr-{i}")))
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        !s.refresh_token(&rt_hash("r-gr"))
            .await
            .unwrap()
            .unwrap()
            .used
    );
    s.revoke_grant(&gid("ga"), rv()).await.unwrap();
    assert!(revoked(&*s, "ga.j2", Some("ga"), None).await.unwrap());
    assert!(!revoked(&*s, "gb.j2", Some("gb"), None).await.unwrap());
}

pub async fn revoked_grant_reaches_refresh_and_access_tokens<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.issue_code(&code("c1", "g1")).await.unwrap();
    s.redeem_code(&code_hash("c1"), Some(&rt("r0", "g1")), &at("g1"))
        .await
        .unwrap();
    assert!(!revoked(&*s, "g1.j0", Some("g1"), None).await.unwrap());
    assert!(!revoked(&*s, "machine-jti", None, None).await.unwrap());
    s.revoke_access_token(
        &jti("machine-jti"),
        Revocation {
            at: UnixTime(100),
            until: UnixTime(1000),
        },
    )
    .await
    .unwrap();
    s.revoke_access_token(
        &jti("machine-jti"),
        Revocation {
            at: UnixTime(100),
            until: UnixTime(1000),
        },
    )
    .await
    .unwrap();
    assert!(revoked(&*s, "machine-jti", None, None).await.unwrap());
    assert!(!revoked(&*s, "other-jti", None, None).await.unwrap());
    s.revoke_grant(&gid("g1"), rv()).await.unwrap();
    assert!(
        s.refresh_token(&rt_hash("r0"))
            .await
            .unwrap()
            .unwrap()
            .grant_revoked
    );
    assert!(revoked(&*s, "g1.j0", Some("g1"), None).await.unwrap());
    // A grant that is not stored (never was, or swept) leaves its tokens revoked: fail closed.
    assert!(revoked(&*s, "gone.j0", Some("gone"), None).await.unwrap());
    // So does a subject that is disabled or unknown, when the caller asks about it.
    assert!(!revoked(&*s, "m", None, Some("u-alice")).await.unwrap());
    assert!(revoked(&*s, "m", None, Some("u-nobody")).await.unwrap());
    s.set_user_disabled(&uname("alice"), true, rv())
        .await
        .unwrap();
    assert!(revoked(&*s, "m", None, Some("u-alice")).await.unwrap());
}

pub async fn purge_removes_only_expired_rows<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.issue_code(&code("c1", "g1")).await.unwrap();
    let sess = Session {
        id_hash: session_hash("sess"),
        user_id: uid("u-alice"),
        auth_time: UnixTime(100),
        sid: SessionId::parse("sid").unwrap(),
        expires_at: UnixTime(200),
    };
    s.create_session(&sess).await.unwrap();
    let n = s.purge_expired(UnixTime(150)).await.unwrap();
    assert_eq!(n, 0);
    assert!(s.code(&code_hash("c1")).await.unwrap().is_some());
    let n = s.purge_expired(UnixTime(300)).await.unwrap();
    assert!(n >= 2, "{n}");
    assert!(s.code(&code_hash("c1")).await.unwrap().is_none());
    assert_eq!(s.session(&sess.id_hash, UnixTime(1)).await.unwrap(), None);

    // RFC 7009 §2.1: a grant whose code and refresh tokens are gone is kept while an access
    // token issued from it may still be live, so that token's revocation state survives.
    s.issue_code(&code("c2", "g2")).await.unwrap();
    let long_lived = AccessTokenRecord {
        grant_id: gid("g2"),
        expires_at: UnixTime(5_000),
    };
    s.redeem_code(&code_hash("c2"), None, &long_lived)
        .await
        .unwrap();
    s.purge_expired(UnixTime(4_000)).await.unwrap();
    assert!(s.code(&code_hash("c2")).await.unwrap().is_none());
    assert!(!revoked(&*s, "g2.j", Some("g2"), None).await.unwrap());
    s.purge_expired(UnixTime(5_000)).await.unwrap();
    assert!(revoked(&*s, "g2.j", Some("g2"), None).await.unwrap());
}
