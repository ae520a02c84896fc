//! The AI agent page (admins): the provider (address, key, default model, monthly token cap, with
//! this month's use), and for each channel whether its AI answers, its profile in an editor with
//! a playground beside it (the unsaved prompt, nothing sent), and the saved versions with a
//! one-click revert.

use balas_domain::{
    AiActive, AiChannel, AiConversationUsage, AiProfile, AiProfileVersion, AiSettings, AiTrial, AiUsage, AppError,
    Field,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::api::{
    ai_channels, ai_profile_versions, get_ai_settings, revert_ai_profile, save_ai_profile, set_ai_enabled,
    set_ai_settings, try_ai_profile,
};
use crate::i18n::*;
use crate::ui::{ErrorBanner, FieldErrors, FormError, Outcome, error_text, format_time};

#[component]
pub fn AiAgentPage() -> impl IntoView {
    let i18n = use_i18n();
    let settings = RwSignal::new(None::<Result<(Option<AiSettings>, AiUsage), AppError>>);
    let channels = RwSignal::new(None::<Result<Vec<AiChannel>, AppError>>);
    let reload = move || {
        spawn_local(async move {
            settings.try_set(Some(get_ai_settings().await));
            channels.try_set(Some(ai_channels().await));
        });
    };
    Effect::new(move |_| reload());
    let chosen = RwSignal::new(None::<i64>);
    // Kept here: a save reloads what the forms show, which renders them anew.
    let provider_saved = RwSignal::new(None::<Result<AiSettings, AppError>>);
    let profile_saved = RwSignal::new(None::<Result<AiChannel, AppError>>);
    Effect::new(move |_| {
        chosen.track();
        profile_saved.set(None);
    });
    view! {
        <Title text=move || t_string!(i18n, nav.ai_agent).to_string() />
        <section class="page ai-page">
            <h1>{t!(i18n, nav.ai_agent)}</h1>
            <p class="muted">{t!(i18n, ai.intro)}</p>
            {move || match settings.get() {
                None => view! { <p class="loading">{t!(i18n, loading)}</p> }.into_any(),
                Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                Some(Ok((current, usage))) => view! { <ProviderForm current usage saved=provider_saved on_saved=reload /> }.into_any(),
            }}
            {move || match channels.get() {
                None => ().into_any(),
                Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                Some(Ok(all)) if all.is_empty() => view! {
                    <p class="empty-state" data-testid="ai-no-channels">
                        {t!(i18n, ai.no_channels)} " " <a href="/channels">{t!(i18n, ai.add_channel)}</a>
                    </p>
                }.into_any(),
                Some(Ok(all)) => {
                    let selected = chosen.get().unwrap_or(all[0].channel_id.0);
                    let has_provider = matches!(settings.get(), Some(Ok((Some(_), _))));
                    view! {
                        <div class="card">
                            <h2>{t!(i18n, ai.channels)}</h2>
                            <ul class="plain-list" data-testid="ai-channels">
                                {all.iter().cloned().map(|c| view! { <ChannelRow channel=c chosen has_provider on_change=reload /> }.into_any()).collect_view()}
                            </ul>
                        </div>
                        {all.into_iter().find(|c| c.channel_id.0 == selected).map(|channel| view! {
                            <ProfileEditor channel saved=profile_saved on_saved=reload />
                        }.into_any())}
                    }.into_any()
                }
            }}
        </section>
    }
}

/// Where this month's tokens went: the conversations that used the most, as bars against the
/// largest, each a link to the conversation.
#[component]
fn TopConversations(top: Vec<AiConversationUsage>) -> impl IntoView {
    let i18n = use_i18n();
    let most = top.first().map_or(1, |c| c.tokens.max(1));
    (!top.is_empty()).then(|| view! {
        <h3 class="usage-top-title">{t!(i18n, ai.usage_top)}</h3>
        <ol class="usage-top plain-list" data-testid="ai-usage-top">
            {top.into_iter().map(|c| {
                let width = (c.tokens.saturating_mul(100) / most).clamp(1, 100);
                let who = c.contact_name.clone().unwrap_or_else(|| c.contact_phone.to_string());
                view! {
                    <li data-testid="ai-usage-conversation">
                        <a href=format!("/inbox/{}", c.conversation_id.0)>{who}</a>
                        <span class="small muted">{c.channel_name}</span>
                        <div class="progress" aria-hidden="true">
                            <div class="progress-fill" style=format!("width: {width}%")></div>
                        </div>
                        <span class="small" data-testid="ai-usage-tokens">{t!(i18n, ai.usage_tokens, tokens = c.tokens.to_string())}</span>
                    </li>
                }
            }).collect_view()}
        </ol>
    })
}

#[component]
fn ProviderForm(
    current: Option<AiSettings>,
    usage: AiUsage,
    saved: RwSignal<Option<Result<AiSettings, AppError>>>,
    on_saved: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let base_url =
        RwSignal::new(current.as_ref().map_or("https://api.openai.com/v1".to_owned(), |s| s.base_url.clone()));
    let api_key = RwSignal::new(String::new());
    let model = RwSignal::new(current.as_ref().map_or("gpt-4o-mini".to_owned(), |s| s.model.clone()));
    let cap = RwSignal::new(current.as_ref().map_or("0".to_owned(), |s| s.monthly_token_cap.to_string()));
    let hint = current.as_ref().and_then(|s| s.key_hint.clone());
    let outcome: Outcome<AiSettings> = Signal::derive(move || saved.get());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (u, k, m, c) =
            (base_url.get_untracked(), api_key.get_untracked(), model.get_untracked(), cap.get_untracked());
        spawn_local(async move {
            let answer = set_ai_settings(u, k, m, c.trim().parse().unwrap_or(-1)).await;
            if answer.is_ok() {
                api_key.try_set(String::new());
                on_saved();
            }
            saved.try_set(Some(answer));
        });
    };
    let percent = if usage.cap > 0 { (usage.tokens.saturating_mul(100) / usage.cap).min(100) } else { 0 };
    let reached = usage.reached();
    let AiUsage { tokens: used, cap: limit, top } = usage;
    view! {
        <div class="card">
            <h2>{t!(i18n, ai.provider)}</h2>
            <p class="muted small">{t!(i18n, ai.provider_hint)}</p>
            <div class="usage" data-testid="ai-usage">
                <span>{t!(i18n, ai.usage, tokens = used.to_string())}</span>
                {(limit > 0).then(|| view! {
                    <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=percent.to_string()>
                        <div class="progress-fill" style=format!("width: {percent}%")></div>
                    </div>
                    <span class="small muted">{t!(i18n, ai.usage_cap, cap = limit.to_string())}</span>
                })}
                <TopConversations top />
                {reached.then(|| view! {
                    <div class="banner banner-error" role="alert" data-testid="ai-cap-reached">{t!(i18n, ai.cap_reached)}</div>
                })}
            </div>
            <form class="form" novalidate on:submit=submit data-testid="ai-provider-form">
                <label for="ai-base-url">{t!(i18n, ai.base_url)}</label>
                <input id="ai-base-url" type="url" prop:value=base_url on:input=move |ev| base_url.set(event_target_value(&ev)) />
                <FieldErrors outcome field=Field::Url />
                <label for="ai-key">{t!(i18n, ai.api_key)}</label>
                <input id="ai-key" type="password" autocomplete="off" prop:value=api_key
                    placeholder=hint.clone().map(|h| format!("•••• {h}")).unwrap_or_default()
                    on:input=move |ev| api_key.set(event_target_value(&ev)) />
                <p class="muted small">{if hint.is_some() { t_string!(i18n, ai.key_kept).to_string() } else { t_string!(i18n, ai.key_hint).to_string() }}</p>
                <FieldErrors outcome field=Field::Token />
                <label for="ai-model">{t!(i18n, ai.default_model)}</label>
                <input id="ai-model" prop:value=model on:input=move |ev| model.set(event_target_value(&ev)) />
                <FieldErrors outcome field=Field::Model />
                <label for="ai-cap">{t!(i18n, ai.cap)}</label>
                <input id="ai-cap" type="number" min="0" prop:value=cap on:input=move |ev| cap.set(event_target_value(&ev)) />
                <p class="muted small">{t!(i18n, ai.cap_hint)}</p>
                <FieldErrors outcome field=Field::TokenCap />
                <FormError outcome />
                {move || matches!(saved.get(), Some(Ok(_))).then(|| view! {
                    <p class="notice" role="status" data-testid="ai-provider-saved">{t!(i18n, ai.saved)}</p>
                })}
                <button type="submit" class="primary">{t!(i18n, ai.save_provider)}</button>
            </form>
        </div>
    }
}

#[component]
fn ChannelRow(
    channel: AiChannel,
    chosen: RwSignal<Option<i64>>,
    has_provider: bool,
    on_change: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let id = channel.channel_id.0;
    let problem = RwSignal::new(None::<String>);
    let toggle = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        spawn_local(async move {
            match set_ai_enabled(id, on).await {
                Ok(_) => {
                    problem.try_set(None);
                    on_change();
                }
                Err(error) => {
                    problem.try_set(
                        error_text(i18n, &error).or_else(|| Some(t_string!(i18n, ai.needs_provider).to_string())),
                    );
                }
            }
        });
    };
    view! {
        <li class="ai-channel" data-testid="ai-channel" data-channel=id>
            <label class="check">
                <input type="checkbox" checked=channel.enabled on:change=toggle data-testid="ai-enabled" disabled=!has_provider && !channel.enabled />
                <strong>{channel.channel_name.clone()}</strong>
            </label>
            <span class=if channel.enabled { "status status-ok" } else { "status" }>
                {if channel.enabled { t_string!(i18n, ai.answering).to_string() } else { t_string!(i18n, ai.off).to_string() }}
            </span>
            <span class="small muted">{if channel.version > 0 { format!("v{}", channel.version) } else { t_string!(i18n, ai.default_profile).to_string() }}</span>
            <button type="button" class="button-small" on:click=move |_| chosen.set(Some(id)) data-testid="ai-edit">{t!(i18n, ai.edit)}</button>
            {(!has_provider).then(|| view! { <span class="small muted">{t!(i18n, ai.needs_provider)}</span> })}
            {move || problem.get().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
        </li>
    }
}

/// Comma-separated words, as the profile keeps them.
fn words(text: &str) -> Vec<String> {
    text.split(',').map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()).collect()
}

#[component]
fn ProfileEditor(
    channel: AiChannel,
    saved: RwSignal<Option<Result<AiChannel, AppError>>>,
    on_saved: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let id = channel.channel_id.0;
    let p = channel.profile.clone();
    let prompt = RwSignal::new(p.prompt.clone());
    let model = RwSignal::new(p.model.clone());
    let temperature = RwSignal::new(p.temperature.to_string());
    let max_tokens = RwSignal::new(p.max_tokens.to_string());
    let history = RwSignal::new(p.history.to_string());
    let (from0, to0, outside0) = match p.active {
        AiActive::Always => (8, 17, false),
        AiActive::OutsideHours { from_hour, to_hour } => (from_hour, to_hour, true),
    };
    let outside = RwSignal::new(outside0);
    let from_hour = RwSignal::new(from0);
    let to_hour = RwSignal::new(to0);
    let languages = RwSignal::new(p.languages.join(", "));
    let keywords = RwSignal::new(p.handover_keywords.join(", "));
    let settle = RwSignal::new((f64::from(p.settle_ms) / 1000.0).to_string());
    // Numbers that do not parse are sent as out-of-range values, which the server names.
    let profile = move || AiProfile {
        prompt: prompt.get_untracked(),
        model: model.get_untracked(),
        temperature: temperature.get_untracked().trim().replace(',', ".").parse().unwrap_or(-1.0),
        max_tokens: max_tokens.get_untracked().trim().parse().unwrap_or(0),
        history: history.get_untracked().trim().parse().unwrap_or(0),
        active: if outside.get_untracked() {
            AiActive::OutsideHours { from_hour: from_hour.get_untracked(), to_hour: to_hour.get_untracked() }
        } else {
            AiActive::Always
        },
        languages: words(&languages.get_untracked()),
        handover_keywords: words(&keywords.get_untracked()),
        settle_ms: settle
            .get_untracked()
            .trim()
            .replace(',', ".")
            .parse::<f64>()
            .map_or(u32::MAX, |s| (s * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32),
    };
    let outcome: Outcome<AiChannel> = Signal::derive(move || saved.get());
    let versions = RwSignal::new(None::<Result<Vec<AiProfileVersion>, AppError>>);
    let load_versions = move || {
        spawn_local(async move {
            versions.try_set(Some(ai_profile_versions(id).await));
        });
    };
    Effect::new(move |_| load_versions());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let profile = profile();
        spawn_local(async move {
            let answer = save_ai_profile(id, profile).await;
            if answer.is_ok() {
                load_versions();
                on_saved();
            }
            saved.try_set(Some(answer));
        });
    };
    let revert = move |version: i64| {
        spawn_local(async move {
            if revert_ai_profile(id, version).await.is_ok() {
                load_versions();
                on_saved();
            }
        });
    };
    // The playground.
    let trial_text = RwSignal::new(String::new());
    let trial = RwSignal::new(None::<Result<AiTrial, AppError>>);
    let trying = RwSignal::new(false);
    let trial_outcome: Outcome<AiTrial> = Signal::derive(move || trial.get());
    let try_it = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (profile, text) = (profile(), trial_text.get_untracked());
        trying.set(true);
        spawn_local(async move {
            let answer = try_ai_profile(profile, text).await;
            trying.try_set(false);
            trial.try_set(Some(answer));
        });
    };
    let hour_options = |range: std::ops::RangeInclusive<u8>, chosen: RwSignal<u8>| {
        range
            .map(move |h| view! { <option value=h.to_string() selected=move || chosen.get() == h>{format!("{h:02}:00")}</option> })
            .collect_view()
    };
    let numbers = view! {
                <div class="form-grid">
                    <label>{t!(i18n, ai.model)}
                        <input prop:value=model placeholder=move || t_string!(i18n, ai.model_default).to_string() on:input=move |ev| model.set(event_target_value(&ev)) /></label>
                    <label>{t!(i18n, ai.temperature)}
                        <input type="number" step="0.1" min="0" max="2" prop:value=temperature on:input=move |ev| temperature.set(event_target_value(&ev)) /></label>
                    <label>{t!(i18n, ai.max_tokens)}
                        <input type="number" min="16" max="8192" prop:value=max_tokens on:input=move |ev| max_tokens.set(event_target_value(&ev)) /></label>
                    <label>{t!(i18n, ai.history)}
                        <input type="number" min="1" max="50" prop:value=history on:input=move |ev| history.set(event_target_value(&ev)) /></label>
                    <label>{t!(i18n, ai.settle)}
                        <input type="number" step="0.5" min="0" max="60" prop:value=settle on:input=move |ev| settle.set(event_target_value(&ev)) /></label>
                </div>
                <FieldErrors outcome field=Field::Model />
                <FieldErrors outcome field=Field::Temperature />
                <FieldErrors outcome field=Field::MaxTokens />
                <FieldErrors outcome field=Field::History />
                <FieldErrors outcome field=Field::Settle />
                <fieldset>
                    <legend>{t!(i18n, ai.when)}</legend>
                    <label class="check"><input type="radio" name="ai-when" checked=!outside0 on:change=move |_| outside.set(false) />{t!(i18n, ai.always)}</label>
                    <label class="check"><input type="radio" name="ai-when" checked=outside0 on:change=move |_| outside.set(true) />{t!(i18n, ai.outside_hours)}</label>
                    <Show when=move || outside.get()>
                        <div class="filter-selects">
                            <label>{t!(i18n, ai.business_from)}
                                <select on:change=move |ev| from_hour.set(event_target_value(&ev).parse().unwrap_or(0))>{hour_options(0..=23, from_hour)}</select></label>
                            <label>{t!(i18n, ai.business_to)}
                                <select on:change=move |ev| to_hour.set(event_target_value(&ev).parse().unwrap_or(24))>{hour_options(1..=24, to_hour)}</select></label>
                        </div>
                        <p class="muted small">{t!(i18n, ai.hours_hint)}</p>
                    </Show>
                </fieldset>
                <FieldErrors outcome field=Field::Hours />
    }
    .into_any();
    let words = view! {
                <label for="ai-languages">{t!(i18n, ai.languages)}</label>
                <input id="ai-languages" prop:value=languages placeholder="Indonesian, English" on:input=move |ev| languages.set(event_target_value(&ev)) />
                <FieldErrors outcome field=Field::Languages />
                <label for="ai-keywords">{t!(i18n, ai.keywords)}</label>
                <input id="ai-keywords" prop:value=keywords on:input=move |ev| keywords.set(event_target_value(&ev)) />
                <p class="muted small">{t!(i18n, ai.keywords_hint)}</p>
                <FieldErrors outcome field=Field::Keywords />
    }
    .into_any();
    let editor = view! {
            <form class="card form" novalidate on:submit=submit data-testid="ai-profile-form">
                <h2>{t!(i18n, ai.profile_of, channel = channel.channel_name.clone())}</h2>
                <label for="ai-prompt">{t!(i18n, ai.prompt)}</label>
                <textarea id="ai-prompt" rows="10" prop:value=prompt on:input=move |ev| prompt.set(event_target_value(&ev)) data-testid="ai-prompt"></textarea>
                <p class="muted small">{move || t_string!(i18n, ai.prompt_count, count = prompt.with(|p| p.chars().count()).to_string()).to_string()}</p>
                <FieldErrors outcome field=Field::Prompt />
                {numbers}
                {words}
                <FormError outcome />
                {move || match saved.get() {
                    Some(Ok(c)) => Some(view! { <p class="notice" role="status" data-testid="ai-profile-saved">{t!(i18n, ai.saved_version, version = c.version.to_string())}</p> }),
                    _ => None,
                }}
                <button type="submit" class="primary" data-testid="ai-save">{t!(i18n, ai.save_profile)}</button>
            </form>
    }
    .into_any();
    let playground = view! {
            <form class="card form playground" novalidate on:submit=try_it data-testid="ai-playground">
                <h2>{t!(i18n, ai.playground)}</h2>
                <p class="muted small">{t!(i18n, ai.playground_hint)}</p>
                <label for="ai-try">{t!(i18n, ai.customer_says)}</label>
                <textarea id="ai-try" rows="3" prop:value=trial_text on:input=move |ev| trial_text.set(event_target_value(&ev)) data-testid="ai-try-text"></textarea>
                <FieldErrors outcome=trial_outcome field=Field::Text />
                <FormError outcome=trial_outcome />
                <button type="submit" class="primary" disabled=move || trying.get() data-testid="ai-try">
                    {move || if trying.get() { t_string!(i18n, ai.thinking).to_string() } else { t_string!(i18n, ai.try_it).to_string() }}
                </button>
                {move || match trial.get() {
                    Some(Ok(result)) => Some(view! {
                        <div class="trial" data-testid="ai-trial">
                            {result.error.clone().map(|error| view! { <p class="banner banner-error" role="alert" data-testid="ai-trial-error">{error}</p> })}
                            {match result.answer {
                                Some(answer) => view! { <div class="bubble outbound"><div class="bubble-sender small"><span class="badge badge-ai">"AI"</span></div><div class="bubble-body" data-testid="ai-trial-answer">{answer}</div></div> }.into_any(),
                                None if result.error.is_none() => view! { <p class="notice" data-testid="ai-trial-handover">{t!(i18n, ai.would_hand_over)}</p> }.into_any(),
                                None => ().into_any(),
                            }}
                            {(!result.tool_calls.is_empty()).then(|| view! {
                                <h3>{t!(i18n, ai.tool_calls)}</h3>
                                <ul class="plain-list small" data-testid="ai-trial-tools">
                                    {result.tool_calls.into_iter().map(|call| view! {
                                        <li><code>{call.name}</code> " " <code>{call.arguments}</code> " → " {call.result}</li>
                                    }).collect_view()}
                                </ul>
                            })}
                            <p class="small muted">{t!(i18n, ai.trial_tokens, tokens = result.tokens.to_string())}</p>
                        </div>
                    }),
                    _ => None,
                }}
            </form>
    }
    .into_any();
    let history = view! {
            <div class="card versions">
                <h2>{t!(i18n, ai.versions)}</h2>
                {move || match versions.get() {
                    None => view! { <p class="loading">{t!(i18n, loading)}</p> }.into_any(),
                    Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => view! { <p class="empty-state">{t!(i18n, ai.no_versions)}</p> }.into_any(),
                    Some(Ok(list)) => {
                        let newest = list.first().map_or(0, |v| v.version);
                        view! {
                            <ul class="plain-list" data-testid="ai-versions">
                                {list.into_iter().map(|v| {
                                    let version = v.version;
                                    view! {
                                        <li data-testid="ai-version">
                                            <strong>{format!("v{version}")}</strong> " · " {v.note.clone()}
                                            <span class="small muted">" · " {v.changed_by.clone().unwrap_or_default()} " · " {format_time(v.changed_at.0)}</span>
                                            {(version != newest).then(|| view! {
                                                <button type="button" class="button-small" on:click=move |_| revert(version) data-testid="ai-revert">{t!(i18n, ai.revert)}</button>
                                            })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                }}
            </div>
    }
    .into_any();
    view! { <div class="ai-editor">{editor}{playground}{history}</div> }
}
