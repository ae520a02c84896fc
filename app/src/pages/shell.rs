//! The logged-in frame: navigation, the user menu, and the pages that are not built yet.

use balas_domain::{AppError, Me};
use leptos::prelude::*;
use leptos_i18n::I18nContext;
use leptos_router::components::{A, Outlet, Redirect};

use crate::api::{LogOut, get_me};
use crate::i18n::*;
use crate::live::LiveStatus;
use crate::ui::{ErrorBanner, LanguageSelect, reload_to};

/// The logged-in user, loaded once by the frame and given to every page under it (as a plain value:
/// pages render synchronously from it, the same on the server and in the browser).
pub fn use_me() -> Option<Me> {
    use_context::<Me>()
}

#[component]
pub fn Shell() -> impl IntoView {
    let i18n = use_i18n();
    let me = Resource::new(|| (), |_| get_me());
    view! {
        <Suspense fallback=move || view! { <p class="loading">{t!(i18n, loading)}</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) if me.must_change_password => {
                        view! { <crate::pages::settings::ForcedPasswordChange /> }.into_any()
                    }
                    Ok(Some(me)) => view! { <Frame me /> }.into_any(),
                    Ok(None) | Err(AppError::Unauthenticated) => view! { <Redirect path="/login" /> }.into_any(),
                    Err(error) => view! {
                        <ErrorBanner error />
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

/// Outline icons for the navigation, as SVG path data (24×24, drawn with a stroke).
mod icons {
    pub const INBOX: &str = "M4 5h16v14H4zM4 13h4l2 3h4l2-3h4";
    pub const CONTACTS: &str = "M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM3 20c0-3.3 2.7-6 6-6s6 2.7 6 6M17 11a3 3 0 1 0 0-6M21 20c0-2.8-1.8-5-4-5.6";
    pub const BROADCASTS: &str =
        "M4 10v4h3l6 4V6L7 10zM17 9c1 .8 1.5 1.8 1.5 3s-.5 2.2-1.5 3M19.5 6.5C21 8 21.8 10 21.8 12s-.8 4-2.3 5.5";
    pub const AI: &str =
        "M7 8h10a3 3 0 0 1 3 3v5a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3v-5a3 3 0 0 1 3-3zM12 8V4M9 13h.01M15 13h.01";
    pub const CHANNELS: &str = "M8 3h8a1 1 0 0 1 1 1v16a1 1 0 0 1-1 1H8a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1zM11 18h2";
    pub const SETTINGS: &str = "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1 7 17M17 7l2.1-2.1";
}

#[component]
fn Frame(me: Me) -> impl IntoView {
    let i18n = use_i18n();
    provide_context(me.clone());
    let logout = ServerAction::<LogOut>::new();
    Effect::new(move || {
        if logout.value().with(|v| v.is_some()) {
            reload_to("/login");
        }
    });
    let admin = me.is_admin();
    // One live connection for every page of the frame; pages listen to it.
    let live = RwSignal::new(LiveStatus::Connecting);
    provide_context(live);
    Effect::new(move || crate::live::start(live));
    let link = |href: &'static str, label: Signal<String>, icon: &'static str| {
        view! {
            <A href=href attr:class="nav-link">
                <svg class="nav-icon" viewBox="0 0 24 24" aria-hidden="true">
                    <path d=icon />
                </svg>
                <span class="nav-label">{label}</span>
            </A>
        }
    };
    let label = |f: fn(I18nContext<Locale>) -> String| Signal::derive(move || f(i18n));
    view! {
        <div class="frame">
            <header class="topbar">
                <span class="brand">"Balas"</span>
                <span class="workspace" title=me.workspace_name.clone()>{me.workspace_name.clone()}</span>
                <div class="topbar-end">
                    <LanguageSelect remember=true />
                    <span class="who" data-testid="who">
                        {me.name.clone()}
                    </span>
                    <ActionForm action=logout attr:class="inline">
                        <button type="submit" class="link-button" data-testid="logout">
                            {t!(i18n, nav.log_out)}
                        </button>
                    </ActionForm>
                </div>
            </header>
            <nav class="sidebar" aria-label=move || t_string!(i18n, nav.main).to_string()>
                {link("/inbox", label(|i| t_string!(i, nav.inbox).to_string()), icons::INBOX)}
                {link("/contacts", label(|i| t_string!(i, nav.contacts).to_string()), icons::CONTACTS)}
                {link("/broadcasts", label(|i| t_string!(i, nav.broadcasts).to_string()), icons::BROADCASTS)}
                {admin.then(|| link("/ai-agent", label(|i| t_string!(i, nav.ai_agent).to_string()), icons::AI))}
                {admin.then(|| link("/channels", label(|i| t_string!(i, nav.channels).to_string()), icons::CHANNELS))}
                {link("/settings", label(|i| t_string!(i, nav.settings).to_string()), icons::SETTINGS)}
            </nav>
            <main class="content">
                <Show when=move || live.get() == LiveStatus::Reconnecting>
                    <p class="banner banner-warn live-banner" role="status" data-testid="reconnecting">
                        {t!(i18n, inbox.reconnecting)}
                    </p>
                </Show>
                <span hidden data-testid="live-status" data-state=move || live.get().as_str()></span>
                <Outlet />
            </main>
        </div>
    }
}

/// Shows its children to admins only; others see a plain "admins only" page (with status 403 when
/// rendered on the server). The server checks the role again in every server function, so this
/// only spares agents a useless page.
#[component]
pub fn AdminOnly(children: ChildrenFn) -> impl IntoView {
    if use_me().is_some_and(|me| me.is_admin()) { children().into_any() } else { view! { <Forbidden /> }.into_any() }
}

#[component]
pub fn Forbidden() -> impl IntoView {
    let i18n = use_i18n();
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::FORBIDDEN);
    }
    view! {
        <section class="page" data-testid="forbidden">
            <h1>{t!(i18n, forbidden.title)}</h1>
            <p>{t!(i18n, forbidden.body)}</p>
        </section>
    }
}
