//! `meridian admin split KEY` (docs/operations.md, "Splitting a range"):
//! splits the range holding KEY at KEY, through
//! [`meridian_client::Client::split`].

use bytes::Bytes;
use meridian_client::Client;
use meridian_client::directory::SplitStep;
use meridian_participant::RangeDescriptor;
use serde_json::{Value as Json, json};

use crate::{EXIT_OK, EXIT_USAGE, Output, Printer, script_token, text_bytes};

/// KEY as the command line gives it: the bytes of the argument, or, when
/// it is quoted (`'"\x00a"'`), the quoted string with the `txn` script's
/// escapes undone.
pub(crate) fn split_key(arg: &str) -> Result<Bytes, String> {
    if !arg.starts_with('"') {
        return Ok(Bytes::copy_from_slice(arg.as_bytes()));
    }
    let (key, rest) = script_token(arg)?;
    if !rest.trim().is_empty() {
        return Err(format!("unexpected text after the quoted key: {rest:?}"));
    }
    Ok(Bytes::from(key))
}

/// A descriptor as JSON.
fn descriptor_json(d: &RangeDescriptor) -> Json {
    json!({
        "group": d.group,
        "start": text_bytes(&d.start),
        "end": d.end.as_deref().map(text_bytes),
        "generation": d.generation,
    })
}

/// Runs the split and prints its steps and answer; answers the exit code
/// (2 for a refused split: nothing changed).
pub(crate) async fn run(p: &Printer, client: &Client, key: Bytes) -> u8 {
    let output = p.output;
    let mut show = |step: &SplitStep| match output {
        Output::Json => {}
        Output::Text => {
            let mut err = std::io::stderr().lock();
            let _ = std::io::Write::write_fmt(&mut err, format_args!("{step}\n"));
        }
    };
    match client.split(key.clone(), &mut show).await {
        Ok(r) => {
            match p.output {
                Output::Json => p.json(json!({
                    "split": true,
                    "key": text_bytes(&key),
                    "left": descriptor_json(&r.left),
                    "right": descriptor_json(&r.right),
                    "replicas": r.replicas,
                    "recorded": r.recorded,
                })),
                Output::Text => p.line(&format!(
                    "split at {}: {} | {} (replicas {:?})",
                    text_bytes(&key),
                    r.left,
                    r.right,
                    r.replicas
                )),
            }
            EXIT_OK
        }
        Err(e) => p.error(&e),
    }
}

/// Checks KEY before anything is sent.
pub(crate) fn check(arg: &str) -> Result<Bytes, (String, u8)> {
    let key = split_key(arg).map_err(|m| (m, EXIT_USAGE))?;
    meridian_client::directory::plan_split(&[RangeDescriptor::whole(0)], &key)
        .map_err(|e| (e.to_string(), EXIT_USAGE))?;
    Ok(key)
}
