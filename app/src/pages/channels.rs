//! Channels: the workspace's WhatsApp numbers and their live state. Admins add sandbox channels
//! here when the sandbox network is enabled (linking real numbers comes with its own issue).

use balas_domain::{Channel, ChannelState, Field};
use leptos::prelude::*;

use crate::api::{CreateSandboxChannel, list_channels, sandbox_enabled, set_read_receipts};
use crate::i18n::*;
use crate::ui::{ErrorBanner, FieldErrors, FormError, outcome};

fn state_label(i18n: leptos_i18n::I18nContext<Locale>, state: ChannelState) -> String {
    match state {
        ChannelState::Idle => t_string!(i18n, channels.state_idle).to_string(),
        ChannelState::Connecting => t_string!(i18n, channels.state_connecting).to_string(),
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
    let tick = RwSignal::new(0u32);
    Effect::new(move || {
        if let Ok(handle) =
            set_interval_with_handle(move || tick.update(|t| *t += 1), std::time::Duration::from_secs(3))
        {
            on_cleanup(move || handle.clear());
        }
    });
    let channels = Resource::new(move || (create.version().get(), tick.get()), |_| list_channels());
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
            ChannelState::Connecting | ChannelState::Reconnecting | ChannelState::Idle => "status status-wait",
            ChannelState::LoggedOut | ChannelState::Banned => "status status-down",
        };
        view! {
            <tr data-phone=c.phone.to_string()>
                <td>{c.name.clone()}</td>
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
        }
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
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    (sandbox.await == Ok(true)).then(|| view! {
                        <div class="card">
                            <h2>{t!(i18n, channels.add_sandbox)}</h2>
                            <p class="muted">{t!(i18n, channels.add_sandbox_help)}</p>
                            <ActionForm action=create node_ref=form attr:novalidate=true attr:class="form">
                                <label for="channel_name">{t!(i18n, channels.name)}</label>
                                <input id="channel_name" name="name" autocomplete="off" placeholder="Sales" />
                                <FieldErrors outcome field=Field::Name />
                                <label for="channel_phone">{t!(i18n, channels.phone)}</label>
                                <input id="channel_phone" name="phone" inputmode="tel" autocomplete="off" placeholder="+62 811 0000 001" />
                                <FieldErrors outcome field=Field::Phone />
                                <label for="channel_rate">{t!(i18n, channels.rate)}</label>
                                <input id="channel_rate" name="rate" type="number" min="1" max="80" value="5" />
                                <FieldErrors outcome field=Field::RateLimit />
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
