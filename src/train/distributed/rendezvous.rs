//! The rendezvous beside burn-collective: a small TCP service beside the orchestrator (at its
//! port plus one) that every node joins before training. It refuses a node whose run description (world
//! size, model configuration, vocabulary, data) differs from node 0's, saying what differs, and
//! it carries heartbeats, so that when a collective operation times out each node can name the
//! nodes it stopped hearing from instead of hanging.
//!
//! One JSON object per line: a node sends `{"hello": {"rank", "description"}}` and then
//! `{"beat": {"rank", "step"}}` every second; node 0 answers the hello with `{"welcome": ...}` or
//! `{"refused": "..."}` and each beat with the last step and age of every node.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a node says about itself when it joins.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Hello {
    rank: usize,
    description: serde_json::Value,
}

/// A node's messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Request {
    Hello(Hello),
    Beat { rank: usize, step: u64 },
}

/// Per rank: last step, when, and whether its connection closed.
type Seen = Arc<Mutex<BTreeMap<usize, (u64, Instant, bool)>>>;

/// Node 0's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Welcome,
    Refused(String),
    /// Per rank: the last step heard, how many milliseconds ago, and whether its connection
    /// has closed (the process ended).
    Status(BTreeMap<usize, (u64, u64, bool)>),
}

/// The first path at which two descriptions differ, with both values (`None` when equal).
pub(crate) fn first_difference(
    path: &str,
    ours: &serde_json::Value,
    theirs: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let null = Value::Null;
                first_difference(
                    &format!("{path}.{k}"),
                    a.get(k).unwrap_or(&null),
                    b.get(k).unwrap_or(&null),
                )
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
        _ if ours == theirs => None,
        _ => Some(format!("{path}: node 0 has {ours}, this node {theirs}")),
    }
}

/// The rendezvous service: listens on all interfaces at `port` in background threads for the
/// rest of the process. The description node 0 brings is the reference every other node is
/// compared with (a node that arrives first waits for node 0's); heartbeats are recorded.
pub(crate) fn serve_rendezvous(port: u16) -> Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port)).map_err(|e| Error::Collective {
        operation: "rendezvous".into(),
        message: format!("cannot listen on port {port}: {e}"),
    })?;
    let seen: Seen = Arc::default();
    let reference: Reference = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, reference) = (seen.clone(), reference.clone());
            std::thread::spawn(move || serve(stream, &reference, &seen));
        }
    });
    Ok(())
}

/// Node 0's description, once it has joined.
type Reference = Arc<Mutex<Option<serde_json::Value>>>;

/// Waits (up to ten minutes) for node 0's description.
fn reference_of(reference: &Reference) -> Option<serde_json::Value> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(600) {
        if let Some(r) = reference.lock().ok()?.clone() {
            return Some(r);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// One node's connection: its hello, then its beats, each answered.
fn serve(stream: TcpStream, reference: &Reference, seen: &Seen) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut joined = None;
    let mut send = |reply: &Reply| {
        serde_json::to_string(reply)
            .ok()
            .and_then(|line| writeln!(writer, "{line}").ok())
            .is_some()
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Hello(hello)) => {
                if hello.rank == 0
                    && let Ok(mut r) = reference.lock()
                {
                    *r = Some(hello.description.clone());
                }
                let difference = match reference_of(reference) {
                    Some(r) => first_difference("run", &r, &hello.description),
                    None => Some("node 0 never joined".into()),
                };
                match difference {
                    Some(diff) => {
                        Reply::Refused(format!("node of rank {} differs from node 0: {diff}", hello.rank))
                    }
                    None => {
                        if let Ok(mut s) = seen.lock() {
                            s.insert(hello.rank, (0, Instant::now(), false));
                        }
                        joined = Some(hello.rank);
                        Reply::Welcome
                    }
                }
            }
            Ok(Request::Beat { rank, step }) => {
                let Ok(mut s) = seen.lock() else { break };
                s.insert(rank, (step, Instant::now(), false));
                Reply::Status(
                    s.iter()
                        .map(|(&r, &(step, at, gone))| (r, (step, at.elapsed().as_millis() as u64, gone)))
                        .collect(),
                )
            }
            Err(e) => Reply::Refused(format!("not a rendezvous message: {e}")),
        };
        if !send(&reply) {
            break;
        }
    }
    // The node's connection closed: its process ended (or lost node 0).
    if let (Some(rank), Ok(mut s)) = (joined, seen.lock())
        && let Some(entry) = s.get_mut(&rank)
    {
        entry.2 = true;
    }
}

/// What node 0 last heard from a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NodeSeen {
    /// The last step it reported.
    pub step: u64,
    /// How long ago.
    pub age: Duration,
    /// Whether its connection has closed (its process ended).
    pub gone: bool,
}

/// A node's side: joins node 0's rendezvous and sends heartbeats.
pub(crate) struct RendezvousClient {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    rank: usize,
}

impl RendezvousClient {
    /// Connects to `addr`, retrying until `timeout` (node 0 may start later), and introduces this
    /// node. A refusal is an [`Error::Config`] saying what differs.
    pub(crate) fn join(
        addr: &str,
        rank: usize,
        description: serde_json::Value,
        timeout: Duration,
    ) -> Result<Self> {
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect(addr) {
                Ok(s) => break s,
                Err(e) if start.elapsed() >= timeout => {
                    return Err(Error::Collective {
                        operation: "rendezvous".into(),
                        message: format!(
                            "node {rank} could not reach node 0 at {addr} within {} s: {e}",
                            timeout.as_secs()
                        ),
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        let io = |e: std::io::Error| Error::Collective {
            operation: "rendezvous".into(),
            message: format!("node {rank} lost node 0 at {addr}: {e}"),
        };
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        let mut client = Self {
            writer: stream.try_clone().map_err(io)?,
            reader: BufReader::new(stream),
            rank,
        };
        match client.call(&Request::Hello(Hello { rank, description }))? {
            Reply::Welcome => Ok(client),
            Reply::Refused(why) => Err(Error::Config {
                module: "DistributedConfig",
                message: why,
            }),
            Reply::Status(_) => Err(Error::Collective {
                operation: "rendezvous".into(),
                message: "node 0 answered a hello with a status".into(),
            }),
        }
    }

    /// Reports this node's step; returns, per rank, the last step node 0 heard, its age, and
    /// whether that node's connection has closed.
    pub(crate) fn beat(&mut self, step: u64) -> Result<BTreeMap<usize, NodeSeen>> {
        match self.call(&Request::Beat {
            rank: self.rank,
            step,
        })? {
            Reply::Status(s) => Ok(s
                .into_iter()
                .map(|(r, (step, ms, gone))| {
                    (
                        r,
                        NodeSeen {
                            step,
                            age: Duration::from_millis(ms),
                            gone,
                        },
                    )
                })
                .collect()),
            other => Err(Error::Collective {
                operation: "rendezvous".into(),
                message: format!("node 0 answered a heartbeat with {other:?}"),
            }),
        }
    }

    fn call(&mut self, request: &Request) -> Result<Reply> {
        let rank = self.rank;
        let io = |e: String| Error::Collective {
            operation: "rendezvous".into(),
            message: format!("node {rank} lost node 0: {e}"),
        };
        let line = serde_json::to_string(request).map_err(|e| io(e.to_string()))?;
        writeln!(self.writer, "{line}").map_err(|e| io(e.to_string()))?;
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(0) => Err(io("the connection closed".into())),
            Ok(_) => serde_json::from_str(&answer).map_err(|e| io(e.to_string())),
            Err(e) => Err(io(e.to_string())),
        }
    }
}
