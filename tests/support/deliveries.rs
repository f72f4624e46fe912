//! What a real Mosquitto delivers: certificate-authenticated clients that
//! publish to and subscribe to every topic, and an observer with full
//! access that sees which messages got through. The judge of the ACL tests
//! (`tests/acl_mosquitto.rs`).
//!
//! Each phase ends with a SUBSCRIBE used as a fence: Mosquitto never checks
//! subscriptions against the ACL, and answers a SUBACK only after the
//! deliveries queued before it, so "not received before the SUBACK" means
//! "denied".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, MqttOptions, NetworkOptions, Packet, QoS, SubscribeFilter,
    TlsConfiguration, Transport,
};
use wott_mqtt::acl::Need;

use super::DeviceIdentity;

/// What a connected client has seen so far.
#[derive(Default)]
pub struct Seen {
    connected: bool,
    error: Option<String>,
    subacks: usize,
    pubacks: usize,
    received: Vec<(String, Vec<u8>)>,
}

pub struct Conn {
    client: AsyncClient,
    seen: Arc<Mutex<Seen>>,
    name: String,
}

pub async fn connect(port: u16, identity: &DeviceIdentity, client_id: &str) -> Conn {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_transport(Transport::Tls(TlsConfiguration::Simple {
        ca: identity.ca_pem.clone().into_bytes(),
        alpn: None,
        client_auth: Some((
            identity.cert_pem.clone().into_bytes(),
            identity.key_pem.clone().into_bytes(),
        )),
    }));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(5);
    eventloop.set_network_options(network);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let event = eventloop.poll().await;
            let mut seen = shared.lock().unwrap();
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => seen.connected = true,
                Ok(Event::Incoming(Packet::SubAck(_))) => seen.subacks += 1,
                Ok(Event::Incoming(Packet::PubAck(_))) => seen.pubacks += 1,
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    seen.received.push((p.topic.clone(), p.payload.to_vec()))
                }
                Ok(_) => {}
                Err(e) => {
                    seen.error = Some(e.to_string());
                    return;
                }
            }
        }
    });
    let conn = Conn {
        client,
        seen,
        name: client_id.to_string(),
    };
    conn.wait("CONNACK", |s| s.connected).await;
    conn
}

impl Conn {
    pub async fn wait(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let seen = self.seen.lock().unwrap();
                if done(&seen) {
                    return;
                }
                if let Some(error) = &seen.error {
                    panic!("client {}: waiting for {what}: {error}", self.name);
                }
            }
            assert!(
                Instant::now() < deadline,
                "client {}: no {what} within 10 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub async fn subscribe_all(&self, topics: &[String]) {
        let before = self.seen.lock().unwrap().subacks;
        let filters = topics
            .iter()
            .map(|t| SubscribeFilter::new(t.clone(), QoS::AtMostOnce));
        self.client.subscribe_many(filters).await.unwrap();
        self.wait("SUBACK", |s| s.subacks > before).await;
    }

    /// A SUBSCRIBE round trip: everything Mosquitto queued for this client
    /// before it has arrived once the SUBACK has.
    pub async fn fence(&self) {
        self.subscribe_all(&["zz-fence/never-published".to_string()])
            .await;
    }

    pub async fn publish_all(&self, topics: &[String], payload: impl Fn(usize) -> String) {
        let before = self.seen.lock().unwrap().pubacks;
        for (i, topic) in topics.iter().enumerate() {
            self.client
                .publish(topic.clone(), QoS::AtLeastOnce, false, payload(i))
                .await
                .unwrap();
        }
        let n = topics.len();
        self.wait("PUBACKs", |s| s.pubacks >= before + n).await;
    }

    /// Why the connection ended, if it did (a drop, a refusal).
    pub fn error(&self) -> Option<String> {
        self.seen.lock().unwrap().error.clone()
    }

    /// Waits until `payload` arrived, up to `within`; whether it did.
    pub async fn receives(&self, payload: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.received(payload) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.received(payload)
    }

    pub fn received(&self, payload: &str) -> bool {
        self.seen
            .lock()
            .unwrap()
            .received
            .iter()
            .any(|(_, p)| p == payload.as_bytes())
    }
}

/// One test client: which identity, which client ID.
pub struct Tester<'a> {
    pub identity: &'a DeviceIdentity,
    pub client_id: String,
}

/// The broker's answer for each (tester, topic, access); `None` when the
/// case cannot be observed (nobody may publish to that topic).
pub type Observed = HashMap<(usize, usize, Need), Option<bool>>;

pub async fn observe(
    port: u16,
    observer: &DeviceIdentity,
    testers: &[Tester<'_>],
    topics: &[String],
) -> Observed {
    let obs = connect(port, observer, "observer").await;
    let mut conns = Vec::new();
    for t in testers {
        conns.push(connect(port, t.identity, &t.client_id).await);
    }
    obs.subscribe_all(topics).await;
    for c in &conns {
        c.subscribe_all(topics).await;
    }

    // Write: the observer sees what each client may publish.
    for (ci, c) in conns.iter().enumerate() {
        c.publish_all(topics, |ti| format!("w/{ci}/{ti}")).await;
    }
    obs.fence().await;

    // Read: each client sees what the observer's messages it may receive.
    obs.publish_all(topics, |ti| format!("r/{ti}")).await;
    obs.fence().await;
    for c in &conns {
        c.fence().await;
    }

    let mut observed = HashMap::new();
    for (ci, c) in conns.iter().enumerate() {
        for ti in 0..topics.len() {
            observed.insert(
                (ci, ti, Need::Write),
                Some(obs.received(&format!("w/{ci}/{ti}"))),
            );
            let publishable = obs.received(&format!("r/{ti}"));
            observed.insert(
                (ci, ti, Need::Read),
                publishable.then(|| c.received(&format!("r/{ti}"))),
            );
        }
    }
    for c in conns.iter().chain([&obs]) {
        let _ = c.client.disconnect().await;
    }
    observed
}
