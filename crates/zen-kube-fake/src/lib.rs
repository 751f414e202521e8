//! For tests only: an in-process fake of the Kubernetes API server, enough for zen-kube's
//! calls through the real `kube` client — custom resources served or not (404 until "the CRD
//! is installed"), list with `limit`/`continue`, a `labelSelector` of equalities and a
//! `resourceVersion`, watch from a `resourceVersion` (history replayed, then live events,
//! bookmarks, `410 Gone` once the history is compacted past it, dropped connections), get,
//! create (`409 AlreadyExists`; `generateName`; no status set), replace (`409 Conflict` on a
//! stale `resourceVersion`; only the status through `/status`), delete, generations counted as
//! the API server counts them, and injected faults (`429` with `Retry-After`, `5xx`). Reports
//! are written by the test ([`FakeApi::put`], [`FakeApi::delete`]), as the controllers that own
//! them would. Every request is logged with the instant it arrived.
//!
//! What it cannot prove: admission (validation of objects against a CRD's schema, webhooks),
//! RBAC, API priority and fairness, etcd's limits on object and request sizes, and the timing
//! and ordering guarantees of a real API server under load. It knows nothing of zen-watcher.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as Extract};
pub use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A resource path: group (empty for the core group), version, plural.
pub type Gvr = (String, String, String);

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Logged {
    pub at: Instant,
    pub method: Method,
    /// Path and query.
    pub uri: String,
}

/// An injected answer, given instead of the real one to the next matching requests.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Only requests of this method (any when `None`).
    pub method: Option<Method>,
    /// Only paths containing this.
    pub path_contains: String,
    pub times: usize,
    pub code: u16,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

#[derive(Debug, Default)]
struct Kind {
    kind: String,
    namespaced: bool,
    /// By (namespace, name).
    objects: BTreeMap<(String, String), Value>,
}

#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    gvr: Gvr,
    kind: &'static str,
    object: Value,
}

#[derive(Debug)]
struct World {
    rv: u64,
    next_uid: u64,
    kinds: HashMap<Gvr, Kind>,
    history: Vec<Change>,
    /// Watches from before this resourceVersion get 410 Gone.
    compacted: u64,
    requests: Vec<Logged>,
    faults: VecDeque<Fault>,
}

/// The fake API server, serving on a loopback port until dropped.
#[derive(Debug)]
pub struct FakeApi {
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
    changes: broadcast::Sender<Option<Change>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct Shared {
    world: Arc<Mutex<World>>,
    changes: broadcast::Sender<Option<Change>>,
}

/// Waits (up to a minute, polling) until `f` holds: tests wait for progress, never for time.
///
/// # Panics
/// When `f` still does not hold after a minute, naming `what` was awaited.
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// [`until`], for a test that blocks its thread.
///
/// # Panics
/// When `f` still does not hold after a minute, naming `what` was awaited.
pub fn until_blocking(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting until {what}");
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeApi {
    /// Starts serving on the current runtime.
    pub async fn start() -> std::io::Result<FakeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let world = Arc::new(Mutex::new(World {
            rv: 1,
            next_uid: 1,
            kinds: HashMap::new(),
            history: Vec::new(),
            compacted: 0,
            requests: Vec::new(),
            faults: VecDeque::new(),
        }));
        let (changes, _) = broadcast::channel(65_536);
        let shared = Shared {
            world: world.clone(),
            changes: changes.clone(),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeApi {
            addr,
            world,
            changes,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `kube` client of this server; needs a Tokio runtime entered.
    pub fn client(&self) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
        let config = kube::Config::new(self.url().parse()?);
        Ok(kube::Client::try_from(config)?)
    }

    /// A kubeconfig naming this server (its `default` namespace), for a daemon to be given.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             users:\n- name: tester\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n\
             current-context: fake\n",
            self.url()
        )
    }

    /// Serves a kind from now on, as if its CRD were installed.
    /// Namespaced, under the plural the API server derives from the kind (`SourcePolicy` is
    /// served as `sourcepolicies`).
    pub fn serve(&self, api_version: &str, kind: &str) {
        let (group, version) = split_api_version(api_version);
        let lower = kind.to_lowercase();
        let plural = match lower.strip_suffix('y') {
            Some(stem) => format!("{stem}ies"),
            None if lower.ends_with('s') => format!("{lower}es"),
            None => format!("{lower}s"),
        };
        lock(&self.world).kinds.insert(
            gvr(&group, &version, &plural),
            Kind {
                kind: kind.to_owned(),
                namespaced: true,
                objects: BTreeMap::new(),
            },
        );
    }

    /// Creates or replaces an object (`apiVersion`, `kind`, `metadata.name` and, when
    /// namespaced, `metadata.namespace` set), as a controller would; returns it as stored.
    pub fn put(&self, plural: &str, object: Value) -> Value {
        let mut w = lock(&self.world);
        let (g, v) = split_api_version(object["apiVersion"].as_str().unwrap_or(""));
        let key = gvr(&g, &v, plural);
        let stored = w.store(&key, object, true);
        if let Some(c) = w.history.last().cloned() {
            let _ = self.changes.send(Some(c));
        }
        stored
    }

    /// Deletes an object, as a controller would.
    pub fn delete(&self, api_version: &str, plural: &str, namespace: &str, name: &str) -> bool {
        let mut w = lock(&self.world);
        let (g, v) = split_api_version(api_version);
        let deleted = w.remove(&gvr(&g, &v, plural), namespace, name);
        if deleted.is_some()
            && let Some(c) = w.history.last().cloned()
        {
            let _ = self.changes.send(Some(c));
        }
        deleted.is_some()
    }

    /// The objects of a kind, as stored.
    pub fn objects(&self, api_version: &str, plural: &str) -> Vec<Value> {
        let w = lock(&self.world);
        let (g, v) = split_api_version(api_version);
        w.kinds
            .get(&gvr(&g, &v, plural))
            .map(|k| k.objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets the history: a watch from any earlier resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        let mut w = lock(&self.world);
        w.compacted = w.rv + 1;
        w.history.clear();
    }

    /// Ends every open watch, as a dropped connection or an API server restart would.
    pub fn drop_watches(&self) {
        let _ = self.changes.send(None);
    }

    /// Answers the next matching requests with a fault instead.
    pub fn inject(&self, fault: Fault) {
        lock(&self.world).faults.push_back(fault);
    }

    /// Takes back every injected fault not yet given.
    pub fn clear_faults(&self) {
        lock(&self.world).faults.clear();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        lock(&self.world).requests.clone()
    }
}

fn gvr(group: &str, version: &str, plural: &str) -> Gvr {
    (group.to_owned(), version.to_owned(), plural.to_owned())
}

fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), api_version.to_owned()),
    }
}

impl World {
    /// Stores an object with a new resourceVersion, keeping its uid and creation time.
    fn store(&mut self, key: &Gvr, mut object: Value, from_test: bool) -> Value {
        self.rv += 1;
        let rv = self.rv;
        let uid = self.next_uid;
        let Some(kind) = self.kinds.get_mut(key) else {
            return object;
        };
        let ns = if kind.namespaced {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned()
        } else {
            String::new()
        };
        let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let old = kind.objects.get(&(ns.clone(), name.clone()));
        let created = old.is_none();
        let (uid, creation) = match old {
            Some(o) => (
                o["metadata"]["uid"].clone(),
                o["metadata"]["creationTimestamp"].clone(),
            ),
            // The test may say when its object was created; a client may not.
            None => (
                json!(format!("00000000-0000-0000-0000-{uid:012}")),
                match &object["metadata"]["creationTimestamp"] {
                    Value::String(t) if from_test => json!(t),
                    _ => json!(now()),
                },
            ),
        };
        if created {
            self.next_uid += 1;
        }
        // As the API server counts them: a new generation when anything but the metadata and
        // the status changed.
        let body = |o: &Value| {
            let mut o = o.clone();
            if let Some(map) = o.as_object_mut() {
                map.remove("metadata");
                map.remove("status");
            }
            o
        };
        let generation = match old {
            Some(o) if body(o) == body(&object) => {
                o["metadata"]["generation"].as_u64().unwrap_or(1)
            }
            Some(o) => o["metadata"]["generation"].as_u64().unwrap_or(0) + 1,
            None => 1,
        };
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = json!(rv.to_string());
        meta["uid"] = uid;
        meta["creationTimestamp"] = creation;
        meta["generation"] = json!(generation);
        meta["managedFields"] = json!([{"manager": "fake", "operation": "Update", "time": now()}]);
        if kind.namespaced {
            meta["namespace"] = json!(ns);
        }
        object["kind"] = json!(kind.kind);
        kind.objects.insert((ns, name), object.clone());
        {
            self.history.push(Change {
                rv,
                gvr: key.clone(),
                kind: if created { "ADDED" } else { "MODIFIED" },
                object: object.clone(),
            });
        }
        object
    }

    fn remove(&mut self, key: &Gvr, ns: &str, name: &str) -> Option<Value> {
        self.rv += 1;
        let rv = self.rv;
        let kind = self.kinds.get_mut(key)?;
        let ns = if kind.namespaced { ns } else { "" };
        let mut object = kind.objects.remove(&(ns.to_owned(), name.to_owned()))?;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.history.push(Change {
            rv,
            gvr: key.clone(),
            kind: "DELETED",
            object: object.clone(),
        });
        Some(object)
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

fn answer(code: u16, body: &Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn failure(code: u16, reason: &str, message: &str) -> Response {
    answer(code, &status(code, reason, message))
}

/// What a path names.
struct Target {
    gvr: Gvr,
    namespace: Option<String>,
    name: Option<String>,
    /// The `status` subresource.
    status: bool,
}

fn target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        ["api", v, rest @ ..] => ("", *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some((*name).to_owned()), false),
        [plural, name, "status"] => (*plural, Some((*name).to_owned()), true),
        _ => return None,
    };
    Some(Target {
        gvr: gvr(group, version, plural),
        namespace,
        name,
        status,
    })
}

fn query(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/").replace("%3D", "=")))
        .collect()
}

async fn handle(Extract(s): Extract<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let uri = parts.uri.clone();
    let method = parts.method.clone();
    {
        let mut w = lock(&s.world);
        w.requests.push(Logged {
            at: Instant::now(),
            method: method.clone(),
            uri: uri.to_string(),
        });
        let hit = w.faults.iter().position(|f| {
            f.method.as_ref().is_none_or(|m| *m == method) && uri.path().contains(&f.path_contains)
        });
        if let Some(i) = hit {
            let fault = w.faults[i].clone();
            if fault.times <= 1 {
                w.faults.remove(i);
            } else {
                w.faults[i].times -= 1;
            }
            let mut r = failure(fault.code, "Injected", "an injected fault");
            if let Some(after) = fault.retry_after
                && let Ok(v) = HeaderValue::from_str(&after.to_string())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    let Some(t) = target(uri.path()) else {
        return failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let q = query(&uri);
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    match method {
        Method::GET
            if t.name.is_none() && q.get("watch").is_some_and(|w| w == "true" || w == "1") =>
        {
            watch(&s, &t, &q)
        }
        Method::GET if t.name.is_none() => list(&s, &t, &q),
        Method::GET => get(&s, &t),
        Method::POST => create(&s, &t, &body),
        Method::PUT => replace(&s, &t, &body),
        Method::DELETE => delete(&s, &t),
        _ => failure(405, "MethodNotAllowed", "method not served"),
    }
}

fn not_served(t: &Target) -> Response {
    failure(
        404,
        "NotFound",
        &format!(
            "the server could not find the requested resource ({})",
            t.gvr.2
        ),
    )
}

fn in_scope(kind: &Kind, t: &Target, ns: &str) -> bool {
    !kind.namespaced || t.namespace.as_deref().is_none_or(|want| want == ns)
}

fn list(s: &Shared, t: &Target, q: &HashMap<String, String>) -> Response {
    let w = lock(&s.world);
    let Some(kind) = w.kinds.get(&t.gvr) else {
        return not_served(t);
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0);
    let after = q.get("continue").cloned().unwrap_or_default();
    let mut items = Vec::new();
    let mut next = None;
    let selector: Vec<(&str, &str)> = q
        .get("labelSelector")
        .map(|s| s.split(',').filter_map(|kv| kv.split_once('=')).collect())
        .unwrap_or_default();
    for ((ns, name), o) in &kind.objects {
        let selected = selector
            .iter()
            .all(|(k, v)| o["metadata"]["labels"][*k] == *v);
        if !in_scope(kind, t, ns) || !selected {
            continue;
        }
        let key = format!("{ns}/{name}");
        if !after.is_empty() && key <= after {
            continue;
        }
        if limit.is_some_and(|l| items.len() == l) {
            next = Some(items_key(&items));
            break;
        }
        items.push(o.clone());
    }
    let mut meta = json!({ "resourceVersion": w.rv.to_string() });
    if let Some(c) = next {
        meta["continue"] = json!(c);
    }
    let (g, v, _) = &t.gvr;
    let api_version = if g.is_empty() {
        v.clone()
    } else {
        format!("{g}/{v}")
    };
    answer(
        200,
        &json!({ "apiVersion": api_version, "kind": format!("{}List", kind.kind), "metadata": meta, "items": items }),
    )
}

/// `namespace/name` of the last of `items`: the continue token.
fn items_key(items: &[Value]) -> String {
    items.last().map_or_else(String::new, |o| {
        format!(
            "{}/{}",
            o["metadata"]["namespace"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or("")
        )
    })
}

fn watch(s: &Shared, t: &Target, q: &HashMap<String, String>) -> Response {
    let w = lock(&s.world);
    let Some(kind) = w.kinds.get(&t.gvr) else {
        return not_served(t);
    };
    let namespaced = kind.namespaced;
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(290), Duration::from_secs);
    let mut first: Vec<Bytes> = Vec::new();
    let gone = from != 0 && from < w.compacted;
    if gone {
        let e = status(
            410,
            "Expired",
            &format!("too old resource version: {from} ({})", w.compacted),
        );
        first.push(line(&json!({ "type": "ERROR", "object": e })));
    } else {
        for c in w.history.iter().filter(|c| c.rv > from && c.gvr == t.gvr) {
            let ns = c.object["metadata"]["namespace"].as_str().unwrap_or("");
            if !namespaced || t.namespace.as_deref().is_none_or(|want| want == ns) {
                first.push(line(&json!({ "type": c.kind, "object": c.object })));
            }
        }
        if bookmarks {
            first.push(bookmark(&t.gvr, w.rv));
        }
    }
    let live = s.changes.subscribe();
    drop(w);
    let (gvr, ns) = (t.gvr.clone(), t.namespace.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    let head = futures_util::stream::iter(first.into_iter().map(Ok::<_, std::convert::Infallible>));
    let tail = futures_util::stream::unfold((live, gone), move |(mut live, done)| {
        let (gvr, ns) = (gvr.clone(), ns.clone());
        async move {
            if done {
                return None;
            }
            loop {
                let next = tokio::time::timeout_at(deadline, live.recv()).await;
                match next {
                    Ok(Ok(Some(c))) if c.gvr == gvr => {
                        let on = c.object["metadata"]["namespace"].as_str().unwrap_or("");
                        if namespaced && ns.as_deref().is_some_and(|want| want != on) {
                            continue;
                        }
                        let l = line(&json!({ "type": c.kind, "object": c.object }));
                        return Some((Ok(l), (live, false)));
                    }
                    Ok(Ok(Some(_))) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                    // Dropped watches, a closed channel, or the timeout: the stream ends.
                    _ => return None,
                }
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(head.chain(tail)))
        .unwrap_or_else(|_| failure(500, "InternalError", "building a watch"))
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(gvr: &Gvr, rv: u64) -> Bytes {
    let (g, v, _) = gvr;
    let api_version = if g.is_empty() {
        v.clone()
    } else {
        format!("{g}/{v}")
    };
    line(&json!({
        "type": "BOOKMARK",
        "object": { "apiVersion": api_version, "kind": "Bookmark", "metadata": { "resourceVersion": rv.to_string() } }
    }))
}

fn object_key(kind: &Kind, t: &Target) -> (String, String) {
    let ns = if kind.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    (ns, t.name.clone().unwrap_or_default())
}

/// The object a path names, or the 404 to answer.
fn existing<'w>(w: &'w World, t: &Target) -> Result<&'w Value, Box<Response>> {
    let Some(kind) = w.kinds.get(&t.gvr) else {
        return Err(Box::new(not_served(t)));
    };
    let key = object_key(kind, t);
    kind.objects.get(&key).ok_or_else(|| {
        let message = format!("{} {:?} not found", t.gvr.2, key.1);
        Box::new(failure(404, "NotFound", &message))
    })
}

fn get(s: &Shared, t: &Target) -> Response {
    match existing(&lock(&s.world), t) {
        Ok(o) => answer(200, o),
        Err(r) => *r,
    }
}

/// The body as JSON, or the 400 to answer.
fn parse(body: &[u8]) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(failure(
            400,
            "BadRequest",
            &format!("the body is not JSON: {e}"),
        ))
    })
}

/// Stores an object for a request and tells the watches.
fn commit(s: &Shared, w: &mut World, t: &Target, object: Value, code: u16) -> Response {
    let stored = w.store(&t.gvr, object, false);
    if let Some(c) = w.history.last().cloned() {
        let _ = s.changes.send(Some(c));
    }
    answer(code, &stored)
}

/// `POST`: 409 AlreadyExists when the name is taken.
fn create(s: &Shared, t: &Target, body: &[u8]) -> Response {
    let mut object = match parse(body) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let mut w = lock(&s.world);
    let Some(kind) = w.kinds.get(&t.gvr) else {
        return not_served(t);
    };
    if object["metadata"]["name"]
        .as_str()
        .is_none_or(str::is_empty)
        && let Some(prefix) = object["metadata"]["generateName"].as_str()
    {
        object["metadata"]["name"] = json!(format!("{prefix}{:05x}", w.rv));
    }
    let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
    if name.is_empty() {
        return failure(422, "Invalid", "metadata.name: Required value");
    }
    if let Some(ns) = &t.namespace {
        object["metadata"]["namespace"] = json!(ns);
    }
    let named = Target {
        gvr: t.gvr.clone(),
        namespace: t.namespace.clone(),
        name: Some(name.clone()),
        status: false,
    };
    if kind.objects.contains_key(&object_key(kind, &named)) {
        let message = format!("{} {name:?} already exists", t.gvr.2);
        return failure(409, "AlreadyExists", &message);
    }
    // As with a status subresource: a create sets no status.
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    commit(s, &mut w, t, object, 201)
}

/// `PUT`: 409 Conflict when the body's resourceVersion is not the stored one. On `/status`,
/// only the status is taken from the body.
fn replace(s: &Shared, t: &Target, body: &[u8]) -> Response {
    let mut object = match parse(body) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let mut w = lock(&s.world);
    let current = match existing(&w, t) {
        Ok(o) => o.clone(),
        Err(r) => return *r,
    };
    if t.status {
        let mut updated = current.clone();
        updated["status"] = object["status"].take();
        updated["metadata"]["resourceVersion"] = object["metadata"]["resourceVersion"].take();
        object = updated;
    }
    let want = &object["metadata"]["resourceVersion"];
    if !want.is_null() && *want != current["metadata"]["resourceVersion"] {
        return failure(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
        );
    }
    commit(s, &mut w, t, object, 200)
}

/// `DELETE`: the object, as it was, in the answer.
fn delete(s: &Shared, t: &Target) -> Response {
    let mut w = lock(&s.world);
    let key = match w.kinds.get(&t.gvr) {
        Some(kind) => object_key(kind, t),
        None => return not_served(t),
    };
    match w.remove(&t.gvr, &key.0, &key.1) {
        Some(o) => {
            if let Some(c) = w.history.last().cloned() {
                let _ = s.changes.send(Some(c));
            }
            answer(200, &o)
        }
        None => failure(
            404,
            "NotFound",
            &format!("{} {:?} not found", t.gvr.2, key.1),
        ),
    }
}
