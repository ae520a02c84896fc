//! Settings: the user's own account (password, language), and for admins the team and the audit log.

use balas_domain::{AppError, AuditAction, Field, MemberStatus, Onboarding, Role, WorkerKind};
use leptos::prelude::*;
use leptos_i18n::I18nContext;
use leptos_router::components::{A, Outlet};

use crate::api::{
    AddCanned, AddMember, ChangePassword, DeleteCanned, LogOutEverywhere, SetRole, SetSendingRules, SetStopKeywords,
    audit_log, create_api_key, create_webhook, delete_webhook, get_sending_rules, get_system_status, list_api_keys,
    list_canned, list_members, list_webhooks, replay_delivery, revoke_api_key, stop_keywords, webhook_deliveries,
};
use crate::i18n::*;
use crate::pages::shell::use_me;
use crate::ui::{ErrorBanner, FieldErrors, FormError, LanguageSelect, Outcome, format_time, outcome, reload_to};

#[component]
pub fn SettingsLayout() -> impl IntoView {
    let i18n = use_i18n();
    let admin = use_me().is_some_and(|me| me.is_admin());
    view! {
        <section class="page">
            <h1>{t!(i18n, settings.title)}</h1>
            <nav class="tabs">
                <A href="/settings" exact=true>{t!(i18n, settings.account)}</A>
                {admin.then(|| view! {
                    <A href="/settings/team">{t!(i18n, settings.team)}</A>
                    <A href="/settings/canned">{t!(i18n, settings.canned)}</A>
                    <A href="/settings/opt-out">{t!(i18n, settings.opt_out)}</A>
                    <A href="/settings/sending">{t!(i18n, settings.sending)}</A>
                    <A href="/settings/api">{t!(i18n, settings.api_keys)}</A>
                    <A href="/settings/webhooks">{t!(i18n, settings.webhooks)}</A>
                    <A href="/settings/audit">{t!(i18n, settings.audit)}</A>
                    <A href="/settings/system">{t!(i18n, settings.system)}</A>
                })}
            </nav>
            <Outlet />
        </section>
    }
}

#[component]
pub fn AccountSettings() -> impl IntoView {
    let i18n = use_i18n();
    let everywhere = ServerAction::<LogOutEverywhere>::new();
    Effect::new(move || {
        if everywhere.value().with(|v| matches!(v, Some(Ok(())))) {
            reload_to("/login");
        }
    });
    view! {
        <div class="cards">
            <div class="card">
                <h2>{t!(i18n, settings.password_title)}</h2>
                <ChangePasswordForm on_done=|| () />
            </div>
            <div class="card">
                <h2>{t!(i18n, settings.language_title)}</h2>
                <p class="muted">{t!(i18n, settings.language_hint)}</p>
                <LanguageSelect remember=true />
            </div>
            <div class="card">
                <h2>{t!(i18n, settings.sessions_title)}</h2>
                <p class="muted">{t!(i18n, settings.sessions_hint)}</p>
                <ActionForm action=everywhere attr:class="form">
                    <button type="submit" class="secondary" data-testid="logout-everywhere">
                        {t!(i18n, settings.log_out_everywhere)}
                    </button>
                </ActionForm>
                <FormError outcome=outcome(everywhere.value()) />
            </div>
        </div>
    }
}

#[component]
fn ChangePasswordForm(on_done: fn()) -> impl IntoView {
    let i18n = use_i18n();
    let action = ServerAction::<ChangePassword>::new();
    let outcome = outcome(action.value());
    Effect::new(move || {
        if outcome.with(|v| matches!(v, Some(Ok(())))) {
            on_done();
        }
    });
    // A wrong current password is shown against that field.
    let wrong_current = move || outcome.with(|v| matches!(v, Some(Err(AppError::BadCredentials))));
    let general = Signal::derive(move || outcome.get().filter(|v| !matches!(v, Err(AppError::BadCredentials))));
    view! {
        <ActionForm action attr:novalidate=true attr:class="form">
            <label for="current_password">{t!(i18n, settings.current_password)}</label>
            <input id="current_password" name="current_password" type="password" autocomplete="current-password" />
            <FieldErrors outcome field=Field::CurrentPassword />
            <Show when=wrong_current>
                <p class="field-error" role="alert">{t!(i18n, errors.wrong_current_password)}</p>
            </Show>
            <label for="new_password">{t!(i18n, settings.new_password)}</label>
            <input id="new_password" name="new_password" type="password" autocomplete="new-password" />
            <p class="hint">{t!(i18n, setup.password_hint)}</p>
            <FieldErrors outcome field=Field::NewPassword />
            <FormError outcome=general />
            <Show when=move || outcome.with(|v| matches!(v, Some(Ok(()))))>
                <div class="banner banner-ok" role="status">{t!(i18n, settings.password_changed)}</div>
            </Show>
            <button type="submit" class="primary" disabled=move || action.pending().get()>
                {t!(i18n, settings.change_password)}
            </button>
        </ActionForm>
    }
}

/// Shown instead of the dashboard until a member replaces the initial password an admin gave them.
#[component]
pub fn ForcedPasswordChange() -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <main class="auth">
            <div class="auth-card">
                <div class="auth-top">
                    <span class="brand">"Balas"</span>
                    <LanguageSelect remember=true />
                </div>
                <h1>{t!(i18n, forced.title)}</h1>
                <p class="muted">{t!(i18n, forced.intro)}</p>
                <ChangePasswordForm on_done=|| reload_to("/inbox") />
            </div>
        </main>
    }
}

fn role_label(i18n: I18nContext<Locale>, role: Role) -> String {
    match role {
        Role::Admin => t_string!(i18n, team.role_admin).to_string(),
        Role::Agent => t_string!(i18n, team.role_agent).to_string(),
    }
}

/// Admins only: route it inside `AdminOnly`.
#[component]
pub fn Team() -> impl IntoView {
    let i18n = use_i18n();
    let add = ServerAction::<AddMember>::new();
    let set_role = ServerAction::<SetRole>::new();
    let members = Resource::new(move || (add.version().get(), set_role.version().get()), |_| list_members());
    let my_id = use_me().map(|me| me.user_id);
    let add_outcome = outcome(add.value());
    let onboarding = RwSignal::new(Onboarding::InviteLink);
    let role_outcome = outcome(set_role.value());
    let outcome = add_outcome;
    // A member was added: empty the form for the next one.
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move || {
        if let (true, Some(form)) = (outcome.with(|v| matches!(v, Some(Ok(_)))), form.get_untracked()) {
            form.reset();
            onboarding.set(Onboarding::InviteLink);
        }
    });

    view! {
        <p class="muted">{t!(i18n, team.intro)}</p>
        <Show when=move || role_outcome.with(|v| matches!(v, Some(Err(_))))>
            <FormError outcome=role_outcome />
        </Show>
        <Suspense fallback=move || view! { <p>{t!(i18n, loading)}</p> }>
            {move || Suspend::new(async move {
                match members.await {
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="table" data-testid="members">
                                <thead>
                                    <tr>
                                        <th>{t!(i18n, team.name)}</th>
                                        <th>{t!(i18n, team.email)}</th>
                                        <th>{t!(i18n, team.role)}</th>
                                        <th>{t!(i18n, team.status)}</th>
                                        <th>{t!(i18n, team.joined)}</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list.into_iter().map(|m| {
                                        let user_id = m.user_id;
                                        let you = if my_id == Some(user_id) { format!(" ({})", t_string!(i18n, team.you)) } else { String::new() };
                                        let on_role = move |ev: leptos::ev::Event| {
                                            set_role.dispatch(SetRole { user_id: user_id.0, role: event_target_value(&ev) });
                                        };
                                        let status = match m.status {
                                            MemberStatus::Active => t_string!(i18n, team.status_active).to_string(),
                                            MemberStatus::MustChangePassword => t_string!(i18n, team.status_must_change).to_string(),
                                            MemberStatus::Invited => t_string!(i18n, team.status_invited).to_string(),
                                        };
                                        view! {
                                            <tr data-email=m.email.clone()>
                                                <td>{m.name.clone()}<span class="muted">{you}</span></td>
                                                <td>{m.email.clone()}</td>
                                                <td>
                                                    <select on:change=on_role aria-label=move || t_string!(i18n, team.role).to_string()>
                                                        <option value="admin" selected=m.role == Role::Admin>{role_label(i18n, Role::Admin)}</option>
                                                        <option value="agent" selected=m.role == Role::Agent>{role_label(i18n, Role::Agent)}</option>
                                                    </select>
                                                </td>
                                                <td>{status}</td>
                                                <td>{format_time(m.joined_at.0)}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <ErrorBanner error /> }.into_any(),
                }
            })}
        </Suspense>

        <div class="card">
            <h2>{t!(i18n, team.add_title)}</h2>
            <ActionForm action=add node_ref=form attr:novalidate=true attr:class="form">
                <label for="member_name">{t!(i18n, team.name)}</label>
                <input id="member_name" name="name" autocomplete="off" />
                <FieldErrors outcome field=Field::Name />
                <label for="member_email">{t!(i18n, team.email)}</label>
                <input id="member_email" name="email" type="email" autocomplete="off" />
                <FieldErrors outcome field=Field::Email />
                <label for="member_role">{t!(i18n, team.role)}</label>
                <select id="member_role" name="role">
                    <option value="agent" selected>{t!(i18n, team.role_agent)}</option>
                    <option value="admin">{t!(i18n, team.role_admin)}</option>
                </select>
                <fieldset class="radios">
                    <legend>{t!(i18n, team.onboarding)}</legend>
                    <label>
                        <input type="radio" name="onboarding" value="invite_link" checked
                            on:change=move |_| onboarding.set(Onboarding::InviteLink) />
                        {t!(i18n, team.by_invite)}
                    </label>
                    <label>
                        <input type="radio" name="onboarding" value="initial_password"
                            on:change=move |_| onboarding.set(Onboarding::InitialPassword) />
                        {t!(i18n, team.by_password)}
                    </label>
                </fieldset>
                <Show when=move || onboarding.get() == Onboarding::InitialPassword>
                    <label for="initial_password">{t!(i18n, team.initial_password)}</label>
                    <input id="initial_password" name="initial_password" type="text" autocomplete="off" />
                    <p class="hint">{t!(i18n, setup.password_hint)}</p>
                </Show>
                <FieldErrors outcome field=Field::Password />
                <FormError outcome />
                <button type="submit" class="primary" disabled=move || add.pending().get()>
                    {move || if add.pending().get() { t_string!(i18n, team.adding) } else { t_string!(i18n, team.add) }}
                </button>
            </ActionForm>
            {move || outcome.get().and_then(|r| r.ok()).map(|added| view! {
                <div class="banner banner-ok" role="status" data-testid="member-added">
                    {added.invite_path.map(|path| {
                        let link = absolute(&path);
                        view! {
                            <p>{t!(i18n, team.invite_link)}</p>
                            <code class="invite-link" data-testid="invite-link">{link}</code>
                        }
                    })}
                </div>
            })}
        </div>
    }
}

/// An invite path made absolute with the address the admin is using, when the server has no public
/// URL configured.
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        #[cfg(feature = "hydrate")]
        if let Ok(origin) = window().location().origin() {
            return format!("{origin}{path}");
        }
    }
    path.to_owned()
}

fn action_label(i18n: I18nContext<Locale>, action: AuditAction) -> String {
    match action {
        AuditAction::WorkspaceCreated => t_string!(i18n, audit.workspace_created).to_string(),
        AuditAction::MemberAdded => t_string!(i18n, audit.member_added).to_string(),
        AuditAction::MemberInvited => t_string!(i18n, audit.member_invited).to_string(),
        AuditAction::InviteAccepted => t_string!(i18n, audit.invite_accepted).to_string(),
        AuditAction::RoleChanged => t_string!(i18n, audit.role_changed).to_string(),
        AuditAction::PasswordChanged => t_string!(i18n, audit.password_changed).to_string(),
        AuditAction::AccountLocked => t_string!(i18n, audit.account_locked).to_string(),
        AuditAction::ChannelCreated => t_string!(i18n, audit.channel_created).to_string(),
        AuditAction::CannedResponseCreated => t_string!(i18n, audit.canned_response_created).to_string(),
        AuditAction::CannedResponseDeleted => t_string!(i18n, audit.canned_response_deleted).to_string(),
        AuditAction::ReadReceiptsChanged => t_string!(i18n, audit.read_receipts_changed).to_string(),
        AuditAction::ChannelRelinked => t_string!(i18n, audit.channel_relinked).to_string(),
        AuditAction::ContactOptedOut => t_string!(i18n, audit.contact_opted_out).to_string(),
        AuditAction::ContactOptedIn => t_string!(i18n, audit.contact_opted_in).to_string(),
        AuditAction::ContactEdited => t_string!(i18n, audit.contact_edited).to_string(),
        AuditAction::ContactDeleted => t_string!(i18n, audit.contact_deleted).to_string(),
        AuditAction::LabelCreated => t_string!(i18n, audit.label_created).to_string(),
        AuditAction::LabelDeleted => t_string!(i18n, audit.label_deleted).to_string(),
        AuditAction::AttributeCreated => t_string!(i18n, audit.attribute_created).to_string(),
        AuditAction::AttributeChanged => t_string!(i18n, audit.attribute_changed).to_string(),
        AuditAction::AttributeDeleted => t_string!(i18n, audit.attribute_deleted).to_string(),
        AuditAction::ContactsMerged => t_string!(i18n, audit.contacts_merged).to_string(),
        AuditAction::StopKeywordsChanged => t_string!(i18n, audit.stop_keywords_changed).to_string(),
        AuditAction::BroadcastCreated => t_string!(i18n, audit.broadcast_created).to_string(),
        AuditAction::BroadcastPaused => t_string!(i18n, audit.broadcast_paused).to_string(),
        AuditAction::BroadcastResumed => t_string!(i18n, audit.broadcast_resumed).to_string(),
        AuditAction::BroadcastCancelled => t_string!(i18n, audit.broadcast_cancelled).to_string(),
        AuditAction::SendingRulesChanged => t_string!(i18n, audit.sending_rules_changed).to_string(),
        AuditAction::ApiKeyCreated => t_string!(i18n, audit.api_key_created).to_string(),
        AuditAction::ApiKeyRevoked => t_string!(i18n, audit.api_key_revoked).to_string(),
        AuditAction::WebhookCreated => t_string!(i18n, audit.webhook_created).to_string(),
        AuditAction::WebhookDeleted => t_string!(i18n, audit.webhook_deleted).to_string(),
        AuditAction::AiSettingsChanged => t_string!(i18n, audit.ai_settings_changed).to_string(),
        AuditAction::AiProfileChanged => t_string!(i18n, audit.ai_profile_changed).to_string(),
        AuditAction::AiEnabled => t_string!(i18n, audit.ai_enabled).to_string(),
        AuditAction::AiDisabled => t_string!(i18n, audit.ai_disabled).to_string(),
    }
}

/// Admins only: route it inside `AdminOnly`.
#[component]
pub fn Audit() -> impl IntoView {
    let i18n = use_i18n();
    let entries = Resource::new(|| (), |_| audit_log());
    view! {
        <p class="muted">{t!(i18n, audit.intro)}</p>
        <Suspense fallback=move || view! { <p>{t!(i18n, loading)}</p> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty-state">{t!(i18n, audit.empty)}</p> }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="table" data-testid="audit">
                                <thead><tr>
                                    <th>{t!(i18n, audit.when)}</th>
                                    <th>{t!(i18n, audit.who)}</th>
                                    <th>{t!(i18n, audit.what)}</th>
                                    <th>{t!(i18n, audit.subject)}</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|e| view! {
                                        <tr>
                                            <td>{format_time(e.at.0)}</td>
                                            <td>{e.actor.unwrap_or_else(|| t_string!(i18n, audit.system).to_string())}</td>
                                            <td>{action_label(i18n, e.action)}</td>
                                            <td>{e.subject} " " <span class="muted">{e.detail}</span></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <ErrorBanner error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Live status of the parts: refreshed every five seconds while the page is open.
/// Admins only: route it inside `AdminOnly`.
#[component]
pub fn System() -> impl IntoView {
    let i18n = use_i18n();
    let tick = RwSignal::new(0u32);
    Effect::new(move || {
        if let Ok(handle) =
            set_interval_with_handle(move || tick.update(|t| *t += 1), std::time::Duration::from_secs(5))
        {
            on_cleanup(move || handle.clear());
        }
    });
    let status = Resource::new(move || tick.get(), |_| get_system_status());
    let state = move |ok: bool| {
        view! {
            <span class=if ok { "status status-ok" } else { "status status-down" }>
                {if ok { t_string!(i18n, system.ok) } else { t_string!(i18n, system.down) }}
            </span>
        }
    };
    view! {
        <p class="muted">{t!(i18n, system.intro)}</p>
        <Transition fallback=move || view! { <p>{t!(i18n, loading)}</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Ok(status) => {
                        let workers = |kind: WorkerKind| {
                            status.workers.iter().filter(|w| w.kind == kind).cloned().collect::<Vec<_>>()
                        };
                        let section = move |kind: WorkerKind, list: Vec<balas_domain::WorkerInfo>| {
                            let title = match kind {
                                WorkerKind::Whatsapp => t_string!(i18n, system.wa_workers).to_string(),
                                WorkerKind::Ai => t_string!(i18n, system.ai_workers).to_string(),
                            };
                            let none = match kind {
                                WorkerKind::Whatsapp => t_string!(i18n, system.none_wa).to_string(),
                                WorkerKind::Ai => t_string!(i18n, system.none_ai).to_string(),
                            };
                            let count = list.len();
                            view! {
                                <div class="card" data-testid=format!("workers-{}", kind.as_str())>
                                    <h2>{title} " " {state(count > 0)}</h2>
                                    {if list.is_empty() {
                                        view! { <p class="empty-state">{none}</p> }.into_any()
                                    } else {
                                        view! {
                                            <p>{t_string!(i18n, system.online, count = count).to_string()}</p>
                                            <ul class="plain">
                                                {list.into_iter().map(|w| view! {
                                                    <li>
                                                        <code>{w.instance.clone()}</code>
                                                        <span class="muted small">
                                                            " "
                                                            {t_string!(i18n, system.worker_line, host = w.host.clone(), pid = w.pid, version = w.version.clone(), since = format_time(w.started_at.0)).to_string()}
                                                        </span>
                                                    </li>
                                                }).collect_view()}
                                            </ul>
                                        }.into_any()
                                    }}
                                </div>
                            }
                        };
                        view! {
                            <div class="cards">
                                <div class="card" data-testid="database">
                                    <h2>{t!(i18n, system.database)} " " {state(status.database)}</h2>
                                </div>
                                <div class="card" data-testid="redis">
                                    <h2>{t!(i18n, system.redis)} " " {state(status.redis)}</h2>
                                </div>
                            </div>
                            {section(WorkerKind::Whatsapp, workers(WorkerKind::Whatsapp))}
                            {section(WorkerKind::Ai, workers(WorkerKind::Ai))}
                            <p class="muted small">{t_string!(i18n, system.checked, at = format_time(status.checked_at.0)).to_string()}</p>
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorBanner error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Canned responses: agents insert them by typing `/` and the shortcut. Admins only.
#[component]
pub fn CannedResponses() -> impl IntoView {
    let i18n = use_i18n();
    let add = ServerAction::<AddCanned>::new();
    let delete = ServerAction::<DeleteCanned>::new();
    let list = Resource::new(move || (add.version().get(), delete.version().get()), |_| list_canned());
    let outcome = outcome(add.value());
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move || {
        if let (true, Some(form)) = (outcome.with(|v| matches!(v, Some(Ok(_)))), form.get_untracked()) {
            form.reset();
        }
    });
    view! {
        <div class="card">
            <h2>{t!(i18n, canned.title)}</h2>
            <p class="muted">{t!(i18n, canned.intro)}</p>
            <Transition fallback=move || view! { <p>{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(items) if items.is_empty() => view! {
                            <p class="empty-state" data-testid="no-canned">{t!(i18n, canned.empty)}</p>
                        }.into_any(),
                        Ok(items) => view! {
                            <ul class="plain canned-list" data-testid="canned-list">
                                {items.into_iter().map(|c| view! {
                                    <li>
                                        <strong>"/" {c.shortcut.to_string()}</strong>
                                        <span class="canned-body">{c.body.clone()}</span>
                                        <ActionForm action=delete attr:class="inline">
                                            <input type="hidden" name="id" value=c.id />
                                            <button type="submit" class="link-button">{t!(i18n, canned.delete)}</button>
                                        </ActionForm>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(error) => view! { <ErrorBanner error /> }.into_any(),
                    }
                })}
            </Transition>
            <ActionForm action=add node_ref=form attr:novalidate=true attr:class="form">
                <label for="canned_shortcut">{t!(i18n, canned.shortcut)}</label>
                <input id="canned_shortcut" name="shortcut" autocomplete="off" placeholder="thanks" />
                <FieldErrors outcome field=Field::Shortcut />
                <label for="canned_body">{t!(i18n, canned.body)}</label>
                <textarea id="canned_body" name="body" rows="3"></textarea>
                <FieldErrors outcome field=Field::Text />
                <FormError outcome />
                <button type="submit" class="primary">{t!(i18n, canned.add)}</button>
            </ActionForm>
        </div>
    }
}

/// The words a customer sends to stop broadcasts (START, MULAI and SUBSCRIBE restart them).
#[component]
pub fn StopKeywords() -> impl IntoView {
    let i18n = use_i18n();
    let save = ServerAction::<SetStopKeywords>::new();
    let current = Resource::new(move || save.version().get(), |_| stop_keywords());
    let outcome = outcome(save.value());
    view! {
        <div class="card">
            <h2>{t!(i18n, stop_keywords.title)}</h2>
            <p class="muted">{t!(i18n, stop_keywords.intro)}</p>
            <Transition fallback=move || view! { <p>{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match current.await {
                        Ok(words) => view! {
                            <ActionForm action=save attr:novalidate=true attr:class="form" attr:data-testid="stop-keywords-form">
                                <label for="stop_keywords">{t!(i18n, stop_keywords.label)}</label>
                                <textarea id="stop_keywords" name="keywords" rows="5">{words.join("\n")}</textarea>
                                <p class="muted small">{t!(i18n, stop_keywords.hint)}</p>
                                <FieldErrors outcome field=Field::Keywords />
                                <FormError outcome />
                                {move || outcome.with(|o| matches!(o, Some(Ok(_)))).then(|| view! {
                                    <p class="notice" role="status" data-testid="stop-keywords-saved">{t!(i18n, stop_keywords.saved)}</p>
                                })}
                                <button type="submit" class="primary">{t!(i18n, stop_keywords.save)}</button>
                            </ActionForm>
                        }.into_any(),
                        Err(error) => view! { <ErrorBanner error /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

/// Time zones offered for the sending hours (the workspace's own is added when it is another).
const TIME_ZONES: [&str; 12] = [
    "Asia/Jakarta",
    "Asia/Makassar",
    "Asia/Jayapura",
    "Asia/Singapore",
    "Asia/Kuala_Lumpur",
    "Asia/Manila",
    "Asia/Bangkok",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Europe/London",
    "America/Sao_Paulo",
    "UTC",
];

/// When broadcasts may send, and how many per number per day.
#[component]
pub fn SendingRulesForm() -> impl IntoView {
    let i18n = use_i18n();
    let save = ServerAction::<SetSendingRules>::new();
    let current = Resource::new(move || save.version().get(), |_| get_sending_rules());
    let outcome = outcome(save.value());
    let hours = |chosen: u8, range: std::ops::RangeInclusive<u8>| {
        range
            .map(|h| view! { <option value=h.to_string() selected=h == chosen>{format!("{h:02}:00")}</option> })
            .collect_view()
    };
    view! {
        <div class="card">
            <h2>{t!(i18n, sending.title)}</h2>
            <p class="muted">{t!(i18n, sending.intro)}</p>
            <Transition fallback=move || view! { <p>{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match current.await {
                        Ok(rules) => {
                            let mut zones: Vec<String> = TIME_ZONES.iter().map(|z| (*z).to_owned()).collect();
                            if !zones.contains(&rules.time_zone) {
                                zones.insert(0, rules.time_zone.clone());
                            }
                            view! {
                                <ActionForm action=save attr:novalidate=true attr:class="form" attr:data-testid="sending-rules-form">
                                    <label for="time_zone">{t!(i18n, sending.time_zone)}</label>
                                    <select id="time_zone" name="time_zone">
                                        {zones.into_iter().map(|z| {
                                            let selected = z == rules.time_zone;
                                            view! { <option value=z.clone() selected=selected>{z.clone()}</option> }
                                        }).collect_view()}
                                    </select>
                                    <FieldErrors outcome field=Field::TimeZone />
                                    <div class="filter-selects">
                                        <label>{t!(i18n, sending.from)}
                                            <select name="from_hour" data-testid="sending-from">{hours(rules.from_hour, 0..=23)}</select></label>
                                        <label>{t!(i18n, sending.to)}
                                            <select name="to_hour" data-testid="sending-to">{hours(rules.to_hour, 1..=24)}</select></label>
                                    </div>
                                    <FieldErrors outcome field=Field::Hours />
                                    <label for="daily_cap">{t!(i18n, sending.daily_cap)}</label>
                                    <input id="daily_cap" name="daily_cap" type="number" min="1" max="100000" value=rules.daily_cap.to_string() data-testid="sending-cap" />
                                    <p class="muted small">{t!(i18n, sending.cap_hint)}</p>
                                    <FieldErrors outcome field=Field::DailyCap />
                                    <FormError outcome />
                                    {move || outcome.with(|o| matches!(o, Some(Ok(_)))).then(|| view! {
                                        <p class="notice" role="status" data-testid="sending-rules-saved">{t!(i18n, sending.saved)}</p>
                                    })}
                                    <button type="submit" class="primary">{t!(i18n, sending.save)}</button>
                                </ActionForm>
                            }.into_any()
                        }
                        Err(error) => view! { <ErrorBanner error /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

/// A secret that is shown this once (an API key's, a webhook's), with what to do about it.
#[component]
fn ShownOnce(secret: String, testid: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="banner banner-ok" role="status">
            <p>{children()}</p>
            <p><code data-testid=testid>{secret}</code></p>
        </div>
    }
}

/// API keys for the REST API: made with a name, scopes and a rate; the secret shown once; the
/// list with the last use; revocation.
#[component]
pub fn ApiKeys() -> impl IntoView {
    let i18n = use_i18n();
    let keys = RwSignal::new(None::<Result<Vec<balas_domain::ApiKey>, AppError>>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            keys.try_set(Some(list_api_keys().await));
        });
    };
    Effect::new(move |_| reload());
    let name = RwSignal::new(String::new());
    let scopes = RwSignal::new(std::collections::BTreeSet::<&'static str>::new());
    let rate = RwSignal::new(balas_domain::ApiKey::DEFAULT_RATE.to_string());
    let made = RwSignal::new(None::<Result<balas_domain::CreatedApiKey, AppError>>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, s, r) = (name.get_untracked(), scopes.get_untracked(), rate.get_untracked());
        leptos::task::spawn_local(async move {
            let scopes: Vec<String> = s.into_iter().map(str::to_owned).collect();
            // A rate that is not a number is sent as 0, which the server refuses with the range.
            let answer = create_api_key(n, scopes, Some(r.trim().parse().unwrap_or(0))).await;
            if answer.is_ok() {
                name.try_set(String::new());
                reload();
            }
            made.try_set(Some(answer));
        });
    };
    let revoke = move |id: i64| {
        if !window().confirm_with_message(t_string!(i18n, api_keys.revoke_confirm)).unwrap_or(false) {
            return;
        }
        leptos::task::spawn_local(async move {
            let _ = revoke_api_key(id).await;
            reload();
        });
    };
    let outcome: Outcome<balas_domain::CreatedApiKey> = Signal::derive(move || made.get());
    let scope_choices = [
        ("send_messages", t_string!(i18n, api_keys.scope_send).to_string()),
        ("manage_broadcasts", t_string!(i18n, api_keys.scope_broadcasts).to_string()),
        ("manage_contacts", t_string!(i18n, api_keys.scope_contacts).to_string()),
        ("read", t_string!(i18n, api_keys.scope_read).to_string()),
    ];
    view! {
        <div class="card">
            <h2>{t!(i18n, api_keys.title)}</h2>
            <p class="muted">{t!(i18n, api_keys.intro)}" "<a href="/api/v1/docs" target="_blank" rel="noopener">"/api/v1/docs"</a></p>
            <form class="form" on:submit=create data-testid="api-key-form" novalidate>
                <label for="api_key_name">{t!(i18n, api_keys.name)}</label>
                <input id="api_key_name" maxlength="40" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                <FieldErrors outcome field=Field::Name />
                <fieldset class="choices">
                    <legend>{t!(i18n, api_keys.scopes)}</legend>
                    {scope_choices.into_iter().map(|(key, label)| view! {
                        <label><input type="checkbox" data-testid=format!("scope-{key}") prop:checked=move || scopes.with(|s| s.contains(key))
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                scopes.update(|s| { if on { s.insert(key); } else { s.remove(key); } });
                            } />{label}</label>
                    }).collect_view()}
                </fieldset>
                <FieldErrors outcome field=Field::Scopes />
                <label for="api_key_rate">{t!(i18n, api_keys.rate)}</label>
                <input id="api_key_rate" type="number" min="1" prop:value=move || rate.get() on:input=move |ev| rate.set(event_target_value(&ev)) />
                <FieldErrors outcome field=Field::RateLimit />
                <FormError outcome />
                <button type="submit" class="primary">{t!(i18n, api_keys.create)}</button>
            </form>
            {move || made.get().and_then(Result::ok).map(|created| view! {
                <ShownOnce secret=created.secret testid="api-key-secret">{t!(i18n, api_keys.secret_once)}</ShownOnce>
            })}
        </div>
        <div class="card">
            {move || match keys.get() {
                None => view! { <p class="loading">{t!(i18n, loading)}</p> }.into_any(),
                Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="empty-state">{t!(i18n, api_keys.empty)}</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="api-keys">
                            <thead><tr>
                                <th>{t!(i18n, api_keys.name)}</th>
                                <th>{t!(i18n, api_keys.scopes)}</th>
                                <th>{t!(i18n, api_keys.last_used)}</th>
                                <th></th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|k| {
                                    let id = k.id;
                                    let scopes = k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                                    view! {
                                        <tr data-testid="api-key-row">
                                            <td>{k.name.to_string()}<br /><code class="small">{format!("{}…", k.prefix)}</code></td>
                                            <td class="small">{scopes}<br /><span class="muted">{t!(i18n, api_keys.per_minute, rate = k.rate_per_minute)}</span></td>
                                            <td class="small">{k.last_used_at.map_or_else(|| t_string!(i18n, api_keys.never).to_string(), |t| crate::ui::format_time(t.0))}</td>
                                            <td>{match k.revoked_at {
                                                Some(at) => view! { <span class="muted small">{t!(i18n, api_keys.revoked_at, at = crate::ui::format_time(at.0))}</span> }.into_any(),
                                                None => view! { <button type="button" class="button button-small" data-testid="api-key-revoke" on:click=move |_| revoke(id)>{t!(i18n, api_keys.revoke)}</button> }.into_any(),
                                            }}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
            }}
        </div>
    }
}

/// Webhooks: URLs that get the workspace's events, signed; each one's latest deliveries with
/// their answers, and a replay for the failed ones.
#[component]
pub fn Webhooks() -> impl IntoView {
    let i18n = use_i18n();
    let hooks = RwSignal::new(None::<Result<Vec<balas_domain::Webhook>, AppError>>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            hooks.try_set(Some(list_webhooks().await));
        });
    };
    Effect::new(move |_| reload());
    let url = RwSignal::new(String::new());
    let events = RwSignal::new(std::collections::BTreeSet::<&'static str>::new());
    let made = RwSignal::new(None::<Result<balas_domain::CreatedWebhook, AppError>>);
    let shown = RwSignal::new(None::<i64>);
    let log = RwSignal::new(Vec::<balas_domain::WebhookDelivery>::new());
    let load_log = move |id: i64| {
        shown.set(Some(id));
        leptos::task::spawn_local(async move {
            if let Ok(list) = webhook_deliveries(id).await {
                log.try_set(list);
            }
        });
    };
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (u, e) = (url.get_untracked(), events.get_untracked());
        leptos::task::spawn_local(async move {
            let answer = create_webhook(u, e.into_iter().map(str::to_owned).collect()).await;
            if answer.is_ok() {
                url.try_set(String::new());
                reload();
            }
            made.try_set(Some(answer));
        });
    };
    let remove = move |id: i64| {
        if !window().confirm_with_message(t_string!(i18n, webhooks.delete_confirm)).unwrap_or(false) {
            return;
        }
        leptos::task::spawn_local(async move {
            let _ = delete_webhook(id).await;
            reload();
        });
    };
    let replay = move |id: i64| {
        leptos::task::spawn_local(async move {
            let _ = replay_delivery(id).await;
            if let Some(hook) = shown.get_untracked() {
                load_log(hook);
            }
        });
    };
    let outcome: Outcome<balas_domain::CreatedWebhook> = Signal::derive(move || made.get());
    view! {
        <div class="card">
            <h2>{t!(i18n, webhooks.title)}</h2>
            <p class="muted">{t!(i18n, webhooks.intro)}</p>
            <form class="form" on:submit=create data-testid="webhook-form" novalidate>
                <label for="webhook_url">{t!(i18n, webhooks.url)}</label>
                <input id="webhook_url" type="url" placeholder="https://erp.example.com/hooks/balas" prop:value=move || url.get()
                    on:input=move |ev| url.set(event_target_value(&ev)) />
                <FieldErrors outcome field=Field::Url />
                <fieldset class="choices">
                    <legend>{t!(i18n, webhooks.events)}</legend>
                    {balas_domain::WebhookEvent::ALL.into_iter().map(|event| {
                        let key = event.as_str();
                        view! {
                            <label><input type="checkbox" prop:checked=move || events.with(|s| s.contains(key))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    events.update(|s| { if on { s.insert(key); } else { s.remove(key); } });
                                } /><code>{key}</code></label>
                        }
                    }).collect_view()}
                </fieldset>
                <FieldErrors outcome field=Field::Events />
                <FormError outcome />
                <button type="submit" class="primary">{t!(i18n, webhooks.create)}</button>
            </form>
            {move || made.get().and_then(Result::ok).map(|created| view! {
                <ShownOnce secret=created.secret testid="webhook-secret">{t!(i18n, webhooks.secret_once)}</ShownOnce>
            })}
        </div>
        <div class="card">
            {move || match hooks.get() {
                None => view! { <p class="loading">{t!(i18n, loading)}</p> }.into_any(),
                Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="empty-state">{t!(i18n, webhooks.empty)}</p> }.into_any(),
                Some(Ok(list)) => list.into_iter().map(|hook| {
                    let id = hook.id;
                    let events = hook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
                    view! {
                        <div class="webhook" data-testid="webhook-row">
                            <p><code>{hook.url.clone()}</code><br /><span class="muted small">{events}</span></p>
                            <div class="row-actions">
                                <button type="button" class="button button-small" on:click=move |_| load_log(id)>{t!(i18n, webhooks.show_log)}</button>
                                <button type="button" class="button button-small" on:click=move |_| remove(id)>{t!(i18n, webhooks.delete)}</button>
                            </div>
                            <Show when=move || shown.get() == Some(id)>
                                {move || {
                                    let rows = log.get();
                                    if rows.is_empty() {
                                        view! { <p class="muted">{t!(i18n, webhooks.no_deliveries)}</p> }.into_any()
                                    } else {
                                        view! {
                                            <div class="table-wrap">
                                                <table class="table" data-testid="webhook-log">
                                                    <thead><tr>
                                                        <th>{t!(i18n, webhooks.when)}</th><th>{t!(i18n, webhooks.event)}</th>
                                                        <th>{t!(i18n, webhooks.result)}</th><th></th>
                                                    </tr></thead>
                                                    <tbody>
                                                        {rows.into_iter().map(|d| {
                                                            let delivery = d.id;
                                                            let answer = d.last_status.map_or_else(String::new, |s| format!("HTTP {s} "));
                                                            view! {
                                                                <tr>
                                                                    <td class="nowrap small">{crate::ui::format_time(d.created_at.0)}</td>
                                                                    <td><code>{d.event.as_str()}</code></td>
                                                                    <td class="small">{format!("{} · {} × · {answer}", d.state.as_str(), d.attempts)}
                                                                        <span class="muted">{d.last_response.clone().unwrap_or_default()}</span></td>
                                                                    <td>{(d.state == balas_domain::DeliveryState::Failed).then(|| view! {
                                                                        <button type="button" class="button button-small" on:click=move |_| replay(delivery)>{t!(i18n, webhooks.replay)}</button>
                                                                    })}</td>
                                                                </tr>
                                                            }
                                                        }).collect_view()}
                                                    </tbody>
                                                </table>
                                            </div>
                                        }.into_any()
                                    }
                                }}
                            </Show>
                        </div>
                    }
                }).collect_view().into_any(),
            }}
        </div>
    }
}
