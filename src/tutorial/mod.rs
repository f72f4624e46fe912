//! The tutorial's flows: "secure a Mosquitto server and a Paho client with
//! WoTT" as one wizard per device role ([`setup`]) and as a whole run on one
//! machine ([`demo`]).
//!
//! Both are made of the same domain calls the single commands make (`acl
//! allow`, `server up`, `hosts add`, `check`), so a step behaves the same
//! in the wizard, in the demo and on its own. They decide the order of the
//! steps and what to ask; printing is left to their command adapters in
//! `commands/` (`commands::setup`, `commands::demo`).

pub mod demo;
pub mod setup;
