//! A small, forgiving PEM reader that reports what it found.
//!
//! Other readers skip what they do not expect, which turns "this is a key,
//! not a certificate" or "this key is encrypted" into "no certificate found".
//! This one returns every block with its label and headers, so the caller can
//! say exactly what is wrong with a file.

/// One `-----BEGIN …-----` … `-----END …-----` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub label: String,
    /// RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` (legacy encrypted keys).
    pub headers: Vec<String>,
    /// The decoded body, or `None` when the base64 is corrupt or the END line is missing.
    pub der: Option<Vec<u8>>,
}

impl Block {
    pub fn is_encrypted(&self) -> bool {
        self.label.contains("ENCRYPTED")
            || self
                .headers
                .iter()
                .any(|h| h.starts_with("Proc-Type:") && h.contains("ENCRYPTED"))
    }
}

/// Every PEM block in `bytes`, in order. Text outside blocks is ignored, as
/// OpenSSL does.
pub(crate) fn blocks(bytes: &[u8]) -> Vec<Block> {
    let mut found = Vec::new();
    let mut current: Option<(String, Vec<String>, String)> = None;
    for raw in bytes.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim();
        match &mut current {
            None => {
                if let Some(label) = marker(line, "BEGIN") {
                    current = Some((label.to_string(), Vec::new(), String::new()));
                }
            }
            Some((label, headers, body)) => {
                if marker(line, "END").is_some() {
                    let der = data_encoding::BASE64.decode(body.as_bytes()).ok();
                    found.push(Block {
                        label: std::mem::take(label),
                        headers: std::mem::take(headers),
                        der,
                    });
                    current = None;
                } else if line.contains(':') {
                    headers.push(line.to_string());
                } else {
                    body.extend(line.chars().filter(|c| !c.is_whitespace()));
                }
            }
        }
    }
    if let Some((label, headers, _)) = current {
        found.push(Block {
            label,
            headers,
            der: None,
        });
    }
    found
}

fn marker<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_suffix("-----")?
        .strip_prefix(kind)?
        .strip_prefix(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_headers_and_bodies() {
        let text = b"junk\r\n-----BEGIN CERTIFICATE-----\r\nAAEC\r\nAw==\r\n-----END CERTIFICATE-----\r\n\
            -----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let found = blocks(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].label, "CERTIFICATE");
        assert_eq!(found[0].der.as_deref(), Some(&[0u8, 1, 2, 3][..]));
        assert!(!found[0].is_encrypted());
        assert_eq!(found[1].label, "EC PRIVATE KEY");
        assert!(found[1].is_encrypted());
    }

    #[test]
    fn a_truncated_block_has_no_body() {
        let found = blocks(b"-----BEGIN CERTIFICATE-----\nAAEC\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].der, None);
    }

    #[test]
    fn garbage_has_no_blocks() {
        assert!(blocks(b"hello world\n\x00\xff").is_empty());
    }
}
