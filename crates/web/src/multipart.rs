//! A small reader for our own multipart forms (a file field, a few short
//! text fields and `_csrf`): the forms are ours, so a scanner does and no
//! multipart crate is needed. The CSRF layer has already checked `_csrf`.

use axum::http::{HeaderMap, header};

/// The part named `field`: its file name (empty for a text field; only the
/// base name is kept) and its bytes. `None` when the body is not multipart
/// or has no such part.
pub fn part(headers: &HeaderMap, body: &[u8], field: &str) -> Option<(String, Vec<u8>)> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    let wanted = format!("name=\"{field}\"");
    // The first delimiter has no CRLF before it: add one to scan uniformly.
    let mut data = b"\r\n".to_vec();
    data.extend_from_slice(body);
    let mut at = find(&data, &delimiter, 0)? + delimiter.len();
    loop {
        let next = find(&data, &delimiter, at)?;
        let part = &data[at..next];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n", 0) {
            let head = String::from_utf8_lossy(&part[..split]);
            let disposition = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
                .unwrap_or_default();
            if disposition.split(';').map(str::trim).any(|p| p == wanted) {
                let name = disposition
                    .split(';')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix("filename="))
                    .map(|n| n.trim_matches('"').to_owned())
                    .unwrap_or_default();
                // Browsers send the base name; keep only that in any case.
                let name = name.rsplit(['/', '\\']).next().unwrap_or_default().to_owned();
                return Some((name, part[split + 4..].to_vec()));
            }
        }
        at = next + delimiter.len();
        if data.get(at..at + 2) == Some(b"--") {
            return None;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}
