//! Where people work from besides the head office and home, in histories of two months or
//! more: offices abroad on their own clocks, VPNs, cloud workstations, business trips and
//! the odd new laptop.

use fastrand::Rng;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

use crate::clock::Clock;
use crate::net::{self, Place};
use crate::org::Org;
use crate::people::{self, Base, Role, Trip, Vpn};
use crate::rng::{between, chance, pick};

/// Histories shorter than this keep the simple picture (one office, a trip or two).
pub const MIN_DAYS: u32 = 60;
/// Organizations smaller than this have no office abroad.
pub const OFFICES_FROM: usize = 100;

/// Plans offices abroad, VPNs, cloud workstations and trips for a long history.
pub fn plan(org: &mut Org, clock: &Clock, rng: &mut Rng) {
    if org.people.len() >= OFFICES_FROM {
        offices_abroad(org, rng);
    }
    for i in 0..org.people.len() {
        let p = &mut org.people[i];
        if matches!(p.base, Base::Office | Base::RemoteUs | Base::Canada) {
            p.vpn = match rng.u32(..100) {
                0..=14 => Vpn::Corporate,
                15..=18 if p.base != Base::Canada => Vpn::Consumer,
                _ => Vpn::None,
            };
        }
        if p.dev && chance(rng, 0.07) {
            p.cloud = Some(Place {
                ip: net::cloud_desktop_ip(i),
                geo: &net::CLOUD_DESKTOP,
            });
        }
    }
    trips(org, clock, rng);
    new_laptops(org, clock, rng);
}

/// Replaces the laptop of about a third of the staff per year (a new machine every three
/// years or so), often with another browser or system than before.
fn new_laptops(org: &mut Org, clock: &Clock, rng: &mut Rng) {
    let share = (f64::from(clock.days) / 365.0 / 3.0).min(1.0);
    for p in &mut org.people {
        if chance(rng, share) {
            let day = rng.u32(20.min(clock.days - 1)..clock.days);
            let from = clock.day_start(day) + rng.i64(0..86_400);
            p.new_laptop = Some((from, people::weighted_device(rng, &people::LAPTOPS)));
        }
    }
}

/// Moves about a sixth of the staff to London and a tenth to Bengaluru, admins among them,
/// so that their ordinary daytime work is night-time at the head office.
fn offices_abroad(org: &mut Org, rng: &mut Rng) {
    let london = TimeZone::get("Europe/London").expect("bundled zone");
    let bengaluru = TimeZone::get("Asia/Kolkata").expect("bundled zone");
    let ci_owner = org.ci_owner;
    for (i, p) in org.people.iter_mut().enumerate() {
        if p.role == Role::Owner || i == ci_owner {
            continue;
        }
        let (office, base, tz, egress) = match rng.u32(..100) {
            0..=15 => (0, Base::London, &london, &net::LONDON_OFFICE),
            16..=25 => (1, Base::Bengaluru, &bengaluru, &net::BENGALURU_OFFICE),
            _ => continue,
        };
        p.base = base;
        p.zone = Some(tz.clone());
        p.home = people::home(rng, base, i);
        p.home6 = None;
        p.office = Place {
            ip: net::office_abroad_ip(office, i),
            geo: egress,
        };
        p.office_share = 0.35 + rng.f64() * 0.5;
    }
}

/// About one trip a year for one person in eight: conferences at home and abroad, visits
/// to the other offices; admins and owners travel too and keep working on the road.
fn trips(org: &mut Org, clock: &Clock, rng: &mut Rng) {
    let years = f64::from(clock.days) / 365.0;
    let n = ((org.people.len() as f64) * years / 8.0).round() as usize;
    for _ in 0..n {
        let i = rng.usize(..org.people.len());
        let p = &org.people[i];
        if p.trip.is_some() || p.base.abroad() {
            continue;
        }
        let lo = rng.u32(7..clock.days.saturating_sub(10).max(8));
        let Some(from) = (lo..clock.days.saturating_sub(7))
            .find(|d| clock.date(*d).weekday() == Weekday::Monday)
        else {
            continue;
        };
        let (zone, geo) = pick(rng, &net::TRIPS);
        let to = from + between(rng, 3, 5) as u32;
        org.people[i].trip = Some(Trip {
            from,
            to,
            tz: TimeZone::get(zone).expect("bundled zone"),
            place: Place {
                ip: format!("198.18.{}.{}", 220 + rng.u8(..8), rng.u8(2..=254)),
                geo,
            },
        });
    }
}
