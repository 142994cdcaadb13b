//! The offers of one allocation round, held in the packed layout they cross the module
//! boundary in.
//!
//! A round at cluster scale makes tens of thousands of offers. Were they a `Vec<Offer>` of
//! owned strings and maps, a module's round would build them once, encode them, free them,
//! and the host would build them all again from the bytes: at 10,000 agents that is more
//! work than a third of the allocation itself (BENCHMARKS.md). So every allocator, built-in,
//! native module or script, answers with [`Offers`], whose bytes *are* the wire format: a
//! module hands them over as they are and the host checks them once, in one pass, without
//! building anything. Whoever wants an owned [`Offer`] asks for one.
//!
//! The layout, all integers little-endian:
//!
//! ```text
//! "MHO2"  u32 offer_count
//! per offer:  str framework_id, str role, str agent_id, u32 resource_count,
//!             resource_count x (str name, f64 amount)
//! str = u32 byte_length, then that many bytes of UTF-8
//! ```
//!
//! `role` is the role the resources are offered in (ABI 1.2: a framework may be in several);
//! empty means the framework's only role. A module built for ABI 1.1 writes `"MHOF"`, the
//! same layout without `role`, which is read as every role empty.

use std::fmt;

use crate::buffer::Kept;
use crate::messages::{Offer, Resources};

const MAGIC: &[u8; 4] = b"MHO2";
/// The layout of ABI 1.1, without roles.
const MAGIC_1_1: &[u8; 4] = b"MHOF";
/// The magic and the offer count.
const HEADER: usize = 8;
/// The fewest bytes an offer can take: two empty strings and a resource count.
const SMALLEST_OFFER: usize = 12;
/// Bytes an offer of three resources with ids of a dozen characters takes, so that a
/// round's buffer is sized once.
const TYPICAL_OFFER: usize = 96;

/// The offers of one round, in order. Built with [`Offers::push`] (or collected from
/// [`Offer`]s), read with [`Offers::iter`].
///
/// ```
/// use modhost_abi::messages::{Offers, Resources};
///
/// let mut offers = Offers::new();
/// offers.push("web", "agent-1", [("cpus", 2.0), ("mem", 1024.0)]);
/// let first = offers.iter().next().unwrap();
/// assert_eq!((first.framework_id, first.agent_id), ("web", "agent-1"));
/// assert_eq!(first.to_resources(), Resources::new().with("cpus", 2.0).with("mem", 1024.0));
/// ```
pub struct Offers {
    /// Always a whole packed list that reads without error: checked by
    /// [`Offers::from_packed`] or `from_kept`, or written by [`Offers::push`], never anything
    /// else.
    bytes: Storage,
    len: usize,
    /// Whether each offer has its role (`"MHO2"`); not in a module's `"MHOF"` answer.
    roles: bool,
}

/// Where the packed bytes live.
enum Storage {
    /// Written here, or copied in.
    Owned(Vec<u8>),
    /// A module's answer, kept where the module wrote it rather than copied (at 10,000
    /// offers a copy cost 21 us from warm caches and 130 to 190 us into fresh memory, against
    /// a round of about 5 ms: BENCHMARKS.md), and released when dropped.
    Module(Kept),
}

impl Storage {
    fn as_slice(&self) -> &[u8] {
        match self {
            Storage::Owned(bytes) => bytes,
            Storage::Module(kept) => kept.as_slice(),
        }
    }

    /// The bytes as a vector this crate can append to, copying a module's.
    fn to_mut(&mut self) -> &mut Vec<u8> {
        if let Storage::Module(kept) = self {
            *self = Storage::Owned(kept.as_slice().to_vec());
        }
        match self {
            Storage::Owned(bytes) => bytes,
            Storage::Module(_) => unreachable!("made owned just above"),
        }
    }
}

impl Clone for Offers {
    fn clone(&self) -> Self {
        Self { bytes: Storage::Owned(self.bytes.as_slice().to_vec()), len: self.len, roles: self.roles }
    }
}

impl Offers {
    /// No offers.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// No offers, with room for about `offers` of them.
    pub fn with_capacity(offers: usize) -> Self {
        let mut bytes = Vec::with_capacity(HEADER + offers * TYPICAL_OFFER);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&0u32.to_le_bytes());
        Self { bytes: Storage::Owned(bytes), len: 0, roles: true }
    }

    /// Appends an offer of `resources` on `agent_id` to `framework_id`, in its only role.
    pub fn push<'n>(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: impl IntoIterator<Item = (&'n str, f64)>,
    ) {
        self.push_in_role(framework_id, "", agent_id, resources);
    }

    /// Appends an offer of `resources` on `agent_id` to `framework_id` in `role` (empty: its
    /// only role).
    pub fn push_in_role<'n>(
        &mut self,
        framework_id: &str,
        role: &str,
        agent_id: &str,
        resources: impl IntoIterator<Item = (&'n str, f64)>,
    ) {
        if !self.roles {
            self.upgrade();
        }
        let bytes = self.bytes.to_mut();
        put_str(bytes, framework_id);
        put_str(bytes, role);
        put_str(bytes, agent_id);
        let count_at = bytes.len();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let mut count = 0u32;
        for (name, amount) in resources {
            put_str(bytes, name);
            bytes.extend_from_slice(&amount.to_le_bytes());
            count += 1;
        }
        bytes[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
        self.len += 1;
        bytes[4..HEADER].copy_from_slice(&(self.len as u32).to_le_bytes());
    }

    /// Appends a copy of `offer`.
    pub fn push_offer(&mut self, offer: &Offer) {
        let resources = offer.resources.0.iter().map(|(n, a)| (&**n, *a));
        self.push_in_role(&offer.framework_id, &offer.role, &offer.agent_id, resources);
    }

    /// Rewrites a module's ABI 1.1 answer in the layout with roles, to append to it.
    fn upgrade(&mut self) {
        let old = self.to_vec();
        *self = Offers::with_capacity(old.len());
        for offer in &old {
            self.push_offer(offer);
        }
    }

    /// How many offers there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The offers, in order, borrowed.
    pub fn iter(&self) -> Iter<'_> {
        Iter { cursor: Cursor { bytes: self.bytes.as_slice(), at: HEADER }, left: self.len, roles: self.roles }
    }

    /// Owned copies of the offers.
    pub fn to_vec(&self) -> Vec<Offer> {
        self.iter().map(|offer| offer.to_offer()).collect()
    }

    /// The packed bytes, as they cross the boundary.
    pub fn packed(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// The packed bytes, given up.
    pub fn into_packed(self) -> Vec<u8> {
        match self.bytes {
            Storage::Owned(bytes) => bytes,
            Storage::Module(kept) => kept.as_slice().to_vec(),
        }
    }

    /// Takes packed bytes from elsewhere (a module), checking every length, every text and
    /// every amount once so that reading them later cannot fail.
    pub fn from_packed(bytes: Vec<u8>) -> Result<Self, String> {
        let (len, roles) = check(&bytes)?;
        Ok(Self { bytes: Storage::Owned(bytes), len, roles })
    }

    /// Keeps a module's answer where it lies, checked as [`Offers::from_packed`] checks; the
    /// buffer is released when the offers are dropped (or at once, if they do not check).
    pub(crate) fn from_kept(kept: Kept) -> Result<Self, String> {
        let (len, roles) = check(kept.as_slice())?;
        Ok(Self { bytes: Storage::Module(kept), len, roles })
    }
}

/// Checks packed offers: every length, every text and every amount, so that reading them
/// later cannot fail. Returns how many offers there are, and whether they have roles.
fn check(bytes: &[u8]) -> Result<(usize, bool), String> {
    let mut cursor = Cursor { bytes, at: 0 };
    let roles = match cursor.take(4).map_err(Fault::message)? {
        magic if magic == MAGIC => true,
        magic if magic == MAGIC_1_1 => false,
        _ => return Err("not packed offers (the first bytes are not \"MHO2\" or \"MHOF\")".into()),
    };
    let len = cursor.u32().map_err(Fault::message)? as usize;
    if len > bytes.len() / SMALLEST_OFFER {
        return Err(format!("packed offers claim {len} offers in {} bytes", bytes.len()));
    }
    for _ in 0..len {
        let framework_at = cursor.at;
        cursor.skip_str().map_err(Fault::message)?;
        if roles {
            cursor.skip_str().map_err(Fault::message)?;
        }
        cursor.skip_str().map_err(Fault::message)?;
        for _ in 0..cursor.u32().map_err(Fault::message)? {
            let name_at = cursor.at;
            cursor.skip_str().map_err(Fault::message)?;
            if !cursor.f64().map_err(Fault::message)?.is_finite() {
                let text = |at| Cursor { bytes, at }.str().unwrap_or_default();
                let (name, framework) = (text(name_at), text(framework_at));
                return Err(format!("packed offers: {name} of the offer to '{framework}' is not a number"));
            }
        }
    }
    if cursor.at != bytes.len() {
        return Err(format!("packed offers: {} bytes left over after {len} offers", bytes.len() - cursor.at));
    }
    Ok((len, roles))
}

impl Default for Offers {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Offers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Equal when they hold the same offers in the same order (each offer's resources compared
/// as sets of amounts, whatever order they were pushed in).
impl PartialEq for Offers {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().zip(other.iter()).all(|(a, b)| a.to_offer() == b.to_offer())
    }
}

impl FromIterator<Offer> for Offers {
    fn from_iter<I: IntoIterator<Item = Offer>>(offers: I) -> Self {
        let mut packed = Offers::new();
        for offer in offers {
            packed.push_offer(&offer);
        }
        packed
    }
}

impl From<Vec<Offer>> for Offers {
    fn from(offers: Vec<Offer>) -> Self {
        offers.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Offers {
    type Item = OfferRef<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// One offer of an [`Offers`], borrowed.
#[derive(Clone, Copy)]
pub struct OfferRef<'a> {
    /// The framework.
    pub framework_id: &'a str,
    /// The role the resources are offered in (empty: the framework's only role).
    pub role: &'a str,
    /// The agent.
    pub agent_id: &'a str,
    resources: ResourceIter<'a>,
}

impl<'a> OfferRef<'a> {
    /// What is offered: each resource's name and amount, in the order they were pushed.
    pub fn resources(&self) -> ResourceIter<'a> {
        self.resources
    }

    /// What is offered, as [`Resources`].
    pub fn to_resources(&self) -> Resources {
        let mut resources = Resources::new();
        for (name, amount) in self.resources() {
            resources.0.insert(crate::messages::resource_name(name), amount);
        }
        resources
    }

    /// An owned copy.
    pub fn to_offer(&self) -> Offer {
        Offer {
            framework_id: self.framework_id.to_owned(),
            role: self.role.to_owned(),
            agent_id: self.agent_id.to_owned(),
            resources: self.to_resources(),
        }
    }
}

impl fmt::Debug for OfferRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offer")
            .field("framework_id", &self.framework_id)
            .field("role", &self.role)
            .field("agent_id", &self.agent_id)
            .field("resources", &self.to_resources())
            .finish()
    }
}

/// The offers of an [`Offers`], in order.
#[derive(Clone)]
pub struct Iter<'a> {
    cursor: Cursor<'a>,
    left: usize,
    roles: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = OfferRef<'a>;

    fn next(&mut self) -> Option<OfferRef<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let framework_id = self.cursor.checked_str();
        let role = if self.roles { self.cursor.checked_str() } else { "" };
        let agent_id = self.cursor.checked_str();
        let count = self.cursor.checked(Cursor::u32);
        let resources = ResourceIter { cursor: self.cursor, left: count };
        for _ in 0..count {
            self.cursor.checked_str();
            self.cursor.checked(Cursor::f64);
        }
        Some(OfferRef { framework_id, role, agent_id, resources })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The resources of one offer: `(name, amount)` pairs.
#[derive(Clone, Copy)]
pub struct ResourceIter<'a> {
    cursor: Cursor<'a>,
    left: u32,
}

impl<'a> Iterator for ResourceIter<'a> {
    type Item = (&'a str, f64);

    fn next(&mut self) -> Option<(&'a str, f64)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let name = self.cursor.checked_str();
        Some((name, self.cursor.checked(Cursor::f64)))
    }
}

#[inline(always)]
fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Why packed bytes were refused, kept small so that the checks stay cheap; turned into a
/// message only when it happens.
#[derive(Clone, Copy, Debug)]
enum Fault {
    EndsEarly { at: usize, wanted: usize },
    NotUtf8 { at: usize },
}

impl Fault {
    #[cold]
    fn message(self) -> String {
        match self {
            Fault::EndsEarly { at, wanted } => format!("packed offers end early at byte {at} (wanted {wanted} more)"),
            Fault::NotUtf8 { at } => format!("packed offers: text at byte {at} is not UTF-8"),
        }
    }
}

/// Reads the packed layout, checking every length against what is left. The same reader
/// serves the check of foreign bytes ([`Offers::from_packed`]) and the reading of checked
/// ones, where a failure would be a bug in this module.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fault> {
        match self.bytes.get(self.at..).and_then(|rest| rest.get(..n)) {
            Some(slice) => {
                self.at += n;
                Ok(slice)
            }
            None => Err(Fault::EndsEarly { at: self.at, wanted: n }),
        }
    }

    #[inline(always)]
    fn u32(&mut self) -> Result<u32, Fault> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    #[inline(always)]
    fn f64(&mut self) -> Result<f64, Fault> {
        let mut word = [0; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(f64::from_le_bytes(word))
    }

    #[inline(always)]
    fn str(&mut self) -> Result<&'a str, Fault> {
        let len = self.u32()? as usize;
        let at = self.at;
        crate::packed::utf8(self.take(len)?).ok_or(Fault::NotUtf8 { at })
    }

    /// Checks a text without making a `&str` of it; ASCII, the usual case, is the fast way.
    #[inline(always)]
    fn skip_str(&mut self) -> Result<(), Fault> {
        let len = self.u32()? as usize;
        let at = self.at;
        let bytes = self.take(len)?;
        crate::packed::utf8(bytes).map(drop).ok_or(Fault::NotUtf8 { at })
    }

    /// Reads from bytes [`Offers`] already checked.
    #[inline(always)]
    fn checked<T>(&mut self, read: fn(&mut Self) -> Result<T, Fault>) -> T {
        read(self).expect("offers are checked when they are built")
    }

    #[inline(always)]
    fn checked_str(&mut self) -> &'a str {
        self.checked(Self::str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::kept_buffer;

    fn offers() -> Vec<Offer> {
        (0..3)
            .map(|i| Offer {
                framework_id: format!("f{i}"),
                role: if i == 1 { "eng/ml".into() } else { String::new() },
                agent_id: format!("agent-é{i}"),
                resources: Resources::new().with("cpus", 1.5 * i as f64).with("mem", 1024.0),
            })
            .collect()
    }

    #[test]
    fn packed_offers_round_trip() {
        let packed = Offers::from(offers());
        assert_eq!(packed.len(), 3);
        assert_eq!(packed.to_vec(), offers());
        let again = Offers::from_packed(packed.packed().to_vec()).unwrap();
        assert_eq!(again.to_vec(), offers());
        assert!(Offers::from_packed(Offers::new().into_packed()).unwrap().is_empty());
    }

    #[test]
    fn resources_keep_the_order_they_were_pushed_in() {
        let mut packed = Offers::new();
        packed.push("f", "a", [("mem", 2.0), ("cpus", 1.0)]);
        let names: Vec<_> = packed.iter().next().unwrap().resources().map(|(n, _)| n).collect();
        assert_eq!(names, ["mem", "cpus"]);
    }

    #[test]
    fn malformed_packed_offers_are_refused_not_trusted() {
        let bytes = Offers::from(offers()).into_packed();
        let mut not_a_number = Offers::new();
        not_a_number.push("f", "a", [("cpus", f64::NAN)]);
        let mut bad_text = Offers::new();
        bad_text.push("f", "a", []);
        let mut bad_text = bad_text.into_packed();
        bad_text[HEADER + 4] = 0xff;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"JSON".to_vec(), "not packed offers"),
            (bytes[..bytes.len() - 3].to_vec(), "end early"),
            ([bytes.clone(), vec![0]].concat(), "left over"),
            ([b"MHOF".as_slice(), &u32::MAX.to_le_bytes()].concat(), "claim"),
            (not_a_number.into_packed(), "not a number"),
            (bad_text, "not UTF-8"),
        ];
        for (input, fragment) in cases {
            let error = Offers::from_packed(input.clone()).unwrap_err();
            assert!(error.contains(fragment), "{error}");
            // A module's buffer is refused the same way, and released at once.
            let (kept, released) = kept_buffer(input);
            assert_eq!(Offers::from_kept(kept).unwrap_err(), error);
            assert_eq!(released.load(std::sync::atomic::Ordering::SeqCst), 1);
        }
    }

    #[test]
    fn a_module_s_offers_are_kept_where_they_lie_and_released_once_when_dropped() {
        use std::sync::atomic::Ordering;
        let (kept, released) = kept_buffer(Offers::from(offers()).into_packed());
        let at = kept.as_slice().as_ptr();
        let kept = Offers::from_kept(kept).unwrap();
        assert_eq!(kept.packed().as_ptr(), at, "not copied");
        assert_eq!(kept.to_vec(), offers());
        // A clone and an appended offer are this crate's own bytes; the module's stay kept.
        let mut grown = kept.clone();
        grown.push("f9", "a9", [("cpus", 1.0)]);
        assert_eq!(grown.len(), 4);
        assert_eq!(grown.iter().nth(3).unwrap().agent_id, "a9");
        assert_eq!(released.load(Ordering::SeqCst), 0);
        assert_eq!(kept.into_packed(), Offers::from(offers()).into_packed());
        assert_eq!(released.load(Ordering::SeqCst), 1);
    }
}
