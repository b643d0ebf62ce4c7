//! Many client calls on one stream (`Meridian.Calls`, docs/design.md §6).
//!
//! A unary gRPC call costs a new HTTP/2 stream, its headers, a task on each
//! side and a wake-up per answer; at tens of thousands of calls a second
//! that, not the transaction work, is where the CPU goes. On a `Calls`
//! stream the client coalesces every call waiting to go to one node into
//! one [`pb::CallBatch`], and the node coalesces the answers that are ready
//! together into one [`pb::ReplyBatch`]. Nothing waits to fill a batch: a
//! batch is whatever queued while the previous one was being written.
//!
//! Each call is handled by the same code as its unary form ([`serve`] hands
//! it to the service's unary handler), so the two cannot drift apart.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::MAX_MESSAGE_BYTES;
use crate::convert::Answer;
use crate::pb;
use crate::pb::meridian_server::Meridian;

/// Most calls in one batch, either way.
pub const MAX_BATCH_CALLS: usize = 256;

/// Most encoded bytes of one batch, either way: half the message limit, so
/// a batch of calls each within the limit never exceeds it by much (a batch
/// holds at least one call; a single call over the limit fails alone).
pub const MAX_BATCH_BYTES: usize = MAX_MESSAGE_BYTES / 2;

/// HTTP/2 flow-control window of one stream, each way (h2's default is
/// 64 KiB): one `Calls` stream carries every call between a client and a
/// node, so it gets the room that many unary streams would have had.
pub const STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;

/// HTTP/2 flow-control window of a whole connection, each way.
pub const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;

/// A request that can travel as one call of a batch, and its answer.
pub trait CallRequest: Send + 'static {
    /// The unary response.
    type Response: Answer + Send + 'static;

    /// The request as a call body.
    fn into_body(self) -> pb::call::Body;

    /// The answer in `body`: the response, or the status the call ended
    /// with (an answer of another call's kind is `INTERNAL`).
    fn from_reply(body: pb::reply::Body) -> Result<Self::Response, Status>;
}

macro_rules! call_request {
    ($($req:ty => $resp:ty, $variant:ident;)*) => {$(
        impl CallRequest for $req {
            type Response = $resp;

            fn into_body(self) -> pb::call::Body {
                pb::call::Body::$variant(self)
            }

            fn from_reply(body: pb::reply::Body) -> Result<$resp, Status> {
                match body {
                    pb::reply::Body::$variant(r) => Ok(r),
                    pb::reply::Body::Status(s) => Err(status_from_pb(s)),
                    other => Err(Status::internal(format!(
                        "a {} call was answered with {other:?}",
                        stringify!($variant)
                    ))),
                }
            }
        }
    )*};
}

call_request! {
    pb::BeginRequest => pb::BeginResponse, Begin;
    pb::ReadRequest => pb::ReadResponse, Read;
    pb::ScanRequest => pb::ScanResponse, Scan;
    pb::CommitRequest => pb::CommitResponse, Commit;
    pb::AbortRequest => pb::AbortResponse, Abort;
    pb::HeartbeatRequest => pb::HeartbeatResponse, Heartbeat;
    pb::ReadOnlyRequest => pb::ReadOnlyResponse, ReadOnly;
    pb::TxnStatusRequest => pb::TxnStatusResponse, TxnStatus;
    pb::NowRequest => pb::NowResponse, Now;
}

/// The answers of a [`serve`]d stream.
pub type ReplyStream =
    tokio_stream::wrappers::UnboundedReceiverStream<Result<pb::ReplyBatch, Status>>;

/// Serves one `Calls` stream: every call of every batch that arrives is
/// handed to `svc`'s unary handler at once, all of them polled on one task,
/// and the answers ready together go back as one batch.
///
/// The stream ends when the client has closed its side, or `closing` has
/// fired (the node is stopping), and every call taken is answered; at once
/// when the client is gone (calls in progress are then dropped, as a unary
/// call is when its client hangs up). Without `closing` a stopping server
/// could never finish: its client keeps the stream open for good.
///
/// The channels between the task and the transport are unbounded on
/// purpose: their contents are bounded by the calls the client has in
/// flight, and a bounded one could leave each side waiting for the other
/// to read.
pub fn serve<S, In, C>(svc: Arc<S>, mut inbound: In, closing: C) -> ReplyStream
where
    S: Meridian,
    In: Stream<Item = Result<pb::CallBatch, Status>> + Send + Unpin + 'static,
    C: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut pending = FuturesUnordered::new();
        let mut open = true;
        tokio::pin!(closing);
        loop {
            tokio::select! {
                batch = inbound.next(), if open => match batch {
                    Some(Ok(batch)) => {
                        for call in batch.calls {
                            pending.push(dispatch(svc.clone(), call));
                        }
                    }
                    None | Some(Err(_)) => open = false,
                },
                () = &mut closing, if open => open = false,
                Some(first) = pending.next(), if !pending.is_empty() => {
                    let mut ready = vec![first];
                    while let Some(Some(r)) = pending.next().now_or_never() {
                        ready.push(r);
                    }
                    for batch in into_batches(ready, |r: &pb::Reply| r.encoded_len()) {
                        if tx.send(Ok(pb::ReplyBatch { replies: batch })).is_err() {
                            return;
                        }
                    }
                }
                else => return,
            }
        }
    });
    tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
}

/// Splits `items` into batches of at most [`MAX_BATCH_CALLS`] items and,
/// unless one item alone exceeds it, [`MAX_BATCH_BYTES`] encoded bytes, in
/// order.
pub fn into_batches<T>(items: Vec<T>, len: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0usize;
    for item in items {
        let n = len(&item);
        let start_new = match out.last() {
            None => true,
            Some(b) => b.len() >= MAX_BATCH_CALLS || bytes + n > MAX_BATCH_BYTES,
        };
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += n;
        out.last_mut().expect("a batch was just pushed").push(item);
    }
    out
}

/// A status as it travels in a reply.
pub fn status_to_pb(s: &Status) -> pb::RpcStatus {
    pb::RpcStatus {
        code: s.code() as i32,
        message: s.message().to_string(),
    }
}

/// The status a reply carries.
pub fn status_from_pb(s: pb::RpcStatus) -> Status {
    Status::new(tonic::Code::from_i32(s.code), s.message)
}

/// Answers one call with the service's unary handler, within the call's
/// deadline if it has one (as tonic serves a unary call's grpc-timeout).
async fn dispatch<S: Meridian>(svc: Arc<S>, call: pb::Call) -> pb::Reply {
    let id = call.id;
    let body = match call.timeout_micros.map(Duration::from_micros) {
        None => answer(svc, call.body, None).await,
        Some(t) => match tokio::time::timeout(t, answer(svc, call.body, Some(t))).await {
            Ok(body) => body,
            Err(_) => pb::reply::Body::Status(status_to_pb(&Status::deadline_exceeded(
                "the call's deadline passed at the node",
            ))),
        },
    };
    pb::Reply {
        id,
        body: Some(body),
    }
}

/// The unary handler's answer to `body`.
async fn answer<S: Meridian>(
    svc: Arc<S>,
    body: Option<pb::call::Body>,
    timeout: Option<Duration>,
) -> pb::reply::Body {
    use pb::call::Body as C;
    use pb::reply::Body as R;
    fn reply<T>(r: Result<Response<T>, Status>, wrap: fn(T) -> R) -> R {
        match r {
            Ok(r) => wrap(r.into_inner()),
            Err(s) => R::Status(status_to_pb(&s)),
        }
    }
    // The handler sees the deadline as a unary call's grpc-timeout.
    fn req<T>(r: T, timeout: Option<Duration>) -> Request<T> {
        let mut r = Request::new(r);
        if let Some(t) = timeout {
            r.set_timeout(t);
        }
        r
    }
    let t = timeout;
    match body {
        Some(C::Begin(r)) => reply(svc.begin(req(r, t)).await, R::Begin),
        Some(C::Read(r)) => reply(svc.read(req(r, t)).await, R::Read),
        Some(C::Scan(r)) => reply(svc.scan(req(r, t)).await, R::Scan),
        Some(C::Commit(r)) => reply(svc.commit(req(r, t)).await, R::Commit),
        Some(C::Abort(r)) => reply(svc.abort(req(r, t)).await, R::Abort),
        Some(C::Heartbeat(r)) => reply(svc.heartbeat(req(r, t)).await, R::Heartbeat),
        Some(C::ReadOnly(r)) => reply(svc.read_only(req(r, t)).await, R::ReadOnly),
        Some(C::TxnStatus(r)) => reply(svc.txn_status(req(r, t)).await, R::TxnStatus),
        Some(C::Now(r)) => reply(svc.now(req(r, t)).await, R::Now),
        None => R::Status(status_to_pb(&Status::invalid_argument(
            "a call without a request",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_count_and_bytes_and_keep_order() {
        let items: Vec<usize> = (0..MAX_BATCH_CALLS * 2 + 1).collect();
        let b = into_batches(items, |_| 1);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_BATCH_CALLS, MAX_BATCH_CALLS, 1]
        );
        assert_eq!(b.concat(), (0..MAX_BATCH_CALLS * 2 + 1).collect::<Vec<_>>());
        // Bytes: two items of more than half the bound never share a batch;
        // an item over the bound travels alone.
        let big = MAX_BATCH_BYTES / 2 + 1;
        let b = into_batches(vec![big, big, MAX_BATCH_BYTES + 1, 1, 1], |n| *n);
        assert_eq!(
            b,
            vec![vec![big], vec![big], vec![MAX_BATCH_BYTES + 1], vec![1, 1]]
        );
        assert!(into_batches(Vec::<usize>::new(), |n| *n).is_empty());
    }

    #[test]
    fn a_reply_of_another_kind_or_invalid_is_an_error() {
        let ok = pb::reply::Body::Now(pb::NowResponse::default());
        assert!(pb::NowRequest::from_reply(ok.clone()).is_ok());
        assert!(pb::ReadRequest::from_reply(ok).is_err());
        let refused = pb::reply::Body::Status(status_to_pb(&Status::unavailable("gone")));
        let s = pb::NowRequest::from_reply(refused).unwrap_err();
        assert_eq!((s.code(), s.message()), (tonic::Code::Unavailable, "gone"));
    }
}
