//! Plain HTTP from the browser for what server functions do not cover: posting a file with the
//! progress of both its upload and the answer as it streams (XMLHttpRequest: `fetch` tells nothing
//! about an upload's progress).

/// Posts `body` to `url` as `content_type`; `on_upload` hears the share uploaded (0 to 1), and
/// `on_answer` the answer's text so far each time more arrives. Returns the status and the whole
/// answer, or what went wrong on the way.
#[cfg(feature = "hydrate")]
pub async fn post_blob(
    url: &str,
    content_type: &str,
    body: &web_sys::Blob,
    on_upload: impl Fn(f64) + 'static,
    on_answer: impl Fn(&str) + 'static,
) -> Result<(u16, String), String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let xhr = web_sys::XmlHttpRequest::new().map_err(|_| "the browser cannot send files".to_owned())?;
    xhr.open("POST", url).map_err(|_| "the request could not start".to_owned())?;
    let _ = xhr.set_request_header("Content-Type", content_type);
    let uploading = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |event: web_sys::ProgressEvent| {
        if event.length_computable() && event.total() > 0.0 {
            on_upload(event.loaded() / event.total());
        }
    });
    if let Ok(target) = xhr.upload() {
        target.set_onprogress(Some(uploading.as_ref().unchecked_ref()));
    }
    let reader = xhr.clone();
    let answering = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |_: web_sys::ProgressEvent| {
        if let Ok(Some(text)) = reader.response_text() {
            on_answer(&text);
        }
    });
    xhr.set_onprogress(Some(answering.as_ref().unchecked_ref()));
    let done = web_sys::js_sys::Promise::new(&mut |resolve, reject| {
        xhr.set_onload(Some(&resolve));
        xhr.set_onerror(Some(&reject));
        xhr.set_onabort(Some(&reject));
    });
    xhr.send_with_opt_blob(Some(body)).map_err(|_| "the request could not start".to_owned())?;
    let finished = wasm_bindgen_futures::JsFuture::from(done).await;
    drop((uploading, answering));
    finished.map_err(|_| "the connection broke off".to_owned())?;
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    Ok((xhr.status().unwrap_or(0), text))
}
