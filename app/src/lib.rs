//! Balas' pages, components and server functions. Compiled twice: with `ssr` into the server, with
//! `hydrate` into the browser bundle.

#![recursion_limit = "512"]

include!(concat!(env!("OUT_DIR"), "/i18n/mod.rs"));

pub mod api;
mod live;
mod media;
mod pages;
mod ui;
mod xhr;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::i18n::*;
use crate::pages::ai::AiAgentPage;
use crate::pages::auth::{InvitePage, LoginPage, SetupPage};
use crate::pages::broadcasts::{BroadcastPage, BroadcastsPage, NewBroadcastPage};
use crate::pages::channels::ChannelsPage;
use crate::pages::contacts::{ContactDetail, ContactsPage};
use crate::pages::inbox::InboxPage;
use crate::pages::phone::PhonePage;
use crate::pages::settings::{
    AccountSettings, ApiKeys, Audit, CannedResponses, SendingRulesForm, SettingsLayout, StopKeywords, System, Team,
    Webhooks,
};
use crate::pages::shell::{AdminOnly, Shell};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="data:," />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Marks the page once the browser has taken over, so tests (and people debugging) can tell.
    Effect::new(|| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    let cookie = leptos_i18n::context::CookieOptions::<Locale>::default()
        .path("/")
        .max_age(365_i64 * 24 * 3600 * 1000)
        .same_site(leptos_use::SameSite::Lax);
    view! {
        <I18nContextProvider cookie_options=cookie>
            <Stylesheet id="leptos" href="/pkg/balas.css" />
            <Title text="Balas" />
            <Router>
                <Routes fallback=NotFound>
                    <Route path=path!("/setup") view=SetupPage />
                    <Route path=path!("/login") view=LoginPage />
                    <Route path=path!("/invite/:token") view=InvitePage />
                    <Route path=path!("/phone") view=PhonePage />
                    <ParentRoute path=path!("") view=Shell>
                        <Route path=path!("") view=|| view! { <Redirect path="/inbox" /> } />
                        <Route path=path!("inbox/:id?") view=InboxPage />
                        <Route path=path!("contacts") view=ContactsPage />
                        <Route path=path!("contacts/:id") view=ContactDetail />
                        <Route path=path!("broadcasts") view=BroadcastsPage />
                        <Route path=path!("broadcasts/new") view=|| view! { <AdminOnly><NewBroadcastPage /></AdminOnly> } ssr=SsrMode::Async />
                        <Route path=path!("broadcasts/:id") view=BroadcastPage />
                        <Route
                            path=path!("ai-agent")
                            ssr=SsrMode::Async
                            view=|| view! { <AdminOnly><AiAgentPage /></AdminOnly> }
                        />
                        <Route
                            path=path!("channels")
                            ssr=SsrMode::Async
                            view=|| view! { <AdminOnly><ChannelsPage /></AdminOnly> }
                        />
                        <ParentRoute path=path!("settings") view=SettingsLayout>
                            <Route path=path!("") view=AccountSettings />
                            <Route path=path!("team") view=|| view! { <AdminOnly><Team /></AdminOnly> } ssr=SsrMode::Async />
                            <Route path=path!("canned") view=|| view! { <AdminOnly><CannedResponses /></AdminOnly> } ssr=SsrMode::Async />
                            <Route path=path!("opt-out") view=|| view! { <AdminOnly><StopKeywords /></AdminOnly> } ssr=SsrMode::Async />
                            <Route path=path!("sending") view=|| view! { <AdminOnly><SendingRulesForm /></AdminOnly> } ssr=SsrMode::Async />
                            <Route path=path!("api") view=|| view! { <AdminOnly><ApiKeys /></AdminOnly> } ssr=SsrMode::Async />
                            <Route path=path!("webhooks") view=|| view! { <AdminOnly><Webhooks /></AdminOnly> } ssr=SsrMode::Async />
                            <Route path=path!("audit") view=|| view! { <AdminOnly><Audit /></AdminOnly> } ssr=SsrMode::Async />
                            <Route path=path!("system") view=|| view! { <AdminOnly><System /></AdminOnly> } ssr=SsrMode::Async />
                        </ParentRoute>
                    </ParentRoute>
                </Routes>
            </Router>
        </I18nContextProvider>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    let i18n = use_i18n();
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="auth">
            <div class="auth-card">
                <h1>{t!(i18n, errors.not_found)}</h1>
                <a href="/inbox">{t!(i18n, nav.inbox)}</a>
            </div>
        </main>
    }
}
