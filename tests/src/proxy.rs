//! A TCP fault proxy the tests control: forwards connections to an upstream address, and
//! on command cuts every connection (refusing new ones until resumed), delays traffic, or
//! swallows the next response (the request reaches the server, its answer never comes
//! back, the connection dies): the faults between a client and a server, or between two
//! clusters, that retries and replication must survive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Default)]
struct Control {
    /// Connections exist only while this is false.
    cut: AtomicBool,
    /// Milliseconds each chunk is held before it is forwarded.
    delay_ms: AtomicU64,
    /// Set: the next server-to-client bytes are dropped and the connection is killed.
    drop_response: AtomicBool,
    /// Set with `drop_response`: new connections are refused from the moment the
    /// response is dropped, so a client's retry waits for `resume`.
    cut_on_drop: AtomicBool,
    /// Responses swallowed so far.
    dropped: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    control: Arc<Control>,
    /// Bumped by `cut`: every live connection ends.
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let control = Arc::new(Control::default());
        let generation = watch::Sender::new(0u64);
        let (c, g) = (control.clone(), generation.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if c.cut.load(Ordering::SeqCst) {
                    drop(client); // refused while cut
                    continue;
                }
                tokio::spawn(pipe(client, upstream, c.clone(), g.subscribe()));
            }
        });
        Proxy {
            addr,
            control,
            generation,
            task,
        }
    }

    /// The proxy's address as an `http://` URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills every connection and refuses new ones until [`Proxy::resume`].
    pub fn cut(&self) {
        self.control.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn resume(&self) {
        self.control.cut.store(false, Ordering::SeqCst);
    }

    /// Holds every chunk for `d` before forwarding it (zero: no delay).
    pub fn delay(&self, d: Duration) {
        self.control
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// The next response the server sends back (the next chunk of 32 bytes or more: HTTP/2
    /// control frames are smaller) is swallowed and that connection is killed.
    pub fn drop_next_response(&self) {
        self.control.drop_response.store(true, Ordering::SeqCst);
    }

    /// [`Proxy::drop_next_response`], refusing new connections from the moment the
    /// response is swallowed until [`Proxy::resume`] (call [`Proxy::cut`] to end the
    /// others): the retry comes after whatever the test does meanwhile, a restart say.
    pub fn drop_next_response_and_cut(&self) {
        self.control.cut_on_drop.store(true, Ordering::SeqCst);
        self.drop_next_response();
    }

    /// How many responses were swallowed.
    pub fn dropped_responses(&self) -> u64 {
        self.control.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn pipe(
    client: TcpStream,
    upstream: SocketAddr,
    c: Arc<Control>,
    mut generation: watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = {
        let c = c.clone();
        async move {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = cr.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                hold(&c).await;
                sw.write_all(&buf[..n]).await?;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            // HTTP/2 control frames (settings acks, window updates, pings) are under 32
            // bytes; a response (headers, data, trailers) is larger.
            if n >= 32 && c.drop_response.swap(false, Ordering::SeqCst) {
                if c.cut_on_drop.swap(false, Ordering::SeqCst) {
                    c.cut.store(true, Ordering::SeqCst);
                }
                c.dropped.fetch_add(1, Ordering::SeqCst);
                return Ok(()); // swallow it and end the connection
            }
            hold(&c).await;
            cw.write_all(&buf[..n]).await?;
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = generation.changed() => {}
    }
}

async fn hold(c: &Control) {
    let ms = c.delay_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await; // the fault being injected
    }
}
