//! Channels: the workspace's WhatsApp numbers and their live state. Admins link real numbers here
//! (by QR code or by a code typed on the phone, shown live as WhatsApp rotates it), link them again
//! after a logout, and add sandbox channels when the sandbox network is enabled.

use balas_domain::{Channel, ChannelState, Field, LinkMethod, LiveEvent, Pairing, Provider};
use leptos::prelude::*;

use crate::api::{
    CreateSandboxChannel, LinkWhatsappNumber, list_channels, relink_channel, sandbox_enabled, set_read_receipts,
};
use crate::i18n::*;
use crate::live::{Notice, now_ms, on_live};
use crate::ui::{ErrorBanner, FieldErrors, FormError, Outcome, error_text, outcome};

/// The QR code of a pairing code, as SVG markup (dark modules on white, with a quiet zone).
fn qr_svg(code: &str) -> Option<String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).ok()?;
    Some(qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(232, 232).quiet_zone(true).build())
}

/// An 8-character phone code as WhatsApp shows it: `ABCD-EFGH`.
fn spaced_code(code: &str) -> String {
    if code.len() == 8 && code.is_ascii() { format!("{}-{}", &code[..4], &code[4..]) } else { code.to_owned() }
}

/// The code to link a number with, its countdown and what to do with it.
#[component]
fn PairingPanel(pairing: Pairing, clock: RwSignal<f64>) -> impl IntoView {
    let i18n = use_i18n();
    let expires_at = pairing.expires_at.0 as f64;
    let left = move || ((expires_at - clock.get()) / 1000.0).ceil().max(0.0) as i64;
    let code = match pairing.method {
        LinkMethod::Qr => match qr_svg(&pairing.code) {
            Some(svg) => view! { <div class="qr" role="img" aria-label="QR code" data-testid="pairing-qr" data-code=pairing.code.clone() inner_html=svg></div> }.into_any(),
            None => view! { <p class="error">"QR"</p> }.into_any(),
        },
        LinkMethod::Code => view! { <p class="pair-code" data-testid="pairing-code">{spaced_code(&pairing.code)}</p> }.into_any(),
    };
    let help = match pairing.method {
        LinkMethod::Qr => t_string!(i18n, channels.scan_qr).to_string(),
        LinkMethod::Code => t_string!(i18n, channels.type_code).to_string(),
    };
    view! {
        <div class="pairing" data-testid="pairing">
            {code}
            <div>
                <p>{help}</p>
                <Show
                    when=move || { left() > 0 }
                    fallback=move || view! { <p class="warning" data-testid="pairing-expired">{t!(i18n, channels.code_expired)}</p> }
                >
                    <p class="muted" data-testid="pairing-countdown">{move || t_string!(i18n, channels.expires_in, secs = left()).to_string()}</p>
                    <progress max="60" value=move || left().min(60)></progress>
                </Show>
            </div>
        </div>
    }
    .into_any()
}

/// A new channel's name, number and pace, with their errors (ids start with `prefix`).
#[component]
fn ChannelFields(
    prefix: &'static str,
    outcome: Outcome<Channel>,
    name_hint: &'static str,
    phone_hint: &'static str,
) -> impl IntoView {
    let i18n = use_i18n();
    let id = move |field: &str| format!("{prefix}_{field}");
    view! {
        <label for=id("name")>{t!(i18n, channels.name)}</label>
        <input id=id("name") name="name" autocomplete="off" placeholder=name_hint />
        <FieldErrors outcome field=Field::Name />
        <label for=id("phone")>{t!(i18n, channels.phone)}</label>
        <input id=id("phone") name="phone" inputmode="tel" autocomplete="off" placeholder=phone_hint />
        <FieldErrors outcome field=Field::Phone />
        <label for=id("rate")>{t!(i18n, channels.rate)}</label>
        <input id=id("rate") name="rate" type="number" min="1" max="80" value="5" />
        <FieldErrors outcome field=Field::RateLimit />
    }
    .into_any()
}

/// Buttons that ask for a logged-out (or expired) number to be linked again.
#[component]
fn Relink(channel_id: i64, changed: RwSignal<u32>) -> impl IntoView {
    let i18n = use_i18n();
    let problem = RwSignal::new(None::<String>);
    let relink = move |method: LinkMethod| {
        leptos::task::spawn_local(async move {
            match relink_channel(channel_id, method.as_str().to_owned()).await {
                Ok(_) => {
                    let _ = problem.try_set(None);
                    let _ = changed.try_update(|v| *v += 1);
                }
                Err(error) => {
                    // A field error here means the number is not one that can be linked again now.
                    let reason = error_text(i18n, &error).unwrap_or_else(|| error.to_string());
                    let text = t_string!(i18n, channels.relink_failed, error = reason).to_string();
                    let _ = problem.try_set(Some(text));
                }
            }
        });
    };
    view! {
        <div class="row-actions">
            <button type="button" class="button" data-testid="relink-qr" on:click=move |_| relink(LinkMethod::Qr)>
                {t!(i18n, channels.relink_qr)}
            </button>
            <button type="button" class="button" data-testid="relink-code" on:click=move |_| relink(LinkMethod::Code)>
                {t!(i18n, channels.relink_code)}
            </button>
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        </div>
    }
    .into_any()
}

fn state_label(i18n: leptos_i18n::I18nContext<Locale>, state: ChannelState) -> String {
    match state {
        ChannelState::Idle => t_string!(i18n, channels.state_idle).to_string(),
        ChannelState::Connecting => t_string!(i18n, channels.state_connecting).to_string(),
        ChannelState::Pairing => t_string!(i18n, channels.state_pairing).to_string(),
        ChannelState::Connected => t_string!(i18n, channels.state_connected).to_string(),
        ChannelState::Reconnecting => t_string!(i18n, channels.state_reconnecting).to_string(),
        ChannelState::LoggedOut => t_string!(i18n, channels.state_logged_out).to_string(),
        ChannelState::Banned => t_string!(i18n, channels.state_banned).to_string(),
    }
}

#[component]
pub fn ChannelsPage() -> impl IntoView {
    let i18n = use_i18n();
    let create = ServerAction::<CreateSandboxChannel>::new();
    let link = ServerAction::<LinkWhatsappNumber>::new();
    let tick = RwSignal::new(0u32);
    let changed = RwSignal::new(0u32);
    let clock = RwSignal::new(0.0);
    Effect::new(move || {
        clock.set(now_ms());
        if let Ok(handle) =
            set_interval_with_handle(move || tick.update(|t| *t += 1), std::time::Duration::from_secs(3))
        {
            on_cleanup(move || handle.clear());
        }
        if let Ok(handle) = set_interval_with_handle(move || clock.set(now_ms()), std::time::Duration::from_secs(1)) {
            on_cleanup(move || handle.clear());
        }
    });
    // Codes rotate and numbers link while the page is open: show it at once.
    on_live(move |notice| {
        let refresh = match notice {
            Notice::Resync => true,
            Notice::Event(envelope) => {
                matches!(envelope.event, LiveEvent::ChannelUpdated { .. } | LiveEvent::ChannelState { .. })
            }
        };
        if refresh {
            let _ = changed.try_update(|v| *v += 1);
        }
    });
    let channels = Resource::new(
        move || (create.version().get(), link.version().get(), tick.get(), changed.get()),
        |_| list_channels(),
    );
    let link_outcome = outcome(link.value());
    let link_form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move || {
        if let (true, Some(form)) = (link_outcome.with(|v| matches!(v, Some(Ok(_)))), link_form.get_untracked()) {
            form.reset();
        }
    });
    let sandbox = Resource::new(|| (), |_| sandbox_enabled());
    let outcome = outcome(create.value());
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move || {
        if let (true, Some(form)) = (outcome.with(|v| matches!(v, Some(Ok(_)))), form.get_untracked()) {
            form.reset();
        }
    });
    let row = move |c: Channel| {
        let id = c.id;
        let state_class = match c.state {
            ChannelState::Connected => "status status-ok",
            ChannelState::Connecting | ChannelState::Reconnecting | ChannelState::Idle | ChannelState::Pairing => {
                "status status-wait"
            }
            ChannelState::LoggedOut | ChannelState::Banned => "status status-down",
        };
        let real = c.provider == Provider::Whatsapp;
        let pairing = c.pairing.clone().filter(|_| c.state == ChannelState::Pairing);
        let waiting = real && c.state == ChannelState::Pairing && pairing.is_none();
        let relink = real && c.state == ChannelState::LoggedOut;
        let linked_as = c.linked_name.clone().map(|name| t_string!(i18n, channels.linked_as, name = name).to_string());
        let extra = (pairing.is_some() || waiting || relink).then(|| {
            view! {
                <tr class="pairing-row" data-pairing-for=c.phone.to_string()>
                    <td colspan="6">
                        {pairing.map(|pairing| view! { <PairingPanel pairing clock /> }.into_any())}
                        {waiting.then(|| view! { <p class="muted">{t!(i18n, channels.waiting_for_code)}</p> })}
                        {relink.then(|| view! { <Relink channel_id=id.0 changed /> }.into_any())}
                    </td>
                </tr>
            }
            .into_any()
        });
        view! {
            <tr data-phone=c.phone.to_string()>
                <td>
                    {c.name.clone()}
                    {linked_as.map(|l| view! { <div class="muted" data-testid="linked-as">{l}</div> })}
                </td>
                <td>{c.phone.to_string()}</td>
                <td>{c.provider.as_str()}</td>
                <td>
                    <span class=state_class data-state=c.state.as_str()>{state_label(i18n, c.state)}</span>
                    {c.state_detail.clone().map(|d| view! { <div class="muted">{d}</div> })}
                </td>
                <td>{c.rate.get()} " / s"</td>
                <td>
                    <label class="toggle" title=move || t_string!(i18n, channels.read_receipts_hint).to_string()>
                        <input
                            type="checkbox"
                            data-testid="read-receipts"
                            checked=c.read_receipts
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                leptos::task::spawn_local(async move {
                                    let _ = set_read_receipts(id.0, on).await;
                                });
                            }
                        />
                        <span class="visually-hidden">{t!(i18n, channels.read_receipts)}</span>
                    </label>
                </td>
            </tr>
            {extra}
        }
        .into_any()
    };
    view! {
        <section class="page">
            <h1>{t!(i18n, nav.channels)}</h1>
            <p class="muted">{t!(i18n, channels.intro)}</p>
            <Transition fallback=move || view! { <p>{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match channels.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="empty-state" data-testid="no-channels">{t!(i18n, channels.empty)}</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                                <table class="table" data-testid="channels">
                                    <thead>
                                        <tr>
                                            <th>{t!(i18n, channels.name)}</th>
                                            <th>{t!(i18n, channels.phone)}</th>
                                            <th>{t!(i18n, channels.provider)}</th>
                                            <th>{t!(i18n, channels.state)}</th>
                                            <th>{t!(i18n, channels.rate)}</th>
                                            <th>{t!(i18n, channels.read_receipts)}</th>
                                        </tr>
                                    </thead>
                                    <tbody>{list.into_iter().map(row).collect_view()}</tbody>
                                </table>
                            </div>
                        }.into_any(),
                        Err(error) => view! { <ErrorBanner error /> }.into_any(),
                    }
                })}
            </Transition>
            <div class="card">
                <h2>{t!(i18n, channels.link_title)}</h2>
                <p class="muted">{t!(i18n, channels.link_help)}</p>
                <ActionForm action=link node_ref=link_form attr:novalidate=true attr:class="form" attr:data-testid="link-form">
                    <ChannelFields prefix="link" outcome=link_outcome name_hint="Customer service" phone_hint="+62 812 0000 0000" />
                    <fieldset class="choices">
                        <legend>{t!(i18n, channels.method)}</legend>
                        <label><input type="radio" name="method" value="qr" checked /> {t!(i18n, channels.method_qr)}</label>
                        <label><input type="radio" name="method" value="code" /> {t!(i18n, channels.method_code)}</label>
                    </fieldset>
                    <FormError outcome=link_outcome />
                    <button type="submit" class="button primary">{t!(i18n, channels.link)}</button>
                </ActionForm>
            </div>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    (sandbox.await == Ok(true)).then(|| view! {
                        <div class="card">
                            <h2>{t!(i18n, channels.add_sandbox)}</h2>
                            <p class="muted">{t!(i18n, channels.add_sandbox_help)}</p>
                            <ActionForm action=create node_ref=form attr:novalidate=true attr:class="form" attr:data-testid="sandbox-form">
                                <ChannelFields prefix="channel" outcome name_hint="Sales" phone_hint="+62 811 0000 001" />
                                <FormError outcome />
                                <button type="submit" class="button primary">{t!(i18n, channels.add)}</button>
                            </ActionForm>
                        </div>
                    })
                })}
            </Suspense>
        </section>
    }
}
