//! The logged-in frame: navigation, the user menu, and the pages that are not built yet.

use balas_domain::{AppError, Me};
use leptos::prelude::*;
use leptos_i18n::I18nContext;
use leptos_router::components::{A, Outlet, Redirect};

use crate::api::{LogOut, get_me};
use crate::i18n::*;
use crate::ui::{LanguageSelect, error_text, reload_to};

/// The logged-in user, loaded once by the frame and shared with every page under it.
#[derive(Clone, Copy)]
pub struct MeResource(pub Resource<Result<Option<Me>, AppError>>);

pub fn use_me() -> MeResource {
    expect_context::<MeResource>()
}

#[component]
pub fn Shell() -> impl IntoView {
    let i18n = use_i18n();
    let me = Resource::new(|| (), |_| get_me());
    provide_context(MeResource(me));
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
                        <div class="banner banner-error" role="alert">{error_text(i18n, &error)}</div>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Frame(me: Me) -> impl IntoView {
    let i18n = use_i18n();
    let logout = ServerAction::<LogOut>::new();
    Effect::new(move || {
        if logout.value().with(|v| v.is_some()) {
            reload_to("/login");
        }
    });
    let admin = me.is_admin();
    let link = |href: &'static str, label: Signal<String>, icon: &'static str| {
        view! {
            <A href=href attr:class="nav-link">
                <span class="nav-icon" aria-hidden="true">{icon}</span>
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
                {link("/inbox", label(|i| t_string!(i, nav.inbox).to_string()), "💬")}
                {link("/contacts", label(|i| t_string!(i, nav.contacts).to_string()), "👥")}
                {link("/broadcasts", label(|i| t_string!(i, nav.broadcasts).to_string()), "📣")}
                {admin.then(|| link("/ai-agent", label(|i| t_string!(i, nav.ai_agent).to_string()), "🤖"))}
                {admin.then(|| link("/channels", label(|i| t_string!(i, nav.channels).to_string()), "📱"))}
                {link("/settings", label(|i| t_string!(i, nav.settings).to_string()), "⚙")}
            </nav>
            <main class="content">
                <Outlet />
            </main>
        </div>
    }
}

/// Shows its children to admins only; others see a plain "admins only" page. The server checks
/// the role again in every server function, so this only spares agents a useless page.
#[component]
pub fn AdminOnly(children: ChildrenFn) -> impl IntoView {
    let me = use_me().0;
    let children = StoredValue::new(children);
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) if me.is_admin() => children.with_value(|c| c()).into_any(),
                    _ => view! { <Forbidden /> }.into_any(),
                }
            })}
        </Suspense>
    }
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

/// What a page not built yet shows: plainly that it is not there.
#[derive(Clone, Copy)]
pub enum Soon {
    Inbox,
    Contacts,
    Broadcasts,
    AiAgent,
    Channels,
}

#[component]
pub fn SoonPage(page: Soon) -> impl IntoView {
    let i18n = use_i18n();
    let title = move || match page {
        Soon::Inbox => t_string!(i18n, nav.inbox).to_string(),
        Soon::Contacts => t_string!(i18n, nav.contacts).to_string(),
        Soon::Broadcasts => t_string!(i18n, nav.broadcasts).to_string(),
        Soon::AiAgent => t_string!(i18n, nav.ai_agent).to_string(),
        Soon::Channels => t_string!(i18n, nav.channels).to_string(),
    };
    let body = move || match page {
        Soon::Inbox => t_string!(i18n, soon.inbox).to_string(),
        Soon::Contacts => t_string!(i18n, soon.contacts).to_string(),
        Soon::Broadcasts => t_string!(i18n, soon.broadcasts).to_string(),
        Soon::AiAgent => t_string!(i18n, soon.ai_agent).to_string(),
        Soon::Channels => t_string!(i18n, soon.channels).to_string(),
    };
    view! {
        <section class="page">
            <h1>{title} <span class="badge">{t!(i18n, soon.badge)}</span></h1>
            <p class="empty-state">{body}</p>
        </section>
    }
}
