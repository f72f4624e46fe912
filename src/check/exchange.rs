//! Stages 5 to 7, the MQTT exchange: CONNECT → CONNACK (where, with TLS
//! 1.3, the broker's verdict on our certificate also arrives), SUBSCRIBE →
//! SUBACK, and a message: any (`--wait`) or our own probe (`--roundtrip`).

use std::time::Duration;

use rumqttc::{Connect, Packet, Publish, QoS, Subscribe, SubscribeReasonCode};
use tokio::time::{Instant, timeout_at};

use super::*;

impl Probe<'_> {
    pub(super) async fn connect(
        &mut self,
        session: &mut Session<Tls>,
        tls_started: Instant,
        tls_elapsed: Duration,
        tls_detail: String,
    ) -> Result<(), CheckError> {
        let mut connect = Connect::new(self.plan.client_id.as_str());
        // The broker must not drop us for silence while we wait for a message.
        connect.keep_alive = u16::try_from(self.plan.timeout.as_secs() + 30).unwrap_or(u16::MAX);
        self.report.client_id = Some(self.plan.client_id.clone());
        let tls13 = self
            .report
            .tls
            .as_ref()
            .is_some_and(|t| t.protocol == "TLS 1.3");
        let started = Instant::now();
        let exchange = async {
            session
                .send(Packet::Connect(connect))
                .await
                .map_err(|e| self.connect_error(e, tls13))?;
            // The broker's first packet must be CONNACK (MQTT 3.1.1, 3.2).
            match session
                .next()
                .await
                .map_err(|e| self.connect_error(e, tls13))?
            {
                Packet::ConnAck(ack) => Ok(ack),
                other => Err(CheckError::NotMqtt {
                    stage: Stage::Connect,
                    reason: format!("expected CONNACK, got {}", packet_name(&other)),
                }),
            }
        };
        let result = self.bounded(Stage::Connect, exchange).await;
        if let Err(error) = &result
            && error.stage() == Stage::Tls
        {
            // A TLS alert instead of CONNACK: the broker rejected us after
            // the TLS 1.3 handshake. That is the TLS stage failing.
            let error = error.clone();
            let detail =
                format!("{tls_detail}; then the broker sent a TLS alert instead of CONNACK");
            return Err(self.report.fail(tls_started, detail, error));
        }
        self.report.stages.push(StageReport {
            name: Stage::Tls,
            ok: true,
            ms: millis(tls_elapsed),
            detail: tls_detail,
            error: None,
            hint: None,
        });
        let ack = match result {
            Ok(ack) => ack,
            Err(error) => return Err(self.report.fail(started, String::new(), error)),
        };
        let code = ack.code as u8;
        if code != 0 {
            let error = CheckError::ConnackRefused {
                code,
                client_id: self.plan.client_id.clone(),
            };
            return Err(self.report.fail(started, format!("CONNACK {code}"), error));
        }
        self.report.pass(
            Stage::Connect,
            started,
            format!("CONNACK accepted, client ID {}", self.plan.client_id),
        );
        Ok(())
    }

    pub(super) fn connect_error(&self, e: SessionError, tls13: bool) -> CheckError {
        match e {
            SessionError::Io(io) => match classify::rustls_error(&io) {
                Some(rustls::Error::AlertReceived(alert)) => {
                    classify::alert_error(alert, true, &self.identity.cert.info.issuer)
                }
                _ if classify::is_hang_up(&io) => CheckError::ClosedAfterConnect { tls13 },
                _ => CheckError::ConnectionLost {
                    stage: Stage::Connect,
                    reason: io.to_string(),
                },
            },
            SessionError::Closed => CheckError::ClosedAfterConnect { tls13 },
            SessionError::Protocol(reason) => CheckError::NotMqtt {
                stage: Stage::Connect,
                reason,
            },
        }
    }

    /// SUBSCRIBE, then the message, as far as the plan goes.
    pub(super) async fn mqtt(&mut self, session: &mut Session<Tls>) -> Result<(), CheckError> {
        let (subscription, expect) = match &self.plan.until {
            Until::Connect => return Ok(()),
            Until::Subscribe(s) => (s, None),
            Until::Message {
                subscription,
                expect,
                within,
            } => (subscription, Some((expect, *within))),
        };
        let early = self
            .subscribe(session, subscription, expect.is_some())
            .await?;
        if let Some((expect, within)) = expect {
            self.message(session, subscription, expect, within, early)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn subscribe(
        &mut self,
        session: &mut Session<Tls>,
        subscription: &Subscription,
        message_follows: bool,
    ) -> Result<Vec<Publish>, CheckError> {
        let started = Instant::now();
        let topic = subscription.filter.as_str().to_string();
        let mut packet = Subscribe::new(topic.clone(), subscription.qos);
        packet.pkid = 1;
        let mut early = Vec::new();
        let exchange = async {
            session
                .send(Packet::Subscribe(packet))
                .await
                .map_err(|e| lost(Stage::Subscribe, e))?;
            loop {
                match session
                    .next()
                    .await
                    .map_err(|e| lost(Stage::Subscribe, e))?
                {
                    Packet::SubAck(ack) if ack.pkid == 1 => return Ok(ack),
                    Packet::Publish(p) => early.push(p),
                    _ => {}
                }
            }
        };
        let ack = match self.bounded(Stage::Subscribe, exchange).await {
            Ok(ack) => ack,
            Err(e) => return Err(self.report.fail(started, String::new(), e)),
        };
        let granted = match ack.return_codes.first() {
            Some(SubscribeReasonCode::Success(qos)) => Some(*qos as u8),
            _ => None,
        };
        self.report.subscription = Some(SubscriptionReport {
            topic: topic.clone(),
            qos: subscription.qos as u8,
            granted_qos: granted,
        });
        let Some(granted) = granted else {
            let error = CheckError::SubscribeRefused {
                topic,
                device_id: self.identity.device_id().to_string(),
            };
            return Err(self
                .report
                .fail(started, "SUBACK 0x80 (failure)".into(), error));
        };
        let mut detail = format!("{topic} granted QoS {granted}");
        if !message_follows {
            detail.push_str(&format!(
                " (not proof of access: {ACL_SUBSCRIBE_NOTE}; use --wait or --roundtrip)"
            ));
        }
        self.report.pass(Stage::Subscribe, started, detail);
        Ok(early)
    }

    pub(super) async fn message(
        &mut self,
        session: &mut Session<Tls>,
        subscription: &Subscription,
        expect: &Expect,
        within: Duration,
        early: Vec<Publish>,
    ) -> Result<(), CheckError> {
        let started = Instant::now();
        let window = self.deadline.min(started + within);
        let probe_payload = probe_payload(self.identity.device_id(), Timestamp::now());
        let (topic, roundtrip) = match expect {
            Expect::Any => (subscription.filter.as_str().to_string(), false),
            Expect::Roundtrip(topic) => (topic.as_str().to_string(), true),
        };
        let wanted = |p: &Publish| !roundtrip || p.payload.as_ref() == probe_payload.as_bytes();
        let mut others = 0usize;
        let mut found = None;
        for p in early {
            if wanted(&p) {
                found = Some(p);
                break;
            }
            others += 1;
        }
        if found.is_none() {
            let wait = async {
                if roundtrip {
                    let mut publish =
                        Publish::new(topic.clone(), subscription.qos, probe_payload.clone());
                    if subscription.qos != QoS::AtMostOnce {
                        publish.pkid = 2;
                    }
                    session
                        .send(Packet::Publish(publish))
                        .await
                        .map_err(|e| lost(Stage::Message, e))?;
                }
                loop {
                    if let Packet::Publish(p) =
                        session.next().await.map_err(|e| lost(Stage::Message, e))?
                    {
                        if wanted(&p) {
                            return Ok(p);
                        }
                        others += 1;
                    }
                }
            };
            match timeout_at(window, wait).await {
                Ok(Ok(p)) => found = Some(p),
                Ok(Err(e)) => return Err(self.report.fail(started, String::new(), e)),
                Err(_) => {}
            }
        }
        let Some(p) = found else {
            let error = CheckError::NoMessage {
                topic,
                device_id: self.identity.device_id().to_string(),
                waited: started.elapsed().min(within),
                roundtrip,
                others,
            };
            return Err(self.report.fail(started, String::new(), error));
        };
        self.received(started, &p, roundtrip);
        Ok(())
    }

    /// Records the message that proves access.
    fn received(&mut self, started: Instant, p: &Publish, roundtrip: bool) {
        let shown = &p.payload[..p.payload.len().min(200)];
        let report = MessageReport {
            topic: p.topic.clone(),
            qos: p.qos as u8,
            retained: p.retain,
            bytes: p.payload.len(),
            payload: String::from_utf8_lossy(shown).into_owned(),
            roundtrip,
        };
        let detail = format!(
            "{}{} bytes on {}{}{}",
            if roundtrip {
                "our probe came back: "
            } else {
                ""
            },
            report.bytes,
            report.topic,
            if report.retained { " (retained)" } else { "" },
            if roundtrip {
                " (a real message: every subscriber of the topic received it too)"
            } else {
                ""
            },
        );
        self.report.message = Some(report);
        self.report.pass(Stage::Message, started, detail);
    }
}

/// What `--roundtrip` publishes: it goes to every subscriber of the real
/// topic, so it says what it is, who sent it and when, and a nonce makes it
/// ours: `wott-mqtt check probe 1f2e… from <device ID> at 2026-…Z`.
pub(super) fn probe_payload(device_id: &str, now: Timestamp) -> String {
    format!(
        "wott-mqtt check probe {} from {device_id} at {}",
        random_hex(8),
        now.rfc3339()
    )
}

pub(super) fn lost(stage: Stage, e: SessionError) -> CheckError {
    match e {
        SessionError::Io(io) => CheckError::ConnectionLost {
            stage,
            reason: io.to_string(),
        },
        SessionError::Closed => CheckError::ConnectionLost {
            stage,
            reason: String::new(),
        },
        SessionError::Protocol(reason) => CheckError::NotMqtt { stage, reason },
    }
}

pub(super) fn packet_name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}
