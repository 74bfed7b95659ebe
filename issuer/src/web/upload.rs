//! The form the issue and release pages share: a token pasted into a text
//! area or uploaded as a file, with the CSRF token, sent as multipart.

use axum::extract::Multipart;

use super::WebError;

/// What such a form carried.
pub(crate) struct PastedToken {
    pub csrf: String,
    /// The uploaded file's text if a file was chosen, else the pasted text.
    pub text: String,
    /// A problem with the input itself (an upload that is not text).
    pub input_error: Option<String>,
}

/// Reads the form: `csrf`, the text area `field` and the upload `file`.
/// `what` names the token in messages ("license request").
pub(crate) async fn read(
    mut multipart: Multipart,
    field: &str,
    what: &str,
) -> Result<PastedToken, WebError> {
    let (mut csrf, mut pasted, mut uploaded) = (String::new(), String::new(), None);
    let mut input_error = None;
    // A cut-short, malformed or oversized body is the sender's problem: the
    // page says so (a 4xx), instead of a server error.
    let unreadable = || {
        Some(format!(
            "The form could not be read: it was cut short, malformed or larger than any \
             {what}. Paste or upload only the {what}, and send it again."
        ))
    };
    loop {
        let part = match multipart.next_field().await {
            Ok(Some(part)) => part,
            Ok(None) => break,
            Err(_) => {
                input_error = unreadable();
                break;
            }
        };
        match part.name() {
            Some("csrf") => csrf = part.text().await.unwrap_or_default(),
            Some("file") => {
                let Ok(bytes) = part.bytes().await else {
                    input_error = unreadable();
                    break;
                };
                if !bytes.is_empty() {
                    match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => uploaded = Some(text),
                        Err(_) => {
                            input_error = Some(format!(
                                "The uploaded file is not text; upload the {what} file the \
                                 customer sent, or paste it."
                            ));
                        }
                    }
                }
            }
            Some(name) if name == field => match part.text().await {
                Ok(text) => pasted = text,
                Err(_) => {
                    input_error = unreadable();
                    break;
                }
            },
            _ => {}
        }
    }
    Ok(PastedToken {
        csrf,
        text: uploaded.unwrap_or(pasted),
        input_error,
    })
}
