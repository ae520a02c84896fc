//! The media folder: the files of messages, one folder per workspace (and one for the sandbox
//! network's simulated phones), each file under a random [`MediaName`].
//!
//! - A file is written to a hidden temporary name and renamed when complete, so a crash or a
//!   refused upload never leaves half a file under a real name.
//! - Agents upload what they send (`POST /api/media`); workers store what customers send. Either
//!   way the message refers to the file by name, and only that workspace's members can fetch it
//!   (`GET /media/{workspace}/{name}`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use balas_domain::{
    AppError, Field, FieldError, Issue, Media, MediaKind, MediaName, WorkspaceId, check_upload, parse_file_name,
};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::accounts::Caller;
use crate::{AppState, internal};

/// Which folder of the media store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Workspace(WorkspaceId),
    /// The simulated network's files (what its customers' phones send and receive).
    Sandbox,
}

impl Area {
    fn folder(self) -> String {
        match self {
            Area::Workspace(id) => id.0.to_string(),
            Area::Sandbox => "sandbox".to_owned(),
        }
    }
}

/// Where media files are kept (`data/media` by default).
#[derive(Debug, Clone)]
pub struct MediaStore {
    root: Arc<PathBuf>,
}

/// Why a file was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("the upload broke off: {0}")]
    Body(String),
    #[error("the media folder cannot be written: {0}")]
    Io(#[from] std::io::Error),
}

impl MediaStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: Arc::new(root.into()) }
    }

    /// The path of a stored file (which may not exist).
    pub fn path(&self, area: Area, name: &MediaName) -> PathBuf {
        self.root.join(area.folder()).join(name.as_str())
    }

    async fn temp(&self, area: Area, name: &MediaName) -> std::io::Result<PathBuf> {
        let folder = self.root.join(area.folder());
        tokio::fs::create_dir_all(&folder).await?;
        Ok(folder.join(format!(".{}.part", name.as_str())))
    }

    /// Stores `bytes` as a new file of type `mime`.
    pub async fn put(&self, area: Area, mime: &str, bytes: &[u8]) -> std::io::Result<MediaName> {
        let name = MediaName::new(rand::random(), mime);
        let temp = self.temp(area, &name).await?;
        tokio::fs::write(&temp, bytes).await?;
        tokio::fs::rename(&temp, self.path(area, &name)).await?;
        Ok(name)
    }

    /// Stores a body as it arrives, refusing it (and keeping nothing) once it passes `max` bytes.
    /// Returns the name, the size and the first bytes (to check what the file really is).
    pub async fn put_stream<B, E>(
        &self,
        area: Area,
        mime: &str,
        mut body: impl Stream<Item = Result<B, E>> + Unpin,
        max: u64,
    ) -> Result<(MediaName, u64, Vec<u8>), PutError>
    where
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let name = MediaName::new(rand::random(), mime);
        let temp = self.temp(area, &name).await?;
        let written = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            let (mut size, mut head) = (0u64, Vec::new());
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| PutError::Body(e.to_string()))?;
                let chunk = chunk.as_ref();
                size += chunk.len() as u64;
                if size > max {
                    return Err(PutError::TooLarge { max });
                }
                if head.len() < 16 {
                    head.extend(chunk.iter().take(16 - head.len()));
                }
                file.write_all(chunk).await?;
            }
            file.sync_all().await?;
            Ok((size, head))
        }
        .await;
        match written {
            Ok((size, head)) => {
                tokio::fs::rename(&temp, self.path(area, &name)).await?;
                Ok((name, size, head))
            }
            Err(error) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(error)
            }
        }
    }

    /// Copies a file to another area under a new name (a hard link where the file system allows).
    pub async fn copy(&self, from: Area, name: &MediaName, to: Area) -> std::io::Result<MediaName> {
        // The same type, so the same extension.
        let copy = MediaName::new(rand::random(), name.served_mime());
        let (source, target) = (self.path(from, name), self.path(to, &copy));
        let temp = self.temp(to, &copy).await?;
        if tokio::fs::hard_link(&source, &temp).await.is_err() {
            tokio::fs::copy(&source, &temp).await?;
        }
        tokio::fs::rename(&temp, &target).await?;
        Ok(copy)
    }

    /// The size of a stored file; `None` when there is no such file.
    pub async fn size(&self, area: Area, name: &MediaName) -> Option<u64> {
        tokio::fs::metadata(self.path(area, name)).await.ok().filter(|m| m.is_file()).map(|m| m.len())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Whether the first bytes of a photo are what its type says (a browser is told the type when it
/// shows the photo, so it must be true).
fn looks_like(mime: &str, head: &[u8]) -> bool {
    match mime {
        "image/jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        _ => true,
    }
}

fn file_error(issue: Issue) -> AppError {
    AppError::invalid(FieldError::new(Field::File, issue))
}

/// Stores a file an agent will send from `area` (their workspace's, or the sandbox's for a
/// simulated customer): checks the type and size against WhatsApp's limits before reading it
/// (from `length`, when the client said it) and while reading it, and that a photo is one.
pub async fn store_upload<B, E>(
    state: &AppState,
    area: Area,
    mime: &str,
    file_name: &str,
    length: Option<u64>,
    body: impl Stream<Item = Result<B, E>> + Unpin,
) -> Result<Media, AppError>
where
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let file_name = parse_file_name(file_name).map_err(AppError::invalid)?;
    let kind = check_upload(&mime, length.unwrap_or(1)).map_err(AppError::invalid)?;
    let (name, size, head) = match state.media.put_stream(area, &mime, body, kind.max_bytes()).await {
        Ok(stored) => stored,
        Err(PutError::TooLarge { .. }) => {
            return Err(file_error(Issue::FileTooLarge { max_mb: (kind.max_bytes() >> 20) as u32 }));
        }
        Err(PutError::Body(reason)) => return Err(AppError::Transport { message: reason }),
        Err(error) => return Err(internal(error)),
    };
    let refused = if size == 0 {
        Some(Issue::Required)
    } else if !looks_like(&mime, &head) {
        Some(Issue::FileType)
    } else {
        None
    };
    if let Some(issue) = refused {
        let _ = tokio::fs::remove_file(state.media.path(area, &name)).await;
        return Err(file_error(issue));
    }
    Ok(Media { kind, mime, file_name: Some(file_name), size, name })
}

/// How long fetching a file by URL may take, all of it.
const DOWNLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The client [`download`] uses: three redirects at most, private addresses only when allowed.
pub fn fetch_client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    crate::outbound::client(allow_private, 3)
        .timeout(DOWNLOAD_TIMEOUT)
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
}

/// Fetches the file at `url` (checked already, see [`balas_domain::check_url`]) into `area`,
/// with the same checks as an upload: the type the server declares, WhatsApp's size limit (from
/// `Content-Length` before reading, and while reading), and a photo that is one. The file name is
/// `file_name`, or the URL's last path segment. A download that fails (no answer, a status other
/// than 2xx, a broken body, a timeout) is a [`Field::Url`] error; type and size are [`Field::File`].
pub async fn download(state: &AppState, area: Area, url: &str, file_name: Option<&str>) -> Result<Media, AppError> {
    crate::outbound::check(state.settings.allow_private_urls, Field::Url, url).map_err(AppError::invalid)?;
    let failed = |status: u16| AppError::invalid(FieldError::new(Field::Url, Issue::DownloadFailed { status }));
    let response = state.fetch_http.get(url).send().await.map_err(|error| {
        if crate::outbound::is_refusal(&error) {
            return AppError::invalid(FieldError::new(Field::Url, Issue::PrivateAddress));
        }
        tracing::info!(%error, "a media download got no answer");
        failed(0)
    })?;
    if !response.status().is_success() {
        return Err(failed(response.status().as_u16()));
    }
    let mime = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let name = match file_name {
        Some(name) => name.to_owned(),
        None => response
            .url()
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|last| !last.is_empty())
            .unwrap_or("file")
            .to_owned(),
    };
    let length = response.content_length();
    let body = futures::stream::unfold(response, |mut response| async move {
        match response.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), response)),
            Ok(None) => None,
            Err(error) => Some((Err(error), response)),
        }
    });
    match store_upload(state, area, &mime, &name, length, Box::pin(body)).await {
        Err(AppError::Transport { message }) => {
            tracing::info!(%message, "a media download broke off");
            Err(failed(0))
        }
        other => other,
    }
}

/// A file an agent uploaded earlier, for a message: it must be in their workspace's folder. Its
/// type and size come from the stored file, not from the caller.
pub async fn uploaded(state: &AppState, area: Area, name: &str, file_name: &str) -> Result<Media, AppError> {
    let name = MediaName::parse(name).map_err(AppError::invalid)?;
    let file_name = parse_file_name(file_name).map_err(AppError::invalid)?;
    let size = state.media.size(area, &name).await.ok_or_else(|| file_error(Issue::NotAllowed))?;
    let mime = name.served_mime();
    let kind = MediaKind::of_mime(mime).ok_or_else(|| file_error(Issue::FileType))?;
    Ok(Media { kind, mime: mime.to_owned(), file_name: Some(file_name), size, name })
}

/// Where the file `name` of `workspace` is, for a member of that workspace. Any other caller (or a
/// name that is not a stored file) gets `NotFound`, so nothing tells whether it exists.
pub async fn file_for(
    state: &AppState,
    caller: &Caller,
    workspace: i64,
    name: &str,
) -> Result<(PathBuf, MediaName), AppError> {
    caller.require_active()?;
    let name = MediaName::parse(name).map_err(|_| AppError::NotFound)?;
    if caller.me.workspace_id.0 != workspace {
        return Err(AppError::NotFound);
    }
    let area = Area::Workspace(caller.me.workspace_id);
    state.media.size(area, &name).await.ok_or(AppError::NotFound)?;
    Ok((state.media.path(area, &name), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<&'static [u8], String>> + Unpin {
        futures::stream::iter(parts.iter().map(|p| Ok(*p)).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn files_are_complete_or_absent() {
        let dir = tempfile_dir();
        let store = MediaStore::new(&dir);
        let area = Area::Workspace(WorkspaceId(7));
        let (name, size, head) =
            store.put_stream(area, "image/png", chunks(&[b"\x89PNG\r\n", b"\x1a\nrest"]), 100).await.unwrap();
        assert_eq!((size, &head[..8]), (12, &b"\x89PNG\r\n\x1a\n"[..]));
        assert_eq!(std::fs::read(store.path(area, &name)).unwrap(), b"\x89PNG\r\n\x1a\nrest");
        assert!(name.as_str().ends_with(".png"));
        let refused = store.put_stream(area, "image/png", chunks(&[b"12345", b"67890"]), 8).await;
        assert!(matches!(refused, Err(PutError::TooLarge { max: 8 })));
        // Nothing is left of the refused file, not even its temporary.
        let left: Vec<_> = std::fs::read_dir(dir.join("7")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from(name.as_str())]);
        let copy = store.copy(area, &name, Area::Sandbox).await.unwrap();
        assert_ne!(copy, name);
        assert_eq!(store.size(Area::Sandbox, &copy).await, Some(12));
        assert_eq!(store.size(Area::Workspace(WorkspaceId(8)), &name).await, None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("balas-media-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn photos_must_be_what_they_say() {
        assert!(looks_like("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!looks_like("image/jpeg", b"<html>"));
        assert!(!looks_like("image/png", b"GIF89a"));
        assert!(looks_like("application/pdf", b"%PDF-1.7"));
    }
}
