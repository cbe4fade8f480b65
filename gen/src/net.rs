//! Network places people act from (office, home, remote, travel, hostile) and their
//! `ip_address_details`, all in documentation address ranges and documentation ASNs.

use fastrand::Rng;

/// Geolocation as the API reports it: every value is a string.
pub struct Geo {
    pub country: &'static str,
    pub city: &'static str,
    pub region: &'static str,
    pub region_code: &'static str,
    pub asn: &'static str,
    pub latitude: &'static str,
    pub longitude: &'static str,
}

/// An address and where it geolocates.
#[derive(Clone)]
pub struct Place {
    pub ip: String,
    pub geo: &'static Geo,
}

const fn geo(
    country: &'static str,
    city: &'static str,
    region: &'static str,
    region_code: &'static str,
    asn: &'static str,
    latitude: &'static str,
    longitude: &'static str,
) -> Geo {
    Geo {
        country,
        city,
        region,
        region_code,
        asn,
        latitude,
        longitude,
    }
}

/// The head office egress (203.0.113.0/24).
pub static OFFICE: Geo = geo(
    "US",
    "New York",
    "New York",
    "NY",
    "64500",
    "40.71427",
    "-74.00597",
);

/// Home connections of staff near the office (198.51.100.0/24), several consumer ISPs.
pub static HOMES_NEAR: [Geo; 12] = [
    geo(
        "US",
        "New York",
        "New York",
        "NY",
        "64501",
        "40.71427",
        "-74.00597",
    ),
    geo(
        "US",
        "Brooklyn",
        "New York",
        "NY",
        "64501",
        "40.65010",
        "-73.94958",
    ),
    geo(
        "US",
        "Brooklyn",
        "New York",
        "NY",
        "64502",
        "40.65010",
        "-73.94958",
    ),
    geo(
        "US",
        "Queens",
        "New York",
        "NY",
        "64502",
        "40.68149",
        "-73.83652",
    ),
    geo(
        "US",
        "Jersey City",
        "New Jersey",
        "NJ",
        "64503",
        "40.72816",
        "-74.07764",
    ),
    geo(
        "US",
        "Hoboken",
        "New Jersey",
        "NJ",
        "64503",
        "40.74399",
        "-74.03236",
    ),
    geo(
        "US",
        "Yonkers",
        "New York",
        "NY",
        "64501",
        "40.93121",
        "-73.89875",
    ),
    geo(
        "US",
        "Stamford",
        "Connecticut",
        "CT",
        "64504",
        "41.05343",
        "-73.53873",
    ),
    geo(
        "US",
        "White Plains",
        "New York",
        "NY",
        "64504",
        "41.03399",
        "-73.76291",
    ),
    geo(
        "US",
        "Montclair",
        "New Jersey",
        "NJ",
        "64503",
        "40.82593",
        "-74.20903",
    ),
    geo(
        "US",
        "Newark",
        "New Jersey",
        "NJ",
        "64505",
        "40.73566",
        "-74.17237",
    ),
    geo(
        "US",
        "Princeton",
        "New Jersey",
        "NJ",
        "64505",
        "40.34872",
        "-74.65905",
    ),
];

/// Home connections of fully remote US staff (198.51.100.0/24).
pub static HOMES_REMOTE: [Geo; 5] = [
    geo(
        "US",
        "Philadelphia",
        "Pennsylvania",
        "PA",
        "64506",
        "39.95233",
        "-75.16379",
    ),
    geo(
        "US",
        "Boston",
        "Massachusetts",
        "MA",
        "64502",
        "42.35843",
        "-71.05977",
    ),
    geo(
        "US",
        "Washington",
        "District of Columbia",
        "DC",
        "64506",
        "38.89511",
        "-77.03637",
    ),
    geo(
        "US",
        "Raleigh",
        "North Carolina",
        "NC",
        "64505",
        "35.77210",
        "-78.63861",
    ),
    geo(
        "US",
        "Pittsburgh",
        "Pennsylvania",
        "PA",
        "64506",
        "40.44062",
        "-79.99589",
    ),
];

/// Remote staff in Canada (192.0.2.0/24).
pub static CANADA: [Geo; 2] = [
    geo(
        "CA",
        "Toronto",
        "Ontario",
        "ON",
        "64507",
        "43.70011",
        "-79.41630",
    ),
    geo(
        "CA",
        "Mississauga",
        "Ontario",
        "ON",
        "64508",
        "43.57890",
        "-79.65830",
    ),
];

/// A hotel network on a business trip.
pub static LONDON_HOTEL: Geo = LONDON_HOTEL_GEO;

/// The London office egress (inside 203.0.113.0/24, like the head office).
pub static LONDON_OFFICE: Geo = geo(
    "GB", "London", "England", "ENG", "64520", "51.50853", "-0.12574",
);

/// Home connections of London staff.
pub static HOMES_LONDON: [Geo; 4] = [
    geo(
        "GB", "London", "England", "ENG", "64521", "51.50853", "-0.12574",
    ),
    geo(
        "GB", "Croydon", "England", "ENG", "64522", "51.38333", "-0.10000",
    ),
    geo(
        "GB", "Reading", "England", "ENG", "64521", "51.45625", "-0.97113",
    ),
    geo(
        "GB",
        "Cambridge",
        "England",
        "ENG",
        "64523",
        "52.20000",
        "0.11667",
    ),
];

/// The Bengaluru engineering office egress.
pub static BENGALURU_OFFICE: Geo = geo(
    "IN",
    "Bengaluru",
    "Karnataka",
    "KA",
    "64530",
    "12.97194",
    "77.59369",
);

/// Home connections of Bengaluru staff.
pub static HOMES_BENGALURU: [Geo; 3] = [
    geo(
        "IN",
        "Bengaluru",
        "Karnataka",
        "KA",
        "64531",
        "12.97194",
        "77.59369",
    ),
    geo(
        "IN",
        "Bengaluru",
        "Karnataka",
        "KA",
        "64532",
        "12.97194",
        "77.59369",
    ),
    geo(
        "IN",
        "Mysuru",
        "Karnataka",
        "KA",
        "64531",
        "12.29791",
        "76.63925",
    ),
];

/// The corporate VPN's egress, in a cloud region (inside the office networks).
pub static CORPORATE_VPN: Geo = geo(
    "US",
    "Ashburn",
    "Virginia",
    "VA",
    "64510",
    "39.04372",
    "-77.48749",
);

/// Exit servers of a consumer VPN service (one hosting ASN), all in the US.
pub static CONSUMER_VPN: [Geo; 4] = [
    geo(
        "US",
        "Chicago",
        "Illinois",
        "IL",
        "65560",
        "41.85003",
        "-87.65005",
    ),
    geo(
        "US",
        "Dallas",
        "Texas",
        "TX",
        "65560",
        "32.78306",
        "-96.80667",
    ),
    geo(
        "US",
        "Los Angeles",
        "California",
        "CA",
        "65560",
        "34.05223",
        "-118.24368",
    ),
    geo(
        "US",
        "Newark",
        "New Jersey",
        "NJ",
        "65560",
        "40.73566",
        "-74.17237",
    ),
];

/// Cloud workstations (a hosting provider's desktop service).
pub static CLOUD_DESKTOP: Geo = geo(
    "US",
    "Boardman",
    "Oregon",
    "OR",
    "64511",
    "45.83985",
    "-119.70058",
);

/// Where business trips go: hotel and conference networks, and their zones.
pub static TRIPS: [(&str, Geo); 7] = [
    ("Europe/London", LONDON_HOTEL_GEO),
    (
        "Europe/Paris",
        geo(
            "FR",
            "Paris",
            "Ile-de-France",
            "IDF",
            "65551",
            "48.85341",
            "2.34880",
        ),
    ),
    (
        "Europe/Berlin",
        geo(
            "DE",
            "Berlin",
            "Land Berlin",
            "BE",
            "65553",
            "52.52437",
            "13.41053",
        ),
    ),
    (
        "Asia/Tokyo",
        geo(
            "JP",
            "Tokyo",
            "Tokyo",
            "13",
            "65552",
            "35.68950",
            "139.69171",
        ),
    ),
    (
        "America/Los_Angeles",
        geo(
            "US",
            "San Francisco",
            "California",
            "CA",
            "65554",
            "37.77493",
            "-122.41942",
        ),
    ),
    (
        "America/Los_Angeles",
        geo(
            "US",
            "Las Vegas",
            "Nevada",
            "NV",
            "65555",
            "36.17497",
            "-115.13722",
        ),
    ),
    (
        "America/Toronto",
        geo(
            "CA",
            "Toronto",
            "Ontario",
            "ON",
            "65556",
            "43.70011",
            "-79.41630",
        ),
    ),
];

const LONDON_HOTEL_GEO: Geo = geo(
    "GB", "London", "England", "ENG", "65550", "51.50853", "-0.12574",
);

/// Hosting and residential-proxy networks abroad (198.18.0.0/15), used only by incidents.
pub static FOREIGN: [Geo; 9] = [
    geo(
        "RU", "Moscow", "Moscow", "MOW", "65536", "55.75222", "37.61556",
    ),
    geo(
        "BR",
        "São Paulo",
        "São Paulo",
        "SP",
        "65537",
        "-23.54750",
        "-46.63611",
    ),
    geo(
        "NL",
        "Amsterdam",
        "North Holland",
        "NH",
        "65538",
        "52.37403",
        "4.88969",
    ),
    geo(
        "DE",
        "Frankfurt am Main",
        "Hesse",
        "HE",
        "65539",
        "50.11552",
        "8.68417",
    ),
    geo(
        "SG",
        "Singapore",
        "Singapore",
        "01",
        "65540",
        "1.28967",
        "103.85007",
    ),
    geo(
        "RO",
        "Bucharest",
        "Bucuresti",
        "B",
        "65541",
        "44.43225",
        "26.10626",
    ),
    geo("NG", "Lagos", "Lagos", "LA", "65542", "6.45407", "3.39467"),
    geo(
        "VN",
        "Hanoi",
        "Hanoi",
        "HN",
        "65543",
        "21.02450",
        "105.84117",
    ),
    geo(
        "IN",
        "Mumbai",
        "Maharashtra",
        "MH",
        "65544",
        "19.07283",
        "72.88261",
    ),
];

/// One of the office's NAT egress addresses.
pub fn office_ip(i: usize) -> String {
    format!("203.0.113.{}", 10 + i % 8)
}

/// A home address; orgs above ~250 people share the range.
pub fn home_ip(i: usize) -> String {
    format!("198.51.100.{}", 2 + i % 253)
}

/// A Canadian home address.
pub fn canada_ip(i: usize) -> String {
    format!("192.0.2.{}", 20 + i % 230)
}

/// A stable IPv6 address in the documentation prefix 2001:db8::/32.
pub fn v6(rng: &mut Rng) -> String {
    format!(
        "2001:db8:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
        rng.u16(0x100..),
        rng.u16(..),
        rng.u16(..),
        rng.u16(..),
        rng.u16(..),
        rng.u16(..)
    )
}

/// A hostile or travel address outside the org's usual ranges (198.18.0.0/15).
pub fn foreign_ip(rng: &mut Rng) -> String {
    format!("198.{}.{}.{}", rng.u8(18..=19), rng.u8(..), rng.u8(1..=254))
}

/// An egress address of the London (`office` 0) or Bengaluru (1) office.
pub fn office_abroad_ip(office: usize, i: usize) -> String {
    format!("203.0.113.{}", 64 + office * 16 + i % 4)
}

/// A home address abroad (`office` 0: London, 1: Bengaluru).
pub fn home_abroad_ip(office: usize, i: usize) -> String {
    format!("198.18.{}.{}", 210 + office, 2 + i % 253)
}

/// An egress address of the corporate VPN (inside the office networks).
pub fn corporate_vpn_ip(i: usize) -> String {
    format!("203.0.113.{}", 200 + i % 4)
}

/// A consumer VPN exit: `exit` picks the server.
pub fn consumer_vpn_ip(exit: usize, i: usize) -> String {
    format!("198.18.240.{}", 1 + (exit * 61 + i) % 250)
}

/// A person's cloud workstation.
pub fn cloud_desktop_ip(i: usize) -> String {
    format!("198.18.250.{}", 2 + i % 250)
}
