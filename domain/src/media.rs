//! Files in messages: photos, videos, audio and documents, with the types and sizes WhatsApp
//! accepts (the same rules decide in the browser before an upload and on the server after it).

use serde::{Deserialize, Serialize};

use crate::{Field, FieldError, Issue};

/// What kind of file a message carries; WhatsApp shows (and limits) each differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
}

const MB: u64 = 1024 * 1024;

impl MediaKind {
    /// The largest file of this kind WhatsApp sends.
    pub fn max_bytes(self) -> u64 {
        match self {
            MediaKind::Image => 5 * MB,
            MediaKind::Video | MediaKind::Audio => 16 * MB,
            MediaKind::Document => 100 * MB,
        }
    }

    /// The kind as the API writes it (`image`), like its serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
        }
    }

    /// The kind in words, for a message whose file could not be had ("Photo").
    pub fn label(self) -> &'static str {
        match self {
            MediaKind::Image => "Photo",
            MediaKind::Video => "Video",
            MediaKind::Audio => "Audio",
            MediaKind::Document => "Document",
        }
    }

    /// The kind of a file of type `mime` (parameters such as `; codecs=opus` are ignored), if
    /// WhatsApp accepts that type at all: JPEG and PNG photos; MP4 and 3GPP videos; AAC, AMR, MP3,
    /// M4A and OGG audio; PDF, Word, Excel, PowerPoint and plain-text documents.
    pub fn of_mime(mime: &str) -> Option<Self> {
        MEDIA_TYPES.iter().find(|t| t.mime == essence(mime)).map(|t| t.kind)
    }
}

/// A MIME type without its parameters, in lower case.
fn essence(mime: &str) -> String {
    mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

struct MediaType {
    mime: &'static str,
    kind: MediaKind,
    extension: &'static str,
}

const fn media_type(mime: &'static str, kind: MediaKind, extension: &'static str) -> MediaType {
    MediaType { mime, kind, extension }
}

/// The types WhatsApp accepts, with the extension Balas stores each under.
const MEDIA_TYPES: &[MediaType] = &[
    media_type("image/jpeg", MediaKind::Image, "jpg"),
    media_type("image/png", MediaKind::Image, "png"),
    media_type("video/mp4", MediaKind::Video, "mp4"),
    media_type("video/3gpp", MediaKind::Video, "3gp"),
    media_type("audio/aac", MediaKind::Audio, "aac"),
    media_type("audio/amr", MediaKind::Audio, "amr"),
    media_type("audio/mpeg", MediaKind::Audio, "mp3"),
    media_type("audio/mp4", MediaKind::Audio, "m4a"),
    media_type("audio/ogg", MediaKind::Audio, "ogg"),
    media_type("application/pdf", MediaKind::Document, "pdf"),
    media_type("text/plain", MediaKind::Document, "txt"),
    media_type("application/msword", MediaKind::Document, "doc"),
    media_type("application/vnd.openxmlformats-officedocument.wordprocessingml.document", MediaKind::Document, "docx"),
    media_type("application/vnd.ms-excel", MediaKind::Document, "xls"),
    media_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", MediaKind::Document, "xlsx"),
    media_type("application/vnd.ms-powerpoint", MediaKind::Document, "ppt"),
    media_type(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        MediaKind::Document,
        "pptx",
    ),
];

/// The types WhatsApp accepts, for a file picker's `accept`.
pub fn accepted_types() -> impl Iterator<Item = &'static str> {
    MEDIA_TYPES.iter().map(|t| t.mime)
}

/// A size for people: "830 B", "14 KB", "2.4 MB".
pub fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..MB => format!("{} KB", bytes.div_ceil(1024)),
        _ => format!("{:.1} MB", bytes as f64 / MB as f64),
    }
}

/// A file attached to a message. The bytes are kept in the workspace's media folder under `name`;
/// the rest describes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Media {
    pub kind: MediaKind,
    /// The file's MIME type, as WhatsApp (or the uploader) gave it.
    pub mime: String,
    /// The name it had on the sender's device, when known (documents always have one).
    pub file_name: Option<String>,
    pub size: u64,
    /// Where it is stored: see [`MediaName`].
    pub name: MediaName,
}

impl Media {
    /// A short description for the conversation list: "📷 Photo", "📄 invoice.pdf".
    pub fn label(&self) -> String {
        let icon = match self.kind {
            MediaKind::Image => "📷",
            MediaKind::Video => "🎬",
            MediaKind::Audio => "🎤",
            MediaKind::Document => "📄",
        };
        match (self.kind, self.file_name.as_deref()) {
            (MediaKind::Document, Some(name)) => format!("{icon} {name}"),
            _ => format!("{icon} {}", self.kind.label()),
        }
    }

    /// Whether a browser may show it in the page (a photo, a video, audio). Everything else is
    /// served as a download, never rendered on Balas' own origin.
    pub fn inline(&self) -> bool {
        self.kind != MediaKind::Document && self.name.extension() != MediaName::UNKNOWN_EXTENSION
    }
}

/// The name a stored file has in its media folder: 32 random hex digits and an extension that
/// follows from its type (`bin` for types WhatsApp does not send as such), e.g.
/// `4f1c…9a.jpg`. Nothing else is accepted, so a name can never leave its folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaName(String);

impl MediaName {
    pub const UNKNOWN_EXTENSION: &'static str = "bin";

    /// A name from 16 random bytes for a file of type `mime`.
    pub fn new(random: [u8; 16], mime: &str) -> Self {
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("{hex}.{}", Self::extension_of(mime)))
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new(Field::File, Issue::NotAllowed);
        let (stem, extension) = raw.split_once('.').ok_or_else(invalid)?;
        let known = extension == Self::UNKNOWN_EXTENSION || MEDIA_TYPES.iter().any(|t| t.extension == extension);
        if stem.len() != 32 || !stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) || !known {
            return Err(invalid());
        }
        Ok(Self(raw.to_owned()))
    }

    fn extension_of(mime: &str) -> &'static str {
        let mime = essence(mime);
        MEDIA_TYPES.iter().find(|t| t.mime == mime).map_or(Self::UNKNOWN_EXTENSION, |t| t.extension)
    }

    pub fn extension(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or_default()
    }

    /// The type to serve the file with: the one its extension stands for, or
    /// `application/octet-stream`.
    pub fn served_mime(&self) -> &'static str {
        MEDIA_TYPES.iter().find(|t| t.extension == self.extension()).map_or("application/octet-stream", |t| t.mime)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(MediaName);

/// The name a file is sent with: at most 200 characters, no control characters and no path.
pub fn parse_file_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FieldError::new(Field::File, Issue::Required));
    }
    if name.chars().count() > 200 {
        return Err(FieldError::new(Field::File, Issue::TooLong { max: 200 }));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(FieldError::new(Field::File, Issue::ControlCharacters));
    }
    if name.contains(['/', '\\']) {
        return Err(FieldError::new(Field::File, Issue::NotAllowed));
    }
    Ok(name.to_owned())
}

/// Checks a file before it is stored for sending: a type WhatsApp accepts and a size within its
/// limit for that kind. Returns the kind.
pub fn check_upload(mime: &str, size: u64) -> Result<MediaKind, FieldError> {
    let kind = MediaKind::of_mime(mime).ok_or(FieldError::new(Field::File, Issue::FileType))?;
    if size == 0 {
        return Err(FieldError::new(Field::File, Issue::Required));
    }
    if size > kind.max_bytes() {
        return Err(FieldError::new(Field::File, Issue::FileTooLarge { max_mb: (kind.max_bytes() / MB) as u32 }));
    }
    Ok(kind)
}

/// The most characters of a caption under a file (WhatsApp's limit).
pub const MAX_CAPTION_CHARS: usize = 1024;

/// The words under a file: may be empty, at most [`MAX_CAPTION_CHARS`], no control characters
/// other than line breaks and tabs.
pub fn parse_caption(raw: &str) -> Result<String, FieldError> {
    if raw.chars().count() > MAX_CAPTION_CHARS {
        return Err(FieldError::new(Field::Text, Issue::TooLong { max: MAX_CAPTION_CHARS }));
    }
    if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(FieldError::new(Field::Text, Issue::ControlCharacters));
    }
    Ok(raw.trim().to_owned())
}

/// A file uploaded earlier, as a sender refers to it in a message: the stored name and the name to
/// send it with. Everything else about it is read from the stored file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub file_name: String,
}

/// The text of a message with or without a file: alone it must be a [`crate::MessageText`];
/// under a file it is a caption, which may be empty (and must be, for audio: WhatsApp shows
/// none).
pub fn message_body(text: &str, media: Option<&Media>) -> Result<String, FieldError> {
    match media {
        None => crate::MessageText::parse(text).map(String::from),
        Some(media) => {
            let caption = parse_caption(text)?;
            if media.kind == MediaKind::Audio && !caption.is_empty() {
                return Err(FieldError::new(Field::Text, Issue::NotAllowed));
            }
            Ok(caption)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapps_types_and_limits_decide_what_may_be_sent() {
        assert_eq!(check_upload("image/jpeg", 5 * MB), Ok(MediaKind::Image));
        assert_eq!(check_upload("IMAGE/PNG", 1), Ok(MediaKind::Image));
        assert_eq!(check_upload("audio/ogg; codecs=opus", 100), Ok(MediaKind::Audio));
        assert_eq!(check_upload("application/pdf", 100 * MB), Ok(MediaKind::Document));
        assert_eq!(check_upload("image/jpeg", 5 * MB + 1).unwrap_err().issue, Issue::FileTooLarge { max_mb: 5 });
        assert_eq!(check_upload("video/mp4", 17 * MB).unwrap_err().issue, Issue::FileTooLarge { max_mb: 16 });
        for refused in ["image/gif", "image/svg+xml", "text/html", "application/x-msdownload", ""] {
            assert_eq!(check_upload(refused, 10).unwrap_err().issue, Issue::FileType, "{refused}");
        }
        assert_eq!(check_upload("image/png", 0).unwrap_err().issue, Issue::Required);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(830), "830 B");
        assert_eq!(human_size(14 * 1024 - 5), "14 KB");
        assert_eq!(human_size(5 * MB / 2), "2.5 MB");
    }

    #[test]
    fn stored_names_cannot_leave_their_folder() {
        let name = MediaName::new([0xab; 16], "image/jpeg");
        assert_eq!(name.as_str(), format!("{}.jpg", "ab".repeat(16)));
        assert_eq!(MediaName::parse(name.as_str()), Ok(name.clone()));
        assert_eq!(name.served_mime(), "image/jpeg");
        let other = MediaName::new([1; 16], "application/zip");
        assert_eq!((other.extension(), other.served_mime()), ("bin", "application/octet-stream"));
        for bad in ["../etc/passwd", "ab.jpg", &format!("{}.html", "a".repeat(32)), &format!("{}.jpg", "A".repeat(32))]
        {
            assert!(MediaName::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<MediaName>("\"../../x.jpg\"").is_err());
    }

    #[test]
    fn file_names_and_captions_are_checked() {
        assert_eq!(parse_file_name(" invoice.pdf ").unwrap(), "invoice.pdf");
        assert_eq!(parse_file_name("../x").unwrap_err().issue, Issue::NotAllowed);
        assert_eq!(parse_caption("").unwrap(), "");
        assert_eq!(parse_caption(&"a".repeat(1025)).unwrap_err().issue, Issue::TooLong { max: 1024 });
        let photo = Media {
            kind: MediaKind::Image,
            mime: "image/png".into(),
            file_name: None,
            size: 10,
            name: MediaName::new([2; 16], "image/png"),
        };
        assert!(photo.inline());
        assert_eq!(photo.label(), "📷 Photo");
        let pdf = Media { kind: MediaKind::Document, file_name: Some("a.pdf".into()), ..photo };
        assert!(!pdf.inline());
        assert_eq!(pdf.label(), "📄 a.pdf");
        assert_eq!(message_body(" ", Some(&pdf)).unwrap(), "");
        assert_eq!(message_body(" ", None).unwrap_err().issue, Issue::Required);
        let voice = Media { kind: MediaKind::Audio, ..pdf };
        assert_eq!(message_body("hello", Some(&voice)).unwrap_err().issue, Issue::NotAllowed);
    }
}
