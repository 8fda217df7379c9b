//! Issue 18 with a real browser: headless Chromium (Debian's `chromium`, driven over WebDriver
//! by `chromedriver`) logs in through the filter at the real OpenID provider. The IdP is served
//! as `localhost` and Envoy as `127.0.0.1`, so the browser sees two sites and `SameSite` counts.
//! The journey: open the app, get sent to the IdP, log in and consent on its dev pages, land on
//! the original path and query with the upstream echo showing the user's claims (screenshot in
//! target/test-artifacts/); a `fetch()` from the page with the session gone gets 401 `Login
//! required`, not a redirect; logout ends at the IdP's end-session page.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/oidc.rs"]
mod oidc;

use std::time::{Duration, Instant};

use browser::{artifact_dir, Driver};
use common::{free_port, Checks, Env, Opts};
use fantoccini::{Client, Locator};
use oidc::*;
use serde_json::Value;

async fn url_of(client: &Client) -> String {
    client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default()
}

/// Goes through the IdP's pages (login form, consent form) until the browser leaves `idp`;
/// returns the URL it lands on.
async fn through_idp(client: &Client, idp: &str, user: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = url_of(client).await;
        if !url.starts_with(idp) {
            return url;
        }
        assert!(Instant::now() < deadline, "stuck at the IdP on {url}");
        if let Ok(login) = client.find(Locator::Css("input[name=login]")).await {
            login.send_keys(user).await.unwrap();
            let pw = client
                .find(Locator::Css("input[name=password]"))
                .await
                .unwrap();
            pw.send_keys("any password").await.unwrap();
            client
                .find(Locator::Css("button[type=submit]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        } else if let Ok(consent) = client
            .find(Locator::Css("input[name=prompt][value=consent] ~ button"))
            .await
        {
            consent.click().await.unwrap();
        }
        // Each click navigates: wait for the next page.
        let before = url;
        let step = Instant::now() + Duration::from_secs(10);
        while url_of(client).await == before && Instant::now() < step {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn body_text(client: &Client) -> String {
    match client.find(Locator::Css("body")).await {
        Ok(b) => b.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

const FETCH: &str = r#"
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: 'same-origin'})
  .then(r => r.text().then(t => done({status: r.status, redirected: r.redirected, url: r.url, body: t})))
  .catch(e => done({error: String(e)}));
"#;

async fn page_fetch(client: &Client, path: &str) -> Value {
    client
        .execute_async(FETCH, vec![Value::String(path.into())])
        .await
        .unwrap_or_else(|e| panic!("fetch script failed: {e}"))
}

#[test]
fn browser_logs_in_lands_back_gets_401_from_fetch_and_logs_out_at_the_idp() {
    let (port, idp_port) = (free_port(), free_port());
    let idp = Idp::start(
        idp_port,
        &IdpOpts {
            host: "localhost",
            redirect_uri: redirect_uri(port),
            post_logout_redirect_uri: post_logout_uri(port),
            access_token_ttl: None,
        },
    );
    assert!(
        idp.issuer.starts_with("http://localhost:"),
        "{}",
        idp.issuer
    );
    let env = Env::start_with(
        &web_config(&idp.issuer, port, &[KEY_A]),
        Opts {
            listen_port: Some(port),
            idp_port: Some(idp_port),
            ..Opts::default()
        },
    );
    let mut c = Checks::default();
    // Discovery first: a 503 page would only slow the browser down.
    let deadline = Instant::now() + Duration::from_secs(15);
    while navigate(&env, &Jar::default(), "/").status == 503 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let app = format!("http://127.0.0.1:{port}");
    let driver = Driver::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = driver.session().await;
        client
            .goto(&format!("{app}/profile?tab=claims"))
            .await
            .unwrap();
        let at_idp = url_of(&client).await;
        c.check(
            "browser: sent to the IdP",
            at_idp.starts_with(&idp.issuer),
            || at_idp.clone(),
        );

        let want = format!("{app}/profile?tab=claims");
        let mut landed = through_idp(&client, &idp.issuer, "alice").await;
        // The callback's redirect may still be loading.
        let until = Instant::now() + Duration::from_secs(10);
        while landed != want && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            landed = url_of(&client).await;
        }
        c.eq(
            "browser: lands on the original path and query",
            landed.as_str(),
            format!("{app}/profile?tab=claims").as_str(),
        );
        let shot = client.screenshot().await.unwrap();
        let path = artifact_dir().join("oidc-browser-landed.png");
        std::fs::write(&path, shot).unwrap();
        eprintln!("screenshot of the landed page: {}", path.display());
        let text = body_text(&client).await;
        match serde_json::from_str::<Value>(&text) {
            Ok(echo) => {
                c.eq(
                    "browser: upstream shows the user's email claim",
                    echo["headers"]["x-email"].as_str(),
                    Some("alice@example.com"),
                );
                c.eq(
                    "browser: upstream got the original path",
                    echo["path"].as_str(),
                    Some("/profile?tab=claims"),
                );
                let cookie = echo["headers"]["cookie"].as_str().unwrap_or("");
                c.check(
                    "browser: the filter's cookies never reach the upstream",
                    !cookie.contains(COOKIE),
                    || cookie.to_string(),
                );
                let authz = echo["headers"]["authorization"].as_str().unwrap_or("");
                c.check(
                    "browser: upstream gets the access token",
                    authz.starts_with("Bearer "),
                    || authz.to_string(),
                );
            }
            Err(_) => c.check(
                "browser: the landed page is the upstream echo",
                false,
                || text.clone(),
            ),
        }
        let cookies = client.get_all_cookies().await.unwrap_or_default();
        let ours: Vec<_> = cookies
            .iter()
            .filter(|k| k.name().starts_with(COOKIE))
            .collect();
        c.check(
            "browser: the session cookie is kept",
            !ours.is_empty(),
            || format!("{cookies:?}"),
        );
        for k in &ours {
            c.eq(
                &format!("browser: {} is HttpOnly", k.name()),
                k.http_only(),
                Some(true),
            );
        }

        let ok = page_fetch(&client, "/api/data").await;
        c.eq(
            "browser: fetch() with the session",
            ok["status"].as_u64(),
            Some(200),
        );

        // The session ends (as when it expires): the browser drops the filter's cookies.
        for k in &ours {
            client.delete_cookie(k.name()).await.unwrap();
        }
        let gone = page_fetch(&client, "/api/data").await;
        c.eq(
            "browser: fetch() without a session gets 401",
            gone["status"].as_u64(),
            Some(401),
        );
        c.eq(
            "browser: ... Login required",
            gone["body"].as_str(),
            Some("Login required"),
        );
        c.eq(
            "browser: ... not redirected",
            gone["redirected"].as_bool(),
            Some(false),
        );

        // Log in again (the IdP remembers the user: consent only), then log out.
        client.goto(&format!("{app}/again")).await.unwrap();
        let back = through_idp(&client, &idp.issuer, "alice").await;
        c.eq(
            "browser: second login lands back",
            back.as_str(),
            format!("{app}/again").as_str(),
        );
        client.goto(&format!("{app}{LOGOUT}")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let end = url_of(&client).await;
        c.check(
            "browser: logout ends at the IdP's end-session page",
            end.starts_with(&format!("{}/session/end", idp.issuer)),
            || end.clone(),
        );
        let logout_form = client.find(Locator::Css("form")).await.is_ok();
        c.check(
            "browser: the IdP shows its logout confirmation",
            logout_form,
            || "no <form> on the end-session page".into(),
        );
        let shot = client.screenshot().await.unwrap();
        std::fs::write(artifact_dir().join("oidc-browser-logout.png"), shot).unwrap();
        // (The filter's cookies live on 127.0.0.1; WebDriver shows the IdP's here. The curl
        // test checks that logout clears them.)
        client.close().await.unwrap();
    });
    drop(driver);
    c.finish(&env);
}

/// The rig alone (no Envoy): chromedriver starts, headless Chromium opens the IdP's login page
/// and the dev login form is there. Passes whatever the filter does.
#[test]
fn rig_headless_chromium_reaches_the_idp_login_form() {
    let port = free_port();
    let idp = Idp::start(
        free_port(),
        &IdpOpts {
            host: "localhost",
            redirect_uri: redirect_uri(port),
            post_logout_redirect_uri: post_logout_uri(port),
            access_token_ttl: None,
        },
    );
    let driver = Driver::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = driver.session().await;
        let auth = format!(
            "{}/auth?response_type=code&client_id={CLIENT_ID}&redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Foauth2%2Fcallback&scope=openid&state=s&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            idp.issuer
        );
        client.goto(&auth).await.unwrap();
        let found = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("input[name=login]"))
            .await
            .is_ok();
        let url = url_of(&client).await;
        client.close().await.unwrap();
        assert!(found, "no login form at {url}");
        assert!(url.starts_with(&format!("{}/interaction/", idp.issuer)), "{url}");
    });
}
