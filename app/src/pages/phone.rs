//! The customer-phone page (`/phone`, only with the sandbox enabled): play a customer on the
//! simulated WhatsApp network. Pick a number and a sandbox channel, then chat as on a phone:
//! bubbles, ticks for your messages, the agent's "typing…", and read receipts sent as you read.
//!
//! The page listens to the phone's inbox as server-sent events (`/sandbox/api/phones/…/events`),
//! which the browser resumes by itself after a drop.

use std::collections::HashSet;

use balas_domain::{Media, PhoneNumber, ReceiptKind, SandboxChannel, SandboxPacket, Timestamp};
use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::{phone_channels, phone_read, phone_send, phone_typing};
use crate::i18n::*;
use crate::media::{AttachButton, MediaView, attachment_of, file_problem};
use crate::ui::{ErrorBanner, LanguageSelect, Typing, issue_text};

/// One message in the phone's chat with a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    wa_id: String,
    mine: bool,
    text: String,
    media: Option<Media>,
    at: Timestamp,
    receipt: Option<ReceiptKind>,
}

#[component]
pub fn PhonePage() -> impl IntoView {
    let i18n = use_i18n();
    let query = use_query_map();
    let chat = Memo::new(move |_| {
        query.with(|q| {
            let me = PhoneNumber::parse(&q.get("me")?).ok()?;
            let to = PhoneNumber::parse(&q.get("to")?).ok()?;
            Some((me, to))
        })
    });
    view! {
        <Title text=move || format!("{} · Balas", t_string!(i18n, phone.title)) />
        <main class="phone-page">
            <div class="phone-top">
                <span class="brand">"Balas"</span>
                <span class="muted">{t!(i18n, phone.title)}</span>
                <LanguageSelect />
            </div>
            {move || match chat.get() {
                Some((me, to)) => view! { <PhoneChat me to /> }.into_any(),
                None => view! { <PhoneSetup /> }.into_any(),
            }}
        </main>
    }
    .into_any()
}

#[component]
fn PhoneSetup() -> impl IntoView {
    let i18n = use_i18n();
    let channels = RwSignal::new(None::<Result<Vec<SandboxChannel>, balas_domain::AppError>>);
    Effect::new(move || spawn_local(async move { channels.set(Some(phone_channels().await)) }));
    let me = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    // A number of the customer's own, made up in the browser (and kept for the next visit).
    Effect::new(move || {
        let storage = window().local_storage().ok().flatten();
        let saved = storage.as_ref().and_then(|s| s.get_item("balas-phone").ok().flatten());
        me.set(saved.unwrap_or_else(|| {
            let digits = (web_sys::js_sys::Math::random() * 1e8) as u64;
            format!("+62813{digits:08}")
        }));
    });
    let navigate = use_navigate();
    let open = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        match (PhoneNumber::parse(&me.get_untracked()), PhoneNumber::parse(&to.get_untracked())) {
            (Ok(number), Ok(channel)) => {
                if let Ok(Some(storage)) = window().local_storage() {
                    let _ = storage.set_item("balas-phone", number.as_str());
                }
                navigate(&format!("/phone?me={}&to={}", number.digits(), channel.digits()), Default::default());
            }
            (Err(error), _) | (_, Err(error)) => problem.set(Some(issue_text(i18n, error.issue))),
        }
    };
    view! {
        <section class="card phone-setup">
            <h1>{t!(i18n, phone.title)}</h1>
            <p class="muted">{t!(i18n, phone.intro)}</p>
                {move || { let open = open.clone();
                    match channels.get() {
                        None => view! { <p>{t!(i18n, loading)}</p> }.into_any(),
                        Some(Err(balas_domain::AppError::NotFound)) => view! {

                            <p class="empty-state" data-testid="phone-disabled">{t!(i18n, phone.disabled)}</p>
                        }.into_any(),
                        Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                        Some(Ok(list)) if list.is_empty() => view! {
                            <p class="empty-state" data-testid="phone-no-channels">{t!(i18n, phone.no_channels)}</p>
                        }.into_any(),
                        Some(Ok(list)) => {
                            if to.get_untracked().is_empty()
                                && let Some(first) = list.first()
                            {
                                to.set(first.phone.to_string());
                            }
                            view! {
                                <form class="form" on:submit=open novalidate>
                                    <label for="phone_me">{t!(i18n, phone.me)}</label>
                                    <input id="phone_me" inputmode="tel" autocomplete="off" prop:value=move || me.get()
                                        on:input=move |ev| me.set(event_target_value(&ev)) />
                                    <label for="phone_to">{t!(i18n, phone.to)}</label>
                                    <select id="phone_to" on:change=move |ev| to.set(event_target_value(&ev))>
                                        {list.into_iter().map(|c: SandboxChannel| {
                                            let value = c.phone.to_string();
                                            let selected = to.get_untracked() == value;
                                            view! { <option value=value selected=selected>{format!("{} ({})", c.name, c.phone)}</option> }
                                        }).collect_view()}
                                    </select>
                                    {move || problem.get().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
                                    <button type="submit" class="primary">{t!(i18n, phone.open)}</button>
                                </form>
                            }.into_any()
                        }
                    }
                }}
        </section>
    }
    .into_any()
}

#[component]
fn PhoneChat(me: PhoneNumber, to: PhoneNumber) -> impl IntoView {
    let i18n = use_i18n();
    let (me_text, to_text) = (me.to_string(), to.to_string());
    let me = StoredValue::new(me);
    let to = StoredValue::new(to);
    let lines = RwSignal::new(Vec::<Line>::new());
    let agent_typing = RwSignal::new(false);
    let typing_generation = StoredValue::new(0u64);
    let text = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let attachment = RwSignal::new(None::<Media>);
    let read_sent = StoredValue::new(HashSet::<String>::new());
    let scroller = NodeRef::<leptos::html::Div>::new();
    let channel_name = RwSignal::new(None::<String>);
    Effect::new(move || {
        let to = to.get_value();
        spawn_local(async move {
            let found = phone_channels().await.ok().and_then(|list| list.into_iter().find(|c| c.phone == to));
            channel_name.set(found.map(|c| c.name));
        });
    });

    // Reads what the channel sent (blue ticks for the agent) while the page is in view.
    let read_all = move || {
        if document().visibility_state() != web_sys::VisibilityState::Visible {
            return;
        }
        let unread: Vec<String> = lines.with_untracked(|all| {
            read_sent.with_value(|sent| {
                all.iter().filter(|l| !l.mine && !sent.contains(&l.wa_id)).map(|l| l.wa_id.clone()).collect()
            })
        });
        if unread.is_empty() {
            return;
        }
        read_sent.update_value(|sent| sent.extend(unread.iter().cloned()));
        let (reader, sender) = (me.get_value().to_string(), to.get_value().to_string());
        spawn_local(async move {
            let _ = phone_read(reader, sender, unread).await;
        });
    };
    let to_bottom = move || {
        request_animation_frame(move || {
            if let Some(el) = scroller.get_untracked() {
                el.set_scroll_top(el.scroll_height());
            }
        });
    };

    Effect::new(move || {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let url = format!("/sandbox/api/phones/{}/events", me.get_value().digits());
        let Ok(source) = web_sys::EventSource::new(&url) else { return };
        let channel = to.get_value();
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(data) = event.data().as_string() else { return };
            let Ok(packet) = serde_json::from_str::<SandboxPacket>(&data) else { return };
            match packet {
                SandboxPacket::Sent { wa_id, to, text, media, at } if to == channel => {
                    lines.update(|all| {
                        if !all.iter().any(|l| l.wa_id == wa_id) {
                            all.push(Line { wa_id, mine: true, text, media, at, receipt: None });
                        }
                    });
                    to_bottom();
                }
                SandboxPacket::Message { wa_id, from, text, media, at, .. } if from == channel => {
                    agent_typing.set(false);
                    lines.update(|all| {
                        if !all.iter().any(|l| l.wa_id == wa_id) {
                            all.push(Line { wa_id, mine: false, text, media, at, receipt: None });
                        }
                    });
                    to_bottom();
                    read_all();
                }
                SandboxPacket::Receipt { wa_id, from, receipt, .. } if from == channel => lines.update(|all| {
                    if let Some(line) = all.iter_mut().find(|l| l.wa_id == wa_id)
                        && line.receipt != Some(ReceiptKind::Read)
                    {
                        line.receipt = Some(receipt);
                    }
                }),
                SandboxPacket::Typing { from, typing, .. } if from == channel => {
                    agent_typing.set(typing);
                    let generation = typing_generation.get_value() + 1;
                    typing_generation.set_value(generation);
                    if typing {
                        set_timeout(
                            move || {
                                if typing_generation.try_get_value() == Some(generation) {
                                    agent_typing.try_set(false);
                                }
                            },
                            std::time::Duration::from_secs(8),
                        );
                    }
                }
                _ => {}
            }
        });
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let focus = window_event_listener(ev::focus, move |_| read_all());
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || {
            source.close();
            focus.remove();
        });
    });

    let tell_typing = move |typing: bool| {
        let (from, to) = (me.get_value().to_string(), to.get_value().to_string());
        spawn_local(async move {
            let _ = phone_typing(from, to, typing).await;
        });
    };
    let typing = Typing::new(tell_typing);
    let stop_typing = move || typing.stop();
    let on_input = move |ev: ev::Event| {
        text.set(event_target_value(&ev));
        problem.set(None);
        typing.keystroke(true);
    };
    let send = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked();
        let file = attachment.get_untracked();
        if body.trim().is_empty() && file.is_none() {
            return;
        }
        let (from, to) = (me.get_value().to_string(), to.get_value().to_string());
        text.set(String::new());
        attachment.set(None);
        stop_typing();
        spawn_local(async move {
            if let Err(error) = phone_send(from, to, body.clone(), file.as_ref().map(attachment_of)).await {
                text.set(body);
                attachment.set(file);
                let field = error.field_errors(balas_domain::Field::Text).next().map(|e| issue_text(i18n, e.issue));
                problem.set(field.or_else(|| Some(file_problem(i18n, &error))));
            }
        });
    };
    let ticks = |receipt: Option<ReceiptKind>| match receipt {
        None => ("✓", "sent"),
        Some(ReceiptKind::Delivered) => ("✓✓", "delivered"),
        Some(ReceiptKind::Read) => ("✓✓", "read"),
    };
    let me_attr = me_text.clone();
    view! {
        <section class="phone" data-testid="phone" data-me=me_attr>
            <header class="phone-head">
                <a href="/phone" class="back">"←"</a>
                <div>
                    <strong data-testid="phone-channel">
                        {move || channel_name.get().unwrap_or_else(|| to_text.clone())}
                    </strong>
                    <div class="small phone-status">
                        {move || if agent_typing.get() {
                            view! { <span data-testid="agent-typing">{t!(i18n, phone.typing)}</span> }.into_any()
                        } else {
                            view! { <span>{t!(i18n, phone.online)}</span> }.into_any()
                        }}
                    </div>
                </div>
                <span class="muted small phone-me">{me_text.clone()}</span>
            </header>
            <div class="phone-messages" node_ref=scroller data-testid="phone-messages">
                <Show when=move || lines.with(Vec::is_empty)>
                    <p class="muted phone-empty">{t!(i18n, phone.empty)}</p>
                </Show>
                <For
                    each=move || lines.get()
                    key=|l| (l.wa_id.clone(), l.receipt)
                    children=move |line| {
                        let (glyph, state) = ticks(line.receipt);
                        view! {
                            <div
                                class=if line.mine { "pbubble mine" } else { "pbubble theirs" }
                                data-testid="phone-message"
                                data-state=line.mine.then_some(state)
                            >
                                {line.media.clone().map(|media| {
                                    let url = format!("/sandbox/media/{}", media.name);
                                    view! { <MediaView media url /> }
                                })}
                                {(!line.text.is_empty()).then(|| view! { <div class="pbubble-body">{line.text.clone()}</div> })}
                                <div class="pbubble-foot small">
                                    {phone_time(line.at)}
                                    {line.mine.then(|| view! { <span class=format!("ticks ticks-{state}")>{glyph}</span> })}
                                </div>
                            </div>
                        }
                    }
                />
            </div>
            {move || problem.get().map(|p| view! { <p class="field-error phone-error" role="alert">{p}</p> })}
            <form class="phone-composer" on:submit=send>
                <AttachButton endpoint="/sandbox/api/media" attachment problem disabled=Signal::derive(|| false) />
                <input
                    data-testid="phone-input"
                    autocomplete="off"
                    maxlength="4096"
                    placeholder=move || t_string!(i18n, phone.message).to_string()
                    aria-label=move || t_string!(i18n, phone.message).to_string()
                    prop:value=move || text.get()
                    on:input=on_input
                />
                <button type="submit" class="primary">{t!(i18n, phone.send)}</button>
            </form>
        </section>
    }
    .into_any()
}

fn phone_time(at: Timestamp) -> String {
    #[cfg(feature = "hydrate")]
    {
        let date = web_sys::js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at.0 as f64));
        format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
    }
    #[cfg(not(feature = "hydrate"))]
    crate::ui::format_time(at.0)
}
