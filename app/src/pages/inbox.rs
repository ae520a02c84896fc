//! The shared inbox: the conversation list (filters, search, live updates, unread counts), the
//! open conversation (history, ticks, retries, the composer with canned responses and private
//! notes, typing both ways, who else is here) and the contact panel.
//!
//! Everything on this page is loaded in the browser and kept up to date by the live WebSocket
//! ([`crate::live`]): events change the lists in place, and a resync (first subscription, or a
//! gap in the kept history) loads them again.

use std::collections::HashMap;

use balas_domain::{
    Activity, Agent, AppError, Assignment, CannedResponse, Channel, ClientFrame, ConversationId, ConversationStatus,
    ConversationSummary, Direction, InboxFilter, Label, LabelId, LiveEvent, MAX_CAPTION_CHARS, Message, MessageStatus,
    MessageText, SenderKind, Timestamp, UserId,
};

use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::{
    assign, label_conversation, list_agents, list_canned, list_channels, list_labels, load_inbox, mark_read,
    older_messages, open_conversation, reply, retry_message, sandbox_enabled, set_conversation_ai, set_status,
    unread_total,
};
use crate::i18n::*;
use crate::live::{Notice, now_ms, on_live, send_frame};
use crate::media::{AttachButton, MediaView, attachment_of, file_problem};
use crate::pages::contacts::LabelChip;
use crate::pages::shell::use_me;
use crate::ui::{ErrorBanner, Typing, error_text, issue_text};

/// Newest activity first, as the server orders them.
fn sort(list: &mut [ConversationSummary]) {
    list.sort_by_key(|c| std::cmp::Reverse((c.last_message_at, c.id)));
}

fn contact_label(c: &ConversationSummary) -> String {
    c.contact_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| c.contact_phone.to_string())
}

/// A time as the user's clock shows it: "14:05" today, the date otherwise.
fn short_time(at: Timestamp, with_date: bool) -> String {
    #[cfg(feature = "hydrate")]
    {
        use web_sys::js_sys::Date;
        let date = Date::new(&wasm_bindgen::JsValue::from_f64(at.0 as f64));
        let today = Date::new_0();
        let same_day = date.to_date_string() == today.to_date_string();
        let time = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
        if same_day || !with_date { time } else { format!("{:02}/{:02} {time}", date.get_date(), date.get_month() + 1) }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = with_date;
        crate::ui::format_time(at.0)
    }
}

fn visible() -> bool {
    document().visibility_state() == web_sys::VisibilityState::Visible
}

/// The inbox's shared state: the list and what the list needs to show and filter it.
#[derive(Clone, Copy)]
struct Inbox {
    me: UserId,
    filter: RwSignal<InboxFilter>,
    list: RwSignal<Vec<ConversationSummary>>,
    more: RwSignal<bool>,
    loaded: RwSignal<bool>,
    error: RwSignal<Option<AppError>>,
    total_unread: RwSignal<i64>,
    /// The unread count of every conversation whose count is known, to keep the total right.
    unread: StoredValue<HashMap<ConversationId, i64>>,
    channels: RwSignal<Option<Vec<Channel>>>,
    agents: RwSignal<Vec<Agent>>,
    canned: RwSignal<Vec<CannedResponse>>,
    sandbox: RwSignal<bool>,
    /// The workspace's labels, to show and put on conversations.
    labels: RwSignal<Vec<Label>>,
    /// Bumped by every load of the list, so that a slow old answer cannot replace a newer one.
    generation: StoredValue<u64>,
}

impl Inbox {
    fn reload(self) {
        let generation = self.generation.get_value() + 1;
        self.generation.set_value(generation);
        let filter = self.filter.get_untracked();
        spawn_local(async move {
            let result = load_inbox(filter, None).await;
            if self.generation.try_get_value() != Some(generation) {
                return;
            }
            match result {
                Ok(page) => {
                    self.remember_unread(&page.conversations);
                    self.total_unread.set(page.total_unread);
                    self.list.set(page.conversations);
                    self.more.set(page.more);
                    self.error.set(None);
                }
                Err(error) => self.error.set(Some(error)),
            }
            self.loaded.set(true);
        });
    }

    fn load_more(self) {
        let Some(last) = self.list.with_untracked(|list| list.last().map(|c| (c.last_message_at.0, c.id.0))) else {
            return;
        };
        let generation = self.generation.get_value();
        let filter = self.filter.get_untracked();
        spawn_local(async move {
            let result = load_inbox(filter, Some(last)).await;
            if self.generation.try_get_value() != Some(generation) {
                return;
            }
            match result {
                Ok(page) => {
                    self.remember_unread(&page.conversations);
                    self.list.update(|list| {
                        for c in page.conversations {
                            if !list.iter().any(|x| x.id == c.id) {
                                list.push(c);
                            }
                        }
                        sort(list);
                    });
                    self.more.set(page.more);
                }
                Err(error) => self.error.set(Some(error)),
            }
        });
    }

    fn remember_unread(self, loaded: &[ConversationSummary]) {
        self.unread.update_value(|known| known.extend(loaded.iter().map(|c| (c.id, c.unread))));
    }

    fn refresh_total(self) {
        spawn_local(async move {
            if let Ok(total) = unread_total().await {
                self.total_unread.try_set(total);
            }
        });
    }

    /// A conversation is gone (merged into another): off the list, and its unread off the total.
    fn remove(self, id: ConversationId) {
        if let Some(old) = self.unread.with_value(|known| known.get(&id).copied()) {
            self.total_unread.update(|t| *t -= old);
            self.unread.update_value(|known| {
                known.remove(&id);
            });
        }
        self.list.update(|list| list.retain(|c| c.id != id));
    }

    /// A conversation changed (`inbound`: by a new customer message): keep the total unread
    /// right and the list in order, in the filter and without duplicates.
    fn apply(self, conversation: &ConversationSummary, inbound: Option<bool>) {
        let old = self.unread.with_value(|known| known.get(&conversation.id).copied());
        match (old, inbound) {
            (Some(old), _) => self.total_unread.update(|t| *t += conversation.unread - old),
            (None, Some(true)) => self.total_unread.update(|t| *t += 1),
            (None, Some(false)) => {}
            (None, None) => self.refresh_total(),
        }
        self.unread.update_value(|known| {
            known.insert(conversation.id, conversation.unread);
        });
        let matches = self.filter.with_untracked(|f| f.matches(conversation, self.me));
        let more = self.more.get_untracked();
        self.list.update(|list| {
            let at = list.iter().position(|c| c.id == conversation.id);
            if matches {
                let key = (conversation.last_message_at, conversation.id);
                let fits = !more || list.last().is_none_or(|last| key >= (last.last_message_at, last.id));
                match at {
                    Some(i) => list[i] = conversation.clone(),
                    None if fits => list.push(conversation.clone()),
                    None => return,
                }
                sort(list);
            } else if let Some(i) = at {
                list.remove(i);
            }
        });
    }

    /// The labels with these ids, as the workspace has them.
    fn labels_of(self, ids: &[LabelId]) -> Vec<Label> {
        self.labels.with(|all| all.iter().filter(|l| ids.contains(&l.id)).cloned().collect())
    }

    fn agent_name(self, id: Option<UserId>) -> Option<String> {
        let id = id?;
        self.agents.with(|agents| agents.iter().find(|a| a.id == id).map(|a| a.name.clone()))
    }

    fn channel_name(self, id: balas_domain::ChannelId) -> Option<String> {
        self.channels.with(|channels| channels.as_ref()?.iter().find(|c| c.id == id).map(|c| c.name.clone()))
    }
}

#[component]
pub fn InboxPage() -> impl IntoView {
    let i18n = use_i18n();
    let me = use_me();
    let admin = me.as_ref().is_some_and(|m| m.is_admin());
    let inbox = Inbox {
        me: me.map_or(UserId(0), |m| m.user_id),
        filter: RwSignal::new(InboxFilter { status: Some(ConversationStatus::Open), ..InboxFilter::default() }),
        list: RwSignal::new(Vec::new()),
        more: RwSignal::new(false),
        loaded: RwSignal::new(false),
        error: RwSignal::new(None),
        total_unread: RwSignal::new(0),
        unread: StoredValue::new(HashMap::new()),
        channels: RwSignal::new(None),
        agents: RwSignal::new(Vec::new()),
        canned: RwSignal::new(Vec::new()),
        sandbox: RwSignal::new(false),
        labels: RwSignal::new(Vec::new()),
        generation: StoredValue::new(0),
    };
    let params = use_params_map();
    let selected =
        Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok()).map(ConversationId)));

    // Load the list whenever the filter changes (and first thing, in the browser).
    Effect::new(move || {
        inbox.filter.track();
        inbox.reload();
    });
    Effect::new(move || {
        spawn_local(async move {
            if let Ok(channels) = list_channels().await {
                inbox.channels.set(Some(channels));
            }
        });
        spawn_local(async move {
            if let Ok(agents) = list_agents().await {
                inbox.agents.set(agents);
            }
        });
        spawn_local(async move {
            if let Ok(canned) = list_canned().await {
                inbox.canned.set(canned);
            }
        });
        spawn_local(async move {
            inbox.sandbox.set(sandbox_enabled().await == Ok(true));
        });
        spawn_local(async move {
            if let Ok(labels) = list_labels().await {
                inbox.labels.set(labels);
            }
        });
    });
    on_live(move |notice| match notice {
        Notice::Resync => inbox.reload(),
        Notice::Event(envelope) => match &envelope.event {
            LiveEvent::MessageNew { message, conversation } => {
                inbox.apply(conversation, Some(message.direction == Direction::Inbound && !message.note));
            }
            LiveEvent::ConversationUpdated { conversation } => inbox.apply(conversation, None),
            LiveEvent::ConversationRemoved { conversation_id, .. } => inbox.remove(*conversation_id),
            LiveEvent::ChannelState { channel_id, state, detail } => inbox.channels.update(|channels| {
                if let Some(c) = channels.iter_mut().flatten().find(|c| c.id == *channel_id) {
                    c.state = *state;
                    c.state_detail.clone_from(detail);
                }
            }),
            _ => {}
        },
    });

    // Keyboard: j/k (or Alt+↓/↑ anywhere, even while writing) move between conversations.
    let navigate = use_navigate();
    Effect::new(move || {
        let navigate = navigate.clone();
        let handle = window_event_listener(ev::keydown, move |event: web_sys::KeyboardEvent| {
            let in_field = event
                .target()
                .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
                .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
            let step = match event.key().as_str() {
                "ArrowDown" if event.alt_key() => 1,
                "ArrowUp" if event.alt_key() => -1,
                "j" if !in_field && !event.ctrl_key() && !event.meta_key() => 1,
                "k" if !in_field && !event.ctrl_key() && !event.meta_key() => -1,
                _ => return,
            };
            event.prevent_default();
            let target = inbox.list.with_untracked(|list| {
                let at = selected.get_untracked().and_then(|id| list.iter().position(|c| c.id == id));
                let next = match at {
                    Some(i) => i.checked_add_signed(step).filter(|n| *n < list.len()),
                    None => (!list.is_empty()).then_some(0),
                };
                next.map(|n| list[n].id)
            });
            if let Some(id) = target {
                navigate(&format!("/inbox/{id}"), NavigateOptions::default());
                // Keep the selected row in view.
                request_animation_frame(move || {
                    if let Ok(Some(row)) = document().query_selector(&format!("[data-conversation='{id}']")) {
                        row.scroll_into_view_with_bool(false);
                    }
                });
            }
        });
        on_cleanup(move || handle.remove());
    });

    let title = move || {
        let inbox_title = t_string!(i18n, nav.inbox).to_string();
        match inbox.total_unread.get() {
            0 => format!("{inbox_title} · Balas"),
            n => format!("({n}) {inbox_title} · Balas"),
        }
    };
    view! {
        <Title text=title />
        <div class="inbox" class:has-chat=move || selected.get().is_some()>
            <section class="conv-pane" aria-label=move || t_string!(i18n, nav.inbox).to_string()>
                <Filters inbox />
                <h1 class="visually-hidden">{t!(i18n, nav.inbox)}</h1>
                <p class="total-unread muted small" data-testid="total-unread" data-count=move || inbox.total_unread.get()>
                    {move || t_string!(i18n, inbox.unread, count = inbox.total_unread.get()).to_string()}
                </p>
                <ConversationList inbox selected admin />
            </section>
            <section class="chat-pane">
                {move || match selected.get() {
                    Some(id) => view! { <Chat id inbox /> }.into_any(),
                    None => view! { <p class="chat-empty muted">{t!(i18n, inbox.pick)}</p> }.into_any(),
                }}
            </section>
        </div>
    }
    .into_any()
}

#[component]
fn Filters(inbox: Inbox) -> impl IntoView {
    let i18n = use_i18n();
    let search_generation = StoredValue::new(0u64);
    let on_search = move |ev: ev::Event| {
        let value = event_target_value(&ev);
        let generation = search_generation.get_value() + 1;
        search_generation.set_value(generation);
        set_timeout(
            move || {
                if search_generation.try_get_value() == Some(generation) {
                    inbox.filter.try_update(|f| f.search = value);
                }
            },
            std::time::Duration::from_millis(250),
        );
    };
    let assignment_button = move |assignment: Assignment, label: Signal<String>| {
        view! {
            <button
                type="button"
                class="segment"
                aria-pressed=move || (inbox.filter.with(|f| f.assignment) == assignment).to_string()
                data-assignment=assignment.as_str()
                on:click=move |_| inbox.filter.update(|f| f.assignment = assignment)
            >
                {label}
            </button>
        }
    };
    let label = |f: fn(leptos_i18n::I18nContext<Locale>) -> String| Signal::derive(move || f(i18n));
    view! {
        <div class="filters" role="search">
            <input
                type="search"
                class="search"
                data-testid="inbox-search"
                maxlength="100"
                placeholder=move || t_string!(i18n, inbox.search).to_string()
                aria-label=move || t_string!(i18n, inbox.search_label).to_string()
                on:input=on_search
            />
            <div class="segmented" role="group">
                {assignment_button(Assignment::Mine, label(|i| t_string!(i, inbox.mine).to_string()))}
                {assignment_button(Assignment::Unassigned, label(|i| t_string!(i, inbox.unassigned).to_string()))}
                {assignment_button(Assignment::All, label(|i| t_string!(i, inbox.all).to_string()))}
            </div>
            <div class="filter-selects">
                <select
                    data-testid="status-filter"
                    aria-label=move || t_string!(i18n, inbox.status).to_string()
                    on:change=move |ev| {
                        let status = ConversationStatus::parse(&event_target_value(&ev));
                        inbox.filter.update(|f| f.status = status);
                    }
                >
                    <option value="">{t!(i18n, inbox.status_all)}</option>
                    <option value="open" selected=true>{t!(i18n, inbox.status_open)}</option>
                    <option value="pending">{t!(i18n, inbox.status_pending)}</option>
                    <option value="resolved">{t!(i18n, inbox.status_resolved)}</option>
                </select>
                <select
                    data-testid="channel-filter"
                    aria-label=move || t_string!(i18n, inbox.channel).to_string()
                    on:change=move |ev| {
                        let channel = event_target_value(&ev).parse().ok().map(balas_domain::ChannelId);
                        inbox.filter.update(|f| f.channel = channel);
                    }
                >
                    <option value="">{t!(i18n, inbox.channel_all)}</option>
                    {move || {
                        inbox
                            .channels
                            .get()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|c| view! { <option value=c.id.0>{c.name.clone()}</option> })
                            .collect_view()
                    }}
                </select>
                <Show when=move || inbox.labels.with(|l| !l.is_empty())>
                    <select
                        data-testid="inbox-label-filter"
                        aria-label=move || t_string!(i18n, inbox.label).to_string()
                        on:change=move |ev| {
                            let label = event_target_value(&ev).parse().ok().map(LabelId);
                            inbox.filter.update(|f| f.label = label);
                        }
                    >
                        <option value="">{t!(i18n, inbox.label_all)}</option>
                        {move || inbox.labels.get().into_iter().map(|l| view! { <option value=l.id.0.to_string()>{l.name.to_string()}</option> }).collect_view()}
                    </select>
                </Show>
            </div>
        </div>
    }
    .into_any()
}

#[component]
fn ConversationList(inbox: Inbox, selected: Memo<Option<ConversationId>>, admin: bool) -> impl IntoView {
    let i18n = use_i18n();
    let status_label = move |status: ConversationStatus| match status {
        ConversationStatus::Open => t_string!(i18n, inbox.status_open).to_string(),
        ConversationStatus::Pending => t_string!(i18n, inbox.status_pending).to_string(),
        ConversationStatus::Resolved => t_string!(i18n, inbox.status_resolved).to_string(),
    };
    let row = move |c: ConversationSummary| {
        let id = c.id;
        let name = contact_label(&c);
        let initial = name.chars().find(|ch| ch.is_alphanumeric()).map(|ch| ch.to_uppercase().to_string());
        let assignee = inbox.agent_name(c.assignee);
        let label_ids = c.labels.clone();
        view! {
            <li>
                <A
                    href=format!("/inbox/{id}")
                    attr:class=move || if selected.get() == Some(id) { "conv selected" } else { "conv" }
                    attr:data-conversation=id.0
                    attr:data-testid="conversation"
                    attr:data-unread=c.unread
                    attr:data-status=c.status.as_str()
                >
                    <span class="avatar" aria-hidden="true">{initial}</span>
                    <span class="conv-main">
                        <span class="conv-top">
                            <span class="conv-name">{name}</span>
                            <time class="muted small">{short_time(c.last_message_at, true)}</time>
                        </span>
                        <span class="conv-bottom">
                            <span class="conv-preview muted">{c.last_preview.clone().unwrap_or_default()}</span>
                            {(c.unread > 0).then(|| view! {
                                <span class="unread" data-testid="unread">{c.unread}</span>
                            })}
                        </span>
                        <span class="conv-tags small">
                            <span class=format!("chip chip-{}", c.status.as_str())>{status_label(c.status)}</span>
                            {move || inbox.labels_of(&label_ids).into_iter().map(|label| view! { <LabelChip label /> }).collect_view()}
                            {assignee.map(|a| view! { <span class="chip">{a}</span> })}
                            {inbox.channel_name(c.channel_id).map(|n| view! { <span class="muted">{n}</span> })}
                        </span>
                    </span>
                </A>
            </li>
        }
    };
    let is_default = move || {
        inbox.filter.with(|f| {
            f.search.trim().is_empty() && f.channel.is_none() && f.label.is_none() && f.assignment == Assignment::All
        })
    };
    view! {
        <div class="conv-scroll">
            {move || inbox.error.get().map(|error| view! { <ErrorBanner error /> })}
            {move || {
                let no_channels = inbox.channels.with(|c| c.as_ref().is_some_and(Vec::is_empty));
                let empty = inbox.loaded.get() && inbox.list.with(Vec::is_empty);
                match (no_channels, empty) {
                    (true, _) if admin => Some(view! {
                        <div class="empty-state" data-testid="inbox-empty">
                            <p>{t!(i18n, inbox.no_channels)}</p>
                            <A href="/channels">{t!(i18n, inbox.go_channels)}</A>
                        </div>
                    }.into_any()),
                    (true, _) => Some(view! {
                        <p class="empty-state" data-testid="inbox-empty">{t!(i18n, inbox.no_channels_agent)}</p>
                    }.into_any()),
                    (false, true) if is_default() => Some(view! {
                        <div class="empty-state" data-testid="inbox-empty">
                            <p>{t!(i18n, inbox.empty)}</p>
                            {move || inbox.sandbox.get().then(|| view! {
                                <a href="/phone" target="_blank">{t!(i18n, inbox.try_phone)}</a>
                            })}
                        </div>
                    }.into_any()),
                    (false, true) => Some(view! {
                        <p class="empty-state" data-testid="inbox-empty">{t!(i18n, inbox.empty_filtered)}</p>
                    }.into_any()),
                    _ => None,
                }
            }}
            <ul class="conv-list" data-testid="conversations">
                <For
                    each=move || inbox.list.get()
                    key=|c| (c.id, c.unread, c.last_message_at, c.status, c.assignee, c.last_preview.clone(), c.labels.clone())
                    children=row
                />
            </ul>
            <Show when=move || inbox.more.get()>
                <button type="button" class="link-button load-more" on:click=move |_| inbox.load_more()>
                    {t!(i18n, inbox.load_more)}
                </button>
            </Show>
        </div>
    }
    .into_any()
}

/// Another agent's presence in the open conversation.
#[derive(Clone, PartialEq)]
struct Presence {
    user: UserId,
    name: String,
    activity: Activity,
    until: Timestamp,
}

#[component]
fn Chat(id: ConversationId, inbox: Inbox) -> impl IntoView {
    let i18n = use_i18n();
    let navigate = use_navigate();
    let conversation = RwSignal::new(None::<ConversationSummary>);
    let channel = RwSignal::new(None::<Channel>);
    let others = RwSignal::new(Vec::<ConversationSummary>::new());
    let messages = RwSignal::new(Vec::<Message>::new());
    let more = RwSignal::new(false);
    let error = RwSignal::new(None::<AppError>);
    let customer_typing = RwSignal::new(false);
    let typing_generation = StoredValue::new(0u64);
    let presence = RwSignal::new(Vec::<Presence>::new());
    let clock = RwSignal::new(0f64);
    let show_contact = RwSignal::new(false);
    let scroller = NodeRef::<leptos::html::Div>::new();

    let to_bottom = move || {
        request_animation_frame(move || {
            if let Some(el) = scroller.get_untracked() {
                el.set_scroll_top(el.scroll_height());
            }
        });
    };
    let near_bottom = move || {
        scroller.get_untracked().is_none_or(|el| el.scroll_height() - el.scroll_top() - el.client_height() < 160)
    };
    let load = move || {
        spawn_local(async move {
            let opened = open_conversation(id.0).await;
            // Another conversation may have been opened meanwhile.
            if messages.is_disposed() {
                return;
            }
            match opened {
                Ok(view) => {
                    inbox.apply(&view.conversation, None);
                    conversation.set(Some(view.conversation));
                    channel.set(Some(view.channel));
                    others.set(view.other_conversations);
                    messages.set(view.messages);
                    more.set(view.more);
                    error.set(None);
                    to_bottom();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let add_message = move |message: Message| {
        let stick = near_bottom();
        messages.update(|list| {
            if !list.iter().any(|m| m.id == message.id) {
                list.push(message);
                list.sort_by_key(|m| m.id);
            }
        });
        if stick {
            to_bottom();
        }
    };
    let read_now = move || {
        spawn_local(async move {
            let _ = mark_read(id.0).await;
        });
    };
    Effect::new(load);

    // Tell the others that this agent is here, again before it expires, and when leaving.
    Effect::new(move || {
        let here = move || send_frame(&ClientFrame::Activity { conversation_id: id, activity: Activity::Viewing });
        here();
        // The clock expires others' presence; this agent's own is told again every 10 s.
        let ticks = StoredValue::new(0u32);
        let beat = set_interval_with_handle(
            move || {
                clock.set(now_ms());
                ticks.update_value(|t| *t += 1);
                if ticks.get_value().is_multiple_of(5) {
                    here();
                }
            },
            std::time::Duration::from_secs(2),
        )
        .ok();
        let focus = window_event_listener(ev::focus, move |_| {
            if conversation.with_untracked(|c| c.as_ref().is_some_and(|c| c.unread > 0)) {
                read_now();
            }
        });
        on_cleanup(move || {
            send_frame(&ClientFrame::Activity { conversation_id: id, activity: Activity::Left });
            if let Some(beat) = beat {
                beat.clear();
            }
            focus.remove();
        });
    });

    on_live(move |notice| match notice {
        Notice::Resync => load(),
        Notice::Event(envelope) => match &envelope.event {
            LiveEvent::MessageNew { message, conversation: summary } if summary.id == id => {
                conversation.set(Some((**summary).clone()));
                if message.direction == Direction::Inbound {
                    customer_typing.set(false);
                    if visible() {
                        read_now();
                    }
                }
                add_message((**message).clone());
            }
            LiveEvent::MessageStatus { message_id, conversation_id, status, error } if *conversation_id == id => {
                messages.update(|list| {
                    if let Some(m) = list.iter_mut().find(|m| m.id == *message_id) {
                        m.status = *status;
                        m.error.clone_from(error);
                    }
                });
            }
            LiveEvent::ConversationUpdated { conversation: summary } if summary.id == id => {
                conversation.set(Some((**summary).clone()));
            }
            // Merged into another conversation (its contact was merged): follow the messages there.
            LiveEvent::ConversationRemoved { conversation_id, into } if *conversation_id == id => {
                navigate(&format!("/inbox/{into}"), NavigateOptions { replace: true, ..NavigateOptions::default() });
            }
            LiveEvent::ConversationUpdated { conversation: summary } => others.update(|list| {
                if let Some(c) = list.iter_mut().find(|c| c.id == summary.id) {
                    *c = (**summary).clone();
                }
            }),
            LiveEvent::Typing { conversation_id, typing, .. } if *conversation_id == id => {
                customer_typing.set(*typing);
                let generation = typing_generation.get_value() + 1;
                typing_generation.set_value(generation);
                if *typing {
                    // WhatsApp repeats "typing" while it lasts; a lost "stopped" must not stick.
                    set_timeout(
                        move || {
                            if typing_generation.try_get_value() == Some(generation) {
                                customer_typing.try_set(false);
                            }
                        },
                        std::time::Duration::from_secs(8),
                    );
                }
            }
            LiveEvent::AgentActivity { conversation_id, user_id, name, activity, until }
                if *conversation_id == id && *user_id != inbox.me =>
            {
                presence.update(|list| {
                    list.retain(|p| p.user != *user_id);
                    if *activity != Activity::Left {
                        list.push(Presence { user: *user_id, name: name.clone(), activity: *activity, until: *until });
                    }
                });
                clock.set(now_ms());
            }
            _ => {}
        },
    });

    let load_older = move || {
        let Some(first) = messages.with_untracked(|list| list.first().map(|m| m.id)) else { return };
        spawn_local(async move {
            if let Ok(page) = older_messages(id.0, first.0).await
                && !messages.is_disposed()
            {
                // The browser keeps what is on screen in place when content is added above it.
                messages.update(|list| {
                    let mut older = page.messages;
                    older.retain(|m| !list.iter().any(|x| x.id == m.id));
                    older.append(list);
                    *list = older;
                });
                more.set(page.more);
            }
        });
    };
    let on_scroll = move |_| {
        if more.get_untracked() && scroller.get_untracked().is_some_and(|el| el.scroll_top() < 40) {
            more.set(false);
            load_older();
        }
    };

    let warning = move || {
        let now = clock.get();
        presence.with(|list| {
            let live: Vec<&Presence> = list.iter().filter(|p| p.until.0 as f64 > now - 1000.0).collect();
            if let Some(p) = live.iter().find(|p| p.activity == Activity::Typing) {
                Some(t_string!(i18n, inbox.agent_typing, name = p.name.clone()).to_string())
            } else {
                live.first().map(|p| t_string!(i18n, inbox.viewing, name = p.name.clone()).to_string())
            }
        })
    };

    view! {
        <div class="chat" class:show-contact=move || show_contact.get() data-testid="chat" data-conversation=id.0>
            {move || error.get().map(|error| view! {
                <div class="chat-error" data-testid="chat-error"><ErrorBanner error /></div>
            })}
            {move || conversation.get().map(|c| view! {
                <ChatHeader conversation=c inbox channel show_contact current=conversation />
            })}
            {move || warning().map(|text| view! {
                <p class="collision" role="status" data-testid="collision">{text}</p>
            })}
            <div class="messages" node_ref=scroller on:scroll=on_scroll data-testid="messages" aria-live="polite">
                <Show when=move || more.get()>
                    <button type="button" class="link-button older" on:click=move |_| load_older()>
                        {t!(i18n, inbox.older)}
                    </button>
                </Show>
                <For
                    each=move || messages.get()
                    key=|m| (m.id, m.status, m.error.clone())
                    children=move |m| view! { <Bubble message=m inbox conversation /> }
                />
                <Show when=move || customer_typing.get()>
                    <p class="typing" data-testid="customer-typing">{t!(i18n, inbox.customer_typing)}</p>
                </Show>
            </div>
            <Show when=move || conversation.with(Option::is_some)>
                <Composer id inbox add_message />
            </Show>
            {move || conversation.get().map(|c| view! { <ContactPanel conversation=c others channel /> })}
        </div>
    }
    .into_any()
}

#[component]
fn ChatHeader(
    conversation: ConversationSummary,
    inbox: Inbox,
    channel: RwSignal<Option<Channel>>,
    show_contact: RwSignal<bool>,
    current: RwSignal<Option<ConversationSummary>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let id = conversation.id;
    let problem = RwSignal::new(None::<String>);
    let report = move |result: Result<ConversationSummary, AppError>| match result {
        Ok(updated) => {
            problem.set(None);
            inbox.apply(&updated, None);
            let shown = current.with_untracked(|c| c.as_ref().map(|c| (c.labels.clone(), c.ai_paused)));
            if shown != Some((updated.labels.clone(), updated.ai_paused)) {
                current.set(Some(updated));
            }
        }
        Err(error) => problem.set(error_text(i18n, &error).or_else(|| Some(format!("{error}")))),
    };
    let on_status = move |ev: ev::Event| {
        let status = event_target_value(&ev);
        spawn_local(async move { report(set_status(id.0, status).await) });
    };
    let on_assign = move |ev: ev::Event| {
        let assignee = event_target_value(&ev).parse::<i64>().ok();
        spawn_local(async move { report(assign(id.0, assignee).await) });
    };
    let me = inbox.me;
    let conversation_labels = conversation.labels.clone();
    let mine = conversation.assignee == Some(me);
    let assignee = conversation.assignee;
    let status = conversation.status;
    let status_option = move |value: ConversationStatus, label: String| {
        view! { <option value=value.as_str() selected=status == value>{label}</option> }
    };
    view! {
        <header class="chat-head">
            <A href="/inbox" attr:class="back">"← " {t!(i18n, inbox.back)}</A>
            <div class="chat-title">
                <strong data-testid="chat-name">{contact_label(&conversation)}</strong>
                <span class="muted small">
                    {conversation.contact_phone.to_string()}
                    {move || channel.get().map(|c| format!(" · {}", c.name))}
                </span>
            </div>
            <div class="chat-actions">
                <label class="compact">
                    <span class="small muted">{t!(i18n, inbox.status)}</span>
                    <select data-testid="status-select" on:change=on_status>
                        {status_option(ConversationStatus::Open, t_string!(i18n, inbox.status_open).to_string())}
                        {status_option(ConversationStatus::Pending, t_string!(i18n, inbox.status_pending).to_string())}
                        {status_option(ConversationStatus::Resolved, t_string!(i18n, inbox.status_resolved).to_string())}
                    </select>
                </label>
                <label class="compact">
                    <span class="small muted">{t!(i18n, inbox.assignee)}</span>
                    <select data-testid="assignee-select" on:change=on_assign>
                        <option value="" selected=assignee.is_none()>{t!(i18n, inbox.nobody)}</option>
                        {move || inbox.agents.get().into_iter().map(|a| view! {
                            <option value=a.id.0 selected=assignee == Some(a.id)>{a.name.clone()}</option>
                        }).collect_view()}
                    </select>
                </label>
                {(!mine).then(|| view! {
                    <button
                        type="button"
                        class="button-small"
                        data-testid="assign-me"
                        on:click=move |_| spawn_local(async move { report(assign(id.0, Some(me.0)).await) })
                    >
                        {t!(i18n, inbox.assign_me)}
                    </button>
                })}
                {
                    let paused = conversation.ai_paused;
                    view! {
                        <button
                            type="button"
                            class="button-small"
                            data-testid="ai-toggle"
                            data-paused=paused.to_string()
                            title=move || if paused { t_string!(i18n, inbox.ai_paused_hint).to_string() } else { t_string!(i18n, inbox.ai_active_hint).to_string() }
                            on:click=move |_| spawn_local(async move { report(set_conversation_ai(id.0, !paused).await) })
                        >
                            {move || if paused { t_string!(i18n, inbox.ai_resume).to_string() } else { t_string!(i18n, inbox.ai_pause).to_string() }}
                        </button>
                    }
                }
                <button
                    type="button"
                    class="button-small contact-toggle"
                    aria-pressed=move || show_contact.get().to_string()
                    on:click=move |_| show_contact.update(|s| *s = !*s)
                >
                    {t!(i18n, inbox.contact)}
                </button>
            </div>
            <div class="chips chat-labels" data-testid="chat-labels">
                {move || inbox.labels_of(&conversation_labels).into_iter().map(|label| {
                    let label_id = label.id.0;
                    view! {
                        <span class="chip-with-remove">
                            <LabelChip label />
                            <button type="button" class="link-button" aria-label=move || t_string!(i18n, contacts.remove_label).to_string()
                                on:click=move |_| spawn_local(async move { report(label_conversation(id.0, label_id, false).await) })>"×"</button>
                        </span>
                    }
                }).collect_view()}
                <select class="compact" data-testid="chat-add-label" aria-label=move || t_string!(i18n, contacts.add_label).to_string()
                    on:change=move |ev| {
                        if let Ok(label) = event_target_value(&ev).parse::<i64>() {
                            spawn_local(async move { report(label_conversation(id.0, label, true).await) });
                        }
                    }>
                    <option value="" selected>{t!(i18n, inbox.add_label)}</option>
                    {move || inbox.labels.get().into_iter().filter(|l| !conversation.labels.contains(&l.id)).map(|l| view! {
                        <option value=l.id.0.to_string()>{l.name.to_string()}</option>
                    }).collect_view()}
                </select>
            </div>
            {move || problem.get().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
        </header>
    }
    .into_any()
}

#[component]
fn Bubble(message: Message, inbox: Inbox, conversation: RwSignal<Option<ConversationSummary>>) -> impl IntoView {
    let i18n = use_i18n();
    let sender = match (message.note, message.sender) {
        (_, SenderKind::Contact) => conversation
            .with_untracked(|c| c.as_ref().and_then(|c| c.contact_name.clone()))
            .unwrap_or_else(|| t_string!(i18n, inbox.customer).to_string()),
        (note, SenderKind::Agent) => {
            let name =
                inbox.agent_name(message.sender_user).unwrap_or_else(|| t_string!(i18n, inbox.agent).to_string());
            if note { format!("{} · {name}", t_string!(i18n, inbox.note)) } else { name }
        }
        (_, SenderKind::Ai) => t_string!(i18n, inbox.ai).to_string(),
        (_, SenderKind::Broadcast) => t_string!(i18n, inbox.broadcast).to_string(),
        (_, SenderKind::Api) => t_string!(i18n, inbox.api).to_string(),
        (_, SenderKind::System) => t_string!(i18n, inbox.system).to_string(),
    };
    let class = match (message.note, message.direction) {
        (true, _) => "bubble note",
        (false, Direction::Inbound) => "bubble inbound",
        (false, Direction::Outbound) => "bubble outbound",
    };
    let status_label = match message.status {
        MessageStatus::Queued => t_string!(i18n, inbox.st_queued).to_string(),
        MessageStatus::Sent => t_string!(i18n, inbox.st_sent).to_string(),
        MessageStatus::Delivered => t_string!(i18n, inbox.st_delivered).to_string(),
        MessageStatus::Read => t_string!(i18n, inbox.st_read).to_string(),
        MessageStatus::Failed => t_string!(i18n, inbox.st_failed).to_string(),
        MessageStatus::Received => String::new(),
    };
    let ticks = match message.status {
        MessageStatus::Queued => "🕓",
        MessageStatus::Sent => "✓",
        MessageStatus::Delivered | MessageStatus::Read => "✓✓",
        MessageStatus::Failed => "!",
        MessageStatus::Received => "",
    };
    let outbound = message.direction == Direction::Outbound && !message.note;
    let failed = message.status == MessageStatus::Failed;
    let id = message.id;
    let retrying = RwSignal::new(false);
    let on_retry = move |_| {
        retrying.set(true);
        spawn_local(async move {
            if retry_message(id.0).await.is_err() {
                retrying.set(false);
            }
        });
    };
    view! {
        <div
            class=class
            data-testid="message"
            data-message=message.id.0
            data-status=message.status.as_str()
            data-note=message.note.to_string()
        >
            <div class="bubble-sender small">
                {(message.sender == SenderKind::Ai).then(|| view! { <span class="badge badge-ai" data-testid="ai-badge">"AI"</span> " " })}
                {sender}
            </div>
            {message.media.clone().map(|media| {
                let url = format!("/media/{}/{}", message.workspace_id.0, media.name);
                view! { <MediaView media url /> }
            })}
            {(!message.body.is_empty()).then(|| view! { <div class="bubble-body">{message.body.clone()}</div> })}
            <div class="bubble-foot small">
                <time>{short_time(message.created_at, false)}</time>
                {outbound.then(|| view! {
                    <span
                        class=format!("ticks ticks-{}", message.status.as_str())
                        title=status_label.clone()
                        aria-label=status_label.clone()
                        data-testid="ticks"
                    >
                        {ticks}
                    </span>
                })}
            </div>
            {failed.then(|| view! {
                <div class="bubble-failed small" role="alert">
                    <span>{message.error.clone().unwrap_or_default()}</span>
                    <button type="button" class="link-button" disabled=move || retrying.get() on:click=on_retry>
                        {t!(i18n, inbox.retry)}
                    </button>
                </div>
            })}
        </div>
    }
    .into_any()
}

#[component]
fn Composer(
    id: ConversationId,
    inbox: Inbox,
    add_message: impl Fn(Message) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let text = RwSignal::new(String::new());
    let note = RwSignal::new(false);
    let sending = RwSignal::new(false);
    let problem = RwSignal::new(None::<String>);
    let pick = RwSignal::new(0usize);
    let area = NodeRef::<leptos::html::Textarea>::new();
    let attachment = RwSignal::new(None::<balas_domain::Media>);

    // "/" and a shortcut (no spaces yet): the canned responses that start with it.
    let shortcut = Memo::new(move |_| {
        text.with(|t| t.strip_prefix('/').filter(|rest| !rest.contains(char::is_whitespace)).map(str::to_lowercase))
    });
    let suggestions = Memo::new(move |_| {
        shortcut.get().map_or_else(Vec::new, |prefix| {
            inbox.canned.with(|all| all.iter().filter(|c| c.shortcut.as_str().starts_with(&prefix)).cloned().collect())
        })
    });
    let length = move || text.with(|t| t.chars().count());
    // Under a file the text is a caption, which WhatsApp keeps shorter.
    let max = move || if attachment.with(Option::is_some) { MAX_CAPTION_CHARS } else { MessageText::MAX_CHARS };
    let too_long = move || length() > max();
    let with_file = move || attachment.with(Option::is_some) && !note.get();
    let empty = move || text.with(|t| t.trim().is_empty()) && !with_file();

    // Other agents (and the customer, for replies) see the agent typing.
    let typing = Typing::new(move |typing: bool| {
        let activity = if typing { Activity::Typing } else { Activity::Idle };
        send_frame(&ClientFrame::Activity { conversation_id: id, activity });
    });
    let stop_typing = move || typing.stop();
    let on_input = move |ev: ev::Event| {
        text.set(event_target_value(&ev));
        pick.set(0);
        problem.set(None);
        typing.keystroke(!note.get_untracked());
    };
    let insert = move |canned: CannedResponse| {
        text.set(canned.body);
        pick.set(0);
        if let Some(area) = area.get_untracked() {
            let _ = area.focus();
        }
    };
    let submit = move || {
        if sending.get_untracked() || empty() {
            return;
        }
        if too_long() {
            let count = length();
            problem.set(Some(t_string!(i18n, inbox.too_long, count = count, max = max()).to_string()));
            return;
        }
        let body = text.get_untracked();
        let as_note = note.get_untracked();
        let file = if as_note { None } else { attachment.with_untracked(|a| a.as_ref().map(attachment_of)) };
        sending.set(true);
        spawn_local(async move {
            let outcome = reply(id.0, body, as_note, file).await;
            // The agent may have moved to another conversation meanwhile.
            if sending.try_set(false).is_some() {
                return;
            }
            match outcome {
                Ok(message) => {
                    text.set(String::new());
                    if message.media.is_some() {
                        attachment.set(None);
                    }
                    problem.set(None);
                    add_message(message);
                    stop_typing();
                }
                Err(error) => {
                    let field = error.field_errors(balas_domain::Field::Text).next().map(|e| issue_text(i18n, e.issue));
                    problem.set(field.or_else(|| Some(file_problem(i18n, &error))));
                }
            }
            if let Some(area) = area.get_untracked() {
                let _ = area.focus();
            }
        });
    };
    let on_keydown = move |ev: web_sys::KeyboardEvent| {
        let count = suggestions.with(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" | "ArrowUp" if count > 0 && !ev.alt_key() => {
                ev.prevent_default();
                let step = if ev.key() == "ArrowDown" { 1 } else { count - 1 };
                pick.update(|p| *p = (*p + step) % count);
            }
            "Enter" | "Tab" if count > 0 && !ev.shift_key() => {
                ev.prevent_default();
                if let Some(canned) = suggestions.with(|s| s.get(pick.get_untracked()).cloned()) {
                    insert(canned);
                }
            }
            "Escape" if count > 0 => text.set(String::new()),
            "Enter" if !ev.shift_key() && !ev.is_composing() => {
                ev.prevent_default();
                submit();
            }
            _ => {}
        }
    };
    let placeholder = move || {
        if note.get() {
            t_string!(i18n, inbox.note_placeholder).to_string()
        } else {
            t_string!(i18n, inbox.reply_placeholder).to_string()
        }
    };
    view! {
        <form class="composer" class:composer-note=move || note.get() on:submit=move |ev| { ev.prevent_default(); submit(); }>
            <div class="composer-tabs" role="tablist">
                <button type="button" role="tab" aria-selected=move || (!note.get()).to_string() on:click=move |_| note.set(false)>
                    {t!(i18n, inbox.reply_tab)}
                </button>
                <button type="button" role="tab" data-testid="note-tab" aria-selected=move || note.get().to_string() on:click=move |_| note.set(true)>
                    {t!(i18n, inbox.note_tab)}
                </button>
            </div>
            {move || {
                let list = suggestions.get();
                let prefix = shortcut.get();
                if list.is_empty() {
                    prefix.filter(|p| !p.is_empty()).map(|p| view! {
                        <p class="canned-none small muted">{t_string!(i18n, inbox.canned_none, shortcut = p).to_string()}</p>
                    }.into_any())
                } else {
                    Some(view! {
                        <ul class="canned" role="listbox" data-testid="canned">
                            {list.into_iter().enumerate().map(|(i, c)| {
                                let chosen = c.clone();
                                view! {
                                    <li
                                        role="option"
                                        aria-selected=move || (pick.get() == i).to_string()
                                        on:mousedown=move |ev| { ev.prevent_default(); insert(chosen.clone()); }
                                    >
                                        <strong>"/" {c.shortcut.to_string()}</strong>
                                        <span class="muted">{c.body.clone()}</span>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any())
                }
            }}
            <div class="composer-row">
                <Show when=move || !note.get()>
                    <AttachButton endpoint="/api/media" attachment problem disabled=Signal::derive(move || sending.get()) />
                </Show>
                <textarea
                    node_ref=area
                    rows="2"
                    data-testid="composer"
                    aria-label=placeholder
                    placeholder=placeholder
                    prop:value=move || text.get()
                    on:input=on_input
                    on:keydown=on_keydown
                    on:blur=move |_| stop_typing()
                ></textarea>
                <button type="submit" class="button primary send" disabled=move || sending.get() || empty()>
                    {move || if note.get() { t_string!(i18n, inbox.add_note).to_string() } else { t_string!(i18n, inbox.send).to_string() }}
                </button>
            </div>
            <div class="composer-foot small">
                {move || problem.get().map(|p| view! { <span class="field-error" role="alert" data-testid="composer-error">{p}</span> })}
                {move || (length() > max().saturating_sub(500)).then(|| view! {
                    <span class="counter" class:error=too_long>{format!("{}/{}", length(), max())}</span>
                })}
            </div>
        </form>
    }
    .into_any()
}

#[component]
fn ContactPanel(
    conversation: ConversationSummary,
    others: RwSignal<Vec<ConversationSummary>>,
    channel: RwSignal<Option<Channel>>,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <aside class="contact-panel" data-testid="contact-panel">
            <h2>{t!(i18n, inbox.contact)}</h2>
            <dl>
                <dt>{t!(i18n, channels.name)}</dt>
                <dd>{conversation.contact_name.clone().unwrap_or_else(|| "—".to_owned())}</dd>
                <dt>{t!(i18n, inbox.phone)}</dt>
                <dd>{conversation.contact_phone.to_string()}</dd>
                <dt>{t!(i18n, inbox.channel)}</dt>
                <dd>{move || channel.get().map(|c| format!("{} ({})", c.name, c.phone))}</dd>
                <dt>{t!(i18n, inbox.labels)}</dt>
                <dd class="muted small">{t!(i18n, inbox.no_labels)}</dd>
            </dl>
            <h3>{t!(i18n, inbox.other_conversations)}</h3>
            {move || {
                let list = others.get();
                if list.is_empty() {
                    view! { <p class="muted small">{t!(i18n, inbox.no_other)}</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain">
                            {list.into_iter().map(|c| view! {
                                <li>
                                    <A href=format!("/inbox/{}", c.id)>{c.last_preview.clone().unwrap_or_else(|| c.contact_phone.to_string())}</A>
                                    <span class="muted small">" · " {c.status.as_str()}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
        </aside>
    }
    .into_any()
}
