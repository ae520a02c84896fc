//! Files in chats: showing a message's file, and attaching one to send (checked against
//! WhatsApp's types and sizes in the browser first, then uploaded with a progress bar).

use balas_domain::{AppError, Attachment, Field, Media, MediaKind, accepted_types, human_size};
use leptos::prelude::*;

use crate::i18n::*;
use crate::ui::{error_text, issue_text};

/// A message's file: the photo, a video or audio player, or a link that downloads the document.
#[component]
pub fn MediaView(media: Media, url: String) -> impl IntoView {
    let name = media.file_name.clone().unwrap_or_else(|| media.kind.label().to_owned());
    let size = human_size(media.size);
    match (media.kind, media.inline()) {
        (MediaKind::Image, true) => {
            let link = url.clone();
            view! {
                <a href=link target="_blank" rel="noopener" class="media-image">
                    <img src=url alt=name loading="lazy" data-testid="media-image" />
                </a>
            }
            .into_any()
        }
        (MediaKind::Video, true) => {
            view! { <video src=url controls preload="metadata" class="media-video" data-testid="media-video"></video> }
                .into_any()
        }
        (MediaKind::Audio, true) => {
            view! { <audio src=url controls preload="metadata" class="media-audio" data-testid="media-audio"></audio> }
                .into_any()
        }
        _ => {
            let download = name.clone();
            view! {
                <a href=url download=download class="media-doc" data-testid="media-document">
                    <span aria-hidden="true">"📄"</span>
                    <span class="media-doc-name">{name}</span>
                    <span class="muted small">{size}</span>
                </a>
            }
            .into_any()
        }
    }
}

/// What a message refers to when it sends an uploaded file.
pub fn attachment_of(media: &Media) -> Attachment {
    Attachment {
        name: media.name.to_string(),
        file_name: media.file_name.clone().unwrap_or_else(|| media.kind.label().to_owned()),
    }
}

/// A problem with a file, in words.
pub fn file_problem(i18n: leptos_i18n::I18nContext<Locale>, error: &AppError) -> String {
    error
        .field_errors(Field::File)
        .next()
        .map(|e| issue_text(i18n, e.issue))
        .or_else(|| error_text(i18n, error))
        .unwrap_or_else(|| t_string!(i18n, media.failed).to_string())
}

/// The paper-clip button of a composer, with the upload's progress and the chosen file (which can
/// be removed before sending). `endpoint` takes the upload (`/api/media`, or the sandbox's).
#[component]
pub fn AttachButton(
    endpoint: &'static str,
    attachment: RwSignal<Option<Media>>,
    problem: RwSignal<Option<String>>,
    #[prop(into)] disabled: Signal<bool>,
) -> impl IntoView {
    let i18n = use_i18n();
    let progress = RwSignal::new(None::<u32>);
    let input = NodeRef::<leptos::html::Input>::new();
    let accept = accepted_types().collect::<Vec<_>>().join(",");
    let on_change = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let Some(element) = input.get_untracked() else { return };
            let Some(file) = element.files().and_then(|list| list.get(0)) else { return };
            // Choosing the same file again must fire another change.
            element.set_value("");
            if let Err(error) = balas_domain::check_upload(&file.type_(), file.size() as u64) {
                problem.set(Some(issue_text(i18n, error.issue)));
                return;
            }
            problem.set(None);
            attachment.set(None);
            progress.set(Some(0));
            leptos::task::spawn_local(async move {
                let uploaded = upload(endpoint, file, progress).await;
                progress.try_set(None);
                match uploaded {
                    Ok(media) => {
                        attachment.try_set(Some(media));
                    }
                    Err(error) => {
                        problem.try_set(Some(file_problem(i18n, &error)));
                    }
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (endpoint, input, progress, attachment, problem);
    };
    let label = move || t_string!(i18n, media.attach).to_string();
    view! {
        <label class="attach" class:disabled=move || disabled.get() title=label>
            <span aria-hidden="true">"📎"</span>
            <input
                type="file"
                class="visually-hidden"
                node_ref=input
                accept=accept
                aria-label=label
                data-testid="attach-input"
                disabled=move || disabled.get() || progress.get().is_some()
                on:change=on_change
            />
        </label>
        {move || progress.get().map(|done| view! {
            <span class="upload small" data-testid="upload-progress">
                <progress max="100" value=done></progress>
                {format!("{done}%")}
            </span>
        })}
        {move || attachment.get().map(|media| view! {
            <span class="attachment small" data-testid="attachment">
                <span>{media.label()}</span>
                <span class="muted">{human_size(media.size)}</span>
                <button
                    type="button"
                    class="link-button"
                    aria-label=move || t_string!(i18n, media.remove).to_string()
                    on:click=move |_| attachment.set(None)
                >
                    "×"
                </button>
            </span>
        })}
    }
    .into_any()
}

/// Uploads a file with its type, reporting the share sent so far.
#[cfg(feature = "hydrate")]
async fn upload(endpoint: &str, file: web_sys::File, progress: RwSignal<Option<u32>>) -> Result<Media, AppError> {
    let failed = |what: &str| AppError::Transport { message: what.to_owned() };
    let name = crate::ui::url_encode(&file.name());
    let mime = Some(file.type_()).filter(|t| !t.is_empty()).unwrap_or_else(|| "application/octet-stream".into());
    let on_upload = move |share: f64| {
        progress.try_set(Some((share * 100.0) as u32));
    };
    let (status, body) = crate::xhr::post_blob(&format!("{endpoint}?name={name}"), &mime, &file, on_upload, |_| {})
        .await
        .map_err(|e| failed(&e))?;
    if status == 201 {
        serde_json::from_str(&body).map_err(|_| failed("the server's answer was not understood"))
    } else {
        Err(serde_json::from_str(&body).unwrap_or_else(|_| failed(&body)))
    }
}
