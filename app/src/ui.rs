//! Pieces every form uses: errors in the user's language next to the right field, a banner for
//! errors that belong to no field, the language switch.

use balas_domain::{AppError, Field, Issue, Language};
use leptos::prelude::*;
use leptos_i18n::I18nContext;

use crate::i18n::*;

/// The generated locale for one of our languages, and back.
pub fn locale_of(language: Language) -> Locale {
    match language {
        Language::En => Locale::en,
        Language::Id => Locale::id,
    }
}

pub fn language_of(locale: Locale) -> Language {
    match locale {
        Locale::en => Language::En,
        Locale::id => Language::Id,
    }
}

/// One field problem as a sentence.
pub fn issue_text(i18n: I18nContext<Locale>, issue: Issue) -> String {
    match issue {
        Issue::Required => t_string!(i18n, errors.required).to_string(),
        Issue::TooShort { min } => t_string!(i18n, errors.too_short, min = min).to_string(),
        Issue::TooLong { max } => t_string!(i18n, errors.too_long, max = max).to_string(),
        Issue::ControlCharacters => t_string!(i18n, errors.control_characters).to_string(),
        Issue::InvalidEmail => t_string!(i18n, errors.invalid_email).to_string(),
        Issue::NotAllowed => t_string!(i18n, errors.not_allowed).to_string(),
        Issue::Taken => t_string!(i18n, errors.taken).to_string(),
        Issue::Unchanged => t_string!(i18n, errors.unchanged).to_string(),
        Issue::InvalidPhone => t_string!(i18n, errors.invalid_phone).to_string(),
        Issue::OutOfRange { min, max } => t_string!(i18n, errors.out_of_range, min = min, max = max).to_string(),
        Issue::FileType => t_string!(i18n, errors.file_type).to_string(),
        Issue::FileTooLarge { max_mb } => t_string!(i18n, errors.file_too_large, max_mb = max_mb).to_string(),
        Issue::InvalidKey => t_string!(i18n, errors.invalid_key).to_string(),
        Issue::Duplicate => t_string!(i18n, errors.duplicate).to_string(),
        Issue::TooMany { max } => t_string!(i18n, errors.too_many_entries, max = max).to_string(),
        Issue::InvalidNumber => t_string!(i18n, errors.invalid_number).to_string(),
        Issue::InvalidDate => t_string!(i18n, errors.invalid_date).to_string(),
        Issue::InvalidYesNo => t_string!(i18n, errors.invalid_yes_no).to_string(),
        Issue::UnknownAttribute => t_string!(i18n, errors.unknown_attribute).to_string(),
        Issue::InUse => t_string!(i18n, errors.in_use).to_string(),
        Issue::UnknownVariable => t_string!(i18n, errors.unknown_variable).to_string(),
        Issue::BadPlaceholder => t_string!(i18n, errors.bad_placeholder, example = "{{name}}").to_string(),
        Issue::InPast => t_string!(i18n, errors.in_past).to_string(),
        Issue::NoRecipients => t_string!(i18n, errors.no_recipients).to_string(),
        Issue::WrongState => t_string!(i18n, errors.wrong_state).to_string(),
        Issue::InvalidUrl => t_string!(i18n, errors.invalid_url).to_string(),
        Issue::DownloadFailed { status } => t_string!(i18n, errors.download_failed, status = status).to_string(),
        Issue::PrivateAddress => t_string!(i18n, errors.private_address).to_string(),
    }
}

/// An error that belongs to no single field, as a sentence. `None` for field errors (they are shown
/// next to their fields).
pub fn error_text(i18n: I18nContext<Locale>, error: &AppError) -> Option<String> {
    Some(match error {
        AppError::Invalid { .. } => return None,
        AppError::Unauthenticated => t_string!(i18n, errors.unauthenticated).to_string(),
        AppError::Forbidden => t_string!(i18n, errors.forbidden).to_string(),
        AppError::PasswordChangeRequired => t_string!(i18n, errors.password_change_required).to_string(),
        AppError::NotFound => t_string!(i18n, errors.not_found).to_string(),
        AppError::BadCredentials => t_string!(i18n, errors.bad_credentials).to_string(),
        AppError::TooManyAttempts { retry_after_secs, locked: false } => {
            t_string!(i18n, errors.too_many, secs = *retry_after_secs).to_string()
        }
        AppError::TooManyAttempts { retry_after_secs, locked: true } => {
            t_string!(i18n, errors.locked, mins = retry_after_secs.div_ceil(60)).to_string()
        }
        AppError::AlreadySetUp => t_string!(i18n, errors.already_set_up).to_string(),
        AppError::NotSetUp => t_string!(i18n, errors.not_set_up).to_string(),
        AppError::LastAdmin => t_string!(i18n, errors.last_admin).to_string(),
        AppError::InviteInvalid => t_string!(i18n, errors.invite_invalid).to_string(),
        AppError::Internal { reference } => t_string!(i18n, errors.internal, reference = reference.clone()).to_string(),
        AppError::Transport { .. } => t_string!(i18n, errors.transport).to_string(),
    })
}

/// The result of a form's last submission, if any.
pub type Outcome<T> = Signal<Option<Result<T, AppError>>>;

/// The outcome of an action's last submission, as the form components take it.
pub fn outcome<T: Clone + Send + Sync + 'static>(
    value: impl Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
) -> Outcome<T> {
    Signal::derive(move || value.get())
}

fn last_error<T: Send + Sync + 'static>(outcome: Outcome<T>) -> Option<AppError> {
    outcome.with(|o| o.as_ref().and_then(|r| r.as_ref().err().cloned()))
}

/// The problems with one field, shown under it in the user's language.
#[component]
pub fn FieldErrors<T: Send + Sync + 'static>(outcome: Outcome<T>, field: Field) -> impl IntoView {
    let i18n = use_i18n();
    let messages = move || {
        last_error(outcome)
            .map(|e| e.field_errors(field).map(|fe| issue_text(i18n, fe.issue)).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    view! {
        <For each=messages key=|m| m.clone() let:message>
            <p class="field-error" role="alert" data-field=format!("{field:?}")>{message}</p>
        </For>
    }
}

/// The form's error that belongs to no field, as a banner.
#[component]
pub fn FormError<T: Send + Sync + 'static>(outcome: Outcome<T>) -> impl IntoView {
    let i18n = use_i18n();
    let text = move || last_error(outcome).and_then(|e| error_text(i18n, &e));
    view! {
        <Show when=move || text().is_some()>
            <div class="banner banner-error" role="alert">{text}</div>
        </Show>
    }
}

/// An error that stopped a page from loading its data, as a banner.
#[component]
pub fn ErrorBanner(error: AppError) -> impl IntoView {
    let i18n = use_i18n();
    view! { <div class="banner banner-error" role="alert">{move || error_text(i18n, &error)}</div> }
}

/// Leaves the single-page app for `path` with a full page load (after login or logout, so that
/// everything is rendered again for the new session and language).
pub fn reload_to(path: &str) {
    #[cfg(feature = "hydrate")]
    {
        let _ = window().location().set_href(path);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}

/// The language switch. With `remember`, the choice is saved to the user's account too.
#[component]
pub fn LanguageSelect(#[prop(optional)] remember: bool) -> impl IntoView {
    let i18n = use_i18n();
    let on_change = move |ev: leptos::ev::Event| {
        let Ok(language) = Language::parse(&event_target_value(&ev)) else { return };
        i18n.set_locale(locale_of(language));
        if remember {
            leptos::task::spawn_local(async move {
                let _ = crate::api::set_language(language.code().to_owned()).await;
            });
        }
    };
    view! {
        <label class="language-select">
            <span class="visually-hidden">{t!(i18n, nav.language)}</span>
            <select on:change=on_change aria-label=move || t_string!(i18n, nav.language).to_string() data-testid="language">
                {Language::ALL
                    .into_iter()
                    .map(|language| {
                        let selected = move || language_of(i18n.get_locale()) == language;
                        view! {
                            <option value=language.code() selected=selected>
                                {language.endonym()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

/// "Typing…" told to someone else while a person types: `tell(true)` at most every 3 s, and
/// `tell(false)` once after 4 s without a keystroke, or at [`Typing::stop`] (a message was sent).
#[derive(Clone, Copy)]
pub struct Typing<F: Fn(bool) + Copy + 'static> {
    tell: F,
    /// When "typing" was last told (0 while not typing).
    last: StoredValue<f64>,
    /// Bumped by every keystroke, so that only the last one's quiet timer stops.
    generation: StoredValue<u64>,
}

impl<F: Fn(bool) + Copy + 'static> Typing<F> {
    pub fn new(tell: F) -> Self {
        Self { tell, last: StoredValue::new(0.0), generation: StoredValue::new(0) }
    }

    /// A keystroke: tells "typing" if `announce` and not told in the last 3 s, and (re)starts the
    /// quiet timer either way.
    pub fn keystroke(self, announce: bool) {
        let now = crate::live::now_ms();
        if announce && now - self.last.get_value() > 3000.0 {
            self.last.set_value(now);
            (self.tell)(true);
        }
        let generation = self.generation.get_value() + 1;
        self.generation.set_value(generation);
        set_timeout(
            move || {
                // The component may be gone by then.
                if self.generation.try_get_value() == Some(generation) {
                    self.stop();
                }
            },
            std::time::Duration::from_secs(4),
        );
    }

    /// Tells "stopped", if "typing" was told.
    pub fn stop(self) {
        if self.last.try_get_value().unwrap_or(0.0) > 0.0 {
            self.last.set_value(0.0);
            (self.tell)(false);
        }
    }
}

/// Formats a timestamp as date and time in UTC: the same text on the server and in the browser, so
/// hydration finds what it expects.
pub fn format_time(millis: i64) -> String {
    balas_domain::Timestamp(millis).utc_minute()
}

/// `text` for a URL's query or a `data:` URL: every byte but letters, digits and `-_.~`
/// percent-encoded. (Plain Rust, so pages render it on the server too.)
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
