//! One `Calls` stream to a node, shared by every call of the client to it
//! (docs/design.md §6, `meridian_proto::calls`).
//!
//! A task per node owns the stream. Calls queue on an unbounded channel;
//! the task takes everything queued at once, gives each call an id, sends
//! them as one batch and routes each reply to its caller by id. A batch is
//! whatever queued while the previous one was being written: nothing waits
//! to fill it, so one caller alone pays no delay.
//!
//! When the stream breaks, every call in flight fails as sent (its outcome
//! unknown to the caller), every call still queued fails as not sent, and
//! the next call opens a new stream. A caller that gives up on its call
//! (its deadline) just stops listening: the late reply is dropped.

use std::collections::HashMap;
use std::time::Duration;

use meridian_proto::calls::{CallRequest, into_batches};
use meridian_proto::pb::meridian_client::MeridianClient;
use meridian_proto::{MAX_MESSAGE_BYTES, pb};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Status;
use tonic::transport::Channel;

/// Why a call got no reply.
#[derive(Debug)]
pub(crate) struct Failed {
    /// What broke.
    pub(crate) status: Status,
    /// Whether the call may have reached the node.
    pub(crate) sent: bool,
}

type ReplyTx = oneshot::Sender<Result<pb::reply::Body, Failed>>;

struct Queued {
    call: pb::Call,
    reply: ReplyTx,
}

/// The sending end of a node's stream; cheap to clone.
#[derive(Clone)]
pub(crate) struct Pipe {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Pipe {
    /// A pipe over `channel`; its stream opens with the first call.
    pub(crate) fn open(channel: Channel) -> Pipe {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(channel, rx));
        Pipe { tx }
    }

    /// Whether its stream has ended (a new pipe is needed).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends `req` and waits for its reply (without a deadline of its own:
    /// the caller bounds the wait; `timeout` travels with the call so the
    /// node gives up too).
    pub(crate) async fn call<R: CallRequest>(
        &self,
        req: R,
        timeout: Duration,
    ) -> Result<Result<R::Response, Status>, Failed> {
        let (reply, rx) = oneshot::channel();
        let call = pb::Call {
            id: 0,
            body: Some(req.into_body()),
            timeout_micros: Some(u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX)),
        };
        if self.tx.send(Queued { call, reply }).is_err() {
            return Err(Failed {
                status: Status::unavailable("the stream to the node has ended"),
                sent: false,
            });
        }
        match rx.await {
            Ok(Ok(body)) => Ok(R::from_reply(body)),
            Ok(Err(f)) => Err(f),
            Err(_) => Err(Failed {
                status: Status::unavailable("the stream to the node ended"),
                sent: true,
            }),
        }
    }
}

/// The calls sent and not yet answered, by id.
#[derive(Default)]
struct InFlight {
    waiting: HashMap<u64, ReplyTx>,
    next_id: u64,
}

impl InFlight {
    /// Takes `first` and everything queued behind it, numbers the calls
    /// and hands them to the stream in batches.
    fn send(
        &mut self,
        first: Queued,
        rx: &mut mpsc::UnboundedReceiver<Queued>,
        out: &mpsc::UnboundedSender<pb::CallBatch>,
    ) {
        let mut calls = Vec::new();
        let mut next = Some(first);
        while let Some(Queued { mut call, reply }) = next {
            // A caller that has given up is not sent.
            if !reply.is_closed() {
                self.next_id += 1;
                call.id = self.next_id;
                self.waiting.insert(call.id, reply);
                calls.push(call);
            }
            next = rx.try_recv().ok();
        }
        for batch in into_batches(calls, |c: &pb::Call| c.encoded_len()) {
            // The stream's end is noticed on the receiving side.
            let _ = out.send(pb::CallBatch { calls: batch });
        }
    }

    fn answer(&mut self, batch: pb::ReplyBatch) {
        for r in batch.replies {
            if let (Some(tx), Some(body)) = (self.waiting.remove(&r.id), r.body) {
                let _ = tx.send(Ok(body));
            }
        }
    }

    /// Fails every call in flight with `status` (as sent) and every call
    /// still queued (as not sent).
    fn fail(self, status: &Status, sent: bool, rx: &mut mpsc::UnboundedReceiver<Queued>) {
        rx.close();
        let failed = |sent| Failed {
            status: Status::new(status.code(), crate::route::status_words(status)),
            sent,
        };
        for (_, tx) in self.waiting {
            let _ = tx.send(Err(failed(sent)));
        }
        while let Ok(q) = rx.try_recv() {
            let _ = q.reply.send(Err(failed(false)));
        }
    }
}

/// Owns one stream: opens it with the first call, then sends and routes
/// until the stream breaks or every [`Pipe`] is dropped.
async fn run(channel: Channel, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let Some(first) = rx.recv().await else {
        return;
    };
    let mut client = MeridianClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (out, out_rx) = mpsc::unbounded_channel();
    let mut flight = InFlight::default();
    flight.send(first, &mut rx, &out);
    // Calls keep queueing (into `out`) while the stream opens.
    let mut inbound = {
        let opening = client.calls(UnboundedReceiverStream::new(out_rx));
        tokio::pin!(opening);
        loop {
            tokio::select! {
                opened = &mut opening => match opened {
                    Ok(r) => break r.into_inner(),
                    Err(status) => {
                        let sent = !crate::route::never_sent(&status);
                        flight.fail(&status, sent, &mut rx);
                        return;
                    }
                },
                q = rx.recv() => match q {
                    Some(q) => flight.send(q, &mut rx, &out),
                    None => return,
                },
            }
        }
    };
    loop {
        tokio::select! {
            q = rx.recv() => match q {
                Some(q) => flight.send(q, &mut rx, &out),
                // Every pipe is dropped: close our side; the node ends
                // the stream once it has answered.
                None => return,
            },
            m = inbound.message() => match m {
                Ok(Some(batch)) => flight.answer(batch),
                Ok(None) => {
                    flight.fail(&Status::unavailable("the node ended the stream"), true, &mut rx);
                    return;
                }
                Err(status) => {
                    flight.fail(&status, true, &mut rx);
                    return;
                }
            },
        }
    }
}
