//! The people of the organization: names and e-mail addresses, roles, browsers (user agent,
//! JA3, JA4), home and office addresses, and each person's working rhythm.

use std::collections::HashSet;

use fastrand::Rng;

use crate::net::{self, Place};
use crate::rng::{self, chance, pick};

/// The corporate e-mail domain.
pub const DOMAIN: &str = "example.com";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Owner,
    Admin,
    Reader,
}

/// A browser on one of a person's devices; stable until the person gets a new laptop.
#[derive(Clone, Copy)]
pub struct Device {
    pub ua: &'static str,
    pub ja3: &'static str,
    pub ja4: &'static str,
}

const CHROME_JA4: &str = "t13d1516h2_8daaf6152771_02713d6af862";
const FIREFOX_JA4: &str = "t13d1715h2_5b57614c22b0_3d5424432f57";
const SAFARI_JA4: &str = "t13d2014h2_a09f3c656075_14788d8d241b";

/// Laptop and desktop browsers, roughly in order of popularity.
pub static LAPTOPS: [(f64, Device); 9] = [
    (
        30.0,
        Device {
            ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/153.0.0.0 Safari/537.36",
            ja3: "cd08e31494f9531f560d64c695473da9",
            ja4: CHROME_JA4,
        },
    ),
    (
        12.0,
        Device {
            ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/152.0.0.0 Safari/537.36",
            ja3: "b32309a26951912be7dba376398abc3b",
            ja4: CHROME_JA4,
        },
    ),
    (
        16.0,
        Device {
            ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/153.0.0.0 Safari/537.36",
            ja3: "e1d8b04eeb8ef3954ec4f49267a783ef",
            ja4: CHROME_JA4,
        },
    ),
    (
        9.0,
        Device {
            ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/153.0.0.0 Safari/537.36 Edg/153.0.3650.66",
            ja3: "4f04edce68a7ecbe689edce7bf5f23f3",
            ja4: CHROME_JA4,
        },
    ),
    (
        9.0,
        Device {
            ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:157.0) Gecko/20100101 Firefox/157.0",
            ja3: "579ccef312d18482fc42e2b822ca2430",
            ja4: FIREFOX_JA4,
        },
    ),
    (
        5.0,
        Device {
            ua: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:156.0) Gecko/20100101 Firefox/156.0",
            ja3: "6f5e62edfa5933b1332ddf8b9fb3ef9d",
            ja4: FIREFOX_JA4,
        },
    ),
    (
        5.0,
        Device {
            ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/153.0.0.0 Safari/537.36",
            ja3: "9c673fd64a32c8dc2ecb1d4f2c1e3bc3",
            ja4: CHROME_JA4,
        },
    ),
    (
        8.0,
        Device {
            ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/27.0 Safari/605.1.15",
            ja3: "773906b0efdefa24a7f2b8eb6985bf37",
            ja4: SAFARI_JA4,
        },
    ),
    (
        6.0,
        Device {
            ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:157.0) Gecko/20100101 Firefox/157.0",
            ja3: "3b5074b1b5d032e5620f69f9f700ff0e",
            ja4: FIREFOX_JA4,
        },
    ),
];

/// Second devices: phones and home computers.
pub static SECOND: [(f64, Device); 4] = [
    (
        40.0,
        Device {
            ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/27.0 Mobile/15E148 Safari/604.1",
            ja3: "a8d9ed4a1ef6e3d6b28a3c4e2b8d0f77",
            ja4: SAFARI_JA4,
        },
    ),
    (
        25.0,
        Device {
            ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/152.0.0.0 Safari/537.36",
            ja3: "52d1d8ac6d4b5e2c7f1e0a93d6bb2c41",
            ja4: CHROME_JA4,
        },
    ),
    (
        20.0,
        Device {
            ua: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/153.0.0.0 Mobile Safari/537.36",
            ja3: "0b6ac2e8d1f39e7a4c5d8e1f2a3b4c5d",
            ja4: CHROME_JA4,
        },
    ),
    (
        15.0,
        Device {
            ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:156.0) Gecko/20100101 Firefox/156.0",
            ja3: "6734f37431670b3ab4292b8f60f29984",
            ja4: FIREFOX_JA4,
        },
    ),
];

/// A browser no one in the org uses (automation on a rented server).
pub static HEADLESS: Device = Device {
    ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.207 Safari/537.36",
    ja3: "e7d705a3286e19ea42f587b344ee6865",
    ja4: "t13d1516h2_8daaf6152771_e5627efa2ab1",
};

/// A scripted HTTP client.
pub static SCRIPT: Device = Device {
    ua: "python-requests/2.32.3",
    ja3: "8d9f7747675e24454cd9b7ed35c58707",
    ja4: "t13d1812h1_85036bcba153_b26ce05bbdd6",
};

static FIRST: &[&str] = &[
    "maria",
    "james",
    "wei",
    "priya",
    "michael",
    "sofia",
    "david",
    "aisha",
    "daniel",
    "elena",
    "robert",
    "fatima",
    "john",
    "mei",
    "carlos",
    "olivia",
    "ahmed",
    "emma",
    "luis",
    "hannah",
    "kevin",
    "grace",
    "jose",
    "chloe",
    "brian",
    "yuki",
    "anthony",
    "isabella",
    "mohammed",
    "laura",
    "thomas",
    "ana",
    "christopher",
    "nina",
    "andrew",
    "rachel",
    "jason",
    "sara",
    "ryan",
    "leah",
    "eric",
    "julia",
    "matthew",
    "zoe",
    "joshua",
    "amira",
    "jon",
    "claire",
    "steven",
    "diana",
    "paul",
    "ingrid",
    "mark",
    "natalia",
    "samuel",
    "lucy",
    "omar",
    "victoria",
    "ethan",
    "jasmine",
    "nathan",
    "rosa",
    "alex",
    "megan",
    "adrian",
    "kiara",
    "benjamin",
    "tara",
    "raj",
    "helen",
    "lucas",
    "ivy",
    "marcus",
    "nora",
    "oscar",
    "erin",
    "patrick",
    "dana",
    "hiroshi",
    "alice",
    "samir",
    "beth",
    "noah",
    "irene",
    "tyler",
    "monica",
    "jun",
    "ruth",
    "felix",
    "anika",
    "gabriel",
    "lena",
    "victor",
    "paula",
    "dmitri",
    "carmen",
    "kwame",
    "abigail",
    "sean",
    "yara",
    "simon",
    "ella",
    "arjun",
    "margaret",
    "diego",
    "keisha",
    "peter",
    "linh",
    "frank",
    "sasha",
];

static LAST: &[&str] = &[
    "garcia",
    "smith",
    "chen",
    "patel",
    "johnson",
    "rossi",
    "kim",
    "khan",
    "nguyen",
    "ivanova",
    "brown",
    "rahman",
    "williams",
    "wang",
    "martinez",
    "taylor",
    "hassan",
    "anderson",
    "lopez",
    "cohen",
    "murphy",
    "tanaka",
    "rodriguez",
    "dubois",
    "obrien",
    "sato",
    "thompson",
    "silva",
    "ali",
    "moore",
    "jackson",
    "santos",
    "lee",
    "novak",
    "white",
    "friedman",
    "harris",
    "singh",
    "clark",
    "morales",
    "lewis",
    "schmidt",
    "walker",
    "reyes",
    "young",
    "okafor",
    "hall",
    "fischer",
    "allen",
    "gupta",
    "wright",
    "ramirez",
    "scott",
    "bianchi",
    "green",
    "kowalski",
    "baker",
    "haddad",
    "adams",
    "yamamoto",
    "nelson",
    "costa",
    "carter",
    "park",
    "mitchell",
    "larsen",
    "perez",
    "mensah",
    "roberts",
    "sharma",
    "turner",
    "flores",
    "phillips",
    "cruz",
    "campbell",
    "weber",
    "parker",
    "ortiz",
    "evans",
    "zhang",
    "edwards",
    "nakamura",
    "collins",
    "ferreira",
    "stewart",
    "morris",
    "sanchez",
    "rogers",
    "reed",
    "bailey",
    "cook",
    "bell",
    "murray",
    "kelly",
    "howard",
    "ward",
    "cox",
    "diaz",
    "richardson",
    "wood",
    "watson",
    "brooks",
    "bennett",
    "gray",
    "james",
    "hughes",
    "price",
    "sanders",
];

/// Where a person works from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Base {
    /// Near the office; hybrid.
    Office,
    /// Fully remote in the US.
    RemoteUs,
    /// Fully remote in Canada.
    Canada,
    /// The London office (hybrid, on London time).
    London,
    /// The Bengaluru engineering office (hybrid, on India time).
    Bengaluru,
}

impl Base {
    /// Staff of an office abroad, who keep their own zone's hours.
    pub fn abroad(self) -> bool {
        matches!(self, Base::London | Base::Bengaluru)
    }
}

/// How a person's home sessions reach the internet besides their ISP.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Vpn {
    None,
    /// The company VPN, on a share of home sessions.
    Corporate,
    /// A consumer VPN service on most home sessions, exiting in one of its US servers.
    Consumer,
}

/// A business trip abroad: days `from..to` are spent in `tz` at `place`.
pub struct Trip {
    pub from: u32,
    pub to: u32,
    pub tz: jiff::tz::TimeZone,
    pub place: Place,
}

pub struct Person {
    pub id: String,
    pub email: String,
    pub role: Role,
    /// Builds with the API (creates keys, service accounts, rate limits).
    pub dev: bool,
    pub base: Base,
    pub devices: Vec<Device>,
    pub home: Place,
    pub home6: Option<Place>,
    pub office: Place,
    /// Share of weekdays in the office (hybrid staff).
    pub office_share: f64,
    /// Usual first login and end of day, minutes after local midnight.
    pub start_min: i64,
    pub end_min: i64,
    /// Indexes into the org's projects.
    pub projects: Vec<usize>,
    /// Active from/until (Unix seconds).
    pub joined_at: i64,
    pub left_at: i64,
    pub trip: Option<Trip>,
    /// How often this person signs in again during a day (session timeouts, tabs, devices).
    pub busy: f64,
    /// The person's own time zone when it is not the organization's (offices abroad).
    pub zone: Option<jiff::tz::TimeZone>,
    pub vpn: Vpn,
    /// A cloud workstation some sessions come from (developers).
    pub cloud: Option<Place>,
    /// A replacement laptop and the instant from which it is used instead of the first.
    pub new_laptop: Option<(i64, Device)>,
}

impl Person {
    pub fn active_at(&self, t: i64) -> bool {
        self.joined_at <= t && t < self.left_at
    }

    /// The laptop the person works on at `t`.
    pub fn laptop(&self, t: i64) -> Device {
        match self.new_laptop {
            Some((from, dev)) if t >= from => dev,
            _ => self.devices[0],
        }
    }
}

/// Picks a unique corporate address, e.g. `maria.garcia@example.com`, sometimes with the
/// mixed case some directories keep (`Jon.Smith@Example.com`).
pub fn new_email(rng: &mut Rng, taken: &mut HashSet<String>) -> String {
    loop {
        let first = *pick(rng, FIRST);
        let last = *pick(rng, LAST);
        let base = format!("{first}.{last}");
        let mut local = base.clone();
        let mut n = 2;
        while taken.contains(&local) {
            local = format!("{base}{n}");
            n += 1;
        }
        if n > 9 {
            continue;
        }
        taken.insert(local.clone());
        if chance(rng, 0.04) {
            let cap = |s: &str| {
                let mut c = s.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            };
            let local = local.split('.').map(cap).collect::<Vec<_>>().join(".");
            return format!("{local}@Example.com");
        }
        return format!("{local}@{DOMAIN}");
    }
}

pub fn weighted_device(rng: &mut Rng, table: &[(f64, Device)]) -> Device {
    let w: Vec<f64> = table.iter().map(|(w, _)| *w).collect();
    table[rng::weighted(rng, &w)].1
}

/// A home address for person `n` living near `base`.
pub fn home(rng: &mut Rng, base: Base, n: usize) -> Place {
    match base {
        Base::Office => Place {
            ip: net::home_ip(n),
            geo: pick(rng, &net::HOMES_NEAR),
        },
        Base::RemoteUs => Place {
            ip: net::home_ip(n),
            geo: pick(rng, &net::HOMES_REMOTE),
        },
        Base::Canada => Place {
            ip: net::canada_ip(n),
            geo: pick(rng, &net::CANADA),
        },
        Base::London => Place {
            ip: net::home_abroad_ip(0, n),
            geo: pick(rng, &net::HOMES_LONDON),
        },
        Base::Bengaluru => Place {
            ip: net::home_abroad_ip(1, n),
            geo: pick(rng, &net::HOMES_BENGALURU),
        },
    }
}

/// Creates a person with stable devices, addresses and rhythm. `n` numbers them for
/// address assignment.
pub fn new_person(rng: &mut Rng, n: usize, role: Role, email: String, joined_at: i64) -> Person {
    let base = match rng.u32(..100) {
        0..=79 => Base::Office,
        80..=91 => Base::RemoteUs,
        _ => Base::Canada,
    };
    let mut devices = vec![weighted_device(rng, &LAPTOPS)];
    if chance(rng, 0.45) {
        devices.push(weighted_device(rng, &SECOND));
    }
    let home = home(rng, base, n);
    let home6 = chance(rng, 0.35).then(|| Place {
        ip: net::v6(rng),
        geo: home.geo,
    });
    let office = Place {
        ip: net::office_ip(rng.usize(..8)),
        geo: &net::OFFICE,
    };
    let dev = match role {
        Role::Owner => chance(rng, 0.5),
        Role::Admin => chance(rng, 0.8),
        Role::Reader => chance(rng, 0.62),
    };
    let start_min = 8 * 60 + rng.i64(0..=95);
    let end_min = (start_min + 8 * 60 + rng.i64(0..=90)).min(19 * 60);
    Person {
        id: rng::id(rng, "user-", 24),
        email,
        role,
        dev,
        base,
        devices,
        home,
        home6,
        office,
        office_share: if base == Base::Office {
            0.35 + rng.f64() * 0.5
        } else {
            0.0
        },
        start_min,
        end_min,
        projects: Vec::new(),
        joined_at,
        left_at: i64::MAX,
        trip: None,
        busy: 0.6 + rng.f64() * 0.8,
        zone: None,
        vpn: Vpn::None,
        cloud: None,
        new_laptop: None,
    }
}
