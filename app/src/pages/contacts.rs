//! Contacts: the workspace's customers, searched, filtered by label and opt-out state, sorted and
//! paged on the server; a selection takes a label on or off at once; each row shows and changes
//! whether the customer gets broadcasts. Admins manage the labels beside the list. A contact's
//! page edits its details, labels and opt-out, keeps the team's notes and links its conversations.

use std::collections::{BTreeMap, BTreeSet};

use balas_domain::{
    AppError, Attribute, CONTACT_PAGE, Contact, ContactFilter, ContactPage, ContactSort, ContactView, Field,
    LABEL_COLORS, Label, LabelId, OptOutFilter, Segment,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::{
    add_contact_note, create_contact, create_label, create_segment, delete_contact, delete_label, delete_segment,
    edit_contact, label_contacts, list_attributes, list_contacts, list_labels, list_segments, merge_contacts,
    open_contact, set_opted_out,
};
use crate::i18n::*;
use crate::pages::attributes::{AttributeFilterBar, AttributeInputs, AttributesPanel, attributes_valid, shown_value};
use crate::pages::import::ImportPanel;
use crate::pages::shell::use_me;
use crate::ui::{ErrorBanner, error_text, issue_text, url_encode};

fn short_date(at: balas_domain::Timestamp) -> String {
    crate::ui::format_time(at.0)
}

/// A label as a coloured chip.
#[component]
pub fn LabelChip(label: Label) -> impl IntoView {
    view! { <span class=format!("label-chip label-{}", label.color.as_str()) data-testid="label-chip">{label.name.to_string()}</span> }
}

#[component]
pub fn ContactsPage() -> impl IntoView {
    let i18n = use_i18n();
    let admin = use_me().is_some_and(|me| me.is_admin());
    let filter = RwSignal::new(ContactFilter::default());
    let search = RwSignal::new(String::new());
    let page = RwSignal::new(0u32);
    let listing = RwSignal::new(None::<Result<ContactPage, balas_domain::AppError>>);
    let labels = RwSignal::new(Vec::<Label>::new());
    let selected = RwSignal::new(BTreeSet::<i64>::new());
    let notice = RwSignal::new(None::<String>);
    let generation = StoredValue::new(0u64);
    let importing = RwSignal::new(false);
    let segments = RwSignal::new(Vec::<Segment>::new());
    let attributes = RwSignal::new(Vec::<Attribute>::new());
    let creating = RwSignal::new(false);
    Effect::new(move |_| {
        spawn_local(async move {
            if let Ok(list) = list_attributes().await {
                attributes.try_set(list);
            }
        });
    });
    let load_segments = move || {
        spawn_local(async move {
            if let Ok(list) = list_segments().await {
                segments.try_set(list);
            }
        });
    };
    Effect::new(move |_| load_segments());
    let save_segment = move |_| {
        let Ok(Some(name)) = window().prompt_with_message(t_string!(i18n, contacts.segment_name)) else {
            return;
        };
        let current = filter.with_untracked(applied);
        spawn_local(async move {
            match create_segment(name, current).await {
                Ok(list) => {
                    segments.try_set(list);
                    notice.try_set(Some(t_string!(i18n, contacts.segment_saved).to_string()));
                }
                Err(error) => {
                    let field = error.field_errors(Field::Name).next().map(|e| issue_text(i18n, e.issue));
                    notice.try_set(field.or_else(|| error_text(i18n, &error)));
                }
            }
        });
    };
    let apply_segment = move |segment: Segment| {
        search.set(segment.filter.search.clone());
        page.set(0);
        filter.set(segment.filter);
    };
    // The export follows the list's filter.
    let export_url = move || {
        filter.with(|f| {
            let opt_out = match f.opt_out {
                OptOutFilter::Any => "any",
                OptOutFilter::Subscribed => "subscribed",
                OptOutFilter::OptedOut => "opted_out",
            };
            let sort = match f.sort {
                ContactSort::Recent => "recent",
                ContactSort::Name => "name",
                ContactSort::Created => "created",
            };
            let label = f.label.map(|l| l.0.to_string()).unwrap_or_default();
            let active = f.active_days.map(|d| format!("&active_days={d}")).unwrap_or_default();
            let attribute = applied(f)
                .attribute
                .map(|a| {
                    format!(
                        "&attribute={}&attribute_op={}&attribute_value={}",
                        a.attribute.0,
                        a.op.as_str(),
                        url_encode(&a.value)
                    )
                })
                .unwrap_or_default();
            format!(
                "/api/contacts/export.csv?search={}&label={label}&opt_out={opt_out}&sort={sort}{active}{attribute}",
                url_encode(&f.search)
            )
        })
    };

    let load = move || {
        let generation_now = generation.get_value() + 1;
        generation.set_value(generation_now);
        let (current, at) = (filter.with_untracked(applied), page.get_untracked());
        spawn_local(async move {
            let answer = list_contacts(current, at).await;
            // An older answer never replaces a newer one.
            if generation.try_get_value() == Some(generation_now) {
                listing.try_set(Some(answer));
            }
        });
    };
    let load_labels = move || {
        spawn_local(async move {
            if let Ok(list) = list_labels().await {
                labels.try_set(list);
            }
        });
    };
    Effect::new(move || {
        filter.track();
        page.track();
        load();
    });
    Effect::new(move |_| load_labels());
    // The search waits for a pause in typing.
    let typed = StoredValue::new(0u64);
    let on_search = move |ev: leptos::ev::Event| {
        search.set(event_target_value(&ev));
        let mine = typed.get_value() + 1;
        typed.set_value(mine);
        set_timeout(
            move || {
                if typed.try_get_value() == Some(mine) {
                    page.set(0);
                    filter.update(|f| f.search = search.get_untracked());
                }
            },
            std::time::Duration::from_millis(250),
        );
    };
    let label_of = move |id: LabelId| labels.with(|all| all.iter().find(|l| l.id == id).cloned());
    let total = move || listing.with(|l| l.as_ref().and_then(|l| l.as_ref().ok()).map_or(0, |p| p.total));
    let pages = move || (total() as u32).div_ceil(CONTACT_PAGE).max(1);

    let toggle_opt_out = move |contact: Contact| {
        spawn_local(async move {
            match set_opted_out(contact.id.0, !contact.opted_out()).await {
                Ok(_) => load(),
                Err(error) => {
                    notice.try_set(error_text(i18n, &error));
                }
            }
        });
    };
    let bulk_label = RwSignal::new(String::new());
    let bulk = move |on: bool| {
        let Ok(label) = bulk_label.get_untracked().parse::<i64>() else {
            notice.set(Some(t_string!(i18n, contacts.pick_label).to_string()));
            return;
        };
        let ids: Vec<i64> = selected.get_untracked().into_iter().collect();
        spawn_local(async move {
            match label_contacts(label, ids, on).await {
                Ok(changed) => {
                    notice.try_set(Some(t_string!(i18n, contacts.labelled, count = changed).to_string()));
                    selected.try_set(BTreeSet::new());
                    load();
                    load_labels();
                }
                Err(error) => {
                    notice.try_set(error_text(i18n, &error));
                }
            }
        });
    };

    let row = move |contact: Contact| {
        let id = contact.id.0;
        let opted_out = contact.opted_out();
        let chips = contact
            .labels
            .iter()
            .filter_map(|l| label_of(*l))
            .map(|label| view! { <LabelChip label /> })
            .collect_view();
        let flip = contact.clone();
        let details = attributes.with(|all| {
            all.iter()
                .filter_map(|a| {
                    contact.attributes.get(a.key.as_str()).map(|v| format!("{}: {}", a.name, shown_value(i18n, a, v)))
                })
                .collect::<Vec<_>>()
                .join(" · ")
        });
        view! {
            <tr data-testid="contact" data-phone=contact.phone.to_string() data-opted-out=opted_out.to_string()>
                <td>
                    <input
                        type="checkbox"
                        aria-label=move || t_string!(i18n, contacts.select).to_string()
                        prop:checked=move || selected.with(|s| s.contains(&id))
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                        }
                    />
                </td>
                <td>
                    <a href=format!("/contacts/{id}") data-testid="contact-link">
                        {contact.name.clone().unwrap_or_else(|| t_string!(i18n, contacts.no_name).to_string())}
                    </a>
                    <div class="muted small" data-testid="contact-attributes">{details}</div>
                </td>
                <td class="nowrap">{contact.phone.to_string()}</td>
                <td>{contact.email.clone().unwrap_or_default()}</td>
                <td><span class="chips">{chips}</span></td>
                <td class="nowrap muted">{contact.last_message_at.map(short_date).unwrap_or_default()}</td>
                <td>
                    <button
                        type="button"
                        class=if opted_out { "pill pill-off" } else { "pill pill-on" }
                        data-testid="opt-out"
                        title=move || t_string!(i18n, contacts.opt_out_hint).to_string()
                        on:click=move |_| toggle_opt_out(flip.clone())
                    >
                        {if opted_out { t_string!(i18n, contacts.opted_out).to_string() } else { t_string!(i18n, contacts.subscribed).to_string() }}
                    </button>
                </td>
            </tr>
        }
    };

    view! {
        <Title text=move || format!("{} · Balas", t_string!(i18n, nav.contacts)) />
        <section class="page contacts-page">
            <h1>
                {t!(i18n, nav.contacts)}
                <span class="muted count" data-testid="contact-total">{move || total().to_string()}</span>
            </h1>
            <div class="row-actions page-actions">
                <button type="button" class="button" data-testid="import-open" aria-expanded=move || importing.get().to_string()
                    on:click=move |_| importing.update(|open| *open = !*open)>
                    {t!(i18n, contacts.import_title)}
                </button>
                <a class="button" data-testid="export" href=export_url download="contacts.csv">{t!(i18n, contacts.export)}</a>
                <button type="button" class="button primary" data-testid="new-contact" aria-expanded=move || creating.get().to_string()
                    on:click=move |_| creating.update(|open| *open = !*open)>
                    {t!(i18n, contacts.new_contact)}
                </button>
            </div>
            <Show when=move || creating.get()>
                <NewContact attributes=attributes.into() />
            </Show>
            <Show when=move || importing.get()>
                <ImportPanel attributes=attributes.into() done=move || { load(); load_labels(); } />
            </Show>
            <div class="toolbar" role="search">
                <input
                    type="search"
                    data-testid="contact-search"
                    aria-label=move || t_string!(i18n, contacts.search).to_string()
                    placeholder=move || t_string!(i18n, contacts.search).to_string()
                    prop:value=move || search.get()
                    on:input=on_search
                />
                <select
                    data-testid="label-filter"
                    aria-label=move || t_string!(i18n, contacts.label).to_string()
                    prop:value=move || filter.with(|f| f.label.map(|l| l.0.to_string()).unwrap_or_default())
                    on:change=move |ev| {
                        let label = event_target_value(&ev).parse().ok().map(LabelId);
                        page.set(0);
                        filter.update(|f| f.label = label);
                    }
                >
                    <option value="">{t!(i18n, contacts.all_labels)}</option>
                    {move || labels.get().into_iter().map(|l| view! { <option value=l.id.0.to_string()>{l.name.to_string()}</option> }).collect_view()}
                </select>
                <select
                    data-testid="opt-out-filter"
                    aria-label=move || t_string!(i18n, contacts.broadcasts).to_string()
                    prop:value=move || filter.with(|f| match f.opt_out {
                        OptOutFilter::Any => "any",
                        OptOutFilter::Subscribed => "subscribed",
                        OptOutFilter::OptedOut => "opted_out",
                    })
                    on:change=move |ev| {
                        let choice = match event_target_value(&ev).as_str() {
                            "subscribed" => OptOutFilter::Subscribed,
                            "opted_out" => OptOutFilter::OptedOut,
                            _ => OptOutFilter::Any,
                        };
                        page.set(0);
                        filter.update(|f| f.opt_out = choice);
                    }
                >
                    <option value="any">{t!(i18n, contacts.everyone)}</option>
                    <option value="subscribed">{t!(i18n, contacts.subscribed)}</option>
                    <option value="opted_out">{t!(i18n, contacts.opted_out)}</option>
                </select>
                <select
                    data-testid="active-filter"
                    aria-label=move || t_string!(i18n, contacts.active).to_string()
                    prop:value=move || filter.with(|f| f.active_days.map(|d| d.to_string()).unwrap_or_default())
                    on:change=move |ev| {
                        let days = event_target_value(&ev).parse().ok();
                        page.set(0);
                        filter.update(|f| f.active_days = days);
                    }
                >
                    <option value="">{t!(i18n, contacts.active_any)}</option>
                    <option value="7">{t_string!(i18n, contacts.active_days, days = 7).to_string()}</option>
                    <option value="30">{t_string!(i18n, contacts.active_days, days = 30).to_string()}</option>
                    <option value="90">{t_string!(i18n, contacts.active_days, days = 90).to_string()}</option>
                </select>
                <AttributeFilterBar attributes filter page />
                <button type="button" class="button" data-testid="save-segment" on:click=save_segment>{t!(i18n, contacts.save_segment)}</button>
                <select
                    data-testid="contact-sort"
                    aria-label=move || t_string!(i18n, contacts.sort).to_string()
                    on:change=move |ev| {
                        let sort = match event_target_value(&ev).as_str() {
                            "name" => ContactSort::Name,
                            "created" => ContactSort::Created,
                            _ => ContactSort::Recent,
                        };
                        filter.update(|f| f.sort = sort);
                    }
                >
                    <option value="recent">{t!(i18n, contacts.sort_recent)}</option>
                    <option value="name">{t!(i18n, contacts.sort_name)}</option>
                    <option value="created">{t!(i18n, contacts.sort_created)}</option>
                </select>
            </div>
            <Show when=move || selected.with(|s| !s.is_empty())>
                <div class="bulk" data-testid="bulk">
                    <strong>{move || t_string!(i18n, contacts.selected, count = selected.with(BTreeSet::len)).to_string()}</strong>
                    <select aria-label=move || t_string!(i18n, contacts.label).to_string() data-testid="bulk-label" on:change=move |ev| bulk_label.set(event_target_value(&ev))>
                        <option value="">{t!(i18n, contacts.pick_label)}</option>
                        {move || labels.get().into_iter().map(|l| view! { <option value=l.id.0.to_string()>{l.name.to_string()}</option> }).collect_view()}
                    </select>
                    <button type="button" class="button" on:click=move |_| bulk(true)>{t!(i18n, contacts.add_label)}</button>
                    <button type="button" class="button" on:click=move |_| bulk(false)>{t!(i18n, contacts.remove_label)}</button>
                    <button type="button" class="link-button" on:click=move |_| selected.set(BTreeSet::new())>{t!(i18n, contacts.clear)}</button>
                </div>
            </Show>
            {move || notice.get().map(|n| view! { <p class="notice" role="status" data-testid="contacts-notice">{n}</p> })}
            <div class="contacts-layout">
                <div>
                    {move || match listing.get() {
                        None => view! { <p class="muted">{t!(i18n, loading)}</p> }.into_any(),
                        Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                        Some(Ok(found)) if found.contacts.is_empty() => {
                            let filtered = filter.with(|f| *f != ContactFilter { sort: f.sort, ..ContactFilter::default() });
                            view! {
                                <p class="empty-state" data-testid="no-contacts">
                                    {if filtered { t_string!(i18n, contacts.none_match).to_string() } else { t_string!(i18n, contacts.empty).to_string() }}
                                </p>
                            }.into_any()
                        }
                        Some(Ok(found)) => view! {
                            <div class="table-wrap">
                                <table class="table" data-testid="contacts">
                                    <thead>
                                        <tr>
                                            <th><span class="visually-hidden">{t!(i18n, contacts.select)}</span></th>
                                            <th>{t!(i18n, contacts.name)}</th>
                                            <th>{t!(i18n, contacts.phone)}</th>
                                            <th>{t!(i18n, contacts.email)}</th>
                                            <th>{t!(i18n, contacts.labels)}</th>
                                            <th>{t!(i18n, contacts.last_message)}</th>
                                            <th>{t!(i18n, contacts.broadcasts)}</th>
                                        </tr>
                                    </thead>
                                    <tbody>{found.contacts.into_iter().map(row).collect_view()}</tbody>
                                </table>
                            </div>
                        }.into_any(),
                    }}
                    <nav class="pager" aria-label=move || t_string!(i18n, contacts.pages).to_string()>
                        <button type="button" class="button" disabled=move || page.get() == 0 on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>
                            {t!(i18n, contacts.previous)}
                        </button>
                        <span data-testid="page-of">{move || t_string!(i18n, contacts.page_of, page = page.get() + 1, pages = pages()).to_string()}</span>
                        <button type="button" class="button" disabled=move || page.get() + 1 >= pages() on:click=move |_| page.update(|p| *p += 1)>
                            {t!(i18n, contacts.next)}
                        </button>
                    </nav>
                </div>
                <div>
                    <Labels labels admin changed=move || { load_labels(); load(); } />
                    <AttributesPanel attributes admin />
                    <aside class="card labels-panel" data-testid="segments">
                        <h2>{t!(i18n, contacts.segments)}</h2>
                        <Show when=move || segments.with(Vec::is_empty)>
                            <p class="muted small">{t!(i18n, contacts.no_segments)}</p>
                        </Show>
                        <ul class="label-list">
                            {move || segments.get().into_iter().map(|segment| {
                                let (chosen, id) = (segment.clone(), segment.id);
                                view! {
                                    <li data-testid="segment">
                                        <button type="button" class="link-button" on:click=move |_| apply_segment(chosen.clone())>{segment.name.to_string()}</button>
                                        <span class="muted small" data-testid="segment-count">{segment.contacts.to_string()}</span>
                                        {admin.then(|| view! {
                                            <button type="button" class="link-button" aria-label=move || t_string!(i18n, contacts.delete_segment).to_string()
                                                on:click=move |_| spawn_local(async move {
                                                    if let Ok(list) = delete_segment(id).await { segments.try_set(list); }
                                                })>"×"</button>
                                        })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    </aside>
                </div>
            </div>
        </section>
    }
    .into_any()
}

/// The workspace's labels with their counts; admins add and delete them here.
#[component]
fn Labels(
    labels: RwSignal<Vec<Label>>,
    admin: bool,
    changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let name = RwSignal::new(String::new());
    let color = RwSignal::new(LABEL_COLORS[6].to_owned());
    let problem = RwSignal::new(None::<String>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (new_name, new_color) = (name.get_untracked(), color.get_untracked());
        spawn_local(async move {
            match create_label(new_name, new_color).await {
                Ok(list) => {
                    labels.try_set(list);
                    name.try_set(String::new());
                    problem.try_set(None);
                    changed();
                }
                Err(error) => {
                    let field = error.field_errors(Field::Name).next().map(|e| issue_text(i18n, e.issue));
                    problem.try_set(field.or_else(|| error_text(i18n, &error)));
                }
            }
        });
    };
    let remove = move |label: Label| {
        let question =
            t_string!(i18n, contacts.delete_label_confirm, name = label.name.to_string(), count = label.contacts)
                .to_string();
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        spawn_local(async move {
            if let Ok(list) = delete_label(label.id.0).await {
                labels.try_set(list);
                changed();
            }
        });
    };
    view! {
        <aside class="card labels-panel" data-testid="labels">
            <h2>{t!(i18n, contacts.labels)}</h2>
            <Show when=move || labels.with(Vec::is_empty)>
                <p class="muted small">{if admin { t_string!(i18n, contacts.no_labels_admin).to_string() } else { t_string!(i18n, contacts.no_labels).to_string() }}</p>
            </Show>
            <ul class="label-list">
                {move || labels.get().into_iter().map(|label| {
                    let gone = label.clone();
                    view! {
                        <li>
                            <LabelChip label=label.clone() />
                            <span class="muted small">{label.contacts.to_string()}</span>
                            {admin.then(|| view! {
                                <button type="button" class="link-button" aria-label=move || t_string!(i18n, contacts.delete_label).to_string() on:click=move |_| remove(gone.clone())>"×"</button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            {admin.then(|| view! {
                <form class="form" on:submit=add data-testid="label-form">
                    <label for="label_name">{t!(i18n, contacts.new_label)}</label>
                    <input id="label_name" maxlength="40" autocomplete="off" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                    <label for="label_color">{t!(i18n, contacts.color)}</label>
                    <select id="label_color" on:change=move |ev| color.set(event_target_value(&ev))>
                        {LABEL_COLORS.iter().map(|c| view! { <option value=*c selected=*c == LABEL_COLORS[6]>{*c}</option> }).collect_view()}
                    </select>
                    {move || problem.get().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
                    <button type="submit" class="button primary">{t!(i18n, contacts.add_label_button)}</button>
                </form>
            })}
        </aside>
    }
    .into_any()
}

/// The filter as the server gets it: an attribute comparison still waiting for its value is left
/// out (so the list does not turn into an error while someone picks).
fn applied(filter: &ContactFilter) -> ContactFilter {
    let waiting = filter.attribute.as_ref().is_some_and(|a| a.op.takes_value() && a.value.trim().is_empty());
    ContactFilter { attribute: if waiting { None } else { filter.attribute.clone() }, ..filter.clone() }
}

/// Adds a contact by hand, then opens it.
#[component]
fn NewContact(attributes: Signal<Vec<Attribute>>) -> impl IntoView {
    let i18n = use_i18n();
    let name = RwSignal::new(String::new());
    let phone = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let problem = RwSignal::new(None::<AppError>);
    let navigate = leptos_router::hooks::use_navigate();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !attributes.with_untracked(|a| values.with_untracked(|v| attributes_valid(a, v))) {
            return;
        }
        let (n, p, e, v) = (name.get_untracked(), phone.get_untracked(), email.get_untracked(), values.get_untracked());
        let navigate = navigate.clone();
        spawn_local(async move {
            match create_contact(n, p, e, v).await {
                Ok(contact) => navigate(&format!("/contacts/{}", contact.id.0), Default::default()),
                Err(error) => {
                    problem.try_set(Some(error));
                }
            }
        });
    };
    view! {
        <form class="card form new-contact" on:submit=save data-testid="new-contact-form" novalidate>
            <h2>{t!(i18n, contacts.new_contact)}</h2>
            <ContactFields name phone email problem />
            <AttributeInputs attributes values />
            <button type="submit" class="button primary">{t!(i18n, contacts.create)}</button>
        </form>
    }
}

/// A contact's name, number and email, each with its error from the last answer.
#[component]
fn ContactFields(
    name: RwSignal<String>,
    phone: RwSignal<String>,
    email: RwSignal<String>,
    problem: RwSignal<Option<AppError>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let field_error = move |field: Field| {
        problem.with(|p| p.as_ref().and_then(|e| e.field_errors(field).next().map(|e| issue_text(i18n, e.issue))))
    };
    view! {
        <label for="contact_name">{t!(i18n, contacts.name)}</label>
        <input id="contact_name" maxlength="100" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
        {move || field_error(Field::Name).map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
        <label for="contact_phone">{t!(i18n, contacts.phone)}</label>
        <input id="contact_phone" inputmode="tel" placeholder="+62 812 3456 7890" prop:value=move || phone.get() on:input=move |ev| phone.set(event_target_value(&ev)) />
        {move || field_error(Field::Phone).map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
        <label for="contact_email">{t!(i18n, contacts.email)}</label>
        <input id="contact_email" type="email" prop:value=move || email.get() on:input=move |ev| email.set(event_target_value(&ev)) />
        {move || field_error(Field::Email).map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
        {move || field_error(Field::Attribute).map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
        {move || problem.with(|p| p.as_ref().and_then(|e| error_text(i18n, e))).map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
    }
}

/// One contact: details to edit, labels, broadcasts, notes, conversations; admins may delete it.
#[component]
pub fn ContactDetail() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())));
    let admin = use_me().is_some_and(|me| me.is_admin());
    let view_data = RwSignal::new(None::<Result<ContactView, AppError>>);
    let labels = RwSignal::new(Vec::<Label>::new());
    let attributes = RwSignal::new(Vec::<Attribute>::new());
    // Kept here: a save reloads the contact, which draws the card anew.
    let saved = RwSignal::new(false);
    let reload = move || {
        let Some(contact) = id.get_untracked() else { return };
        spawn_local(async move {
            let answer = open_contact(contact).await;
            view_data.try_set(Some(answer));
        });
    };
    Effect::new(move || {
        id.track();
        reload();
    });
    Effect::new(move || {
        spawn_local(async move {
            if let Ok(list) = list_labels().await {
                labels.try_set(list);
            }
            if let Ok(list) = list_attributes().await {
                attributes.try_set(list);
            }
        });
    });
    view! {
        <section class="page contact-page">
            <p><a href="/contacts" class="back-link">{t!(i18n, contacts.back)}</a></p>
            {move || match view_data.get() {
                None => view! { <p class="muted">{t!(i18n, loading)}</p> }.into_any(),
                Some(Err(error)) => view! { <ErrorBanner error /> }.into_any(),
                Some(Ok(data)) => view! { <ContactCard data labels attributes=attributes.into() admin saved reload /> }.into_any(),
            }}
        </section>
    }
    .into_any()
}

#[component]
fn ContactCard(
    data: ContactView,
    labels: RwSignal<Vec<Label>>,
    attributes: Signal<Vec<Attribute>>,
    admin: bool,
    saved: RwSignal<bool>,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let contact = data.contact.clone();
    let id = contact.id.0;
    let name = RwSignal::new(contact.name.clone().unwrap_or_default());
    let phone = RwSignal::new(contact.phone.to_string());
    let email = RwSignal::new(contact.email.clone().unwrap_or_default());
    let problem = RwSignal::new(None::<AppError>);
    let values = RwSignal::new(contact.attributes.clone());
    // "Saved" stays until the next change to the form.
    Effect::new(move |first: Option<()>| {
        name.track();
        phone.track();
        email.track();
        values.track();
        if first.is_some() {
            saved.set(false);
        }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !attributes.with_untracked(|a| values.with_untracked(|v| attributes_valid(a, v))) {
            return;
        }
        let (n, p, e) = (name.get_untracked(), phone.get_untracked(), email.get_untracked());
        // Every attribute is sent: an emptied one is cleared.
        let v: BTreeMap<String, String> = attributes.with_untracked(|all| {
            values.with_untracked(|v| {
                all.iter().map(|a| (a.key.to_string(), v.get(a.key.as_str()).cloned().unwrap_or_default())).collect()
            })
        });
        spawn_local(async move {
            match edit_contact(id, n, p, e, v).await {
                Ok(_) => {
                    problem.try_set(None);
                    saved.try_set(true);
                    reload();
                }
                Err(error) => {
                    saved.try_set(false);
                    problem.try_set(Some(error));
                }
            }
        });
    };
    let note = RwSignal::new(String::new());
    let notes = RwSignal::new(data.notes.clone());
    let note_problem = RwSignal::new(None::<String>);
    let add_note = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = note.get_untracked();
        spawn_local(async move {
            match add_contact_note(id, body).await {
                Ok(list) => {
                    notes.try_set(list);
                    note.try_set(String::new());
                    note_problem.try_set(None);
                }
                Err(error) => {
                    let field = error.field_errors(Field::Text).next().map(|e| issue_text(i18n, e.issue));
                    note_problem.try_set(field.or_else(|| error_text(i18n, &error)));
                }
            }
        });
    };
    let label_choice = RwSignal::new(String::new());
    let relabel = move |label: i64, on: bool| {
        spawn_local(async move {
            if label_contacts(label, vec![id], on).await.is_ok() {
                reload();
            }
        });
    };
    let opted_out = contact.opted_out();
    let navigate = leptos_router::hooks::use_navigate();
    let remove = move |_| {
        let question = t_string!(i18n, contacts.delete_confirm, phone = phone.get_untracked()).to_string();
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        let navigate = navigate.clone();
        spawn_local(async move {
            match delete_contact(id).await {
                Ok(()) => navigate("/contacts", Default::default()),
                Err(error) => {
                    problem.try_set(Some(error));
                }
            }
        });
    };
    // Drawn again when the workspace's labels arrive (they load beside the contact).
    let contact_labels = contact.labels.clone();
    let chips = move || {
        contact_labels
            .iter()
            .filter_map(|l| labels.with(|all| all.iter().find(|x| x.id == *l).cloned()))
            .map(|label| {
                let label_id = label.id.0;
                view! {
                    <span class="chip-with-remove">
                        <LabelChip label />
                        <button type="button" class="link-button" aria-label=move || t_string!(i18n, contacts.remove_label).to_string() on:click=move |_| relabel(label_id, false)>"×"</button>
                    </span>
                }
            })
            .collect_view()
    };
    let title = contact.name.clone().unwrap_or_else(|| contact.phone.to_string());
    view! {
        <Title text=format!("{title} · Balas") />
        <h1 data-testid="contact-title">{title}</h1>
        <div class="contact-grid">
            <div class="card">
                <form class="form" on:submit=save data-testid="contact-form" novalidate>
                    <ContactFields name phone email problem />
                    <AttributeInputs attributes values />
                    {move || saved.get().then(|| view! { <p class="notice" role="status" data-testid="contact-saved">{t!(i18n, contacts.saved)}</p> })}
                    <button type="submit" class="button primary">{t!(i18n, contacts.save)}</button>
                </form>
                <p class="muted small">{format!("WhatsApp: {}", contact.phone.digits())}</p>
                <h2>{t!(i18n, contacts.labels)}</h2>
                <div class="chips" data-testid="contact-labels">{chips}</div>
                <div class="row-actions">
                    <select aria-label=move || t_string!(i18n, contacts.label).to_string() data-testid="contact-add-label" on:change=move |ev| label_choice.set(event_target_value(&ev))>
                        <option value="">{t!(i18n, contacts.pick_label)}</option>
                        {move || labels.get().into_iter().map(|l| view! { <option value=l.id.0.to_string()>{l.name.to_string()}</option> }).collect_view()}
                    </select>
                    <button type="button" class="button" on:click=move |_| {
                        if let Ok(label) = label_choice.get_untracked().parse() { relabel(label, true) }
                    }>{t!(i18n, contacts.add_label)}</button>
                </div>
                <h2>{t!(i18n, contacts.broadcasts)}</h2>
                <p data-testid="contact-opt-out" data-opted-out=opted_out.to_string()>
                    {if opted_out {
                        t_string!(i18n, contacts.opted_out_since, when = contact.opted_out_at.map(short_date).unwrap_or_default()).to_string()
                    } else {
                        t_string!(i18n, contacts.subscribed_long).to_string()
                    }}
                </p>
                <button type="button" class="button" on:click=move |_| {
                    spawn_local(async move {
                        if set_opted_out(id, !opted_out).await.is_ok() { reload(); }
                    });
                }>
                    {if opted_out { t_string!(i18n, contacts.opt_in).to_string() } else { t_string!(i18n, contacts.opt_out).to_string() }}
                </button>
                <MergeDuplicate keep=id />
                {admin.then(|| view! {
                    <h2>{t!(i18n, contacts.danger)}</h2>
                    <button type="button" class="button danger" data-testid="delete-contact" on:click=remove>{t!(i18n, contacts.delete)}</button>
                })}
            </div>
            <div class="card">
                <h2>{t!(i18n, contacts.notes)}</h2>
                <form class="form" on:submit=add_note data-testid="note-form">
                    <textarea rows="3" aria-label=move || t_string!(i18n, contacts.note_placeholder).to_string() placeholder=move || t_string!(i18n, contacts.note_placeholder).to_string() prop:value=move || note.get() on:input=move |ev| note.set(event_target_value(&ev))></textarea>
                    {move || note_problem.get().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
                    <button type="submit" class="button">{t!(i18n, contacts.add_note)}</button>
                </form>
                <Show when=move || notes.with(Vec::is_empty)>
                    <p class="muted small">{t!(i18n, contacts.no_notes)}</p>
                </Show>
                <ol class="timeline" data-testid="notes">
                    {move || notes.get().into_iter().map(|n| view! {
                        <li>
                            <div class="small muted">{n.author.clone().unwrap_or_default()} " · " {short_date(n.created_at)}</div>
                            <div class="note-body">{n.body.clone()}</div>
                        </li>
                    }).collect_view()}
                </ol>
                <h2>{t!(i18n, contacts.conversations)}</h2>
                {if data.conversations.is_empty() {
                    view! { <p class="muted small">{t!(i18n, contacts.no_conversations)}</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain-list" data-testid="contact-conversations">
                            {data.conversations.iter().map(|c| view! {
                                <li>
                                    <a href=format!("/inbox/{}", c.id.0)>{c.last_preview.clone().unwrap_or_default()}</a>
                                    <span class="muted small">" · " {short_date(c.last_message_at)} " · " {c.status.as_str()}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </div>
        </div>
    }
    .into_any()
}

/// Finds another contact of the same person and merges it into this one.
#[component]
fn MergeDuplicate(keep: i64) -> impl IntoView {
    let i18n = use_i18n();
    let query = RwSignal::new(String::new());
    let found = RwSignal::new(Vec::<Contact>::new());
    let notice = RwSignal::new(None::<String>);
    let search = move |ev: leptos::ev::Event| {
        let text = event_target_value(&ev);
        query.set(text.clone());
        if text.trim().chars().count() < 2 {
            found.set(Vec::new());
            return;
        }
        spawn_local(async move {
            let filter = ContactFilter { search: text, ..ContactFilter::default() };
            if let Ok(page) = list_contacts(filter, 0).await {
                found.try_set(page.contacts.into_iter().filter(|c| c.id.0 != keep).take(5).collect());
            }
        });
    };
    let merge = move |other: Contact| {
        let who = other.name.clone().unwrap_or_else(|| other.phone.to_string());
        let question = t_string!(i18n, contacts.merge_confirm, other = who).to_string();
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        spawn_local(async move {
            match merge_contacts(keep, other.id.0).await {
                // The page shows the merged contact anew.
                Ok(_) => crate::ui::reload_to(&format!("/contacts/{keep}?merged=1")),
                Err(error) => {
                    notice.try_set(error_text(i18n, &error));
                }
            }
        });
    };
    let merged = leptos_router::hooks::use_query_map().with_untracked(|q| q.get("merged").is_some());
    view! {
        <h2>{t!(i18n, contacts.merge_title)}</h2>
        {merged.then(|| view! { <p class="notice" role="status" data-testid="merged">{t!(i18n, contacts.merged)}</p> })}
        <p class="muted small">{t!(i18n, contacts.merge_hint)}</p>
        <input type="search" data-testid="merge-search" aria-label=move || t_string!(i18n, contacts.merge_search).to_string()
            placeholder=move || t_string!(i18n, contacts.merge_search).to_string() prop:value=move || query.get() on:input=search />
        <ul class="plain-list" data-testid="merge-candidates">
            {move || found.get().into_iter().map(|c| {
                let chosen = c.clone();
                view! {
                    <li>
                        <span>{c.name.clone().unwrap_or_default()} " " <span class="muted">{c.phone.to_string()}</span></span>
                        " "
                        <button type="button" class="button" on:click=move |_| merge(chosen.clone())>{t!(i18n, contacts.merge_button)}</button>
                    </li>
                }
            }).collect_view()}
        </ul>
        {move || notice.get().map(|n| view! { <p class="field-error" role="alert">{n}</p> })}
    }
}
