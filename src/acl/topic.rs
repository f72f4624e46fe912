//! Topic filters as Mosquitto 2.x reads them in an acl_file, and how they match.
//!
//! Mosquitto works on bytes, not on UTF-8 strings, and so does this module:
//! an ACL file may hold any bytes, and a rule that Mosquitto accepts must be
//! accepted here too. The rules follow `lib/util_topic.c` of Mosquitto 2.0.11
//! (`mosquitto_sub_topic_check`, `mosquitto_topic_matches_sub`):
//!
//! - `+` fills a whole level, `#` fills a whole level and is the last one;
//! - `#` also matches the parent level: `a/#` matches `a`;
//! - `+` matches an empty level: `a/+` matches `a/`;
//! - a filter starting with `$` matches only topics starting with `$`, and a
//!   filter that does not start with `$` never matches a `$`-topic (so `#`
//!   does not match `$SYS/…`);
//! - at most 200 `/` separators and 65535 bytes.

/// Mosquitto's `TOPIC_HIERARCHY_LIMIT`: the most `/` a topic may contain.
pub const MAX_SEPARATORS: usize = crate::names::MAX_TOPIC_SEPARATORS;

/// Mosquitto's limit on the length of a topic, in bytes.
pub const MAX_LEN: usize = 65_535;

/// Why Mosquitto refuses a topic filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterProblem {
    TooLong,
    MisplacedPlus,
    MisplacedHash,
    TooManyLevels,
}

impl FilterProblem {
    pub fn describe(self) -> &'static str {
        match self {
            FilterProblem::TooLong => "it is longer than 65535 bytes",
            FilterProblem::MisplacedPlus => "'+' must fill a whole level, as in a/+/c",
            FilterProblem::MisplacedHash => "'#' must fill the last level, as in a/#",
            FilterProblem::TooManyLevels => "it has more than 200 levels",
        }
    }
}

/// Why Mosquitto refuses `filter` as an ACL topic, or `None` when it accepts it.
pub fn filter_problem(filter: &[u8]) -> Option<FilterProblem> {
    if filter.len() > MAX_LEN {
        return Some(FilterProblem::TooLong);
    }
    for i in memchr::memchr2_iter(b'+', b'#', filter) {
        let starts_level = i == 0 || filter[i - 1] == b'/';
        let last = i + 1 == filter.len();
        let ends_level = last || filter[i + 1] == b'/';
        if filter[i] == b'+' && !(starts_level && ends_level) {
            return Some(FilterProblem::MisplacedPlus);
        }
        if filter[i] == b'#' && !(starts_level && last) {
            return Some(FilterProblem::MisplacedHash);
        }
    }
    // Only a filter longer than the limit can have too many separators.
    if filter.len() > MAX_SEPARATORS && memchr::memchr_iter(b'/', filter).count() > MAX_SEPARATORS {
        return Some(FilterProblem::TooManyLevels);
    }
    None
}

/// Whether the topic name `topic` matches the filter `filter`, exactly as
/// Mosquitto decides it. Invalid input (an empty filter or topic, a wildcard
/// in the topic) never matches, as in Mosquitto.
pub fn matches(filter: &[u8], topic: &[u8]) -> bool {
    if filter.is_empty() || topic.is_empty() || topic.contains(&b'+') || topic.contains(&b'#') {
        return false;
    }
    if (filter[0] == b'$') != (topic[0] == b'$') {
        return false;
    }
    let mut topic_levels = topic.split(|&b| b == b'/');
    for level in filter.split(|&b| b == b'/') {
        if level == b"#" {
            return true;
        }
        match topic_levels.next() {
            None => return false,
            Some(name) if level == b"+" || level == name => {}
            Some(_) => return false,
        }
    }
    topic_levels.next().is_none()
}

/// Whether some topic name matches both filters. Used to warn that a `deny`
/// rule still takes away part of a grant.
pub fn overlaps(a: &[u8], b: &[u8]) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    // A topic matches a filter only if both start with `$` or neither does.
    if (a[0] == b'$') != (b[0] == b'$') {
        return false;
    }
    let mut a_levels = a.split(|&c| c == b'/');
    let mut b_levels = b.split(|&c| c == b'/');
    loop {
        match (a_levels.next(), b_levels.next()) {
            (Some(b"#"), _) | (_, Some(b"#")) => return true,
            (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(x), Some(y)) => {
                if x != b"+" && y != b"+" && x != y {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(filter: &str, topic: &str) -> bool {
        matches(filter.as_bytes(), topic.as_bytes())
    }

    #[test]
    fn wildcards_match_like_mosquitto() {
        assert!(m("a/b", "a/b"));
        assert!(!m("a/b", "a/bc"));
        assert!(!m("ab", "a"));
        assert!(m("a/+", "a/b"));
        assert!(m("a/+", "a/"));
        assert!(!m("a/+", "a"));
        assert!(!m("a/+", "a/b/c"));
        assert!(m("+/+", "/"));
        assert!(!m("+", "/"));
        assert!(!m("+/+", "a"));
        assert!(m("a/#", "a"));
        assert!(m("a/#", "a/"));
        assert!(m("a/#", "a/b/c"));
        assert!(m("a/+/#", "a/b"));
        assert!(m("a/+/#", "a/"));
        assert!(!m("a/+/#", "a"));
        assert!(m("+/#", "a"));
        assert!(m("#", "/"));
        assert!(m("/#", "/"));
        assert!(m("#", "a/b"));
    }

    #[test]
    fn dollar_topics_need_dollar_filters() {
        assert!(!m("#", "$SYS/broker"));
        assert!(!m("+/broker", "$SYS/broker"));
        assert!(m("$SYS/#", "$SYS/broker"));
        assert!(m("$SYS/#", "$SYS"));
        assert!(m("$x/+", "$x/y"));
        assert!(!m("$x/#", "x/y"));
    }

    #[test]
    fn invalid_input_never_matches() {
        assert!(!m("", "a"));
        assert!(!m("a", ""));
        assert!(!m("#", "a/+"));
        assert!(!m("#", "a/#"));
    }

    #[test]
    fn filter_rules_are_mosquittos() {
        for ok in [
            "a", "#", "+", "a/+/c", "a/#", "/", "+/+", "$SYS/#", "a b/c", "%c/#",
        ] {
            assert_eq!(filter_problem(ok.as_bytes()), None, "{ok:?}");
        }
        for bad in ["a/#/b", "a#", "a/b+", "+a", "$#", "##", "a/++"] {
            assert!(filter_problem(bad.as_bytes()).is_some(), "{bad:?}");
        }
        let deep = "a/".repeat(200) + "a";
        assert_eq!(filter_problem(deep.as_bytes()), None);
        let too_deep = "a/".repeat(201) + "a";
        assert!(filter_problem(too_deep.as_bytes()).is_some());
    }

    #[test]
    fn overlap_finds_a_common_topic() {
        let o = |a: &str, b: &str| overlaps(a.as_bytes(), b.as_bytes());
        assert!(o("wott/#", "wott/secret"));
        assert!(o("wott/+/x", "wott/a/+"));
        assert!(o("#", "a"));
        assert!(o("a/#", "a"));
        assert!(!o("a/b", "a/c"));
        assert!(!o("a/+", "a/b/c"));
        assert!(!o("#", "$SYS/x"));
        assert!(!o("+/x", "$SYS/x"));
        assert!(o("$SYS/#", "$SYS/x"));
        assert!(!o("$a/#", "b/#"));
    }
}
