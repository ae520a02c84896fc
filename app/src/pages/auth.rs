//! The pages before login: first-run setup, login, and accepting an invite.

use balas_domain::Field;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{AcceptInvite, LogIn, SetUp, get_invite};
use crate::i18n::*;
use crate::ui::{ErrorBanner, FieldErrors, FormError, LanguageSelect, Outcome, outcome, reload_to};

/// A centred card with the language switch, for the pages before login.
#[component]
fn AuthCard(title: Signal<String>, children: Children) -> impl IntoView {
    view! {
        <main class="auth">
            <div class="auth-card">
                <div class="auth-top">
                    <span class="brand">"Balas"</span>
                    <LanguageSelect />
                </div>
                <h1>{title}</h1>
                {children()}
            </div>
        </main>
    }
}

/// After a successful login-like action, load the dashboard for the new session.
fn on_success<T: Clone + Send + Sync + 'static>(value: Outcome<T>, to: &'static str) {
    Effect::new(move || {
        if value.with(|v| matches!(v, Some(Ok(_)))) {
            reload_to(to);
        }
    });
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let i18n = use_i18n();
    let action = ServerAction::<SetUp>::new();
    let outcome = outcome(action.value());
    on_success(outcome, "/inbox");
    view! {
        <AuthCard title=Signal::derive(move || t_string!(i18n, setup.title).to_string())>
            <p class="muted">{t!(i18n, setup.intro)}</p>
            <ActionForm action attr:novalidate=true attr:class="form">
                <label for="workspace_name">{t!(i18n, setup.workspace_name)}</label>
                <input id="workspace_name" name="workspace_name" autocomplete="organization" autofocus />
                <p class="hint">{t!(i18n, setup.workspace_hint)}</p>
                <FieldErrors outcome field=Field::WorkspaceName />

                <label for="name">{t!(i18n, setup.your_name)}</label>
                <input id="name" name="name" autocomplete="name" />
                <FieldErrors outcome field=Field::Name />

                <label for="email">{t!(i18n, setup.email)}</label>
                <input id="email" name="email" type="email" autocomplete="email" />
                <FieldErrors outcome field=Field::Email />

                <label for="password">{t!(i18n, setup.password)}</label>
                <input id="password" name="password" type="password" autocomplete="new-password" />
                <p class="hint">{t!(i18n, setup.password_hint)}</p>
                <FieldErrors outcome field=Field::Password />

                <FormError outcome />
                <button type="submit" class="primary" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { t_string!(i18n, setup.working) } else { t_string!(i18n, setup.submit) }}
                </button>
            </ActionForm>
        </AuthCard>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let i18n = use_i18n();
    let action = ServerAction::<LogIn>::new();
    let outcome = outcome(action.value());
    on_success(outcome, "/inbox");
    view! {
        <AuthCard title=Signal::derive(move || t_string!(i18n, login.title).to_string())>
            <ActionForm action attr:novalidate=true attr:class="form">
                <label for="email">{t!(i18n, login.email)}</label>
                <input id="email" name="email" type="email" autocomplete="username" autofocus />
                <label for="password">{t!(i18n, login.password)}</label>
                <input id="password" name="password" type="password" autocomplete="current-password" />
                <FormError outcome />
                <button type="submit" class="primary" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { t_string!(i18n, login.working) } else { t_string!(i18n, login.submit) }}
                </button>
            </ActionForm>
            <p class="muted small">{t!(i18n, login.no_account)}</p>
        </AuthCard>
    }
}

#[component]
pub fn InvitePage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_params_map();
    let token = move || params.with(|p| p.get("token").unwrap_or_default());
    let info = Resource::new(token, get_invite);
    let action = ServerAction::<AcceptInvite>::new();
    let outcome = outcome(action.value());
    on_success(outcome, "/inbox");
    view! {
        <Suspense fallback=move || view! { <main class="auth"><p>{t!(i18n, loading)}</p></main> }>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(info) => {
                        let workspace = info.workspace_name.clone();
                        view! {
                            <AuthCard title=Signal::derive(move || t_string!(i18n, invite.title, workspace = workspace.clone()).to_string())>
                                <p class="muted">
                                    {t_string!(i18n, invite.intro, name = info.name.clone(), email = info.email.clone()).to_string()}
                                </p>
                                <ActionForm action attr:novalidate=true attr:class="form">
                                    <input type="hidden" name="token" value=token() />
                                    <label for="password">{t!(i18n, invite.password)}</label>
                                    <input id="password" name="password" type="password" autocomplete="new-password" autofocus />
                                    <p class="hint">{t!(i18n, setup.password_hint)}</p>
                                    <FieldErrors outcome field=Field::Password />
                                    <FormError outcome />
                                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                                        {move || if action.pending().get() { t_string!(i18n, invite.working) } else { t_string!(i18n, invite.submit) }}
                                    </button>
                                </ActionForm>
                            </AuthCard>
                        }
                        .into_any()
                    }
                    Err(error) => view! {
                        <AuthCard title=Signal::derive(move || t_string!(i18n, app_name).to_string())>
                            <ErrorBanner error />
                            <a href="/login">{t!(i18n, invite.go_login)}</a>
                        </AuthCard>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}
