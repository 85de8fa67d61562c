//! SigV4 signatures for the one request a broadcast repeats: `POST {endpoint}/@connections/{id}`
//! with a `content-length`, signed for `execute-api` in the headers.
//!
//! `aws_sigv4::http_request::sign` derives the day's signing key (four HMACs), hashes the body
//! and builds the canonical request through header maps on every call. A broadcast signs the
//! same body with the same key tens of thousands of times, so this signer keeps the day's key
//! (with `aws_sigv4::sign::v4::generate_signing_key`) and the body's hash, and writes the
//! canonical request of this one shape directly; the signature itself is
//! `aws_sigv4::sign::v4::calculate_signature`. A path the fast form does not cover (dot or
//! empty segments, which SigV4 normalises) is signed by `aws_sigv4`'s general signer. The unit
//! tests check that both give the same headers.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use hyper::http;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const SERVICE: &str = "execute-api";

/// Characters left as they are in a path segment (RFC 3986's unreserved set): how a
/// connection id goes into a URL.
pub const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0} has no host")]
    NoHost(String),
    #[error("signing parameters: {0}")]
    Parameters(String),
    #[error("signing {uri}: {reason}")]
    Request { uri: String, reason: String },
}

/// The headers that carry a signature.
#[derive(Debug, PartialEq, Eq)]
pub struct Signed {
    pub x_amz_date: String,
    pub authorization: String,
    pub x_amz_security_token: Option<String>,
}

struct DayKey {
    date: String,
    access_key_id: String,
    secret: String,
    key: Vec<u8>,
}

/// Signs posts for one region, keeping the day's key and the last body's hash.
pub struct Signer {
    region: String,
    key: Mutex<Option<DayKey>>,
    body: Mutex<Option<(Vec<u8>, String)>>,
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `YYYYMMDDTHHMMSSZ` and `YYYYMMDD` (UTC).
fn stamps(time: SystemTime) -> (String, String) {
    let t = OffsetDateTime::from(time);
    let date = format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day());
    let date_time = format!("{date}T{:02}{:02}{:02}Z", t.hour(), t.minute(), t.second());
    (date_time, date)
}

/// SigV4's canonical path for a path sent already percent-encoded (double encoding, as every
/// service but S3 uses): every byte but unreserved characters and `/` is encoded again.
fn canonical_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 16);
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Whether SigV4's path normalisation would change `path` (dot or empty segments).
fn needs_normalising(path: &str) -> bool {
    !path.starts_with('/') || path.contains("//") || path.split('/').any(|s| s == "." || s == "..")
}

impl Signer {
    /// The region it signs for.
    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn new(region: &str) -> Signer {
        Signer {
            region: region.to_owned(),
            key: Mutex::new(None),
            body: Mutex::new(None),
        }
    }

    fn body_hash(&self, data: &[u8]) -> String {
        let mut cached = self.body.lock().unwrap_or_else(|p| p.into_inner());
        match cached.as_ref() {
            Some((body, hash)) if body.as_slice() == data => hash.clone(),
            _ => {
                let hash = sha256_hex(data);
                *cached = Some((data.to_vec(), hash.clone()));
                hash
            }
        }
    }

    fn signature(
        &self,
        credentials: &Credentials,
        date: &str,
        time: SystemTime,
        sts: &str,
    ) -> String {
        let mut cached = self.key.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = cached.as_ref().is_some_and(|k| {
            k.date == date
                && k.access_key_id == credentials.access_key_id()
                && k.secret == credentials.secret_access_key()
        });
        if !fresh {
            let key = v4::generate_signing_key(
                credentials.secret_access_key(),
                time,
                &self.region,
                SERVICE,
            );
            *cached = Some(DayKey {
                date: date.to_owned(),
                access_key_id: credentials.access_key_id().to_owned(),
                secret: credentials.secret_access_key().to_owned(),
                key: key.as_ref().to_vec(),
            });
        }
        let key = &cached.as_ref().expect("set above").key;
        v4::calculate_signature(key, sts.as_bytes())
    }

    /// The signature headers of `POST uri` with `data` as its body, at `time`.
    pub fn sign(
        &self,
        uri: &http::Uri,
        credentials: &Credentials,
        data: &[u8],
        time: SystemTime,
    ) -> Result<Signed, SignError> {
        let path = uri.path();
        let host = uri
            .host()
            .ok_or_else(|| SignError::NoHost(uri.to_string()))?;
        if needs_normalising(path) || uri.query().is_some() {
            return self.sign_generally(uri, credentials, data, time);
        }
        let default_port = matches!(
            (uri.scheme_str(), uri.port_u16()),
            (_, None) | (Some("https"), Some(443)) | (Some("http"), Some(80))
        );
        let host = if default_port {
            host
        } else {
            uri.authority().map_or(host, |a| a.as_str())
        };
        let (date_time, date) = stamps(time);
        let token = credentials.session_token();
        let signed_headers = if token.is_some() {
            "content-length;host;x-amz-date;x-amz-security-token"
        } else {
            "content-length;host;x-amz-date"
        };
        let mut creq = String::with_capacity(512);
        let _ = write!(
            creq,
            "POST\n{}\n\ncontent-length:{}\nhost:{host}\nx-amz-date:{date_time}\n",
            canonical_path(path),
            data.len()
        );
        if let Some(token) = token {
            let _ = writeln!(creq, "x-amz-security-token:{}", token.trim());
        }
        let _ = write!(creq, "\n{signed_headers}\n{}", self.body_hash(data));
        let scope = format!("{date}/{}/{SERVICE}/aws4_request", self.region);
        let sts = format!(
            "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        let signature = self.signature(credentials, &date, time, &sts);
        Ok(Signed {
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id()
            ),
            x_amz_date: date_time,
            x_amz_security_token: token.map(str::to_owned),
        })
    }

    /// The same headers from `aws_sigv4`'s general signer.
    pub fn sign_generally(
        &self,
        uri: &http::Uri,
        credentials: &Credentials,
        data: &[u8],
        time: SystemTime,
    ) -> Result<Signed, SignError> {
        sign_request(
            "POST",
            SERVICE,
            &self.region,
            uri,
            &[],
            credentials,
            data,
            time,
        )
    }
}

/// The signature headers of `method uri` for `service` in `region`, signed by `aws-sigv4`'s
/// general signer, with `headers` (besides content-length) included in the signature.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign_request(
    method: &str,
    service: &str,
    region: &str,
    uri: &http::Uri,
    headers: &[(&str, &str)],
    credentials: &Credentials,
    data: &[u8],
    time: SystemTime,
) -> Result<Signed, SignError> {
    let uri_text = uri.to_string();
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError::Parameters(e.to_string()))?
        .into();
    let length = data.len().to_string();
    let mut all = vec![("content-length", length.as_str())];
    all.extend_from_slice(headers);
    let signable = SignableRequest::new(
        method,
        &uri_text,
        all.iter().copied(),
        SignableBody::Bytes(data),
    )
    .map_err(|e| SignError::Request {
        uri: uri_text.clone(),
        reason: e.to_string(),
    })?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| SignError::Request {
            uri: uri_text.clone(),
            reason: e.to_string(),
        })?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    let mut signed = Signed {
        x_amz_date: String::new(),
        authorization: String::new(),
        x_amz_security_token: None,
    };
    for h in headers {
        match h.name() {
            "x-amz-date" => signed.x_amz_date = h.value().to_owned(),
            "authorization" => signed.authorization = h.value().to_owned(),
            "x-amz-security-token" => signed.x_amz_security_token = Some(h.value().to_owned()),
            _ => {}
        }
    }
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn uri(endpoint: &str, id: &str) -> http::Uri {
        let id = percent_encoding::utf8_percent_encode(id, SEGMENT);
        format!("{endpoint}/@connections/{id}").parse().unwrap()
    }

    #[test]
    fn matches_aws_sigv4_on_an_api_gateway_post() {
        let signer = Signer::new("eu-west-1");
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("token/with+chars==".into()),
            None,
            "test",
        );
        let time = UNIX_EPOCH + Duration::from_secs(1_764_633_600);
        let u = uri(
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
            "L0SM9cOFvHcCIhw=",
        );
        let fast = signer.sign(&u, &creds, b"{\"type\":\"x\"}", time).unwrap();
        assert_eq!(
            fast,
            signer
                .sign_generally(&u, &creds, b"{\"type\":\"x\"}", time)
                .unwrap()
        );
        assert!(fast.authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251202/eu-west-1/execute-api/aws4_request, SignedHeaders=content-length;host;x-amz-date;x-amz-security-token, Signature="), "{}", fast.authorization);
    }

    #[test]
    fn a_dot_segment_is_signed_by_the_general_signer() {
        let signer = Signer::new("us-east-1");
        let creds = Credentials::new("AK", "SECRET", None, None, "test");
        let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let u: http::Uri = "https://example.com/a/../prod/@connections/x"
            .parse()
            .unwrap();
        assert_eq!(
            signer.sign(&u, &creds, b"m", time).unwrap(),
            signer.sign_generally(&u, &creds, b"m", time).unwrap()
        );
    }

    proptest! {
        #[test]
        fn every_post_signs_as_aws_sigv4_signs_it(
            id in "[ -~]{1,40}",
            endpoint in prop::sample::select(vec![
                "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
                "https://ws.example.com",
                "https://ws.example.com:443/v1",
                "http://127.0.0.1:3002/dev-stage_1",
                "http://localhost:80/prod",
            ]),
            body in prop::collection::vec(any::<u8>(), 0..300),
            token in prop::option::of("[A-Za-z0-9+/=]{1,60}"),
            seconds in 1_600_000_000u64..1_900_000_000,
            day_later in any::<bool>(),
        ) {
            let signer = Signer::new("ap-southeast-2");
            let creds = Credentials::new("AKIA1234", "s3cr3t/KEY+x", token, None, "test");
            let u = uri(endpoint, &id);
            let time = UNIX_EPOCH + Duration::from_secs(seconds);
            prop_assert_eq!(signer.sign(&u, &creds, &body, time).unwrap(), signer.sign_generally(&u, &creds, &body, time).unwrap());
            // Again, from the cached key and hash, possibly on the next day.
            let time = time + Duration::from_secs(if day_later { 86_400 } else { 1 });
            prop_assert_eq!(signer.sign(&u, &creds, &body, time).unwrap(), signer.sign_generally(&u, &creds, &body, time).unwrap());
            let other = Credentials::new("AKIA9999", "other", None, None, "test");
            prop_assert_eq!(signer.sign(&u, &other, &body, time).unwrap(), signer.sign_generally(&u, &other, &body, time).unwrap());
        }
    }
}
