//! Custom attributes in the dashboard: admins define them beside the contact list; agents fill
//! them in on a contact (each checked as they type, with the same rule the server applies) and
//! filter the list by one.

use std::collections::BTreeMap;

use balas_domain::{
    Attribute, AttributeFilter, AttributeId, AttributeKey, AttributeKind, AttributeOp, ContactFilter, Field,
};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{create_attribute, delete_attribute, update_attribute};
use crate::i18n::*;
use crate::ui::{error_text, issue_text};

fn kind_label(i18n: leptos_i18n::I18nContext<Locale>, kind: AttributeKind) -> String {
    match kind {
        AttributeKind::Text => t_string!(i18n, attributes.kind_text).to_string(),
        AttributeKind::Number => t_string!(i18n, attributes.kind_number).to_string(),
        AttributeKind::Date => t_string!(i18n, attributes.kind_date).to_string(),
        AttributeKind::YesNo => t_string!(i18n, attributes.kind_yes_no).to_string(),
        AttributeKind::OneOf => t_string!(i18n, attributes.kind_one_of).to_string(),
    }
}

/// A stored value as people read it (yes/no in their language).
pub fn shown_value(i18n: leptos_i18n::I18nContext<Locale>, attribute: &Attribute, value: &str) -> String {
    match (attribute.kind, value) {
        (AttributeKind::YesNo, "yes") => t_string!(i18n, attributes.yes).to_string(),
        (AttributeKind::YesNo, "no") => t_string!(i18n, attributes.no).to_string(),
        _ => value.to_owned(),
    }
}

/// The values a yes/no or list attribute may take, as (stored value, what people read).
fn choices(i18n: leptos_i18n::I18nContext<Locale>, attribute: &Attribute) -> Vec<(String, String)> {
    if attribute.kind == AttributeKind::YesNo {
        ["yes", "no"].into_iter().map(|v| (v.to_owned(), shown_value(i18n, attribute, v))).collect()
    } else {
        attribute.options.iter().map(|o| (o.clone(), o.clone())).collect()
    }
}

/// The first problem of the form's answer with a field, in the user's language.
fn field_problem(i18n: leptos_i18n::I18nContext<Locale>, error: &balas_domain::AppError, fields: &[Field]) -> String {
    fields
        .iter()
        .find_map(|f| error.field_errors(*f).next())
        .map(|e| issue_text(i18n, e.issue))
        .or_else(|| error_text(i18n, error))
        .unwrap_or_default()
}

/// The workspace's attributes; admins add, rename (or change a list's options) and delete them.
#[component]
pub fn AttributesPanel(attributes: RwSignal<Vec<Attribute>>, admin: bool) -> impl IntoView {
    let i18n = use_i18n();
    let name = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let kind = RwSignal::new(AttributeKind::Text);
    let options = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let editing = RwSignal::new(None::<AttributeId>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, k, o) = (name.get_untracked(), key.get_untracked(), options.get_untracked());
        let chosen = kind.get_untracked().as_str().to_owned();
        spawn_local(async move {
            match create_attribute(n, k, chosen, o).await {
                Ok(list) => {
                    attributes.try_set(list);
                    name.try_set(String::new());
                    key.try_set(String::new());
                    options.try_set(String::new());
                    problem.try_set(None);
                }
                Err(error) => {
                    let fields = [Field::Name, Field::AttributeKey, Field::AttributeKind, Field::AttributeOptions];
                    problem.try_set(Some(field_problem(i18n, &error, &fields)));
                }
            }
        });
    };
    let remove = move |attribute: Attribute| {
        let question = t_string!(i18n, attributes.delete_confirm, name = attribute.name.to_string()).to_string();
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        spawn_local(async move {
            if let Ok(list) = delete_attribute(attribute.id.0).await {
                attributes.try_set(list);
            }
        });
    };
    view! {
        <aside class="card labels-panel" data-testid="attributes">
            <h2>{t!(i18n, attributes.title)}</h2>
            <Show when=move || attributes.with(Vec::is_empty)>
                <p class="muted small">{if admin { t_string!(i18n, attributes.none_admin).to_string() } else { t_string!(i18n, attributes.none).to_string() }}</p>
            </Show>
            <ul class="label-list">
                {move || attributes.get().into_iter().map(|attribute| {
                    let (gone, id) = (attribute.clone(), attribute.id);
                    view! {
                        <li data-testid="attribute" data-key=attribute.key.to_string()>
                            <span>{attribute.name.to_string()}</span>
                            <span class="muted small">{format!("{{{{{}}}}} · {}", attribute.key, kind_label(i18n, attribute.kind))}</span>
                            {admin.then(|| view! {
                                <button type="button" class="link-button" aria-label=move || t_string!(i18n, attributes.edit).to_string()
                                    on:click=move |_| editing.update(|e| *e = if *e == Some(id) { None } else { Some(id) })>"✎"</button>
                                <button type="button" class="link-button" aria-label=move || t_string!(i18n, attributes.delete).to_string()
                                    on:click=move |_| remove(gone.clone())>"×"</button>
                            })}
                        </li>
                        <Show when=move || editing.get() == Some(id)>
                            <EditAttribute attribute=attribute.clone() attributes done=move || editing.set(None) />
                        </Show>
                    }
                }).collect_view()}
            </ul>
            {admin.then(|| view! {
                <form class="form" on:submit=add data-testid="attribute-form">
                    <label for="attribute_name">{t!(i18n, attributes.name)}</label>
                    <input id="attribute_name" maxlength="40" autocomplete="off" prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                    <label for="attribute_key">{t!(i18n, attributes.key)}</label>
                    <input id="attribute_key" maxlength="32" autocomplete="off" prop:value=move || key.get()
                        placeholder=move || AttributeKey::suggest(&name.get())
                        on:input=move |ev| key.set(event_target_value(&ev)) />
                    <label for="attribute_kind">{t!(i18n, attributes.kind)}</label>
                    <select id="attribute_kind" on:change=move |ev| {
                        if let Ok(chosen) = AttributeKind::parse(&event_target_value(&ev)) { kind.set(chosen) }
                    }>
                        {AttributeKind::ALL.map(|k| view! { <option value=k.as_str()>{kind_label(i18n, k)}</option> }).collect_view()}
                    </select>
                    <Show when=move || kind.get() == AttributeKind::OneOf>
                        <label for="attribute_options">{t!(i18n, attributes.options)}</label>
                        <textarea id="attribute_options" rows="3" prop:value=move || options.get()
                            on:input=move |ev| options.set(event_target_value(&ev))></textarea>
                    </Show>
                    {move || problem.get().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
                    <button type="submit" class="button primary">{t!(i18n, attributes.add)}</button>
                </form>
            })}
        </aside>
    }
}

/// Renames an attribute or changes a list's options.
#[component]
fn EditAttribute(
    attribute: Attribute,
    attributes: RwSignal<Vec<Attribute>>,
    done: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let name = RwSignal::new(attribute.name.to_string());
    let options = RwSignal::new(attribute.options.join("\n"));
    let problem = RwSignal::new(None::<String>);
    let id = attribute.id.0;
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, o) = (name.get_untracked(), options.get_untracked());
        spawn_local(async move {
            match update_attribute(id, n, o).await {
                Ok(list) => {
                    attributes.try_set(list);
                    done();
                }
                Err(error) => {
                    problem.try_set(Some(field_problem(i18n, &error, &[Field::Name, Field::AttributeOptions])));
                }
            }
        });
    };
    view! {
        <li>
            <form class="form" on:submit=save data-testid="attribute-edit">
                <input aria-label=move || t_string!(i18n, attributes.name).to_string() maxlength="40" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                {(attribute.kind == AttributeKind::OneOf).then(|| view! {
                    <textarea rows="3" aria-label=move || t_string!(i18n, attributes.options).to_string() prop:value=move || options.get()
                        on:input=move |ev| options.set(event_target_value(&ev))></textarea>
                })}
                {move || problem.get().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
                <button type="submit" class="button">{t!(i18n, attributes.save)}</button>
            </form>
        </li>
    }
}

/// Inputs for a contact's attribute values (key → value as typed), each checked as it changes.
#[component]
pub fn AttributeInputs(
    attributes: Signal<Vec<Attribute>>,
    values: RwSignal<BTreeMap<String, String>>,
) -> impl IntoView {
    let i18n = use_i18n();
    move || {
        attributes
            .get()
            .into_iter()
            .map(|attribute| {
                let key = attribute.key.to_string();
                let input_id = format!("attribute_{key}");
                let (read_key, write_key) = (key.clone(), key.clone());
                let current = move || values.with(|v| v.get(&read_key).cloned().unwrap_or_default());
                let set = move |value: String| values.update(|v| { v.insert(write_key.clone(), value); });
                let checked = attribute.clone();
                let problem = {
                    let current = current.clone();
                    move || checked.value(&current()).err().map(|issue| issue_text(i18n, issue))
                };
                let input = match attribute.kind {
                    AttributeKind::YesNo | AttributeKind::OneOf => {
                        let choices = choices(i18n, &attribute);
                        let current = current.clone();
                        view! {
                            <select id=input_id.clone() data-testid="attribute-input" data-key=key.clone()
                                prop:value=current on:change=move |ev| set(event_target_value(&ev))>
                                <option value="">"—"</option>
                                {choices.into_iter().map(|(value, text)| view! { <option value=value>{text}</option> }).collect_view()}
                            </select>
                        }
                        .into_any()
                    }
                    kind => {
                        let (kind_attr, mode) = match kind {
                            AttributeKind::Date => ("date", "text"),
                            AttributeKind::Number => ("text", "decimal"),
                            _ => ("text", "text"),
                        };
                        view! {
                            <input id=input_id.clone() type=kind_attr inputmode=mode data-testid="attribute-input" data-key=key.clone()
                                prop:value=current on:input=move |ev| set(event_target_value(&ev)) />
                        }
                        .into_any()
                    }
                };
                view! {
                    <label for=input_id>{attribute.name.to_string()}</label>
                    {input}
                    {move || problem().map(|p| view! { <p class="field-error" role="alert">{p}</p> })}
                }
            })
            .collect_view()
    }
}

/// Whether every value is acceptable to its attribute (the form may be sent).
pub fn attributes_valid(attributes: &[Attribute], values: &BTreeMap<String, String>) -> bool {
    attributes.iter().all(|a| a.value(values.get(a.key.as_str()).map_or("", String::as_str)).is_ok())
}

/// The contact list's filter on one attribute: which, how, and the value.
#[component]
pub fn AttributeFilterBar(
    attributes: RwSignal<Vec<Attribute>>,
    filter: RwSignal<ContactFilter>,
    page: RwSignal<u32>,
) -> impl IntoView {
    let i18n = use_i18n();
    let chosen = move || {
        filter.with(|f| {
            f.attribute.as_ref().and_then(|w| attributes.with(|all| all.iter().find(|a| a.id == w.attribute).cloned()))
        })
    };
    let set = move |change: &dyn Fn(&mut AttributeFilter)| {
        page.set(0);
        filter.update(|f| {
            if let Some(wanted) = f.attribute.as_mut() {
                change(wanted);
            }
        });
    };
    let op_label = move |op: AttributeOp| match op {
        AttributeOp::Is => t_string!(i18n, attributes.op_is).to_string(),
        AttributeOp::AtLeast => t_string!(i18n, attributes.op_at_least).to_string(),
        AttributeOp::AtMost => t_string!(i18n, attributes.op_at_most).to_string(),
        AttributeOp::Set => t_string!(i18n, attributes.op_set).to_string(),
        AttributeOp::Unset => t_string!(i18n, attributes.op_unset).to_string(),
    };
    view! {
        <Show when=move || attributes.with(|a| !a.is_empty())>
            <span class="attribute-filter" data-testid="attribute-filter">
                <select
                    aria-label=move || t_string!(i18n, attributes.filter).to_string()
                    data-testid="attribute-filter-which"
                    prop:value=move || filter.with(|f| f.attribute.as_ref().map(|a| a.attribute.0.to_string()).unwrap_or_default())
                    on:change=move |ev| {
                        let id = event_target_value(&ev).parse().ok().map(AttributeId);
                        page.set(0);
                        filter.update(|f| {
                            f.attribute = id.map(|attribute| AttributeFilter { attribute, op: AttributeOp::Set, value: String::new() });
                        });
                    }
                >
                    <option value="">{t!(i18n, attributes.any)}</option>
                    {move || attributes.get().into_iter().map(|a| view! { <option value=a.id.0.to_string()>{a.name.to_string()}</option> }).collect_view()}
                </select>
                {move || chosen().map(|attribute| {
                    let ops: Vec<AttributeOp> =
                        AttributeOp::ALL.into_iter().filter(|op| attribute.kind.ordered() || !matches!(op, AttributeOp::AtLeast | AttributeOp::AtMost)).collect();
                    let takes_value = filter.with(|f| f.attribute.as_ref().is_some_and(|a| a.op.takes_value()));
                    let value_input = match attribute.kind {
                        AttributeKind::YesNo | AttributeKind::OneOf => {
                            let choices = choices(i18n, &attribute);
                            view! {
                                <select aria-label=move || t_string!(i18n, attributes.value).to_string() data-testid="attribute-filter-value"
                                    prop:value=move || filter.with(|f| f.attribute.as_ref().map(|a| a.value.clone()).unwrap_or_default())
                                    on:change=move |ev| { let v = event_target_value(&ev); set(&|a| a.value = v.clone()); }>
                                    <option value="">"—"</option>
                                    {choices.into_iter().map(|(value, text)| view! { <option value=value>{text}</option> }).collect_view()}
                                </select>
                            }.into_any()
                        }
                        kind => view! {
                            <input type=if kind == AttributeKind::Date { "date" } else { "text" } data-testid="attribute-filter-value"
                                aria-label=move || t_string!(i18n, attributes.value).to_string()
                                prop:value=move || filter.with(|f| f.attribute.as_ref().map(|a| a.value.clone()).unwrap_or_default())
                                on:change=move |ev| { let v = event_target_value(&ev); set(&|a| a.value = v.clone()); } />
                        }.into_any(),
                    };
                    view! {
                        <select aria-label=move || t_string!(i18n, attributes.compare).to_string() data-testid="attribute-filter-op"
                            prop:value=move || filter.with(|f| f.attribute.as_ref().map(|a| a.op.as_str()).unwrap_or("set"))
                            on:change=move |ev| {
                                if let Some(op) = AttributeOp::parse(&event_target_value(&ev)) { set(&|a| a.op = op); }
                            }>
                            {ops.into_iter().map(|op| view! { <option value=op.as_str()>{op_label(op)}</option> }).collect_view()}
                        </select>
                        {takes_value.then_some(value_input)}
                    }
                })}
            </span>
        </Show>
    }
}
