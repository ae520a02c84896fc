//! Broadcasts: the list with each one's progress; a wizard (channel → audience with its counts →
//! message with variables, previewed for real contacts → now or later); and a broadcast's page with
//! live progress, a chart of sends over time, the estimated finish, pause/resume/cancel, a retry of
//! the failed recipients and every recipient's result.

use std::collections::BTreeSet;

use balas_domain::{
    AppError, Attribute, Audience, AudiencePreview, BUILTIN_VARIABLES, Broadcast, BroadcastDraft, BroadcastRecipient,
    BroadcastStatus, Channel, ChannelId, Field, Label, LabelId, LiveEvent, MessageText, MissingRule, RecipientState,
    Segment, SendSeries, SkipReason, Timestamp, list_phones,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::{
    broadcast_detail, broadcast_recipients, cancel_broadcast, create_broadcast, list_attributes, list_broadcasts,
    list_channels, list_labels, list_segments, pause_broadcast, preview_broadcast, resume_broadcast, retry_broadcast,
};
use crate::i18n::*;
use crate::live::{Notice, on_live};
use crate::pages::shell::use_me;
use crate::ui::{ErrorBanner, error_text, format_time, issue_text};

fn status_text(i18n: leptos_i18n::I18nContext<Locale>, status: BroadcastStatus) -> String {
    match status {
        BroadcastStatus::Scheduled => t_string!(i18n, broadcasts.status_scheduled).to_string(),
        BroadcastStatus::Running => t_string!(i18n, broadcasts.status_running).to_string(),
        BroadcastStatus::Paused => t_string!(i18n, broadcasts.status_paused).to_string(),
        BroadcastStatus::Cancelled => t_string!(i18n, broadcasts.status_cancelled).to_string(),
        BroadcastStatus::Finished => t_string!(i18n, broadcasts.status_finished).to_string(),
    }
}

fn status_class(status: BroadcastStatus) -> &'static str {
    match status {
        BroadcastStatus::Running | BroadcastStatus::Finished => "status status-ok",
        BroadcastStatus::Paused | BroadcastStatus::Cancelled => "status status-down",
        BroadcastStatus::Scheduled => "status status-wait",
    }
}

fn state_text(i18n: leptos_i18n::I18nContext<Locale>, state: RecipientState) -> String {
    match state {
        RecipientState::Pending => t_string!(i18n, broadcasts.pending).to_string(),
        RecipientState::Queued => t_string!(i18n, broadcasts.queued).to_string(),
        RecipientState::Sent => t_string!(i18n, broadcasts.sent).to_string(),
        RecipientState::Delivered => t_string!(i18n, broadcasts.delivered).to_string(),
        RecipientState::Read => t_string!(i18n, broadcasts.read).to_string(),
        RecipientState::Failed => t_string!(i18n, broadcasts.failed).to_string(),
        RecipientState::Skipped => t_string!(i18n, broadcasts.skipped).to_string(),
        RecipientState::Cancelled => t_string!(i18n, broadcasts.cancelled).to_string(),
    }
}

fn skip_text(i18n: leptos_i18n::I18nContext<Locale>, reason: &SkipReason) -> String {
    match reason {
        SkipReason::OptedOut => t_string!(i18n, broadcasts.skip_opted_out).to_string(),
        SkipReason::InvalidNumber => t_string!(i18n, broadcasts.skip_invalid).to_string(),
        SkipReason::TooLong => t_string!(i18n, broadcasts.skip_too_long).to_string(),
        SkipReason::Missing { key } => t_string!(i18n, broadcasts.skip_missing, key = key.clone()).to_string(),
    }
}

/// A bar of `done` out of `total`.
#[component]
fn ProgressBar(done: i64, total: i64) -> impl IntoView {
    let percent = if total == 0 { 100 } else { done * 100 / total };
    view! {
        <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=percent data-testid="broadcast-progress">
            <div class="progress-fill" style=format!("width: {percent}%")></div>
        </div>
    }
}

#[component]
pub fn BroadcastsPage() -> impl IntoView {
    let i18n = use_i18n();
    let admin = use_me().is_some_and(|me| me.is_admin());
    let list = RwSignal::new(None::<Result<Vec<Broadcast>, AppError>>);
    let reload = move || {
        spawn_local(async move {
            list.try_set(Some(list_broadcasts().await));
        });
    };
    Effect::new(move |_| reload());
    on_live(move |notice| match notice {
        Notice::Event(envelope) => {
            if let LiveEvent::BroadcastUpdated { broadcast } = &envelope.event {
                let fresh = (**broadcast).clone();
                list.update(|l| {
                    if let Some(Ok(all)) = l {
                        match all.iter_mut().find(|b| b.id == fresh.id) {
                            Some(known) => *known = fresh,
                            None => all.insert(0, fresh),
                        }
                    }
                });
            }
        }
        Notice::Resync => reload(),
    });
    view! {
        <Title text=move || t_string!(i18n, nav.broadcasts).to_string() />
        <section class="page">
            <div class="page-head">
                <h1>{t!(i18n, nav.broadcasts)}</h1>
                {admin.then(|| view! {
                    <a class="button primary" href="/broadcasts/new" data-testid="new-broadcast">{t!(i18n, broadcasts.new_broadcast)}</a>
                })}
            </div>
            {move || match list.get() {
                None => view! { <p class="loading">{t!(i18n, loading)}</p> }.into_any(),
                Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                Some(Ok(all)) if all.is_empty() => view! {
                    <p class="empty-state" data-testid="broadcasts-empty">{t!(i18n, broadcasts.empty)}</p>
                }.into_any(),
                Some(Ok(all)) => view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="broadcast-list">
                            <thead><tr>
                                <th>{t!(i18n, broadcasts.name)}</th>
                                <th>{t!(i18n, broadcasts.status)}</th>
                                <th>{t!(i18n, broadcasts.progress)}</th>
                                <th>{t!(i18n, broadcasts.created)}</th>
                            </tr></thead>
                            <tbody>
                                {all.into_iter().map(|b| view! {
                                    <tr data-testid="broadcast-row">
                                        <td><a href=format!("/broadcasts/{}", b.id)>{b.name.to_string()}</a></td>
                                        <td><span class=status_class(b.status)>{status_text(i18n, b.status)}</span></td>
                                        <td class="progress-cell">
                                            <ProgressBar done=b.counts.done() total=b.counts.total />
                                            <span class="muted small">{t!(i18n, broadcasts.done_of, done = b.counts.done(), total = b.counts.total)}</span>
                                        </td>
                                        <td class="nowrap">{format_time(b.created_at.0)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

/// The audience choices of the wizard.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AudienceKind {
    All,
    Segment,
    Labels,
    List,
}

/// The field errors of an outcome for one field, as sentences.
fn field_issues(i18n: leptos_i18n::I18nContext<Locale>, error: Option<&AppError>, field: Field) -> Vec<String> {
    error.map(|e| e.field_errors(field).map(|f| issue_text(i18n, f.issue)).collect()).unwrap_or_default()
}

#[component]
fn Issues(messages: Vec<String>, testid: &'static str) -> impl IntoView {
    messages
        .into_iter()
        .map(|m| view! { <p class="field-error" role="alert" data-testid=testid>{m}</p> })
        .collect_view()
}

#[component]
pub fn NewBroadcastPage() -> impl IntoView {
    let i18n = use_i18n();
    let navigate = use_navigate();
    let step = RwSignal::new(1u8);
    let channels = RwSignal::new(Vec::<Channel>::new());
    let segments = RwSignal::new(Vec::<Segment>::new());
    let labels = RwSignal::new(Vec::<Label>::new());
    let attributes = RwSignal::new(Vec::<Attribute>::new());
    Effect::new(move |_| {
        spawn_local(async move {
            if let Ok(list) = list_channels().await {
                channels.try_set(list);
            }
            if let Ok(list) = list_segments().await {
                segments.try_set(list);
            }
            if let Ok(list) = list_labels().await {
                labels.try_set(list);
            }
            if let Ok(list) = list_attributes().await {
                attributes.try_set(list);
            }
        });
    });
    let name = RwSignal::new(String::new());
    let channel = RwSignal::new(None::<i64>);
    let kind = RwSignal::new(AudienceKind::All);
    let segment = RwSignal::new(None::<i64>);
    let chosen_labels = RwSignal::new(BTreeSet::<i64>::new());
    let list_text = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let fallback_on = RwSignal::new(false);
    let fallback = RwSignal::new(String::new());
    let later = RwSignal::new(false);
    let at = RwSignal::new(String::new());
    let preview = RwSignal::new(None::<Result<AudiencePreview, AppError>>);
    let created = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let generation = StoredValue::new(0u64);

    // The start time from the date-and-time field, in the browser's time zone.
    let send_at = move || -> Option<Timestamp> {
        if !later.get() {
            return None;
        }
        #[cfg(feature = "hydrate")]
        {
            let value = at.get();
            let millis = web_sys::js_sys::Date::new(&wasm_bindgen::JsValue::from_str(&value)).get_time();
            if millis.is_finite() {
                return Some(Timestamp(millis as i64));
            }
        }
        // An unreadable time: the server refuses one in the past.
        Some(Timestamp(0))
    };
    let draft = move || BroadcastDraft {
        name: name.get(),
        channel_id: ChannelId(channel.get().unwrap_or(0)),
        audience: match kind.get() {
            AudienceKind::All => Audience::All,
            AudienceKind::Segment => Audience::Segment { segment_id: segment.get().unwrap_or(0) },
            AudienceKind::Labels => Audience::Labels { labels: chosen_labels.get().into_iter().map(LabelId).collect() },
            AudienceKind::List => Audience::List { phones: list_phones(&list_text.get()) },
        },
        text: text.get(),
        missing: if fallback_on.get() { MissingRule::Fallback { text: fallback.get() } } else { MissingRule::Skip },
        send_at: send_at(),
    };
    // The counts and the preview follow the draft (the newest answer wins).
    Effect::new(move |_| {
        let current = draft();
        if step.get() < 2 {
            return;
        }
        let mine = generation.get_value() + 1;
        generation.set_value(mine);
        spawn_local(async move {
            let answer = preview_broadcast(current).await;
            if generation.get_value() == mine {
                preview.try_set(Some(answer));
            }
        });
    });
    let error = move || match preview.get() {
        Some(Err(error)) => Some(error),
        _ => created.get(),
    };
    let can_leave = move |from: u8| -> bool {
        match from {
            1 => !name.get().trim().is_empty() && channel.get().is_some(),
            2 => {
                matches!(preview.get(), Some(Ok(p)) if p.sendable() > 0)
                    || matches!(preview.get(), Some(Err(e)) if e.field_errors(Field::Audience).next().is_none()
                    && e.field_errors(Field::Name).next().is_none()
                    && e.field_errors(Field::Channel).next().is_none())
            }
            3 => !text.get().trim().is_empty() && matches!(preview.get(), Some(Ok(_))),
            _ => true,
        }
    };
    let insert = move |key: String| {
        text.update(|t| {
            if !t.is_empty() && !t.ends_with([' ', '\n']) {
                t.push(' ');
            }
            t.push_str(&format!("{{{{{key}}}}}"));
        });
    };
    let on_file = move |ev: leptos::ev::Event| {
        let _ = &ev;
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
            let Some(file) = input.files().and_then(|list| list.get(0)) else { return };
            let read = file.text();
            spawn_local(async move {
                if let Some(content) = wasm_bindgen_futures::JsFuture::from(read).await.ok().and_then(|t| t.as_string())
                {
                    list_text.try_set(content);
                }
            });
        }
    };
    let submit = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let current = draft();
        let navigate = navigate.clone();
        spawn_local(async move {
            match create_broadcast(current).await {
                Ok(broadcast) => navigate(&format!("/broadcasts/{}", broadcast.id), Default::default()),
                Err(error) => {
                    created.try_set(Some(error));
                    busy.try_set(false);
                }
            }
        });
    };
    let steps = [
        (1u8, t_string!(i18n, broadcasts.step_channel).to_string()),
        (2, t_string!(i18n, broadcasts.step_audience).to_string()),
        (3, t_string!(i18n, broadcasts.step_message).to_string()),
        (4, t_string!(i18n, broadcasts.step_send).to_string()),
    ];
    view! {
        <Title text=move || t_string!(i18n, broadcasts.new_broadcast).to_string() />
        <section class="page wizard" data-testid="broadcast-wizard">
            <h1>{t!(i18n, broadcasts.new_broadcast)}</h1>
            <ol class="steps">
                {steps.into_iter().map(|(n, label)| view! {
                    <li class:current=move || step.get() == n class:done=move || n < step.get()>{label}</li>
                }).collect_view()}
            </ol>
            {move || error().and_then(|e| error_text(i18n, &e)).map(|m| view! { <p class="banner banner-error" role="alert">{m}</p> })}
            <div class="card" hidden=move || step.get() != 1>
                <label for="broadcast-name">{t!(i18n, broadcasts.name)}</label>
                <input id="broadcast-name" data-testid="broadcast-name" maxlength="40" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                {move || view! { <Issues messages=field_issues(i18n, error().as_ref(), Field::Name) testid="name-error" /> }}
                <label for="broadcast-channel">{t!(i18n, broadcasts.channel)}</label>
                <select id="broadcast-channel" data-testid="broadcast-channel"
                    on:change=move |ev| channel.set(event_target_value(&ev).parse().ok())>
                    <option value="" selected=move || channel.get().is_none()>{t!(i18n, broadcasts.choose_channel)}</option>
                    {move || channels.get().into_iter().map(|c| {
                        let id = c.id.0;
                        view! { <option value=id.to_string() selected=move || channel.get() == Some(id)>{format!("{} ({})", c.name, c.phone)}</option> }
                    }).collect_view()}
                </select>
                {move || channels.with(|c| c.is_empty()).then(|| view! { <p class="hint">{t!(i18n, broadcasts.no_channels)}</p> })}
                <p class="hint">{t!(i18n, broadcasts.rate_hint)}</p>
            </div>
            <div class="card" hidden=move || step.get() != 2>
                <fieldset class="choices">
                    <legend>{t!(i18n, broadcasts.audience)}</legend>
                    <label><input type="radio" name="audience" data-testid="audience-all" prop:checked=move || kind.get() == AudienceKind::All
                        on:change=move |_| kind.set(AudienceKind::All) />{t!(i18n, broadcasts.audience_all)}</label>
                    <label><input type="radio" name="audience" data-testid="audience-segment" prop:checked=move || kind.get() == AudienceKind::Segment
                        on:change=move |_| kind.set(AudienceKind::Segment) />{t!(i18n, broadcasts.audience_segment)}</label>
                    <label><input type="radio" name="audience" data-testid="audience-labels" prop:checked=move || kind.get() == AudienceKind::Labels
                        on:change=move |_| kind.set(AudienceKind::Labels) />{t!(i18n, broadcasts.audience_labels)}</label>
                    <label><input type="radio" name="audience" data-testid="audience-list" prop:checked=move || kind.get() == AudienceKind::List
                        on:change=move |_| kind.set(AudienceKind::List) />{t!(i18n, broadcasts.audience_list)}</label>
                </fieldset>
                <Show when=move || kind.get() == AudienceKind::Segment>
                    <select data-testid="audience-segment-select" on:change=move |ev| segment.set(event_target_value(&ev).parse().ok())>
                        <option value="">{t!(i18n, broadcasts.choose_segment)}</option>
                        {move || segments.get().into_iter().map(|s| view! {
                            <option value=s.id.to_string() selected=segment.get_untracked() == Some(s.id)>{format!("{} ({})", s.name, s.contacts)}</option>
                        }).collect_view()}
                    </select>
                    {move || segments.with(|s| s.is_empty()).then(|| view! { <p class="hint">{t!(i18n, broadcasts.no_segments)}</p> })}
                </Show>
                <Show when=move || kind.get() == AudienceKind::Labels>
                    <div class="chips" data-testid="audience-label-choices">
                        {move || labels.get().into_iter().map(|l| {
                            let id = l.id.0;
                            view! {
                                <label class=format!("label-chip label-{}", l.color.as_str())>
                                    <input type="checkbox" prop:checked=move || chosen_labels.with(|c| c.contains(&id))
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            chosen_labels.update(|c| { if on { c.insert(id); } else { c.remove(&id); } });
                                        } />
                                    {l.name.to_string()}
                                </label>
                            }
                        }).collect_view()}
                    </div>
                </Show>
                <Show when=move || kind.get() == AudienceKind::List>
                    <label for="audience-list-text">{t!(i18n, broadcasts.list_label)}</label>
                    <textarea id="audience-list-text" data-testid="audience-list-text" rows="6" placeholder="+62 812 3456 7890"
                        prop:value=move || list_text.get() on:input=move |ev| list_text.set(event_target_value(&ev))></textarea>
                    <label class="upload">{t!(i18n, broadcasts.list_file)}
                        <input type="file" accept=".csv,.txt,text/csv,text/plain" on:change=on_file /></label>
                </Show>
                {move || view! { <Issues messages=field_issues(i18n, error().as_ref(), Field::Audience) testid="audience-error" /> }}
                {move || match preview.get() {
                    Some(Ok(p)) => view! {
                        <div class="audience-counts" data-testid="audience-counts">
                            <p><strong data-testid="audience-sendable">{p.sendable()}</strong>" "{t!(i18n, broadcasts.will_receive)}</p>
                            <p class="muted small">{t!(i18n, broadcasts.left_out, opted_out = p.opted_out, invalid = p.invalid, duplicates = p.duplicates)}</p>
                        </div>
                    }.into_any(),
                    _ => ().into_any(),
                }}
            </div>
            <div class="card" hidden=move || step.get() != 3>
                <label for="broadcast-text">{t!(i18n, broadcasts.message)}</label>
                <textarea id="broadcast-text" data-testid="broadcast-text" rows="6" prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                <p class="muted small counter">{move || format!("{} / {}", text.with(|t| t.chars().count()), MessageText::MAX_CHARS)}</p>
                <div class="chips" aria-label=move || t_string!(i18n, broadcasts.variables).to_string()>
                    <span class="muted small">{t!(i18n, broadcasts.variables)}</span>
                    {BUILTIN_VARIABLES.into_iter().map(|key| view! {
                        <button type="button" class="chip" on:click=move |_| insert(key.to_owned())>{format!("{{{{{key}}}}}")}</button>
                    }).collect_view()}
                    {move || attributes.get().into_iter().map(|a| {
                        let key = a.key.as_str().to_owned();
                        let shown = format!("{{{{{key}}}}}");
                        view! { <button type="button" class="chip" on:click=move |_| insert(key.clone())>{shown}</button> }
                    }).collect_view()}
                </div>
                <p class="hint">{t!(i18n, broadcasts.fallback_hint, example = "{{first_name|Customer}}")}</p>
                {move || view! { <Issues messages=field_issues(i18n, error().as_ref(), Field::Text) testid="text-error" /> }}
                <label class="check"><input type="checkbox" data-testid="fallback-on" prop:checked=move || fallback_on.get()
                    on:change=move |ev| fallback_on.set(event_target_checked(&ev)) />{t!(i18n, broadcasts.use_fallback)}</label>
                <Show when=move || fallback_on.get()>
                    <input data-testid="fallback-text" maxlength="100" prop:value=move || fallback.get()
                        on:input=move |ev| fallback.set(event_target_value(&ev)) />
                </Show>
                <Show when=move || !fallback_on.get()>
                    <p class="hint">{t!(i18n, broadcasts.skip_hint)}</p>
                </Show>
                {move || view! { <Issues messages=field_issues(i18n, error().as_ref(), Field::Fallback) testid="fallback-error" /> }}
                <h3>{t!(i18n, broadcasts.preview)}</h3>
                {move || match preview.get() {
                    Some(Ok(p)) if !p.samples.is_empty() && !text.with(|t| t.trim().is_empty()) => view! {
                        <ul class="plain previews" data-testid="broadcast-previews">
                            {p.samples.into_iter().map(|s| view! {
                                <li class="bubble">
                                    <span class="bubble-sender">{s.name.clone().unwrap_or_else(|| s.phone.clone())}</span>
                                    {match s.text {
                                        Ok(text) => view! { <p class="bubble-body" data-testid="broadcast-preview">{text}</p> }.into_any(),
                                        Err(reason) => view! { <p class="muted" data-testid="broadcast-preview-skip">{skip_text(i18n, &reason)}</p> }.into_any(),
                                    }}
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    _ => view! { <p class="muted small">{t!(i18n, broadcasts.preview_empty)}</p> }.into_any(),
                }}
            </div>
            <div class="card" hidden=move || step.get() != 4>
                <fieldset class="choices">
                    <legend>{t!(i18n, broadcasts.when)}</legend>
                    <label><input type="radio" name="when" data-testid="send-now" prop:checked=move || !later.get()
                        on:change=move |_| later.set(false) />{t!(i18n, broadcasts.send_now)}</label>
                    <label><input type="radio" name="when" data-testid="send-later" prop:checked=move || later.get()
                        on:change=move |_| later.set(true) />{t!(i18n, broadcasts.send_later)}</label>
                </fieldset>
                <Show when=move || later.get()>
                    <input type="datetime-local" data-testid="send-at" prop:value=move || at.get()
                        on:input=move |ev| at.set(event_target_value(&ev)) />
                </Show>
                {move || view! { <Issues messages=field_issues(i18n, error().as_ref(), Field::Schedule) testid="schedule-error" /> }}
                {move || match preview.get() {
                    Some(Ok(p)) => view! {
                        <p data-testid="broadcast-summary">{t!(i18n, broadcasts.summary, count = p.sendable(), name = name.get())}</p>
                    }.into_any(),
                    _ => ().into_any(),
                }}
                <p class="hint">{t!(i18n, broadcasts.safety_hint)}</p>
                <button type="button" class="button primary" data-testid="broadcast-send" disabled=move || busy.get() on:click=submit>
                    {move || if later.get() { t_string!(i18n, broadcasts.schedule).to_string() } else { t_string!(i18n, broadcasts.send).to_string() }}
                </button>
            </div>
            <div class="wizard-nav">
                <button type="button" class="button" data-testid="wizard-back" disabled=move || step.get() == 1
                    on:click=move |_| step.update(|s| *s = s.saturating_sub(1).max(1))>{t!(i18n, broadcasts.back)}</button>
                <Show when=move || step.get() < 4>
                    <button type="button" class="button primary" data-testid="wizard-next" disabled=move || !can_leave(step.get())
                        on:click=move |_| { created.set(None); step.update(|s| *s += 1) }>{t!(i18n, broadcasts.next)}</button>
                </Show>
            </div>
        </section>
    }
}

/// Bars of sends per interval, for a broadcast's page.
#[component]
fn SendChart(series: SendSeries) -> impl IntoView {
    let i18n = use_i18n();
    let max = series.counts.iter().copied().max().unwrap_or(0).max(1);
    let bars = series.counts.len().max(1);
    let width = 100.0 / bars as f64;
    let seconds = series.bucket_ms / 1000;
    view! {
        <figure class="chart" data-testid="send-chart">
            <svg viewBox="0 0 100 40" preserveAspectRatio="none" role="img"
                aria-label=move || t_string!(i18n, broadcasts.chart, seconds = seconds).to_string()>
                {series.counts.iter().enumerate().map(|(i, n)| {
                    let height = *n as f64 * 38.0 / max as f64;
                    view! {
                        <rect x=format!("{:.2}", i as f64 * width) y=format!("{:.2}", 40.0 - height)
                            width=format!("{:.2}", (width - 0.3).max(0.1)) height=format!("{height:.2}")>
                            <title>{n.to_string()}</title>
                        </rect>
                    }
                }).collect_view()}
            </svg>
            <figcaption class="muted small">{t!(i18n, broadcasts.chart, seconds = seconds)}</figcaption>
        </figure>
    }
}

#[component]
pub fn BroadcastPage() -> impl IntoView {
    let i18n = use_i18n();
    let admin = use_me().is_some_and(|me| me.is_admin());
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0));
    let detail = RwSignal::new(None::<Result<(Broadcast, SendSeries), AppError>>);
    let channel_rate = RwSignal::new(None::<u32>);
    let only = RwSignal::new(None::<RecipientState>);
    let page = RwSignal::new(0u32);
    let rows = RwSignal::new(None::<Result<Vec<BroadcastRecipient>, AppError>>);
    let notice = RwSignal::new(None::<String>);
    let reload = move || {
        let id = id();
        spawn_local(async move {
            let fresh = broadcast_detail(id).await;
            if let Ok((b, _)) = &fresh
                && channel_rate.get_untracked().is_none()
                && let Ok(channels) = list_channels().await
            {
                channel_rate.try_set(channels.iter().find(|c| c.id == b.channel_id).map(|c| c.rate.get()));
            }
            detail.try_set(Some(fresh));
        });
    };
    let load_rows = move || {
        let (id, state, page) = (id(), only.get_untracked(), page.get_untracked());
        spawn_local(async move {
            rows.try_set(Some(broadcast_recipients(id, state, page).await));
        });
    };
    Effect::new(move |_| {
        id();
        reload();
    });
    Effect::new(move |_| {
        id();
        only.track();
        page.track();
        load_rows();
    });
    // Live: every update of this broadcast; and, as receipts come in after it ends, a look every
    // few seconds while the page is open.
    on_live(move |notice| match notice {
        Notice::Event(envelope) => {
            if let LiveEvent::BroadcastUpdated { broadcast } = &envelope.event
                && broadcast.id.0 == id()
            {
                reload();
            }
        }
        Notice::Resync => reload(),
    });
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(reload, std::time::Duration::from_secs(5)) {
            on_cleanup(move || handle.clear());
        }
    });
    let act = move |what: &'static str| {
        let id = id();
        spawn_local(async move {
            let done = match what {
                "pause" => pause_broadcast(id).await.map(|_| None),
                "resume" => resume_broadcast(id).await.map(|_| None),
                "cancel" => cancel_broadcast(id).await.map(|_| None),
                _ => retry_broadcast(id).await.map(Some),
            };
            match done {
                Ok(Some(n)) => {
                    notice.try_set(Some(t_string!(i18n, broadcasts.retried, count = n).to_string()));
                }
                Ok(None) => {
                    notice.try_set(None);
                }
                Err(error) => {
                    let field = error.field_errors(Field::Status).next().map(|e| issue_text(i18n, e.issue));
                    notice.try_set(field.or_else(|| error_text(i18n, &error)));
                }
            }
            reload();
            load_rows();
        });
    };
    let confirm_cancel = move |_| {
        if window().confirm_with_message(t_string!(i18n, broadcasts.cancel_confirm)).unwrap_or(false) {
            act("cancel");
        }
    };
    let states = [
        None,
        Some(RecipientState::Failed),
        Some(RecipientState::Skipped),
        Some(RecipientState::Pending),
        Some(RecipientState::Queued),
        Some(RecipientState::Sent),
        Some(RecipientState::Delivered),
        Some(RecipientState::Read),
        Some(RecipientState::Cancelled),
    ];
    view! {
        <section class="page broadcast-page">
            <p><a href="/broadcasts">{t!(i18n, broadcasts.all)}</a></p>
            {move || match detail.get() {
                None => view! { <p class="loading">{t!(i18n, loading)}</p> }.into_any(),
                Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                Some(Ok((b, series))) => {
                    let c = b.counts;
                    let remaining = c.pending + c.queued;
                    let eta = channel_rate.get().filter(|_| b.status == BroadcastStatus::Running && remaining > 0)
                        .map(|rate| {
                            let seconds = remaining / i64::from(rate.max(1));
                            if seconds < 90 {
                                t_string!(i18n, broadcasts.eta_seconds, seconds = seconds.max(1)).to_string()
                            } else {
                                t_string!(i18n, broadcasts.eta_minutes, minutes = (seconds + 59) / 60).to_string()
                            }
                        });
                    let status = b.status;
                    let counts = [
                        (t_string!(i18n, broadcasts.pending).to_string(), c.pending, "pending"),
                        (t_string!(i18n, broadcasts.queued).to_string(), c.queued, "queued"),
                        (t_string!(i18n, broadcasts.sent).to_string(), c.sent, "sent"),
                        (t_string!(i18n, broadcasts.delivered).to_string(), c.delivered, "delivered"),
                        (t_string!(i18n, broadcasts.read).to_string(), c.read, "read"),
                        (t_string!(i18n, broadcasts.failed).to_string(), c.failed, "failed"),
                        (t_string!(i18n, broadcasts.skipped).to_string(), c.skipped, "skipped"),
                        (t_string!(i18n, broadcasts.cancelled).to_string(), c.cancelled, "cancelled"),
                    ];
                    view! {
                        <Title text=b.name.to_string() />
                        <div class="page-head">
                            <h1>{b.name.to_string()}" "<span class=status_class(status) data-testid="broadcast-status">{status_text(i18n, status)}</span></h1>
                        </div>
                        {b.paused_reason.clone().map(|r| view! { <p class="banner banner-warn" role="status" data-testid="broadcast-paused-reason">{r}</p> })}
                        {b.waiting.clone().map(|r| view! { <p class="banner banner-warn" role="status" data-testid="broadcast-waiting">{r}</p> })}
                        {(status == BroadcastStatus::Scheduled).then(|| view! {
                            <p class="muted">{t!(i18n, broadcasts.starts_at, at = format_time(b.send_at.0))}</p>
                        })}
                        <div class="card">
                            <ProgressBar done=c.done() total=c.total />
                            <p data-testid="broadcast-done">{t!(i18n, broadcasts.done_of, done = c.done(), total = c.total)}" ("{c.percent()}"%)"
                                {eta.map(|e| view! { " · "<span data-testid="broadcast-eta">{e}</span> })}</p>
                            <dl class="counts" data-testid="broadcast-counts">
                                {counts.into_iter().map(|(label, n, key)| view! {
                                    <div><dt>{label}</dt><dd data-testid=format!("count-{key}")>{n}</dd></div>
                                }).collect_view()}
                            </dl>
                            {(b.duplicates > 0).then(|| view! { <p class="muted small">{t!(i18n, broadcasts.duplicates, count = b.duplicates)}</p> })}
                            {admin.then(|| view! {
                                <div class="row-actions">
                                    {matches!(status, BroadcastStatus::Running | BroadcastStatus::Scheduled).then(|| view! {
                                        <button type="button" class="button" data-testid="broadcast-pause" on:click=move |_| act("pause")>{t!(i18n, broadcasts.pause)}</button>
                                    })}
                                    {(status == BroadcastStatus::Paused).then(|| view! {
                                        <button type="button" class="button primary" data-testid="broadcast-resume" on:click=move |_| act("resume")>{t!(i18n, broadcasts.resume)}</button>
                                    })}
                                    {(!status.is_over()).then(|| view! {
                                        <button type="button" class="button danger" data-testid="broadcast-cancel" on:click=confirm_cancel>{t!(i18n, broadcasts.cancel)}</button>
                                    })}
                                    {(c.failed > 0 && status != BroadcastStatus::Cancelled).then(|| view! {
                                        <button type="button" class="button" data-testid="broadcast-retry" on:click=move |_| act("retry")>{t!(i18n, broadcasts.retry, count = c.failed)}</button>
                                    })}
                                </div>
                            })}
                            {move || notice.get().map(|n| view! { <p class="notice" role="status" data-testid="broadcast-notice">{n}</p> })}
                        </div>
                        <div class="card">
                            <h2>{t!(i18n, broadcasts.sends_over_time)}</h2>
                            {if series.counts.is_empty() {
                                view! { <p class="muted">{t!(i18n, broadcasts.chart_empty)}</p> }.into_any()
                            } else {
                                view! { <SendChart series /> }.into_any()
                            }}
                        </div>
                        <div class="card">
                            <h2>{t!(i18n, broadcasts.message)}</h2>
                            <p class="bubble-body pre">{b.text.clone()}</p>
                        </div>
                    }.into_any()
                }
            }}
            <div class="card">
                <div class="page-head">
                    <h2>{t!(i18n, broadcasts.recipients)}</h2>
                    <select data-testid="recipient-filter" on:change=move |ev| {
                        let i: usize = event_target_value(&ev).parse().unwrap_or(0);
                        page.set(0);
                        only.set(states.get(i).copied().flatten());
                    }>
                        {states.into_iter().enumerate().map(|(i, s)| view! {
                            <option value=i.to_string()>{s.map_or_else(|| t_string!(i18n, broadcasts.every_state).to_string(), |s| state_text(i18n, s))}</option>
                        }).collect_view()}
                    </select>
                </div>
                {move || match rows.get() {
                    None => view! { <p class="loading">{t!(i18n, loading)}</p> }.into_any(),
                    Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => view! { <p class="muted" data-testid="recipients-empty">{t!(i18n, broadcasts.no_recipients)}</p> }.into_any(),
                    Some(Ok(list)) => {
                        let full = list.len() as u32 == balas_domain::BROADCAST_RECIPIENT_PAGE;
                        view! {
                            <div class="table-wrap">
                                <table class="table" data-testid="recipient-list">
                                    <thead><tr>
                                        <th>{t!(i18n, broadcasts.phone)}</th>
                                        <th>{t!(i18n, broadcasts.name)}</th>
                                        <th>{t!(i18n, broadcasts.status)}</th>
                                    </tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|r| {
                                            let why = r.skipped.as_ref().map(|s| skip_text(i18n, s)).or(r.error.clone());
                                            view! {
                                                <tr data-testid="recipient-row">
                                                    <td class="nowrap">{r.phone.clone()}</td>
                                                    <td>{r.name.clone().unwrap_or_default()}</td>
                                                    <td>{state_text(i18n, r.state)}{why.map(|w| view! { <span class="muted small">" · "{w}</span> })}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <div class="pager">
                                <button type="button" class="button button-small" disabled=move || page.get() == 0
                                    on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>{t!(i18n, broadcasts.previous_page)}</button>
                                <button type="button" class="button button-small" disabled=!full
                                    on:click=move |_| page.update(|p| *p += 1)>{t!(i18n, broadcasts.next_page)}</button>
                            </div>
                        }.into_any()
                    }
                }}
            </div>
        </section>
    }
}
