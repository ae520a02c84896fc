//! Importing contacts from a CSV file: choose the file, map its columns (guessed from the header),
//! check the first rows, choose what happens to bad rows, then watch it go with a progress bar.
//! The report names every refused line, and the refused lines can be downloaded to fix and import
//! again.

use balas_domain::{Attribute, ImportColumn, ImportField, ImportMode, ImportReport};
#[cfg(feature = "hydrate")]
use balas_domain::{IMPORT_MAX_BYTES, ImportUpdate};
use leptos::prelude::*;

use crate::i18n::*;

/// The file as the page read it: its header, first rows and row count.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sample {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    count: usize,
}

/// Reads the header and the first five rows (and counts the rest) of a CSV text.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn sample(text: &str) -> Result<Sample, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header: Vec<String> =
        reader.headers().map_err(|e| e.to_string())?.iter().map(|h| h.trim().to_owned()).collect();
    if header.iter().all(String::is_empty) {
        return Err("no header".into());
    }
    let mut rows = Vec::new();
    let mut count = 0;
    for record in reader.records() {
        count += 1;
        if let (Ok(record), true) = (record, rows.len() < 5) {
            rows.push(record.iter().map(str::to_owned).collect());
        }
    }
    Ok(Sample { header, rows, count })
}

fn field_label(i18n: leptos_i18n::I18nContext<Locale>, field: ImportField) -> String {
    match field {
        ImportField::Phone => t_string!(i18n, contacts.phone).to_string(),
        ImportField::Name => t_string!(i18n, contacts.name).to_string(),
        ImportField::Email => t_string!(i18n, contacts.email).to_string(),
        ImportField::Labels => t_string!(i18n, contacts.labels).to_string(),
        ImportField::OptedOut => t_string!(i18n, contacts.opted_out).to_string(),
    }
}

/// The refused lines as a CSV to download (line, reason).
fn rejected_csv(report: &ImportReport) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_record(["line", "reason"]);
    for row in &report.rejected {
        let _ = out.write_record([row.line.to_string(), row.reason.clone()]);
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[component]
pub fn ImportPanel(
    attributes: Signal<Vec<Attribute>>,
    done: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let input = NodeRef::<leptos::html::Input>::new();
    let file = StoredValue::new_local(None::<web_sys::File>);
    let read = RwSignal::new(None::<Sample>);
    let mapping = RwSignal::new(Vec::<Option<ImportColumn>>::new());
    let mode = RwSignal::new(ImportMode::ValidRows);
    let problem = RwSignal::new(None::<String>);
    let progress = RwSignal::new(None::<(f64, String)>);
    let report = RwSignal::new(None::<ImportReport>);

    let on_file = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let Some(element) = input.get_untracked() else { return };
            let Some(chosen) = element.files().and_then(|list| list.get(0)) else { return };
            report.set(None);
            read.set(None);
            if chosen.size() as u64 > IMPORT_MAX_BYTES {
                problem.set(Some(t_string!(i18n, contacts.import_too_big, mb = IMPORT_MAX_BYTES >> 20).to_string()));
                return;
            }
            let text = chosen.text();
            file.set_value(Some(chosen));
            leptos::task::spawn_local(async move {
                let text = wasm_bindgen_futures::JsFuture::from(text).await.ok().and_then(|t| t.as_string());
                // The browser replaces bytes that are not UTF-8; the server refuses such files.
                match text.as_deref().map(sample) {
                    Some(Ok(found)) if !text.as_deref().unwrap_or_default().contains('\u{FFFD}') => {
                        let known = attributes.get_untracked();
                        mapping.set(found.header.iter().map(|h| ImportColumn::guess(h, &known)).collect());
                        problem.set(None);
                        read.set(Some(found));
                    }
                    Some(Ok(_)) => problem.set(Some(t_string!(i18n, contacts.import_not_utf8).to_string())),
                    _ => problem.set(Some(t_string!(i18n, contacts.import_unreadable).to_string())),
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (input, file, progress);
    };

    let start = move |_| {
        let fields = mapping.get_untracked();
        if !fields.contains(&Some(ImportColumn::Field(ImportField::Phone))) {
            problem.set(Some(t_string!(i18n, contacts.import_need_phone).to_string()));
            return;
        }
        let map: Vec<String> = fields.iter().map(|f| f.as_ref().map(ImportColumn::token).unwrap_or_default()).collect();
        let mode_name = match mode.get_untracked() {
            ImportMode::ValidRows => "valid_rows",
            ImportMode::AllOrNothing => "all_or_nothing",
        };
        let url = format!("/api/contacts/import?map={}&mode={mode_name}", map.join(","));
        problem.set(None);
        progress.set(Some((0.0, t_string!(i18n, contacts.import_uploading).to_string())));
        #[cfg(feature = "hydrate")]
        {
            let Some(chosen) = file.get_value() else { return };
            leptos::task::spawn_local(async move {
                let on_upload = move |share: f64| {
                    progress.try_set(Some((share * 0.3, t_string!(i18n, contacts.import_uploading).to_string())));
                };
                let on_answer = move |text: &str| {
                    let last = text.lines().filter_map(|l| serde_json::from_str::<ImportUpdate>(l).ok()).next_back();
                    if let Some(ImportUpdate::Progress { done, total }) = last {
                        let share = if total == 0 { 1.0 } else { done as f64 / total as f64 };
                        let words = t_string!(i18n, contacts.import_progress, done = done, total = total).to_string();
                        progress.try_set(Some((0.3 + share * 0.7, words)));
                    }
                };
                let answer = crate::xhr::post_blob(&url, "text/csv", &chosen, on_upload, on_answer).await;
                progress.try_set(None);
                let last = answer.as_ref().ok().and_then(|(_, text)| {
                    text.lines().filter_map(|l| serde_json::from_str::<ImportUpdate>(l).ok()).next_back()
                });
                match last {
                    Some(ImportUpdate::Done { report: finished }) => {
                        report.try_set(Some(finished));
                        done();
                    }
                    _ => {
                        let reason =
                            answer.err().unwrap_or_else(|| t_string!(i18n, contacts.import_failed).to_string());
                        problem.try_set(Some(reason));
                    }
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (url, done);
    };

    view! {
        <div class="card import" data-testid="import">
            <h2>{t!(i18n, contacts.import_title)}</h2>
            <p class="muted small">{t!(i18n, contacts.import_help)}</p>
            <input type="file" accept=".csv,text/csv" node_ref=input data-testid="import-file" on:change=on_file
                aria-label=move || t_string!(i18n, contacts.import_title).to_string() />
            {move || problem.get().map(|p| view! { <p class="field-error" role="alert" data-testid="import-problem">{p}</p> })}
            {move || read.get().map(|found| {
                let columns = found.header.clone();
                view! {
                    <p class="small">{t_string!(i18n, contacts.import_rows, count = found.count).to_string()}</p>
                    <div class="table-wrap">
                        <table class="table small" data-testid="import-preview">
                            <thead>
                                <tr>
                                    {columns.iter().enumerate().map(|(i, name)| view! {
                                        <th>
                                            <div>{name.clone()}</div>
                                            <select data-testid="import-map" aria-label=format!("{name}") on:change=move |ev| {
                                                let field = ImportColumn::parse(&event_target_value(&ev));
                                                mapping.update(|m| if let Some(slot) = m.get_mut(i) { *slot = field; });
                                            }>
                                                <option value="" selected=move || mapping.with(|m| m.get(i).cloned().flatten().is_none())>{t!(i18n, contacts.import_skip)}</option>
                                                {ImportField::ALL.into_iter().map(|f| (ImportColumn::Field(f), field_label(i18n, f)))
                                                    .chain(attributes.get_untracked().into_iter().map(|a| (ImportColumn::Attribute(a.key.clone()), a.name.to_string())))
                                                    .map(|(column, text)| {
                                                        let token = column.token();
                                                        view! {
                                                            <option value=token selected=move || mapping.with(|m| m.get(i).cloned().flatten() == Some(column.clone()))>{text}</option>
                                                        }
                                                    }).collect_view()}
                                            </select>
                                        </th>
                                    }).collect_view()}
                                </tr>
                            </thead>
                            <tbody>
                                {found.rows.into_iter().map(|row| view! {
                                    <tr>{row.into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}</tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    <fieldset class="choices">
                        <legend>{t!(i18n, contacts.import_mode)}</legend>
                        <label><input type="radio" name="import_mode" checked on:change=move |_| mode.set(ImportMode::ValidRows) /> {t!(i18n, contacts.import_valid_rows)}</label>
                        <label><input type="radio" name="import_mode" data-testid="all-or-nothing" on:change=move |_| mode.set(ImportMode::AllOrNothing) /> {t!(i18n, contacts.import_all_or_nothing)}</label>
                    </fieldset>
                    <button type="button" class="button primary" data-testid="import-start" disabled=move || progress.get().is_some() on:click=start>
                        {t_string!(i18n, contacts.import_start, count = found.count).to_string()}
                    </button>
                }
            })}
            {move || progress.get().map(|(share, words)| view! {
                <div class="upload" data-testid="import-progress">
                    <progress max="100" value=(share * 100.0) as u32></progress>
                    <span class="small">{words}</span>
                </div>
            })}
            {move || report.get().map(|finished| {
                let download = format!(
                    "data:text/csv;charset=utf-8,{}",
                    crate::ui::url_encode(&rejected_csv(&finished))
                );
                let summary = match &finished.refused {
                    Some(reason) => t_string!(i18n, contacts.import_refused, reason = reason.clone()).to_string(),
                    None if finished.nothing_imported => t_string!(i18n, contacts.import_nothing, count = finished.rejected.len()).to_string(),
                    None => t_string!(i18n, contacts.import_done, created = finished.created, updated = finished.updated, rejected = finished.rejected.len()).to_string(),
                };
                let any_rejected = !finished.rejected.is_empty();
                view! {
                    <div class="import-report" data-testid="import-report">
                        <p role="status"><strong>{summary}</strong></p>
                        {any_rejected.then(|| view! {
                            <ul class="plain-list small" data-testid="import-rejected">
                                {finished.rejected.iter().take(50).map(|r| view! {
                                    <li>{t_string!(i18n, contacts.import_line, line = r.line).to_string()} ": " {r.reason.clone()}</li>
                                }).collect_view()}
                            </ul>
                            <a href=download download="refused-lines.csv" class="button" data-testid="import-rejected-download">{t!(i18n, contacts.import_download)}</a>
                        })}
                    </div>
                }
            })}
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_reads_a_header_the_first_rows_and_guesses_the_columns() {
        let text = "Nama,Nomor WA,Email\nSari,+6281234560001,\n\"Eko, Jr.\",+6281234560005,e@x.id\n";
        let found = sample(text).unwrap();
        assert_eq!((found.header.len(), found.count, found.rows[1][0].as_str()), (3, 2, "Eko, Jr."));
        let guessed: Vec<_> = found.header.iter().map(|h| ImportField::guess(h)).collect();
        assert_eq!(guessed, [Some(ImportField::Name), Some(ImportField::Phone), Some(ImportField::Email)]);
        assert!(sample("").is_err());
        assert_eq!(crate::ui::url_encode("a b&ü"), "a%20b%26%C3%BC");
        let report = ImportReport {
            rejected: vec![balas_domain::RejectedRow { line: 3, reason: "invalid email, \"x\"".into() }],
            ..ImportReport::default()
        };
        assert_eq!(rejected_csv(&report), "line,reason\n3,\"invalid email, \"\"x\"\"\"\n");
    }
}
