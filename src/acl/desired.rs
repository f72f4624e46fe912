//! The input of `acl apply`: the grants devices should have, read whole and
//! validated before the ACL file is even opened.
//!
//! Two spellings, told apart by the first byte that is not whitespace:
//!
//! - JSON (`[` or `{`): an array of `{"device": ID, "topic": FILTER,
//!   "access": "read"|"write"|"readwrite"}` objects, for programs;
//! - lines, for shell scripts: `<device-id> <topic-filter> <access>`
//!   separated by spaces or tabs; blank lines and lines starting with `#`
//!   are ignored.
//!
//! Every entry is checked (device IDs as DNS names, filters as MQTT topic
//! filters, the access word) and every problem is collected with its line
//! (and, for JSON, its element index), so one run names all of them. The
//! same grant twice is one grant; the same device and filter with two
//! accesses is a problem, since the ACL can only say one.

use serde::Serialize;
use serde_json::Value;

use super::{Access, FastMap};
use crate::names::{DeviceId, IdPolicy, NameError, TopicFilter};

/// How the input was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Lines,
}

/// One device's grants, in the order the input first names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDevice {
    pub id: DeviceId,
    pub grants: Vec<(TopicFilter, Access)>,
}

/// The validated input: devices in the order the input first names them.
#[derive(Debug, Clone)]
pub struct Desired {
    pub format: Format,
    pub devices: Vec<DesiredDevice>,
    /// Entries in the input, duplicates included.
    pub entries: usize,
}

impl Desired {
    /// Grants after merging duplicates.
    pub fn grants(&self) -> usize {
        self.devices.iter().map(|d| d.grants.len()).sum()
    }
}

/// A bad entry: where it is, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line of the input.
    pub line: usize,
    /// 0-based index in the JSON array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<usize>,
    pub message: String,
    /// A device ID that is valid but not WoTT-shaped (`--any-id` takes it).
    #[serde(skip)]
    pub not_wott: bool,
}

/// Where an entry is.
#[derive(Debug, Clone, Copy)]
struct Place {
    line: usize,
    element: Option<usize>,
}

impl Place {
    fn describe(self) -> String {
        match self.element {
            Some(i) => format!("line {} (element [{i}])", self.line),
            None => format!("line {}", self.line),
        }
    }
}

/// Reads the input: the desired grants, or every problem found. Device IDs
/// are typed ones: under [`IdPolicy::Wott`], each must be WoTT-shaped.
pub fn parse(bytes: &[u8], policy: IdPolicy) -> Result<Desired, Vec<Problem>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let format = match first {
        Some(b'[' | b'{') => Format::Json,
        _ => Format::Lines,
    };
    // At most one entry per line: reserved once, no copies as they grow
    // (capacity that is never written costs no memory).
    let lines = memchr::memchr_iter(b'\n', bytes).count() + 1;
    let mut collector = Collector {
        by_id: FastMap::with_capacity_and_hasher(lines, Default::default()),
        grants: Vec::with_capacity(lines),
        places: Vec::with_capacity(lines),
        policy,
        ..Collector::default()
    };
    match format {
        Format::Json => JsonReader::new(bytes).read(&mut collector),
        Format::Lines => read_lines(bytes, &mut collector),
    }
    if !collector.problems.is_empty() {
        return Err(collector.problems);
    }
    let entries = collector.entries;
    Ok(Desired {
        format,
        devices: collector.devices(),
        entries,
    })
}

/// Gathers entries into devices, and the problems.
#[derive(Debug, Default)]
struct Collector {
    /// Each device's grants, by its index in `by_id`.
    grants: Vec<Vec<(TopicFilter, Access)>>,
    /// The devices (their IDs live here until the end) and their index.
    by_id: FastMap<DeviceId, usize>,
    /// Where each grant (device, index) was first asked for, in input order.
    places: Vec<(usize, usize, Place)>,
    /// The same as a map, made at the first contradiction.
    place_of: Option<FastMap<(usize, usize), Place>>,
    /// Per device with many grants, its filters' indices.
    many: FastMap<usize, FastMap<String, usize>>,
    problems: Vec<Problem>,
    entries: usize,
    policy: IdPolicy,
}

/// Beyond this many grants, a device's filters are looked up in a map.
const FEW: usize = 16;

impl Collector {
    fn problem(&mut self, place: Place, message: impl Into<String>) {
        self.problems.push(Problem {
            line: place.line,
            element: place.element,
            message: message.into(),
            not_wott: false,
        });
    }

    /// One entry: checks each field given (a missing one is already a
    /// problem), then merges it.
    fn grant(
        &mut self,
        place: Place,
        device: Option<&str>,
        topic: Option<&str>,
        access: Option<&str>,
    ) {
        self.entries += 1;
        // A device already met was validated then.
        if let (Some(device), Some(topic), Some(access)) = (device, topic, access)
            && let Some(&known) = self.by_id.get(device)
        {
            let filter = TopicFilter::new(topic).map_err(|e| self.problem(place, e.to_string()));
            let access = grant_access(access).map_err(|message| self.problem(place, message));
            if let (Ok(filter), Ok(access)) = (filter, access) {
                self.merge_into(known, device, place, filter, access);
            }
            return;
        }
        let id = device.and_then(|device| {
            if device == "self" {
                self.problem(
                    place,
                    "`self` is not read here: give the device's ID (`wott-mqtt whoami` on it prints it)",
                );
                return None;
            }
            DeviceId::typed(device, self.policy)
                .map_err(|e| {
                    self.problem(place, e.to_string());
                    if let Some(p) = self.problems.last_mut() {
                        p.not_wott = matches!(e, NameError::NotWott { .. });
                    }
                })
                .ok()
        });
        let filter = topic.and_then(|topic| {
            TopicFilter::new(topic)
                .map_err(|e| self.problem(place, e.to_string()))
                .ok()
        });
        let access = access.and_then(|access| {
            grant_access(access)
                .map_err(|message| self.problem(place, message))
                .ok()
        });
        if let (Some(id), Some(filter), Some(access)) = (id, filter, access) {
            self.merge(place, id, filter, access);
        }
    }

    fn merge(&mut self, place: Place, id: DeviceId, filter: TopicFilter, access: Access) {
        match self.by_id.get(&id) {
            Some(&device) => self.merge_into(device, id.as_str(), place, filter, access),
            None => {
                let device = self.grants.len();
                self.by_id.insert(id, device);
                self.grants.push(Vec::new());
                self.push_grant(device, place, filter, access);
            }
        }
    }

    /// One more grant of a device already met.
    fn merge_into(
        &mut self,
        device: usize,
        id: &str,
        place: Place,
        filter: TopicFilter,
        access: Access,
    ) {
        let Some(k) = self.find(device, &filter) else {
            return self.push_grant(device, place, filter, access);
        };
        let first = self.grants[device][k].1;
        if first != access {
            let place_of = self
                .place_of
                .get_or_insert_with(|| self.places.iter().map(|&(d, k, p)| ((d, k), p)).collect());
            let at = place_of[&(device, k)];
            let message = format!(
                "{id} is granted {} on {filter} here, but {} on {}: one device gets one access per topic filter",
                access.keyword(),
                first.keyword(),
                at.describe()
            );
            self.problem(place, message);
        }
    }

    fn push_grant(&mut self, device: usize, place: Place, filter: TopicFilter, access: Access) {
        let grants = &mut self.grants[device];
        let k = grants.len();
        if let Some(index) = self.many.get_mut(&device) {
            index.insert(filter.as_str().to_string(), k);
        } else if k == FEW {
            let mut index: FastMap<String, usize> = grants
                .iter()
                .enumerate()
                .map(|(k, (f, _))| (f.as_str().to_string(), k))
                .collect();
            index.insert(filter.as_str().to_string(), k);
            self.many.insert(device, index);
        }
        grants.push((filter, access));
        self.places.push((device, k, place));
        if let Some(place_of) = &mut self.place_of {
            place_of.insert((device, k), place);
        }
    }

    /// The index of `device`'s grant on `filter`, if it has one.
    fn find(&self, device: usize, filter: &TopicFilter) -> Option<usize> {
        match self.many.get(&device) {
            Some(index) => index.get(filter.as_str()).copied(),
            None => self.grants[device].iter().position(|(f, _)| f == filter),
        }
    }

    /// The devices, in the order the input first names them.
    fn devices(self) -> Vec<DesiredDevice> {
        let mut ids: Vec<Option<DeviceId>> = vec![None; self.grants.len()];
        for (id, device) in self.by_id {
            ids[device] = Some(id);
        }
        ids.into_iter()
            .zip(self.grants)
            .filter_map(|(id, grants)| Some(DesiredDevice { id: id?, grants }))
            .collect()
    }
}

fn grant_access(word: &str) -> Result<Access, String> {
    match word {
        "read" => Ok(Access::Read),
        "write" => Ok(Access::Write),
        "readwrite" => Ok(Access::ReadWrite),
        "deny" => Err(
            "`deny` is not a grant: `acl apply` writes grants only; keep deny rules as hand-written lines"
                .into(),
        ),
        other => Err(format!(
            "unknown access {other:?}: use read, write or readwrite"
        )),
    }
}

/// The line format: `<device-id> <topic-filter> <access>` per line.
fn read_lines(bytes: &[u8], out: &mut Collector) {
    for line in crate::lines::split(bytes) {
        let place = Place {
            line: line.number,
            element: None,
        };
        let Ok(text) = std::str::from_utf8(line.text()) else {
            out.problem(place, "the line is not UTF-8");
            continue;
        };
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let mut fields = text.split([' ', '\t']).filter(|f| !f.is_empty());
        let (device, topic, access) = (fields.next(), fields.next(), fields.next());
        let more = fields.count();
        match (device, topic, access, more) {
            (Some(_), Some(_), Some(_), 0) => out.grant(place, device, topic, access),
            (Some(_), Some(_), None, _) => out.problem(
                place,
                "the access is missing: write `<device-id> <topic-filter> <read|write|readwrite>`",
            ),
            _ => out.problem(
                place,
                format!(
                    "expected `<device-id> <topic-filter> <read|write|readwrite>`, found {} field(s) \
                     (a topic filter with spaces needs the JSON input)",
                    [device, topic, access].iter().flatten().count() + more
                ),
            ),
        }
    }
}

/// The JSON format, read element by element so that each one's line is known.
struct JsonReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The line `pos` is on, counted incrementally.
    line: usize,
    counted_to: usize,
}

impl<'a> JsonReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        JsonReader {
            bytes,
            pos: 0,
            line: 1,
            counted_to: 0,
        }
    }

    fn line_at(&mut self, pos: usize) -> usize {
        self.line += memchr::memchr_iter(b'\n', &self.bytes[self.counted_to..pos]).count();
        self.counted_to = pos;
        self.line
    }

    fn skip_whitespace(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !b.is_ascii_whitespace() {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    fn here(&mut self, element: Option<usize>) -> Place {
        Place {
            line: self.line_at(self.pos),
            element,
        }
    }

    fn read(mut self, out: &mut Collector) {
        if self.skip_whitespace() != Some(b'[') {
            let place = self.here(None);
            out.problem(
                place,
                r#"the JSON input must be an array of {"device": ID, "topic": FILTER, "access": ACCESS} objects"#,
            );
            return;
        }
        self.pos += 1;
        if self.skip_whitespace() == Some(b']') {
            self.pos += 1;
            return self.end(out);
        }
        for index in 0.. {
            self.skip_whitespace();
            let place = self.here(Some(index));
            let mut values =
                serde_json::Deserializer::from_slice(&self.bytes[self.pos..]).into_iter::<Value>();
            match values.next() {
                Some(Ok(value)) => element(out, place, value),
                Some(Err(e)) => return syntax(out, place, &e),
                None => return out.problem(place, "the array is not closed with `]`"),
            }
            self.pos += values.byte_offset();
            match self.skip_whitespace() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return self.end(out);
                }
                found => {
                    let place = self.here(Some(index));
                    let what = found.map_or("the end of the input".to_string(), |b| {
                        format!("{:?}", char::from(b))
                    });
                    return out.problem(
                        place,
                        format!("expected `,` or `]` after element [{index}], found {what}"),
                    );
                }
            }
        }
    }

    /// Only whitespace may follow the array.
    fn end(&mut self, out: &mut Collector) {
        if self.skip_whitespace().is_some() {
            let place = self.here(None);
            out.problem(place, "unexpected text after the JSON array");
        }
    }
}

fn syntax(out: &mut Collector, place: Place, error: &serde_json::Error) {
    let line = place.line + error.line().saturating_sub(1);
    let message = format!("invalid JSON: {error}");
    // serde_json counts lines from where this element starts.
    let message = match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message,
    };
    out.problem(Place { line, ..place }, message);
}

/// One element of the JSON array.
fn element(out: &mut Collector, place: Place, value: Value) {
    let Value::Object(map) = value else {
        return out.problem(
            place,
            format!(
                r#"expected an object {{"device": ID, "topic": FILTER, "access": ACCESS}}, found {}"#,
                kind(&value)
            ),
        );
    };
    let mut ok = true;
    for key in map.keys() {
        if !matches!(key.as_str(), "device" | "topic" | "access") {
            out.problem(
                place,
                format!(
                    "unknown key {:?}: an element has \"device\", \"topic\" and \"access\"",
                    crate::output::excerpt(key, 40)
                ),
            );
            ok = false;
        }
    }
    let mut field = |name: &str| match map.get(name) {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            out.problem(
                place,
                format!("{name:?} must be a string, not {}", kind(other)),
            );
            None
        }
        None => {
            out.problem(place, format!("{name:?} is missing"));
            None
        }
    };
    let (device, topic, access) = (field("device"), field("topic"), field("access"));
    if ok {
        out.grant(place, device, topic, access);
    } else {
        out.entries += 1;
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";
    const B: &str = "0123456789abcdef0123456789abcdef.d.wott.local";

    fn problems(input: &str) -> Vec<(usize, Option<usize>, String)> {
        parse(input.as_bytes(), IdPolicy::Wott)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.line, p.element, p.message))
            .collect()
    }

    fn grants(d: &Desired) -> Vec<(String, String, Access)> {
        d.devices
            .iter()
            .flat_map(|dev| {
                dev.grants
                    .iter()
                    .map(|(f, a)| (dev.id.to_string(), f.to_string(), *a))
            })
            .collect()
    }

    #[test]
    fn lines_and_json_say_the_same() {
        let lines = format!(
            "# fleet\n\n{A} wott/temperature read\r\n  {B}\twott/# readwrite\n{A} wott/temperature read\n{A} a/+ write"
        );
        let json = format!(
            r#"[{{"device": "{A}", "topic": "wott/temperature", "access": "read"}},
                {{"device": "{B}", "topic": "wott/#", "access": "readwrite"}},
                {{"access": "read", "topic": "wott/temperature", "device": "{A}"}},
                {{"device": "{A}", "topic": "a/+", "access": "write"}}]"#
        );
        let l = parse(lines.as_bytes(), IdPolicy::Wott).unwrap();
        let j = parse(json.as_bytes(), IdPolicy::Wott).unwrap();
        assert_eq!((l.format, j.format), (Format::Lines, Format::Json));
        assert_eq!(grants(&l), grants(&j));
        assert_eq!((l.entries, l.grants(), l.devices.len()), (4, 3, 2));
        assert_eq!(
            grants(&l)[1],
            (A.to_string(), "a/+".to_string(), Access::Write)
        );
        assert!(parse(b"", IdPolicy::Wott).unwrap().devices.is_empty());
        assert!(
            parse(b" [ ] \n", IdPolicy::Wott)
                .unwrap()
                .devices
                .is_empty()
        );
    }

    #[test]
    fn a_device_with_many_grants_is_merged_the_same() {
        let mut input = String::new();
        for i in 0..40 {
            input.push_str(&format!("{A} t/{i} read\n{A} t/{} read\n", i / 2));
        }
        let contradiction = format!("{A} t/39 write\n");
        let d = parse(input.as_bytes(), IdPolicy::Wott).unwrap();
        assert_eq!((d.entries, d.grants()), (80, 40));
        assert_eq!(d.devices[0].grants[39].0.as_str(), "t/39");
        input.push_str(&contradiction);
        let found = problems(&input);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, 81);
        assert!(found[0].2.contains("but read on line 79"), "{}", found[0].2);
    }

    #[test]
    fn every_bad_line_is_named() {
        let found = problems(&format!(
            "{A} wott/x read\nbad_id wott/x read\n{A} wott/#/x read\n{A} wott/y rw\n{A} wott/z\n{A} wott/x write\nself a read\n{A} a deny\n"
        ));
        let lines: Vec<usize> = found.iter().map(|p| p.0).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8], "{found:?}");
        assert!(found[0].2.contains("invalid device ID \"bad_id\""));
        assert!(found[1].2.contains("'#' must be the last level"));
        assert!(found[2].2.contains("unknown access \"rw\""));
        assert!(found[3].2.contains("the access is missing"));
        assert!(found[4].2.contains("but read on line 1"), "{}", found[4].2);
        assert!(found[5].2.contains("`self`"));
        assert!(found[6].2.contains("`deny` is not a grant"));
    }

    #[test]
    fn ids_not_shaped_as_wott_are_named_with_the_id_meant() {
        let upper = A.replace("4853b", "4853B");
        let found = problems(&format!(
            "{A} a read\n{upper} a read\n{} a read\n",
            &A[..32]
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].0, found[1].0), (2, 3));
        for (_, _, message) in &found {
            assert!(
                message.ends_with(&format!("did you mean {A}?")),
                "{message}"
            );
        }
        let any = parse(b"broker.example.com a read\n", IdPolicy::Any).unwrap();
        assert_eq!(any.devices[0].id.as_str(), "broker.example.com");
    }

    #[test]
    fn json_problems_carry_the_element_index() {
        let found = problems(&format!(
            "[\n  {{\"device\": \"{A}\", \"topic\": \"t\", \"access\": \"read\"}},\n  {{\"device\": 7, \"topic\": \"t\"}},\n  \"x\",\n  {{\"device\": \"{A}\", \"topic\": \"t\", \"access\": \"read\", \"acess\": 1}}\n]"
        ));
        assert_eq!(
            found[0],
            (
                3,
                Some(1),
                "\"device\" must be a string, not a number".into()
            )
        );
        assert_eq!(found[1], (3, Some(1), "\"access\" is missing".into()));
        let found = problems(r#"[{"device": "x_x", "topic": "a/#/b"}]"#);
        assert_eq!(found.len(), 3, "{found:?}");
        let found = problems(&format!(
            "[\n  {{\"device\": \"{A}\", \"topic\": \"t\", \"access\": \"read\"}},\n  {{\"device\": 7, \"topic\": \"t\"}},\n  \"x\",\n  {{\"device\": \"{A}\", \"topic\": \"t\", \"access\": \"read\", \"acess\": 1}}\n]"
        ));
        assert_eq!(found[2].1, Some(2));
        assert!(found[2].2.contains("found a string"));
        assert_eq!((found[3].0, found[3].1), (5, Some(3)));
        assert!(found[3].2.contains("unknown key \"acess\""));
        // Syntax errors stop the reading, at the right line.
        let found = problems(&format!(
            "[{{\"device\": \"{A}\", \"topic\": \"t\", \"access\": \"read\"}},\n{{\"device\": \"x\",\n  oops}}]"
        ));
        assert_eq!((found[0].0, found[0].1), (3, Some(1)), "{found:?}");
        assert!(found[0].2.starts_with("invalid JSON"));
        assert!(
            problems("[{} {}]")
                .iter()
                .any(|p| p.2.contains("expected `,` or `]`"))
        );
        assert!(problems("[").iter().any(|p| p.2.contains("not closed")));
        assert!(problems("{}")[0].2.contains("must be an array"));
        assert!(problems("[] x")[0].2.contains("after the JSON array"));
    }
}
