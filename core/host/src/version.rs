//! Versions as Mesos parsed them (stout's `Version`), ordered by SemVer precedence.
//!
//! Mesos accepted `"1"` and `"1.2"` (missing components are 0), a `-prerelease` of
//! dot-separated identifiers and a `+build` suffix that is ignored for ordering and equality.
//! More than three numeric components is an error.

use std::cmp::Ordering;
use std::fmt;

/// A parsed version.
#[derive(Clone, Debug, Eq)]
pub struct Version {
    /// Major component.
    pub major: u64,
    /// Minor component (0 when absent).
    pub minor: u64,
    /// Patch component (0 when absent).
    pub patch: u64,
    /// Prerelease identifiers, in order.
    pub prerelease: Vec<String>,
    /// Build metadata; ignored when comparing.
    pub build: Vec<String>,
}

/// Why a version string did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The string (or its numeric part) is empty.
    #[error("empty version")]
    Empty,
    /// More than major.minor.patch.
    #[error("'{0}' has more than three numeric components")]
    TooManyComponents(String),
    /// A numeric component is not a number.
    #[error("'{component}' in '{version}' is not a non-negative integer")]
    NotANumber {
        /// The whole string.
        version: String,
        /// The component at fault.
        component: String,
    },
    /// An empty or malformed prerelease or build identifier.
    #[error("'{version}' has an empty or invalid identifier in its {part}")]
    BadIdentifier {
        /// The whole string.
        version: String,
        /// "prerelease" or "build".
        part: &'static str,
    },
}

impl Version {
    /// Parses `text` by Mesos's rules (see the module documentation).
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        if text.is_empty() {
            return Err(VersionError::Empty);
        }
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, identifiers(text, build, "build")?),
            None => (text, Vec::new()),
        };
        let (numbers, prerelease) = match rest.split_once('-') {
            Some((numbers, pre)) => (numbers, identifiers(text, pre, "prerelease")?),
            None => (rest, Vec::new()),
        };
        if numbers.is_empty() {
            return Err(VersionError::Empty);
        }
        let parts: Vec<&str> = numbers.split('.').collect();
        if parts.len() > 3 {
            return Err(VersionError::TooManyComponents(text.to_owned()));
        }
        let mut values = [0u64; 3];
        for (slot, part) in values.iter_mut().zip(&parts) {
            let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            *slot = part
                .parse()
                .ok()
                .filter(|_| digits)
                .ok_or_else(|| VersionError::NotANumber { version: text.to_owned(), component: (*part).to_owned() })?;
        }
        Ok(Version { major: values[0], minor: values[1], patch: values[2], prerelease, build })
    }
}

fn identifiers(version: &str, text: &str, part: &'static str) -> Result<Vec<String>, VersionError> {
    let ids: Vec<String> = text.split('.').map(str::to_owned).collect();
    let valid = |id: &String| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ids.iter().all(valid) { Ok(ids) } else { Err(VersionError::BadIdentifier { version: version.to_owned(), part }) }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    /// SemVer 2.0 precedence: numbers first; a prerelease sorts before its release;
    /// prerelease identifiers compare numerically when both are numbers, numbers before
    /// words, and a longer list wins a tie. Build metadata is ignored.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| {
            match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.prerelease, &other.prerelease),
            }
        })
    }
}

fn compare_prerelease(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.prerelease.is_empty() {
            write!(f, "-{}", self.prerelease.join("."))?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build.join("."))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<&str, VersionError>) {
        let parsed = Version::parse(text).map(|v| v.to_string());
        assert_eq!(parsed.as_deref().map_err(Clone::clone), expected, "parsing {text:?}");
    }

    #[test]
    fn parses_like_stout() {
        check("1", Ok("1.0.0"));
        check("1.2", Ok("1.2.0"));
        check("1.2.3", Ok("1.2.3"));
        check("1.2.3-rc.1+build.5", Ok("1.2.3-rc.1+build.5"));
        check("", Err(VersionError::Empty));
        check("+meta", Err(VersionError::Empty));
        check("1.2.3.4", Err(VersionError::TooManyComponents("1.2.3.4".into())));
        check("one.two", Err(VersionError::NotANumber { version: "one.two".into(), component: "one".into() }));
        check("1..2", Err(VersionError::NotANumber { version: "1..2".into(), component: "".into() }));
        check("1.-2", Err(VersionError::NotANumber { version: "1.-2".into(), component: "".into() }));
        check("1.0.0-", Err(VersionError::BadIdentifier { version: "1.0.0-".into(), part: "prerelease" }));
        check("1.0.0+a..b", Err(VersionError::BadIdentifier { version: "1.0.0+a..b".into(), part: "build" }));
    }

    #[test]
    fn orders_by_semver_precedence() {
        let ascending = [
            "0.1.0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1",
            "2",
        ];
        for pair in ascending.windows(2) {
            let (a, b) = (Version::parse(pair[0]).unwrap(), Version::parse(pair[1]).unwrap());
            assert!(a < b, "{a} < {b}");
        }
        assert_eq!(Version::parse("1.0.0+a").unwrap(), Version::parse("1.0.0+b").unwrap());
    }
}
